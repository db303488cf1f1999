//! What the jitter buffer costs in delay and keeps of speech
//! (docs/PERFORMANCE.md).
//!
//! Speech (the demo's espeak-ng clips, looped to a minute) goes as 20 ms
//! µ-law packets over a simulated link (20 ms base delay, uniform jitter,
//! random loss) into a `JitterBuffer`, pulled every 20 ms on a simulated
//! clock, as a sound card would. It prints, per condition:
//!
//! - the delay the buffer adds beyond the fastest packet (mean and 95th
//!   percentile over the pulls), and the share of packets that came too
//!   late, at 0, 20, 40 and 80 ms of jitter;
//! - the share of frames concealed at 1, 5 and 10 % loss (20 ms jitter);
//! - PESQ narrow-band (PyPI `pesq`, run through `python3`) of the speech
//!   through the buffer at 5 % loss, against the same losses filled with
//!   silence, and the µ-law round trip alone as the ceiling (each against
//!   the speech as it was before µ-law).
//!
//! `cargo bench -p earshot-telephony --bench jitter`; `-- --test` (as
//! `./x test` runs it) a short run without PESQ.

#![allow(clippy::print_stdout)]

use earshot_policy::Timestamp;
use earshot_telephony::g711::G711;
use earshot_telephony::jitter::{Arrival, FrameKind, JitterBuffer};
use earshot_telephony::plc::FRAME;
use earshot_telephony::sim::{Conditions, Link};
use std::path::Path;

const CLIPS: &[&str] = &[
    "caller-hello",
    "agent-greeting",
    "caller-problem",
    "agent-check",
    "caller-account",
    "agent-account",
    "caller-thanks",
    "agent-solved",
];

fn main() {
    let test = std::env::args().any(|arg| arg == "--test");
    let seconds = if test { 5 } else { 60 };
    let speech = speech(seconds);
    println!("jitter buffer, {seconds} s of speech per condition, 20 ms base delay");
    for jitter_ms in [0, 20, 40, 80] {
        let run = run(&speech, Conditions { delay_ms: 20, jitter_ms, ..Conditions::default() }, 1);
        println!(
            "  jitter {jitter_ms:>2} ms: added delay mean {:5.1} ms, p95 {:5.1} ms; late {:4.2} %, concealed {:4.2} %",
            run.mean_delay,
            run.p95_delay,
            100.0 * run.late,
            100.0 * run.concealed
        );
    }
    for loss in [0.01, 0.05, 0.10] {
        let run = run(&speech, Conditions { delay_ms: 20, jitter_ms: 20, loss, ..Conditions::default() }, 2);
        println!(
            "  loss {:>2.0} % (jitter 20 ms): concealed {:5.2} % of frames, lost {:5.2} %, late {:4.2} %",
            100.0 * loss,
            100.0 * run.concealed,
            100.0 * run.lost,
            100.0 * run.late
        );
    }
    if test {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let reference = dir.path().join("reference.wav");
    write_wav(&reference, &speech);
    let round_trip = dir.path().join("round-trip.wav");
    write_wav(&round_trip, &G711::Pcmu.decode(&G711::Pcmu.encode(&speech)));
    let Some(ceiling) = pesq(&reference, &round_trip) else {
        println!("  PESQ: not measured (python3 with the PyPI packages numpy and pesq is needed)");
        return;
    };
    println!("  PESQ NB, µ-law round trip alone: {ceiling:.2}");
    for jitter_ms in [0, 20] {
        let run =
            run(&speech, Conditions { delay_ms: 20, jitter_ms, loss: 0.05, ..Conditions::default() }, 3);
        let (concealed, silenced) = (dir.path().join("concealed.wav"), dir.path().join("silenced.wav"));
        write_wav(&concealed, &run.played);
        write_wav(&silenced, &run.silenced);
        if let (Some(concealed), Some(silence)) = (pesq(&reference, &concealed), pesq(&reference, &silenced))
        {
            println!(
                "  PESQ NB at 5 % loss, jitter {jitter_ms:>2} ms: concealed {concealed:.2}, the same frames silent {silence:.2}"
            );
        }
    }
}

struct Run {
    mean_delay: f64,
    p95_delay: f64,
    late: f64,
    lost: f64,
    concealed: f64,
    /// What was played, lined up with the speech (the buffer's delay taken
    /// out), and the same with every concealed frame silent.
    played: Vec<i16>,
    silenced: Vec<i16>,
}

fn run(speech: &[i16], conditions: Conditions, seed: u64) -> Run {
    let mut link = Link::new(conditions, seed);
    let mut buffer = JitterBuffer::new();
    let packets = speech.len() / FRAME;
    let (mut played, mut silenced, mut delays) = (Vec::new(), Vec::new(), Vec::new());
    for tick in 0..packets + 20 {
        let now = i64::try_from(tick).unwrap_or(i64::MAX) * 20;
        if tick < packets {
            let payload = G711::Pcmu.encode(&speech[tick * FRAME..(tick + 1) * FRAME]);
            let arrival = Arrival { sequence: tick as u16, timestamp: (tick * FRAME) as u32, ssrc: 1 };
            link.send(Timestamp(now), (arrival, payload));
        }
        let pull = Timestamp(now + 10);
        while let Some(at) = link.poll_timeout().filter(|at| *at <= pull) {
            let Some((arrival, payload)) = link.poll(at) else { break };
            buffer.handle_packet(at, arrival, &G711::Pcmu.decode(&payload));
        }
        let mut frame = [0; FRAME];
        let kind = buffer.pull(pull, &mut frame);
        played.extend_from_slice(&frame);
        if kind == FrameKind::Concealed {
            silenced.extend_from_slice(&[0; FRAME]);
        } else {
            silenced.extend_from_slice(&frame);
        }
        delays.push(buffer.stats().delay_ms);
    }
    let stats = buffer.stats();
    delays.sort_by(f64::total_cmp);
    let sent = packets as f64;
    Run {
        mean_delay: delays.iter().sum::<f64>() / delays.len() as f64,
        p95_delay: delays[delays.len() * 95 / 100],
        late: stats.late as f64 / sent,
        lost: stats.lost as f64 / sent,
        concealed: stats.concealed_frames as f64 / stats.frames as f64,
        played,
        silenced,
    }
}

/// `seconds` of the demo's speech clips, one after another, looped.
fn speech(seconds: usize) -> Vec<i16> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../service/assets/speech");
    let mut clips = Vec::new();
    for clip in CLIPS {
        let mut reader = hound::WavReader::open(dir.join(format!("{clip}.wav"))).expect("a speech clip");
        clips.extend(reader.samples::<i16>().map(|s| s.unwrap_or(0)));
        // Half a second between turns, as in a conversation.
        clips.extend(std::iter::repeat_n(0, 4_000));
    }
    clips.iter().copied().cycle().take(seconds * 8_000).collect()
}

fn write_wav(path: &Path, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("a WAV file");
    for sample in samples {
        writer.write_sample(*sample).expect("a sample written");
    }
    writer.finalize().expect("a WAV file finished");
}

/// PESQ narrow-band of `degraded` against `reference`, through python3's `pesq`.
fn pesq(reference: &Path, degraded: &Path) -> Option<f64> {
    let script = "import sys, wave, numpy as np\n\
        from pesq import pesq\n\
        def read(p):\n\
        \x20   w = wave.open(p)\n\
        \x20   return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)\n\
        r, d = read(sys.argv[1]), read(sys.argv[2])\n\
        print(pesq(8000, r, d, 'nb'))\n";
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(reference)
        .arg(degraded)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}
