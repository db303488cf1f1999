//! What a shorter flush of the recording files costs (docs/PERFORMANCE.md,
//! issue 18): a crash (`kill -9`) loses the audio a writer still holds,
//! up to one flush interval; each flush is a write of the samples and a
//! rewrite of the WAV header (hound seeks to it and back). 100 calls write
//! 20 ms of stereo audio each in turn, as the relay does, for 30 s of
//! audio each, into real files on this disk, once per flush interval.
//! Prints the time per second of a call's audio and, for 200 calls, the
//! share of one core.
//!
//! `cargo bench -p earshot-telephony --bench wav_flush`; `-- --test` (as
//! `./x test` runs it) a short run.

#![allow(clippy::print_stdout)]

use earshot_telephony::sealed::{KeyRing, MasterKey};
use earshot_telephony::wav::RecordingWriter;
use std::time::Instant;

/// Calls written at once.
const CALLS: usize = 100;

/// Time spent (ns) per second of one call's audio with a flush every
/// `flush_ms`, over `seconds` of audio; sealed ([`earshot_telephony::sealed`],
/// flushed every 100 ms) when `keys` are given.
fn run(flush_ms: u64, seconds: u64, keys: Option<&KeyRing>) -> f64 {
    // The system's temporary directory (`TMPDIR`): point it at the disk the
    // recordings will be on.
    let dir = tempfile::tempdir().unwrap();
    let mut writers: Vec<RecordingWriter> = (0..CALLS)
        .map(|call| {
            let path = dir.path().join(format!("{call}.wav"));
            match keys {
                Some(keys) => RecordingWriter::create_sealed(&path, 2, keys).unwrap(),
                None => RecordingWriter::create_flushing(&path, 2, flush_ms * 8).unwrap(),
            }
        })
        .collect();
    let frame: Vec<[i16; 2]> = (0..160_i16).map(|i| [i * 37, -i * 53]).collect();
    let ticks = seconds * 50;
    let started = Instant::now();
    for _ in 0..ticks {
        for writer in &mut writers {
            writer.write_frames(&frame).unwrap();
        }
    }
    let elapsed = started.elapsed();
    for writer in writers {
        writer.finish().unwrap();
    }
    elapsed.as_nanos() as f64 / (CALLS as f64 * seconds as f64)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let seconds = if quick { 2 } else { 30 };
    println!("recording files: {CALLS} calls, {seconds} s of stereo audio each, 20 ms writes");
    println!(
        "{:>10} {:>22} {:>22} {:>22}",
        "flush", "µs per call-second", "200 calls, % of core", "lost at a kill, up to"
    );
    for flush_ms in [1_000, 500, 200, 100, 40, 20] {
        // Best of three: the disk and the VM's neighbours add noise, never speed.
        let ns =
            (0..if quick { 1 } else { 3 }).map(|_| run(flush_ms, seconds, None)).fold(f64::MAX, f64::min);
        println!(
            "{:>8} ms {:>22.1} {:>21.2}% {:>19} ms",
            flush_ms,
            ns / 1_000.0,
            ns * 200.0 / 1e9 * 100.0,
            flush_ms
        );
    }
    // Sealed (AES-256-GCM in 4 KiB chunks): what a kill loses is the chunk
    // being filled and the 100 ms before the flush, at most 4 KiB + 3.2 KB.
    let keys = KeyRing { current: MasterKey::new(&[7; 32]), older: Vec::new() };
    let ns = (0..if quick { 1 } else { 3 }).map(|_| run(100, seconds, Some(&keys))).fold(f64::MAX, f64::min);
    println!("{:>10} {:>22.1} {:>21.2}% {:>19} ms", "sealed", ns / 1_000.0, ns * 200.0 / 1e9 * 100.0, 356);
}
