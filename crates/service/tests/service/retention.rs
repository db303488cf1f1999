//! Recordings kept only as long as they should be (issue 18, part 4), through
//! the API: the company's retention applied by the service, a legal hold that
//! stops it, deletion of a contact's recordings on request; each deletion in
//! the audit log, each deleted recording shown as deleted (never an error),
//! and every right still applying to what remains.

use super::store::{noise_wav, wait_for};
use super::support::{S3Server, TestService, backends};
use axum::http::{Method, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

/// An answered inbound call of Ada's, `days_ago` days old, with a recording.
fn old_call(days_ago: i64, contact: Option<i64>) -> Value {
    let started = earshot_service::now_millis() - days_ago * DAY_MS;
    json!({
        "direction": "inbound", "status": "answered", "started_at": started,
        "answered_at": started + 5_000, "ended_at": started + 65_000,
        "number": "+442070000010", "external_number": "+15550199", "contact": contact,
        "parties": ["ada@acme.test"], "rang": ["ada@acme.test"],
        "recording": {"wav_base64": base64::engine::general_purpose::STANDARD.encode(noise_wav(8_000))}
    })
}

async fn import(service: &TestService, admin: &str, calls: Vec<Value>) -> (Vec<i64>, Vec<i64>) {
    let (status, body) = service.post("/api/v1/calls/import", admin, json!({ "calls": calls })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ids = |key: &str| body[key].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    (ids("calls"), ids("recordings"))
}

async fn file_of(service: &TestService, recording: i64) -> std::path::PathBuf {
    let name: String = sqlx::query_scalar("SELECT file_name FROM recordings WHERE id = $1")
        .bind(recording)
        .fetch_one(service.state.db.pool())
        .await
        .unwrap();
    service.state.recordings_dir().join(name)
}

/// Waits (up to 10 s) until the call's recording is shown deleted.
async fn until_deleted(service: &TestService, token: &str, call: i64) -> Value {
    for _ in 0..200 {
        let (_, body) = service.get(&format!("/api/v1/calls/{call}"), token).await;
        if !body["recording"]["deleted"].is_null() {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("call {call}'s recording was not deleted in 10 s");
}

#[tokio::test]
async fn the_retention_deletes_what_is_older_keeps_what_is_held_and_audits_it() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let (calls, recordings) =
            import(&service, &a.admin, vec![old_call(100, None), old_call(100, None), old_call(2, None)])
                .await;
        let (old, held, recent) = (calls[0], calls[1], calls[2]);
        let files: Vec<_> = futures::future::join_all(recordings.iter().map(|r| file_of(&service, *r))).await;
        assert!(files.iter().all(|f| f.exists()));

        // A legal hold on the second old call.
        let (status, body) =
            service.put(&format!("/api/v1/calls/{held}/legal-hold"), &a.admin, json!({"held": true})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["legal_hold"]["by"].is_i64() && body["legal_hold"]["at"].is_i64(), "{body}");

        // Keep 30 days: applied at once, not at the next hourly sweep.
        let (_, mut settings) = service.get("/api/v1/settings", &a.admin).await;
        assert_eq!(settings["recording_retention_days"], Value::Null, "forever by default");
        settings["recording_retention_days"] = json!(30);
        let (status, body) = service.put("/api/v1/settings", &a.admin, settings).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // The old call stays, its recording shown deleted: by nobody (the service), for retention.
        let call = until_deleted(&service, &a.ada, old).await;
        assert_eq!(call["recording"]["deleted"]["reason"], "retention", "{call}");
        assert_eq!(call["recording"]["deleted"]["by"], Value::Null, "{call}");
        assert_eq!((call["can_play"].as_bool(), call["can_download"].as_bool()), (Some(false), Some(false)));
        assert_eq!(call["status"], "answered");
        // Played or downloaded anyway: 410 with a sentence, not an error page.
        for action in ["audio", "download", "peaks"] {
            let path = format!("/api/v1/recordings/{}/{action}", recordings[0]);
            let (status, body) = service.get(&path, &a.ada).await;
            assert_eq!(status, StatusCode::GONE, "{path}: {body}");
            assert!(body["detail"].as_str().unwrap().contains("was deleted on"), "{body}");
            assert_eq!(body["code"], "gone");
        }
        for _ in 0..100 {
            if !files[0].exists() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(!files[0].exists(), "the deleted recording's file is gone from the disk");
        // The held and the recent ones stay, and play.
        for (call, recording, file) in [(held, recordings[1], &files[1]), (recent, recordings[2], &files[2])]
        {
            let (_, body) = service.get(&format!("/api/v1/calls/{call}"), &a.ada).await;
            assert_eq!(body["recording"]["deleted"], Value::Null, "{body}");
            let (status, _, _) = service
                .raw(Method::GET, &format!("/api/v1/recordings/{recording}/audio"), Some(&a.ada), None, &[])
                .await;
            assert_eq!(status, StatusCode::OK);
            assert!(file.exists());
        }
        // "With a recording" no longer finds it.
        let (_, page) = service.get("/api/v1/calls?has_recording=true&limit=200", &a.admin).await;
        let with: Vec<i64> =
            page["calls"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect();
        assert!(!with.contains(&old) && with.contains(&held) && with.contains(&recent), "{with:?}");

        // Lifting the hold lets the next sweep take it.
        let (status, body) =
            service.put(&format!("/api/v1/calls/{held}/legal-hold"), &a.admin, json!({"held": false})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["legal_hold"], Value::Null);
        let swept = earshot_service::retention::sweep(&service.state, earshot_service::now_millis(), None)
            .await
            .unwrap();
        assert_eq!((swept.deleted, swept.files_removed), (1, 1));
        assert!(!files[1].exists());

        // The audit log: the hold, its release and both deletions, the service's with no user.
        let (_, log) = service.get("/api/v1/audit", &a.admin).await;
        let entries: Vec<(String, Value, Value)> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["action"].as_str().unwrap().to_owned(), e["user"].clone(), e["recording"].clone()))
            .collect();
        let admin_id = service.get("/api/v1/sync", &a.admin).await.1["me"]["id"].clone();
        for expected in [
            ("delete".to_owned(), Value::Null, json!(recordings[0])),
            ("delete".to_owned(), Value::Null, json!(recordings[1])),
            ("hold".to_owned(), admin_id.clone(), json!(recordings[1])),
            ("release".to_owned(), admin_id.clone(), json!(recordings[1])),
        ] {
            assert!(entries.contains(&expected), "{expected:?} in {entries:?}");
        }
        // Counted: every deletion the log holds (the fixture's own old calls among them).
        let deletions = entries.iter().filter(|(action, ..)| action == "delete").count();
        assert!(deletions >= 2);
        let (_, _, metrics) = service.raw(Method::GET, "/metrics", None, None, &[]).await;
        let metrics = String::from_utf8(metrics).unwrap();
        assert!(
            metrics.contains(&format!("earshot_recordings_deleted_retention_total {deletions}\n")),
            "{metrics}"
        );
        assert!(
            metrics.contains(&format!("earshot_recording_files_removed_total {deletions}\n")),
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn a_contacts_recordings_are_deleted_on_request_the_calls_stay_and_holds_keep_theirs() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let (_, contact) = service
            .post("/api/v1/contacts", &a.admin, json!({"name": "Globex", "numbers": ["+15550199"]}))
            .await;
        let contact = contact["id"].as_i64().unwrap();
        let (calls, recordings) = import(
            &service,
            &a.admin,
            vec![old_call(3, Some(contact)), old_call(2, Some(contact)), old_call(1, None)],
        )
        .await;
        service.put(&format!("/api/v1/calls/{}/legal-hold", calls[1]), &a.admin, json!({"held": true})).await;

        // Refusals first: an agent, a contact of no company of ours.
        let path = format!("/api/v1/contacts/{contact}/recordings");
        let (status, _, _) = service.raw(Method::DELETE, &path, Some(&a.ada), None, &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _, _) = service
            .raw(Method::DELETE, "/api/v1/contacts/999999/recordings", Some(&a.admin), None, &[])
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, body) = service.raw(Method::DELETE, &path, Some(&a.admin), None, &[]).await;
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!({"deleted": 1, "held_calls": [calls[1]]}));

        let (_, call) = service.get(&format!("/api/v1/calls/{}", calls[0]), &a.admin).await;
        let admin_id = service.get("/api/v1/sync", &a.admin).await.1["me"]["id"].clone();
        assert_eq!(call["recording"]["deleted"]["reason"], "request", "{call}");
        assert_eq!(call["recording"]["deleted"]["by"], admin_id, "{call}");
        assert_eq!(call["can_play"], false);
        for call in &calls[1..] {
            let (_, body) = service.get(&format!("/api/v1/calls/{call}"), &a.admin).await;
            assert_eq!(body["recording"]["deleted"], Value::Null, "{body}");
        }
        let (status, _) = service.get(&format!("/api/v1/recordings/{}/audio", recordings[0]), &a.admin).await;
        assert_eq!(status, StatusCode::GONE);
        // Asking again deletes nothing more.
        let (_, _, body) = service.raw(Method::DELETE, &path, Some(&a.admin), None, &[]).await;
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["deleted"], 0);
    }
}

#[tokio::test]
async fn legal_holds_and_retention_are_an_admins_and_checked() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let (calls, _) = import(&service, &a.admin, vec![old_call(1, None)]).await;
        let path = format!("/api/v1/calls/{}/legal-hold", calls[0]);
        let (status, _) = service.put(&path, &a.ada, json!({"held": true})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) =
            service.put("/api/v1/calls/999999/legal-hold", &a.admin, json!({"held": true})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = service.put(&path, &a.admin, json!({"held": "yes"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        // Another company's admin cannot hold Acme's call.
        service.company("Globex").await;
        let globex = service.log_in("admin@globex.test", "admin-password").await;
        let (status, _) = service.put(&path, &globex, json!({"held": true})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // A retention of no days is refused, with the field named.
        let (_, mut settings) = service.get("/api/v1/settings", &a.admin).await;
        settings["recording_retention_days"] = json!(0);
        let (status, body) = service.put("/api/v1/settings", &a.admin, settings).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["problems"][0]["field"], "recording_retention_days", "{body}");
    }
}

#[tokio::test]
async fn a_deleted_recording_leaves_the_object_store_too() {
    let s3 = S3Server::start().await;
    let service = TestService::start_with_s3(&s3).await;
    let a = service.acme().await;
    let (calls, recordings) = import(&service, &a.admin, vec![old_call(3, None)]).await;
    wait_for(&service, "the upload", |uploaded, _, pending| uploaded >= 1 && pending == 0).await;
    let name: String = sqlx::query_scalar("SELECT file_name FROM recordings WHERE id = $1")
        .bind(recordings[0])
        .fetch_one(service.state.db.pool())
        .await
        .unwrap();
    assert!(service.state.recordings.size(&name).await.is_ok(), "in the store");
    let (_, mut settings) = service.get("/api/v1/settings", &a.admin).await;
    settings["recording_retention_days"] = json!(1);
    service.put("/api/v1/settings", &a.admin, settings).await;
    until_deleted(&service, &a.admin, calls[0]).await;
    for _ in 0..100 {
        if service.state.recordings.size(&name).await.is_err() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the deleted recording is still in the store");
}
