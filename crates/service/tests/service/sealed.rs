//! Recordings sealed at rest (issue 18, part 5): with a master key
//! configured, what the disk holds is noise; plays, ranges, downloads and
//! waveforms are the WAV they were; a rotated key still opens what the old
//! one sealed; without the key nothing is served.

use super::store::{call_with, noise_wav};
use super::support::TestService;
use axum::http::{Method, StatusCode};
use earshot_service::store::Recordings;
use earshot_telephony::sealed::{KeyRing, MasterKey};
use serde_json::json;

fn ring(byte: u8) -> KeyRing {
    KeyRing { current: MasterKey::new(&[byte; 32]), older: Vec::new() }
}

#[tokio::test]
async fn a_sealed_recording_plays_downloads_and_draws_as_the_wav_it_was_and_its_file_is_noise() {
    let service = TestService::start_sealed(ring(1)).await;
    let a = service.acme().await;
    let wav = noise_wav(24_000);
    let (status, imported) =
        service.post("/api/v1/calls/import", &a.admin, json!({"calls": [call_with(&wav)]})).await;
    assert_eq!(status, StatusCode::CREATED, "{imported}");
    let recording = imported["recordings"][0].as_i64().unwrap();
    let name: String = sqlx::query_scalar("SELECT file_name FROM recordings WHERE id = $1")
        .bind(recording)
        .fetch_one(service.state.db.pool())
        .await
        .unwrap();
    let on_disk = std::fs::read(service.state.recordings_dir().join(&name)).unwrap();
    assert!(on_disk.starts_with(b"ESHSEAL1"));
    assert!(!on_disk.windows(4).any(|w| w == b"RIFF"), "no WAV on the disk");
    assert!(!on_disk.windows(64).any(|w| wav.windows(64).next() == Some(w)), "no audio in the clear");

    let path = format!("/api/v1/recordings/{recording}/audio");
    let (status, headers, body) = service.raw(Method::GET, &path, Some(&a.ada), None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-length"], wav.len().to_string().as_str());
    assert!(body == wav, "played: the WAV byte for byte");
    for (range, first, last) in [
        ("bytes=0-99", 0, 99),
        ("bytes=5000-70000", 5000, 70_000),
        ("bytes=-10", wav.len() - 10, wav.len() - 1),
    ] {
        let (status, _, body) =
            service.raw(Method::GET, &path, Some(&a.ada), None, &[("range", range)]).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert!(body == wav[first..=last], "{range}");
    }
    let download = format!("/api/v1/recordings/{recording}/download");
    let (status, _, body) = service.raw(Method::GET, &download, Some(&a.admin), None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == wav, "downloaded: the .wav users expect");
    let (status, peaks) =
        service.get(&format!("/api/v1/recordings/{recording}/peaks?buckets=50"), &a.ada).await;
    assert_eq!(status, StatusCode::OK, "{peaks}");
    assert_eq!(peaks["peaks"].as_array().unwrap().len(), 50);
}

#[tokio::test]
async fn a_rotated_key_opens_what_the_old_one_sealed_and_no_key_opens_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("recordings");
    let old = Recordings::local(&spool).unwrap().with_keys(ring(1));
    let path = spool.join("call.sealed");
    let mut writer = earshot_telephony::wav::RecordingWriter::create_sealed(&path, 2, &ring(1)).unwrap();
    writer.write_frames(&vec![[1000, -1000]; 16_000]).unwrap();
    writer.finish().unwrap();
    let size = old.size("call.sealed").await.unwrap();
    assert_eq!(size, 44 + 16_000 * 4);
    let rotated = Recordings::local(&spool)
        .unwrap()
        .with_keys(KeyRing { current: MasterKey::new(&[2; 32]), older: vec![MasterKey::new(&[1; 32])] });
    assert_eq!(rotated.size("call.sealed").await.unwrap(), size);
    let without = Recordings::local(&spool).unwrap();
    assert!(matches!(without.size("call.sealed").await, Err(earshot_service::store::StoreError::Sealed(_))));
    let other = Recordings::local(&spool).unwrap().with_keys(ring(3));
    assert!(matches!(
        other.read("call.sealed", 0..100).await,
        Err(earshot_service::store::StoreError::Sealed(_))
    ));
}

#[tokio::test]
async fn a_rotation_rewraps_headers_and_leaves_the_audio_alone() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("recordings");
    std::fs::create_dir_all(&spool).unwrap();
    let path = spool.join("call.sealed");
    let mut writer = earshot_telephony::wav::RecordingWriter::create_sealed(&path, 2, &ring(1)).unwrap();
    writer.write_frames(&vec![[500, -500]; 9_000]).unwrap();
    writer.finish().unwrap();
    let before = std::fs::read(&path).unwrap();
    let rotated = Recordings::local(&spool)
        .unwrap()
        .with_keys(KeyRing { current: MasterKey::new(&[2; 32]), older: vec![MasterKey::new(&[1; 32])] });
    assert!(rotated.rewrap("call.sealed").await.unwrap());
    assert!(!rotated.rewrap("call.sealed").await.unwrap(), "once is enough");
    let after = std::fs::read(&path).unwrap();
    assert_eq!(after[96..], before[96..], "the audio is not rewritten");
    let only_new = Recordings::local(&spool).unwrap().with_keys(ring(2));
    let old_only = Recordings::local(&spool).unwrap().with_keys(ring(1));
    assert_eq!(only_new.size("call.sealed").await.unwrap(), 44 + 9_000 * 4);
    assert!(old_only.size("call.sealed").await.is_err(), "the old key no longer opens it");
}
