//! What the call's audio processing costs, by what it is given: 30 s of
//! 10 ms pieces through [`processing`] (echo canceller, noise suppressor,
//! gain control), both ways, as a share of one core. Digital silence
//! without the noise floor shows why [`NoiseFloor`] is there: recursive
//! filters decaying into subnormal floats (docs/PERFORMANCE.md).
//!
//! Run: `cargo bench -p earshot-client --bench processing` (prints figures;
//! nothing is asserted); `-- --test` (as `./x test` runs it) 3 s each.

// A bench prints its figures.
#![allow(clippy::print_stdout)]

use earshot_client::call_audio::{AudioSettings, NoiseFloor, processing};
use std::time::Instant;

/// 10 ms at 8 kHz.
const PIECE: usize = 80;

fn main() {
    let seconds = if std::env::args().any(|arg| arg == "--test") { 3 } else { 30 };
    let speech_then_silence = |k: usize| {
        if k < 2 * 8_000 { (k as f32 * 0.3).sin() * 0.3 } else { 0.0 }
    };
    let faint_noise = |k: usize| (k.wrapping_mul(2_654_435_761) % 1_000) as f32 / 1_000_000.0 - 0.000_5;
    println!("the call's processing (all switched on), {seconds} s of sound, both ways:");
    for (label, sound, floor) in [
        (
            "2 s of tone, then digital silence, no noise floor",
            &speech_then_silence as &dyn Fn(usize) -> f32,
            false,
        ),
        ("2 s of tone, then digital silence, with the noise floor", &speech_then_silence, true),
        ("faint noise (−66 dBFS), no noise floor", &faint_noise, false),
    ] {
        println!("  {label}: {:.2} % of a core", share(sound, floor, seconds));
    }
}

fn share(sound: &dyn Fn(usize) -> f32, with_floor: bool, seconds: usize) -> f64 {
    let mut apm = processing(&AudioSettings::default());
    let mut floor = NoiseFloor::new();
    let (mut mic, mut far, mut out, mut render) =
        ([0.0_f32; PIECE], [0.0_f32; PIECE], [0.0_f32; PIECE], [0.0_f32; PIECE]);
    let started = Instant::now();
    for piece in 0..seconds * 100 {
        for (i, (m, f)) in mic.iter_mut().zip(far.iter_mut()).enumerate() {
            *m = sound(piece * PIECE + i);
            *f = *m;
        }
        if with_floor {
            floor.add(&mut mic);
            floor.add(&mut far);
        }
        let _ = apm.process_render_f32(&[&far], &mut [&mut render]);
        let _ = apm.process_capture_f32(&[&mic], &mut [&mut out]);
    }
    started.elapsed().as_secs_f64() / seconds as f64 * 100.0
}
