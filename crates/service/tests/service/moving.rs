//! `earshotd move` (issue 17): a single machine's SQLite and recordings on
//! disk moved onto PostgreSQL and S3, then served from there as they were.
//! Needs the tests' PostgreSQL (`./x test` starts one); skipped without it.

use super::store::{call_with, noise_wav};
use super::support::{S3_ACCESS_KEY, S3_SECRET_KEY, S3Server, TestService};
use axum::http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_single_machine_moves_onto_postgresql_and_s3_and_serves_as_before() {
    let Some(server) = crate::postgres::server() else { return };
    let s3 = S3Server::start().await;
    // One machine: SQLite, recordings on its disk.
    let before = TestService::start(&None).await;
    let a = before.acme().await;
    let wav = noise_wav(24_000);
    let (status, imported) =
        before.post("/api/v1/calls/import", &a.admin, json!({"calls": [call_with(&wav)]})).await;
    assert_eq!(status, StatusCode::CREATED, "{imported}");
    let (_, calls_before) = before.get("/api/v1/calls?app=dashboard", &a.admin).await;
    let (_, users_before) = before.get("/api/v1/users", &a.admin).await;

    let url = crate::postgres::fresh_postgres(&server).await;
    let config = before.state.data_dir.join("move.toml");
    std::fs::write(&config, s3.config_toml()).unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_earshotd"))
        .args(["move", "--data-dir"])
        .arg(&before.state.data_dir)
        .args(["--to-database-url", &url, "--config"])
        .arg(&config)
        .env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("calls") && stderr.contains("to the store"), "{stderr}");
    let spooled: Vec<_> = walk(&before.state.recordings_dir());
    assert!(spooled.is_empty(), "every recording left the disk once the store held it: {spooled:?}");

    // The moved installation: the same log-ins, users, calls and recordings.
    let after = TestService::start_at_with_s3(&url, &s3).await;
    let admin = after.log_in("admin@acme.test", "admin-password").await;
    let ada = after.log_in("ada@acme.test", "ada-password").await;
    let (_, calls_after) = after.get("/api/v1/calls?app=dashboard", &admin).await;
    assert_eq!(calls_after, calls_before);
    let (_, users_after) = after.get("/api/v1/users", &admin).await;
    assert_eq!(users_after, users_before);
    let call = imported["calls"][0].as_i64().unwrap();
    let (_, call) = after.get(&format!("/api/v1/calls/{call}"), &ada).await;
    let recording = call["recording"]["id"].as_i64().unwrap();
    let (status, _, bytes) =
        after.raw(Method::GET, &format!("/api/v1/recordings/{recording}/audio"), Some(&ada), None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == wav, "the recording plays from the store");
    // New rows take new ids: the sequences moved past the copied ones.
    let (status, body) = after
        .post(
            "/api/v1/users",
            &admin,
            json!({"name": "Cy", "email": "cy@acme.test", "role": "agent", "password": "cy-password-1",
                   "extension": "109", "groups": [], "settings": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = after.post("/api/v1/calls/import", &admin, json!({"calls": [call_with(&wav)]})).await;
    assert_eq!(status, StatusCode::CREATED);

    // Moving into a database that holds a company is refused, and changes nothing.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_earshotd"))
        .args(["move", "--data-dir"])
        .arg(&before.state.data_dir)
        .args(["--to-database-url", &url])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("already holds a company"), "{stderr}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|company| std::fs::read_dir(company.path()).into_iter().flatten().flatten())
        .map(|file| file.path())
        .filter(|path| path.extension().is_some_and(|e| e == "wav"))
        .collect()
}
