//! Recordings in S3-compatible storage (issue 17): uploaded after the call
//! from the local spool, served from the store through the same rights
//! check, kept on this machine while the store is down, and refused at
//! start-up with a clear sentence when the store is misconfigured. Against
//! a real S3 server (`s3s-fs`, which checks signatures), one per test.

use super::support::{S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY, S3Server, TestService};
use axum::http::{Method, StatusCode};
use base64::Engine as _;
use earshot_service::store::{PART_SIZE, Recordings, StoreConfig};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A call's WAV (two channels, 8 kHz) of `frames` frames of noise (no two
/// windows alike, so a range read from the wrong offset cannot pass for the
/// right one).
pub(super) fn noise_wav(frames: u32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 8_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut bytes, spec).unwrap();
    let mut state = 0x2545_f491_u32;
    for _ in 0..frames * 2 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        writer.write_sample((state >> 16) as u16 as i16 / 4).unwrap();
    }
    writer.finalize().unwrap();
    bytes.into_inner()
}

/// An answered call of Ada's with `recording` as its recording.
pub(super) fn call_with(recording: &[u8]) -> Value {
    json!({
        "direction": "inbound", "status": "answered", "started_at": 1763950000000i64,
        "answered_at": 1763950005000i64, "ended_at": 1763950265000i64,
        "number": "+442070000010", "external_number": "+15550199",
        "parties": ["ada@acme.test"], "rang": ["ada@acme.test"],
        "recording": {"wav_base64": base64::engine::general_purpose::STANDARD.encode(recording)}
    })
}

/// Imports `calls`; returns each call's recording id and file name in the spool.
async fn import(service: &TestService, admin: &str, ada: &str, calls: Vec<Value>) -> Vec<(i64, String)> {
    let (status, body) = service.post("/api/v1/calls/import", admin, json!({ "calls": calls })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut recordings = Vec::new();
    for id in body["calls"].as_array().unwrap() {
        let (_, call) = service.get(&format!("/api/v1/calls/{id}"), ada).await;
        let recording = call["recording"]["id"].as_i64().unwrap();
        let file_name: String = sqlx::query_scalar("SELECT file_name FROM recordings WHERE id = $1")
            .bind(recording)
            .fetch_one(service.state.db.pool())
            .await
            .unwrap();
        recordings.push((recording, file_name));
    }
    recordings
}

/// Waits until `done` holds of the service's upload counters (20 s at most).
pub(super) async fn wait_for(service: &TestService, what: &str, done: impl Fn(u64, u64, i64) -> bool) {
    let stats = service.state.recordings.upload_stats().expect("recordings go to a store");
    for _ in 0..400 {
        let (uploaded, failures, pending) = (
            stats.uploaded.load(Ordering::Relaxed),
            stats.failures.load(Ordering::Relaxed),
            stats.pending.load(Ordering::Relaxed),
        );
        if done(uploaded, failures, pending) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 20 s ({stats:?})");
}

async fn audio(
    service: &TestService,
    token: &str,
    recording: i64,
    range: Option<&str>,
) -> (StatusCode, Vec<u8>) {
    let headers: Vec<(&str, &str)> = range.map(|r| ("range", r)).into_iter().collect();
    let (status, _, bytes) = service
        .raw(Method::GET, &format!("/api/v1/recordings/{recording}/audio"), Some(token), None, &headers)
        .await;
    (status, bytes)
}

#[tokio::test]
async fn recordings_are_uploaded_after_the_call_and_play_from_the_store_across_its_parts() {
    let s3 = S3Server::start().await;
    let service = TestService::start_with_s3(&s3).await;
    let a = service.acme().await;
    // One long recording, uploaded in two parts (5 MiB and the rest), and a short one in one piece.
    let long = noise_wav(u32::try_from(PART_SIZE).unwrap() / 4 + 100_000);
    let short = noise_wav(8_000);
    let recordings = import(&service, &a.admin, &a.ada, vec![call_with(&long), call_with(&short)]).await;
    wait_for(&service, "both uploaded", |uploaded, _, pending| uploaded == 2 && pending == 0).await;

    for ((recording, file_name), original) in recordings.iter().zip([&long, &short]) {
        assert!(
            !service.state.recordings_dir().join(file_name).exists(),
            "the local copy is deleted once uploaded"
        );
        assert_eq!(std::fs::read(s3.object(file_name)).unwrap(), *original, "the store holds the same bytes");
        let (status, bytes) = audio(&service, &a.ada, *recording, None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(bytes == *original, "the whole recording, from the store");
    }
    // The long one went up in two parts (S3's ETag of a multipart upload ends in "-<parts>").
    let (recording, ref long_name) = recordings[0];
    let meta =
        object_store::ObjectStoreExt::head(s3.client().as_ref(), &long_name.as_str().into()).await.unwrap();
    assert!(meta.e_tag.as_deref().is_some_and(|tag| tag.trim_matches('"').ends_with("-2")), "{meta:?}");
    let meta = object_store::ObjectStoreExt::head(s3.client().as_ref(), &recordings[1].1.as_str().into())
        .await
        .unwrap();
    assert!(meta.e_tag.as_deref().is_some_and(|tag| !tag.contains('-')), "{meta:?}");
    // A seek across the boundary between the two parts.
    let boundary = PART_SIZE;
    let range = format!("bytes={}-{}", boundary - 1_000, boundary + 999);
    let (status, bytes) = audio(&service, &a.ada, recording, Some(&range)).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert!(bytes == long[boundary - 1_000..boundary + 1_000], "the range read across the parts");
    let (status, bytes) = audio(&service, &a.ada, recording, Some("bytes=-100")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert!(bytes == long[long.len() - 100..]);
    // The download (an admin's: agents may not download by default) and the waveform, from the store too.
    let (status, _, bytes) = service
        .raw(Method::GET, &format!("/api/v1/recordings/{recording}/download"), Some(&a.admin), None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == long);
    let (status, peaks) =
        service.get(&format!("/api/v1/recordings/{recording}/peaks?buckets=10"), &a.ada).await;
    assert_eq!(status, StatusCode::OK, "{peaks}");
    assert_eq!(peaks["duration_ms"], u64::try_from(long.len() - 44).unwrap() / 4 * 1_000 / 8_000);
    assert!(peaks["peaks"].as_array().unwrap().iter().all(|p| p.as_u64().unwrap() > 50), "{peaks}");

    // The rights check is the same as on the local disk: Bo, an agent in Support, does not see Ada's call.
    let (status, _) = audio(&service, &a.bo, recording, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, text) = service.request(Method::GET, "/metrics", None, None).await;
    let text = text.as_str().unwrap();
    assert!(text.contains("earshot_recording_uploads_total 2"), "{text}");
    assert!(text.contains("earshot_recording_uploads_pending 0"), "{text}");
    assert!(
        text.contains(&format!("earshot_recording_upload_bytes_total {}", long.len() + short.len())),
        "{text}"
    );
}

#[tokio::test]
async fn a_store_down_at_hang_up_keeps_the_recording_here_until_it_returns() {
    let mut s3 = S3Server::start().await;
    let service = TestService::start_with_s3(&s3).await;
    let a = service.acme().await;
    s3.stop();
    let wav = noise_wav(16_000);
    let recordings = import(&service, &a.admin, &a.ada, vec![call_with(&wav)]).await;
    let (recording, file_name) = &recordings[0];
    wait_for(&service, "an upload attempt failed", |_, failures, pending| failures >= 1 && pending == 1)
        .await;
    let spooled = service.state.recordings_dir().join(file_name);
    assert!(spooled.exists(), "kept on this machine while the store is down");
    let (status, bytes) = audio(&service, &a.ada, *recording, None).await;
    assert_eq!(status, StatusCode::OK, "it plays from here meanwhile");
    assert!(bytes == wav);
    let (_, text) = service.request(Method::GET, "/metrics", None, None).await;
    assert!(text.as_str().unwrap().contains("earshot_recording_uploads_pending 1"), "{text}");

    s3.resume().await;
    wait_for(&service, "uploaded once the store is back", |uploaded, _, pending| {
        uploaded == 1 && pending == 0
    })
    .await;
    assert!(!spooled.exists());
    assert!(std::fs::read(s3.object(file_name)).unwrap() == wav);
    let (status, bytes) = audio(&service, &a.ada, *recording, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == wav, "and plays from the store");
}

#[tokio::test]
async fn a_recording_left_on_this_machine_is_uploaded_at_start_up() {
    // What a crash, a stop or a store that was down left in the spool.
    let s3 = S3Server::start().await;
    let spool = tempfile::tempdir().unwrap();
    let wav = noise_wav(24_000);
    std::fs::create_dir_all(spool.path().join("7")).unwrap();
    std::fs::write(spool.path().join("7/left-call.wav"), &wav).unwrap();
    let recordings =
        Recordings::open_s3_with(spool.path(), &s3.config(), S3_ACCESS_KEY, S3_SECRET_KEY).await.unwrap();
    assert_eq!(recordings.upload_spooled(), 1);
    let stats = recordings.upload_stats().unwrap();
    for _ in 0..400 {
        if stats.uploaded.load(Ordering::Relaxed) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stats.uploaded.load(Ordering::Relaxed), 1, "{stats:?}");
    assert!(!spool.path().join("7/left-call.wav").exists());
    assert!(std::fs::read(s3.object("7/left-call.wav")).unwrap() == wav);
    assert_eq!(recordings.size("7/left-call.wav").await.unwrap(), wav.len() as u64);
}

#[tokio::test]
async fn a_misconfigured_store_stops_the_start_up_with_a_sentence_saying_what_is_wrong() {
    let s3 = S3Server::start().await;
    let spool = tempfile::tempdir().unwrap();
    let error = |result: anyhow::Result<Recordings>| match result {
        Ok(recordings) => panic!("the store was accepted: {recordings:?}"),
        Err(error) => format!("{error:#}"),
    };

    let wrong_secret =
        error(Recordings::open_s3_with(spool.path(), &s3.config(), S3_ACCESS_KEY, "not-the-secret").await);
    assert!(wrong_secret.contains("refused the credentials"), "{wrong_secret}");
    let unknown_key =
        error(Recordings::open_s3_with(spool.path(), &s3.config(), "NOBODY", S3_SECRET_KEY).await);
    assert!(unknown_key.contains("refused the credentials"), "{unknown_key}");
    let config = StoreConfig { bucket: Some("no-such-bucket".into()), ..s3.config() };
    let no_bucket =
        error(Recordings::open_s3_with(spool.path(), &config, S3_ACCESS_KEY, S3_SECRET_KEY).await);
    assert!(no_bucket.contains("has no bucket \"no-such-bucket\""), "{no_bucket}");
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = StoreConfig { endpoint: Some(format!("http://127.0.0.1:{nobody}")), ..s3.config() };
    let unreachable =
        error(Recordings::open_s3_with(spool.path(), &config, S3_ACCESS_KEY, S3_SECRET_KEY).await);
    assert!(unreachable.contains("cannot use the recordings store at http://127.0.0.1"), "{unreachable}");

    // The real binary: `earshotd serve` with the wrong secret in its environment exits with the sentence.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("earshot.toml");
    std::fs::write(
        &config,
        format!(
            "http = \"127.0.0.1:0\"\n[recordings]\nstore = \"s3\"\nendpoint = \"http://127.0.0.1:{}\"\nbucket = \"{S3_BUCKET}\"\n",
            s3.port
        ),
    )
    .unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_earshotd"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .arg("--config")
        .arg(&config)
        .env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output).await.expect("it exits").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("refused the credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
