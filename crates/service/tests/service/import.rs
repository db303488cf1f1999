//! `POST /api/v1/calls/import`: all or nothing, WAVs checked, clear problems.

use super::support::{TestService, backends, write_wav};
use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::{Value, json};

fn wav_base64(channels: u16, samples: u32) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.wav");
    write_wav(&path, channels, samples);
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
}

fn good_call() -> Value {
    json!({
        "direction": "inbound", "status": "answered", "started_at": 1763950000000i64,
        "answered_at": 1763950005000i64, "ended_at": 1763950065000i64,
        "number": "+442070000010", "external_number": "+15550199",
        "parties": ["ada@acme.test"], "rang": ["ada@acme.test", "sam@acme.test"],
        "recording": {"wav_base64": wav_base64(2, 16_000), "paused_spans": [{"start_ms": 500, "end_ms": 900}]}
    })
}

#[tokio::test]
async fn an_import_stores_calls_and_recordings() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let voicemail = json!({
            "direction": "inbound", "status": "voicemail", "started_at": 1763950100000i64, "ended_at": 1763950130000i64,
            "number": "+442070000011", "external_number": "+15550198", "rang": ["bo@acme.test"],
            "voicemail": {"wav_base64": wav_base64(1, 8_000)}
        });
        let (status, body) =
            service.post("/api/v1/calls/import", &a.admin, json!({"calls": [good_call(), voicemail]})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let ids = body["calls"].as_array().unwrap();
        assert_eq!(ids.len(), 2);
        let (status, call) = service.get(&format!("/api/v1/calls/{}", ids[0]), &a.ada).await;
        assert_eq!(status, StatusCode::OK, "Ada is a party: she sees it");
        assert_eq!(call["recording"]["duration_ms"], 2_000);
        assert_eq!(call["recording"]["paused_spans"], json!([{"start_ms": 500, "end_ms": 900}]));
        let recording = call["recording"]["id"].as_i64().unwrap();
        let (status, _, bytes) = service
            .raw(
                axum::http::Method::GET,
                &format!("/api/v1/recordings/{recording}/audio"),
                Some(&a.ada),
                None,
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap().duration(), 16_000);
        let (_, vm) = service.get(&format!("/api/v1/calls/{}", ids[1]), &a.bo).await;
        assert_eq!(vm["can_play"], true, "the voicemail rang Bo (D3)");
    }
}

#[tokio::test]
async fn one_bad_call_imports_nothing() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let before = service.visible(&a.admin, "dashboard").await.len();
        let files_before = std::fs::read_dir(service.state.recordings_dir()).map(|d| d.count()).unwrap_or(0);
        let mut not_wav = good_call();
        not_wav["recording"]["wav_base64"] =
            json!(base64::engine::general_purpose::STANDARD.encode(b"RIFF but not really"));
        let mut mono_call = good_call();
        mono_call["recording"]["wav_base64"] = json!(wav_base64(1, 8_000));
        let mut stranger = good_call();
        stranger["parties"] = json!(["nobody@acme.test"]);
        let mut foreign_number = good_call();
        foreign_number["number"] = json!("+449999999999");
        let mut backwards = good_call();
        backwards["ended_at"] = json!(1);
        let mut wrong_status = good_call();
        wrong_status["direction"] = json!("outbound");
        wrong_status["status"] = json!("missed");
        let (status, body) = service
            .post(
                "/api/v1/calls/import",
                &a.admin,
                json!({"calls": [good_call(), not_wav, mono_call, stranger, foreign_number, backwards, wrong_status]}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let fields: Vec<&str> =
            body["problems"].as_array().unwrap().iter().map(|p| p["field"].as_str().unwrap()).collect();
        for field in [
            "calls[1].recording",
            "calls[2].recording",
            "calls[3].parties",
            "calls[4].number",
            "calls[5].ended_at",
            "calls[6].status",
        ] {
            assert!(fields.contains(&field), "{field} in {fields:?}");
        }
        assert!(body["detail"].as_str().unwrap().starts_with("Nothing was imported"));
        assert_eq!(service.visible(&a.admin, "dashboard").await.len(), before);
        let files_after = std::fs::read_dir(service.state.recordings_dir()).map(|d| d.count()).unwrap_or(0);
        assert_eq!(files_after, files_before);

        let (status, _) = service.post("/api/v1/calls/import", &a.ada, json!({"calls": [good_call()]})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = service.post("/api/v1/calls/import", &a.admin, json!({"calls": []})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
