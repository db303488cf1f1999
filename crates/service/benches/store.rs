//! Recordings to S3 (docs/PERFORMANCE.md): how long a recording takes from
//! hang-up to being in the store, and the upload's throughput, by the
//! call's length, against a real S3 server on loopback (`s3s-fs`, which
//! checks every request's signature and writes every object to disk).
//!
//! For each length, a call's WAV (two channels, 8 kHz, 16 bit: 32 000
//! bytes a second) is written to the spool and handed to the uploader the
//! way a hang-up does (`Recordings::finished`); the time is until the
//! uploader has checked the store holds it all and deleted the local copy.
//! Each length is measured three times; the median is printed. Beside it,
//! the peer: `curl` uploading the same file to the same server in one
//! signed PUT (`--aws-sigv4`), which is what any S3 client at least does.
//!
//! `cargo bench -p earshot-service --bench store` measures calls of 1, 10
//! and 60 minutes; `-- --test` (as `./x test` runs it) one short call, and
//! checks it arrived.

#![allow(clippy::print_stdout)]

use earshot_service::store::{Recordings, StoreConfig, StoreKind};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const KEY: &str = "EARSHOTBENCHKEY";
const SECRET: &str = "earshot-bench-secret";
const BUCKET: &str = "recordings";
/// Bytes of a call's recording per second.
const BYTES_PER_SECOND: usize = 32_000;

fn main() {
    let test = std::env::args().any(|arg| arg == "--test");
    let minutes: &[f64] = if test { &[0.1] } else { &[1.0, 10.0, 60.0] };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(run(minutes, test));
}

async fn run(minutes: &[f64], test: bool) {
    let root = tempfile::tempdir().expect("a directory");
    std::fs::create_dir(root.path().join(BUCKET)).expect("the bucket");
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("its address").port();
    let home = std::env::var("HOME").unwrap_or_default();
    let binary = [format!("{home}/.cargo/bin/s3s-fs"), "s3s-fs".into()]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .unwrap_or_else(|| "s3s-fs".into());
    let server = Command::new(binary)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            KEY,
            "--secret-key",
            SECRET,
        ])
        .arg(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("s3s-fs is installed (./x test installs it)");
    // Stopped however the run ends, a failed assertion included.
    let _server = Stopped(server);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let endpoint = format!("http://127.0.0.1:{port}");
    let config = StoreConfig {
        store: StoreKind::S3,
        endpoint: Some(endpoint.clone()),
        bucket: Some(BUCKET.into()),
        region: None,
        ..StoreConfig::default()
    };
    let store = earshot_service::store::s3_client(&config, KEY, SECRET).expect("a client");
    let spool = tempfile::tempdir().expect("a spool");
    let recordings = Recordings::with_store(spool.path(), store).expect("the recordings");
    let stats = recordings.upload_stats().expect("an uploader");
    println!(
        "{:>10} {:>10} {:>22} {:>14} {:>22}",
        "call", "size", "hang-up → in store", "throughput", "curl, one PUT (peer)"
    );
    let mut n = 0;
    for &length in minutes {
        let size = (length * 60.0) as usize * BYTES_PER_SECOND + 44;
        let bytes: Vec<u8> = (0..size).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let mut ours = Vec::new();
        let mut peer = Vec::new();
        for _ in 0..3 {
            n += 1;
            let name = format!("1/call-{n}.wav");
            std::fs::create_dir_all(spool.path().join("1")).expect("a company's folder");
            std::fs::write(spool.path().join(&name), &bytes).expect("the recording");
            let before = stats.uploaded.load(Ordering::Relaxed);
            let started = Instant::now();
            recordings.finished(&name);
            while stats.uploaded.load(Ordering::Relaxed) == before {
                assert!(started.elapsed() < Duration::from_secs(600), "not uploaded: {stats:?}");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            ours.push(started.elapsed());
            let stored = std::fs::read(root.path().join(BUCKET).join(&name)).expect("in the store");
            assert!(stored == bytes, "the store holds other bytes");
            assert!(!spool.path().join(&name).exists(), "the local copy is deleted");
            // The peer: one signed PUT of the same file by curl.
            let file = spool.path().join("peer.wav");
            std::fs::write(&file, &bytes).expect("the peer's file");
            let started = Instant::now();
            let status = Command::new("curl")
                .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--aws-sigv4", "aws:amz:us-east-1:s3"])
                .args(["--user", &format!("{KEY}:{SECRET}"), "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
                .arg("-T")
                .arg(&file)
                .arg(format!("{endpoint}/{BUCKET}/peer-{n}.wav"))
                .output();
            match status {
                Ok(output) if output.stdout == b"200" => peer.push(Some(started.elapsed())),
                _ => peer.push(None),
            }
        }
        let median = |times: &mut Vec<Duration>| {
            times.sort();
            times[times.len() / 2]
        };
        let ours = median(&mut ours);
        let throughput = size as f64 / ours.as_secs_f64() / 1e6;
        let mut peer: Vec<Duration> = peer.into_iter().flatten().collect();
        let peer = if peer.is_empty() {
            "(curl failed)".to_owned()
        } else {
            let time = median(&mut peer);
            format!("{:.0} ms, {:.0} MB/s", time.as_secs_f64() * 1e3, size as f64 / time.as_secs_f64() / 1e6)
        };
        println!(
            "{:>8.1} m {:>7.1} MB {:>19.0} ms {:>9.0} MB/s {:>22}",
            length,
            size as f64 / 1e6,
            ours.as_secs_f64() * 1e3,
            throughput,
            peer
        );
    }
    if test {
        println!("store: uploads arrived whole");
    }
}

/// A child process killed when dropped.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
