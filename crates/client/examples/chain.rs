//! The call's sound chain without the sound card and the network: what the
//! phone does to a caller's voice between the microphone and the far end's
//! speaker, stage by stage, to tell what each stage costs in quality and in
//! CPU. The call-audio bench (`crates/client/benches/call_audio.py`) runs
//! it before its calls and scores each output with PESQ against the input.
//!
//! ```text
//! cargo run --release -p earshot-client --example chain -- IN.wav OUT.wav \
//!     [--processing aec,ns,agc | --no-processing] [--no-resampling] [--no-codec] [--device-rate HZ]
//!     [--window blackman|blackman2|blackman-harris|blackman-harris2|hann|hann2] [--far FAR.wav] [--cold]
//! ```
//!
//! `IN.wav` is 8 kHz mono speech. It is brought to the device's rate by a
//! long, near transparent filter (standing in for the sound server, which
//! plays the speech into the microphone's sink); then each 10 ms piece
//! goes as in a call: down to 8 kHz by the phone's resampler (`--window`:
//! its anti-aliasing window, to compare), through the call's processing
//! (the caller wears a headset: the echo canceller is shown silence as what
//! its speaker plays; the noise suppressor starts afresh at the first sound
//! after a second of digital silence, as in the app), G.711 µ-law and back, and up to the speaker's rate
//! by the phone's resampler; the whole is brought back to 8 kHz by the long
//! filter (the recorder on the speaker's monitor). `OUT.wav` is the result
//! at 8 kHz, delayed by the phone's stages (the long filter's own delay is
//! taken off). It prints the time each stage took, as µs per 10 ms piece.
#![allow(clippy::print_stdout)]

use earshot_client::audio::CallResampler;
use earshot_client::call_audio::{AudioSettings, Cleaner, processing_at};
use earshot_telephony::g711::G711;
use std::time::{Duration, Instant};

/// 10 ms at 8 kHz.
const PIECE: usize = 80;

struct Options {
    input: String,
    output: String,
    settings: AudioSettings,
    resampling: bool,
    codec: bool,
    device_rate: u32,
    window: rubato::WindowFunction,
    /// The rate the processing runs at (8 kHz in the app).
    processing_rate: u32,
    /// 8 kHz mono speech shown to the echo canceller as what the speaker
    /// plays (the far end talking), instead of silence: the processing's
    /// time in a call, where the canceller has a far end to follow.
    far: Option<String>,
    /// The caches emptied between pieces (a walk through 64 MiB, untimed):
    /// as in a call, where the processing runs once every 10 ms on a
    /// machine busy with other work, and finds its state and code gone
    /// from the caches each time.
    cold: bool,
}

fn options() -> Result<Options, String> {
    const USAGE: &str = "usage: chain IN.wav OUT.wav [--processing aec,ns,agc | --no-processing] [--no-resampling] [--no-codec] [--device-rate HZ] [--window blackman|blackman2|blackman-harris|blackman-harris2|hann|hann2] [--far FAR.wav] [--cold]";
    let mut args = std::env::args().skip(1);
    let (input, output) = (args.next().ok_or(USAGE)?, args.next().ok_or(USAGE)?);
    let mut options = Options {
        input,
        output,
        settings: AudioSettings::default(),
        resampling: true,
        codec: true,
        device_rate: 48_000,
        window: CallResampler::WINDOW,
        processing_rate: 8_000,
        far: None,
        cold: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-processing" => options.settings.set_processing("none")?,
            "--processing" => options.settings.set_processing(&args.next().ok_or(USAGE)?)?,
            "--no-resampling" => options.resampling = false,
            "--no-codec" => options.codec = false,
            "--far" => options.far = Some(args.next().ok_or(USAGE)?),
            "--cold" => options.cold = true,
            "--device-rate" => {
                options.device_rate = args.next().and_then(|rate| rate.parse().ok()).ok_or(USAGE)?;
            }
            "--processing-rate" => {
                options.processing_rate = args.next().and_then(|rate| rate.parse().ok()).ok_or(USAGE)?;
            }
            "--window" => {
                options.window = match args.next().as_deref() {
                    Some("blackman") => rubato::WindowFunction::Blackman,
                    Some("blackman2") => rubato::WindowFunction::Blackman2,
                    Some("blackman-harris") => rubato::WindowFunction::BlackmanHarris,
                    Some("blackman-harris2") => rubato::WindowFunction::BlackmanHarris2,
                    Some("hann") => rubato::WindowFunction::Hann,
                    Some("hann2") => rubato::WindowFunction::Hann2,
                    _ => return Err(USAGE.into()),
                };
            }
            _ => return Err(USAGE.into()),
        }
    }
    Ok(options)
}

/// Time spent in each stage.
#[derive(Default)]
struct Spent {
    down: Duration,
    processing: Duration,
    codec: Duration,
    up: Duration,
}

/// `signal` from `from` Hz to `to` Hz in 100 ms pieces: a long filter,
/// its passband to within 1 % of the lower rate's Nyquist (the sound
/// server's own resampler, in a call); its delay taken off the start, so
/// what is left is the phone's own.
fn server_resample(signal: &[f32], from: u32, to: u32) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    use rubato::Resampler as _;
    let (chunk_in, chunk_out) = (from as usize / 10, to as usize / 10);
    let mut resampler =
        rubato::Fft::<f32>::new(from as usize, to as usize, chunk_in, 1, rubato::FixedSync::Both)?;
    let mut out = vec![0.0_f32; signal.len() / chunk_in * chunk_out];
    for (piece, into) in signal.chunks_exact(chunk_in).zip(out.chunks_exact_mut(chunk_out)) {
        let from = rubato::audioadapter_buffers::direct::InterleavedSlice::new(piece, 1, chunk_in)?;
        let mut to = rubato::audioadapter_buffers::direct::InterleavedSlice::new_mut(into, 1, chunk_out)?;
        resampler.process_into_buffer(&from, &mut to, None)?;
    }
    out.drain(..resampler.output_delay().min(out.len()));
    Ok(out)
}

fn timed<T>(into: &mut Duration, work: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = work();
    *into += started.elapsed();
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    let speech = read_8k(&options.input)?;
    let far = options.far.as_deref().map(read_8k).transpose()?.unwrap_or_default();
    if !far.is_empty() && options.processing_rate != 8_000 {
        return Err("--far needs the processing at 8 kHz".into());
    }
    let rate = options.device_rate;
    let at = options.processing_rate;
    if at != 8_000 && !options.resampling {
        return Err("--processing-rate needs the resampling".into());
    }
    let (mut down, mut up) = (
        CallResampler::with_window(rate, at, options.window)?,
        CallResampler::with_window(8_000, rate, options.window)?,
    );
    // Processing at another rate than the call's: down to 8 kHz after it.
    let mut to_call =
        (at != 8_000).then(|| CallResampler::with_window(at, 8_000, options.window)).transpose()?;
    // The sound server's side, near enough transparent to leave the
    // phone's own stages measured: the whole speech to the device's rate.
    let mut speech = speech;
    speech.resize(speech.len().div_ceil(800) * 800 + 1_600, 0.0);
    let at_device = server_resample(&speech, 8_000, rate)?;
    let mut cleaner = Cleaner::new(processing_at(&options.settings, at));
    let any_processing = options.settings.echo_cancellation
        || options.settings.noise_suppression
        || options.settings.gain_control;
    let mut device = vec![0.0_f32; up.output_len()];
    let (mut mic, mut cleaned, silence) = (
        vec![0.0_f32; down.output_len()],
        vec![0.0_f32; down.output_len()],
        vec![0.0_f32; down.output_len()],
    );
    let mut processed = [0.0_f32; PIECE];
    let mut spent = Spent::default();
    let mut out = Vec::with_capacity(at_device.len());
    let device_piece = down.input_len();
    let pieces = (speech.len() / PIECE).min(at_device.len() / device_piece);
    let mut elsewhere = if options.cold { vec![0_u64; 8 << 20] } else { Vec::new() };
    for piece in 0..pieces {
        // Other work between two pieces: every cache line of 64 MiB
        // written (twice this machine's last-level cache), so none of the
        // processing's state and code is left in the caches.
        for (index, word) in elsewhere.iter_mut().enumerate().step_by(8) {
            *word = word.wrapping_add(index as u64);
        }
        std::hint::black_box(&elsewhere);
        if options.resampling {
            let from_mic = &at_device[piece * device_piece..(piece + 1) * device_piece];
            timed(&mut spent.down, || down.process(from_mic, &mut mic));
        } else {
            mic.copy_from_slice(&speech[piece * PIECE..(piece + 1) * PIECE]);
        }
        if any_processing {
            timed(&mut spent.processing, || {
                match far.get(piece * PIECE..(piece + 1) * PIECE) {
                    Some(far) => cleaner.render(far),
                    None => cleaner.render(&silence),
                }
                cleaner.capture(&mut mic, &mut cleaned);
            });
        } else {
            cleaned.copy_from_slice(&mic);
        }
        match to_call.as_mut() {
            Some(to_call) => timed(&mut spent.down, || to_call.process(&cleaned, &mut processed)),
            None => processed.copy_from_slice(&cleaned),
        }
        if options.codec {
            timed(&mut spent.codec, || {
                let samples: Vec<i16> = processed
                    .iter()
                    .map(|s| (s * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16)
                    .collect();
                for (slot, sample) in
                    processed.iter_mut().zip(G711::Pcmu.decode(&G711::Pcmu.encode(&samples)))
                {
                    *slot = f32::from(sample) / 32_768.0;
                }
            });
        }
        if options.resampling {
            timed(&mut spent.up, || up.process(&processed, &mut device));
            out.extend_from_slice(&device);
        } else {
            out.extend_from_slice(&processed);
        }
    }
    // What the speaker played, as a recorder at 8 kHz takes it.
    let out = if options.resampling { server_resample(&out, rate, 8_000)? } else { out };
    let mut writer = hound::WavWriter::create(
        &options.output,
        hound::WavSpec {
            channels: 1,
            sample_rate: 8_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        },
    )?;
    for sample in out {
        writer.write_sample((sample * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16)?;
    }
    writer.finalize()?;
    let per_piece = |spent: Duration| spent.as_secs_f64() * 1e6 / pieces as f64;
    println!(
        "µs per 10 ms piece: down {:.1}, processing {:.1}, codec {:.1}, up {:.1}",
        per_piece(spent.down),
        per_piece(spent.processing),
        per_piece(spent.codec),
        per_piece(spent.up)
    );
    Ok(())
}

/// An 8 kHz mono WAV file's samples, in −1..1.
fn read_8k(path: &str) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let mut reader = hound::WavReader::open(path)?;
    let spec = reader.spec();
    if spec.sample_rate != 8_000 || spec.channels != 1 {
        return Err(format!("{path} is not 8 kHz mono").into());
    }
    Ok(reader.samples::<i16>().map(|s| s.map(|s| f32::from(s) / 32_768.0)).collect::<Result<_, _>>()?)
}
