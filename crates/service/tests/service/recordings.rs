//! Playing and downloading recordings: rights at request time, Range, and the audit log (SPEC §5).

use super::support::{TestService, backends};
use axum::http::{Method, StatusCode};
use earshot_policy::CallId;
use serde_json::json;

async fn recording_of(service: &TestService, token: &str, call: CallId, field: &str) -> i64 {
    let (status, body) = service.get(&format!("/api/v1/calls/{call}"), token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body[field]["id"].as_i64().unwrap()
}

#[tokio::test]
async fn audio_streams_whole_or_by_range_and_plays_are_audited() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let id = recording_of(&service, &a.ada, a.sales_answered, "recording").await;
        let path = format!("/api/v1/recordings/{id}/audio");
        let (status, headers, whole) = service.raw(Method::GET, &path, Some(&a.ada), None, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "audio/wav");
        assert_eq!(headers["accept-ranges"], "bytes");
        assert_eq!(&whole[..4], b"RIFF");
        hound::WavReader::new(std::io::Cursor::new(&whole)).expect("a valid WAV");

        let (status, headers, part) =
            service.raw(Method::GET, &path, Some(&a.ada), None, &[("range", "bytes=100-199")]).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(headers["content-range"], format!("bytes 100-199/{}", whole.len()));
        assert_eq!(part, whole[100..200]);

        let (status, headers, body) =
            service.raw(Method::GET, &path, Some(&a.ada), None, &[("range", "bytes=999999-")]).await;
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(headers["content-type"], "application/problem+json");
        assert!(String::from_utf8_lossy(&body).contains("outside the recording"));

        // One play from the start, one seek: one audit line.
        let (status, log) = service.get("/api/v1/audit", &a.admin).await;
        assert_eq!(status, StatusCode::OK);
        let log = log.as_array().unwrap();
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(log[0]["action"], "play");
        assert_eq!(log[0]["recording"], id);
        assert_eq!(log[0]["call"], a.sales_answered.0);
        assert_eq!(log[0]["user"], a.ada_id.0);
        // The entry says which call it was without opening it.
        let (_, call) = service.get(&format!("/api/v1/calls/{}", a.sales_answered), &a.admin).await;
        let summary = &log[0]["call_summary"];
        assert_eq!(summary["direction"], call["direction"]);
        assert_eq!(summary["started_at"], call["started_at"]);
        assert_eq!(summary["external_number"], call["external_number"]);
        assert_eq!(summary["parties"], call["parties"]);
        assert!(summary["parties"].as_array().unwrap().contains(&json!(a.ada_id.0)), "{summary}");
    }
}

#[tokio::test]
async fn download_needs_the_download_right_and_is_audited() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let id = recording_of(&service, &a.ada, a.sales_answered, "recording").await;
        let path = format!("/api/v1/recordings/{id}/download");
        // Ada may play but not download (agent_can_download off).
        let (status, body) = service.get(&path, &a.ada).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["detail"], "You may not download this recording.");
        // Sam may (supervisor with can_download on and all_available).
        let (status, headers, bytes) = service.raw(Method::GET, &path, Some(&a.supervisor), None, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers["content-disposition"],
            "attachment; filename=\"earshot-2025-11-23-1213-inbound-+15550100.wav\""
        );
        hound::WavReader::new(std::io::Cursor::new(bytes)).expect("a valid WAV");
        let (_, log) = service.get("/api/v1/audit", &a.admin).await;
        assert_eq!(log[0]["action"], "download");
        assert_eq!(log.as_array().unwrap().len(), 1, "the refused download is not a download");
    }
}

#[tokio::test]
async fn refusals_name_no_more_than_they_must() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let outbound = recording_of(&service, &a.admin, a.bo_outbound, "recording").await;
        let voicemail = recording_of(&service, &a.admin, a.support_voicemail, "voicemail").await;
        // Ada cannot see Bo's outbound call: its recording does not exist for her.
        let (status, _) = service.get(&format!("/api/v1/recordings/{outbound}/audio"), &a.ada).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Bo sees the voicemail (missed rule) and it rang him: own_only plays it (D3).
        let (status, _, _) = service
            .raw(Method::GET, &format!("/api/v1/recordings/{voicemail}/audio"), Some(&a.bo), None, &[])
            .await;
        assert_eq!(status, StatusCode::OK);
        // Nia (analyst, nothing configured) sees nothing: not found.
        let (status, _) = service.get(&format!("/api/v1/recordings/{voicemail}/audio"), &a.analyst).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // An id that does not exist at all reads the same.
        let (status, _) = service.get("/api/v1/recordings/999999/audio", &a.ada).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Only admins read the audit log.
        let (status, _) = service.get("/api/v1/audit", &a.supervisor).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn a_play_from_the_middle_is_audited_too_and_seeks_are_one_play() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let id = recording_of(&service, &a.ada, a.sales_answered, "recording").await;
        let path = format!("/api/v1/recordings/{id}/audio");
        // No request from byte 0 at all: still a play.
        let (status, _, _) =
            service.raw(Method::GET, &path, Some(&a.ada), None, &[("range", "bytes=1-")]).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        for range in ["bytes=100-", "bytes=0-", "bytes=5000-5999"] {
            service.raw(Method::GET, &path, Some(&a.ada), None, &[("range", range)]).await;
        }
        let (_, log) = service.get("/api/v1/audit", &a.admin).await;
        assert_eq!(log.as_array().unwrap().len(), 1, "one play, however the player seeks: {log}");
        // Another user's play is their own line.
        service.raw(Method::GET, &path, Some(&a.supervisor), None, &[("range", "bytes=9-")]).await;
        let (_, log) = service.get("/api/v1/audit", &a.admin).await;
        assert_eq!(log.as_array().unwrap().len(), 2);
        // A range in another unit is ignored: the whole file.
        let (status, _, _) =
            service.raw(Method::GET, &path, Some(&a.ada), None, &[("range", "items=0-1")]).await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_waveform_needs_the_play_right_and_is_not_a_play() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let id = recording_of(&service, &a.ada, a.sales_answered, "recording").await;
        let (status, body) = service.get(&format!("/api/v1/recordings/{id}/peaks?buckets=50"), &a.ada).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let peaks = body["peaks"].as_array().unwrap();
        assert_eq!(peaks.len(), 50);
        assert!(peaks.iter().all(|p| p.as_u64().is_some_and(|p| p <= 255)));
        assert!(peaks.iter().any(|p| p.as_u64() > Some(0)), "the recording is not silent: {peaks:?}");
        assert!(body["duration_ms"].as_u64() > Some(0));
        // Not a play: the audit log stays empty.
        let (_, log) = service.get("/api/v1/audit", &a.admin).await;
        assert_eq!(log.as_array().unwrap().len(), 0, "{log}");
        // Bad sizes are refused in words; someone who may not see it finds nothing.
        let (status, body) = service.get(&format!("/api/v1/recordings/{id}/peaks?buckets=0"), &a.ada).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("buckets"), "{body}");
        let outbound = recording_of(&service, &a.admin, a.bo_outbound, "recording").await;
        let (status, _) = service.get(&format!("/api/v1/recordings/{outbound}/peaks"), &a.ada).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
