//! The real binary: `earshotd init`, then `earshotd serve` on a loopback port, driven with reqwest.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn init_then_serve_then_log_in() {
    for backend in super::support::backends() {
        let database = match &backend {
            Some(server) => vec!["--database-url".to_owned(), super::support::fresh_postgres(server).await],
            None => vec![],
        };
        init_then_serve_then_log_in_on(&database).await;
    }
}

async fn init_then_serve_then_log_in_on(database: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_earshotd");
    let status = Command::new(binary)
        .args(["init", "--data-dir"])
        .arg(dir.path())
        .args(database)
        .args(["--company", "Acme", "--admin-email", "boss@acme.test", "--admin-password", "boss-password"])
        .status()
        .unwrap();
    assert!(status.success());
    // A second init with a bad e-mail fails clearly and changes nothing.
    let output = Command::new(binary)
        .args(["init", "--data-dir"])
        .arg(dir.path())
        .args(database)
        .args(["--company", "Other", "--admin-email", "nope", "--admin-password", "boss-password"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("e-mail"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let port = free_port();
    let config = dir.path().join("earshot.toml");
    std::fs::write(&config, format!("http = \"127.0.0.1:{port}\"\nsession_hours = 1\n")).unwrap();
    let _server = Server(
        Command::new(binary)
            .args(["serve", "--data-dir"])
            .arg(dir.path())
            .arg("--config")
            .arg(&config)
            .args(database)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut healthy = false;
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "earshotd serve answers /healthz");

    // A second instance on the same directory stops at once with a sentence
    // saying what to do (issue 17), and the first one goes on serving.
    let second = Command::new(binary)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--http", &format!("127.0.0.1:{}", free_port())])
        .args(database)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{} is in use by another earshotd (process ", dir.path().display())),
        "{stderr}"
    );
    if database.is_empty() {
        assert!(stderr.contains("SQLite database serves one instance only"), "{stderr}");
        assert!(stderr.contains("PostgreSQL") && stderr.contains("docs/DEPLOYMENT.md"), "{stderr}");
    } else {
        assert!(stderr.contains("Each instance needs its own --data-dir"), "{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status() == 200));
    let session: serde_json::Value = client
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"email": "boss@acme.test", "password": "boss-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expires_in = session["expires_at"].as_i64().unwrap() - earshot_service::now_millis();
    assert!((3_500_000..=3_600_000).contains(&expires_in), "session_hours = 1 from the config file");
    let sync: serde_json::Value = client
        .get(format!("{base}/api/v1/sync"))
        .bearer_auth(session["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sync["company"]["name"], "Acme");
    assert_eq!(sync["me"]["email"], "boss@acme.test");
}

/// Started with a low soft limit on open files (1 024 is common, 256 here),
/// `earshotd` raises it to its hard limit: each call's legs and recording
/// and each connected app hold files, a few hundred calls more than 1 024.
#[tokio::test]
async fn serve_raises_its_limit_on_open_files() {
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_earshotd");
    let status = Command::new(binary)
        .args(["init", "--data-dir"])
        .arg(dir.path())
        .args(["--company", "Acme", "--admin-email", "boss@acme.test", "--admin-password", "boss-password"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let hard = limits(std::process::id()).1;
    assert!(hard > 256, "the tests' hard limit on open files is {hard}");
    let port = free_port();
    let server = Server(
        Command::new("sh")
            .args(["-c", r#"ulimit -Sn 256 && exec "$0" serve --data-dir "$1" --http "$2""#])
            .arg(binary)
            .arg(dir.path())
            .arg(format!("127.0.0.1:{port}"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(limits(server.0.id()), (hard.min(1 << 20), hard));
}

/// The soft and hard limits on open files of process `pid`.
fn limits(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text.lines().find(|line| line.starts_with("Max open files")).unwrap();
    let mut values = line["Max open files".len()..].split_whitespace().map(|v| v.parse().unwrap_or(u64::MAX));
    (values.next().unwrap(), values.next().unwrap())
}
