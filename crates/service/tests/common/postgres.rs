//! Fresh databases on the tests' PostgreSQL server (`./x test` starts one
//! and names it in `EARSHOT_TEST_POSTGRES_URL`).

#![allow(dead_code, reason = "each test binary uses a part of it")]

/// The tests' PostgreSQL server, when there is one.
pub fn server() -> Option<String> {
    std::env::var("EARSHOT_TEST_POSTGRES_URL").ok().filter(|url| !url.is_empty())
}

/// A fresh PostgreSQL database on the server at `server_url`, named uniquely.
pub async fn fresh_postgres(server_url: &str) -> String {
    use sqlx::Connection as _;
    use sqlx::Executor as _;
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("earshot_test_{}_{n}", std::process::id());
    let mut connection =
        sqlx::PgConnection::connect(server_url).await.expect("the test PostgreSQL server answers");
    connection.execute(format!("DROP DATABASE IF EXISTS {name}").as_str()).await.unwrap();
    connection.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
    let (base, _) = server_url.rsplit_once('/').expect("a URL with a database name");
    format!("{base}/{name}")
}
