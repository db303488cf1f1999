//! Dependencies failing while the service runs (issue 17): the database
//! unreachable gives 503 with `Retry-After` and a sentence, `/healthz` says
//! which dependency is down, and all is well again when it returns. The
//! database is reached through a TCP relay of the test's, which it cuts.
//! Needs the tests' PostgreSQL (`./x test` starts one); skipped without it.

use super::support::TestService;
use axum::http::{Method, StatusCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// A TCP relay to `target` that can be cut (every connection closed, new
/// ones refused) and restored.
struct Relay {
    port: u16,
    cut: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
}

impl Relay {
    async fn start(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0_u64);
        let relay = Self { port, cut: Arc::clone(&cut), cuts: cuts.clone() };
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if cut.load(Ordering::SeqCst) {
                    continue;
                }
                let mut cut_now = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_now.changed() => {}
                    }
                });
            }
        });
        relay
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn the_database_gone_is_a_503_with_retry_after_and_healthz_says_so_until_it_returns() {
    let Some(server) = crate::postgres::server() else { return };
    let url = crate::postgres::fresh_postgres(&server).await;
    // The same database, through the relay.
    let (head, tail) = url.split_once("@").unwrap();
    let (host, database) = tail.split_once('/').unwrap();
    let target = tokio::net::lookup_host(host).await.unwrap().next().unwrap();
    let relay = Relay::start(target).await;
    let service = TestService::start_at(&format!("{head}@127.0.0.1:{}/{database}", relay.port)).await;
    let a = service.acme().await;
    service.state.events.ready(Duration::from_secs(5)).await;
    let (status, health) = service.request(Method::GET, "/healthz", None, None).await;
    assert_eq!((status, health["database"].as_str()), (StatusCode::OK, Some("ok")), "{health}");

    relay.cut();
    let (status, health) = service.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!((health["status"].as_str(), health["database"].as_str()), (Some("degraded"), Some("down")));
    let (status, headers, body) =
        service.raw(Method::GET, "/api/v1/calls?app=calling", Some(&a.ada), None, &[]).await;
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["retry-after"], "5");
    assert_eq!(body["code"], "unavailable");
    assert!(body["detail"].as_str().unwrap().contains("cannot reach its database"), "{body}");

    relay.restore();
    let mut healthy = false;
    for _ in 0..100 {
        let (status, _) = service.request(Method::GET, "/healthz", None, None).await;
        if status == StatusCode::OK {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "healthy again once the database is back");
    let (status, _) = service.get("/api/v1/calls?app=calling", &a.ada).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn an_unreachable_database_at_start_up_is_a_sentence_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_earshotd"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--http", "127.0.0.1:0", "--database-url"])
        .arg(format!("postgres://earshot:secret@127.0.0.1:{nobody}/earshot"))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output).await.expect("it exits").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("connecting to the database postgres://earshot:***@127.0.0.1:{nobody}")),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "the password is not shown: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
