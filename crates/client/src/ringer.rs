//! The ringtone: two tones together (440 and 480 Hz), two seconds on and
//! four off, while a call rings here, on the ringer of the settings, which
//! may be another device than the call's (the laptop's speakers, heard
//! across the room, while calls go to the headset).
//!
//! [`Ringtone`] makes the sound (sans-IO: it is asked for samples); a
//! [`Ringer`] plays it on a thread of its own that owns the `cpal` stream
//! (streams are not `Send`). Starting one never waits for the device, so
//! an incoming call is shown at once; a ringer that cannot open its device
//! says so in the log, and the banner and notification still tell.

use crate::audio::{output_device, output_stream};
use cpal::traits::{DeviceTrait as _, StreamTrait as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The ring's cadence: on, then off.
const ON: f64 = 2.0;
const PERIOD: f64 = 6.0;
/// Each tone's amplitude (the two together peak at twice this: −20 dBFS).
const AMPLITUDE: f64 = 0.05;
/// Fade in and out, so the ring starts and stops without a click.
const FADE: f64 = 0.01;

/// The ring's samples at a rate, one after another.
#[derive(Debug)]
pub struct Ringtone {
    rate: f64,
    sample: u64,
}

impl Ringtone {
    /// A ringtone at `rate` samples a second, from the start of a ring.
    #[must_use]
    pub fn new(rate: u32) -> Self {
        Self { rate: f64::from(rate.max(1)), sample: 0 }
    }

    /// The next sample.
    pub fn next_sample(&mut self) -> f32 {
        let t = self.sample as f64 / self.rate;
        self.sample += 1;
        let within = t % PERIOD;
        if within >= ON {
            return 0.0;
        }
        let fade = (within / FADE).min((ON - within) / FADE).min(1.0);
        let tau = std::f64::consts::TAU;
        (AMPLITUDE * fade * ((tau * 440.0 * t).sin() + (tau * 480.0 * t).sin())) as f32
    }
}

/// A ringtone playing; dropping it stops the ring.
#[derive(Debug)]
pub struct Ringer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::Thread>,
}

impl Ringer {
    /// Starts ringing on `device` (an output's id; the system's default
    /// when `None` or gone). Returns at once.
    #[must_use]
    pub fn start(device: Option<String>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let spawned = std::thread::Builder::new().name("earshot-ringer".into()).spawn(move || {
            match open(device.as_deref()) {
                Ok(stream) => {
                    while !flag.load(Ordering::Acquire) {
                        std::thread::park_timeout(Duration::from_millis(200));
                    }
                    drop(stream);
                }
                Err(detail) => tracing::warn!(%detail, "the ringer cannot ring"),
            }
        });
        let thread = spawned.map(|handle| handle.thread().clone()).ok();
        Self { stop, thread }
    }
}

impl Drop for Ringer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = &self.thread {
            thread.unpark();
        }
    }
}

/// The ringer's stream on `device`, playing.
fn open(device: Option<&str>) -> Result<cpal::Stream, String> {
    let device = output_device(device).map_err(|e| e.to_string())?;
    let config = device.default_output_config().map_err(|e| e.to_string())?;
    let channels = usize::from(config.channels().max(1));
    let mut tone = Ringtone::new(config.sample_rate());
    let (stream, _, _) = output_stream(
        &device,
        50,
        move |out: &mut [f32]| {
            for frame in out.chunks_mut(channels) {
                frame.fill(tone.next_sample());
            }
        },
        |error| tracing::warn!(%error, "the ringer's device failed"),
    )?;
    stream.play().map_err(|e| e.to_string())?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::Ringtone;

    const RATE: u32 = 8_000;

    /// The loudness of each second of `seconds` of ring.
    fn seconds(seconds: usize) -> Vec<f32> {
        let mut tone = Ringtone::new(RATE);
        (0..seconds)
            .map(|_| {
                let second: Vec<f32> = (0..RATE).map(|_| tone.next_sample()).collect();
                (second.iter().map(|s| s * s).sum::<f32>() / RATE as f32).sqrt()
            })
            .collect()
    }

    #[test]
    fn rings_two_seconds_in_six() {
        let loudness = seconds(12);
        let on: Vec<bool> = loudness.iter().map(|l| *l > 0.03).collect();
        assert_eq!(on, [true, true, false, false, false, false, true, true, false, false, false, false]);
        assert!(loudness.iter().all(|l| *l < 0.08), "{loudness:?}");
    }

    #[test]
    fn starts_and_stops_without_a_click() {
        let mut tone = Ringtone::new(RATE);
        let samples: Vec<f32> = (0..RATE * 3).map(|_| tone.next_sample()).collect();
        assert!(samples[0].abs() < 1e-6);
        // No jump between two samples beyond what the tones themselves make.
        let steepest = samples.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max);
        assert!(steepest < 0.05, "{steepest}");
        assert!(samples[2 * RATE as usize..].iter().all(|s| s.abs() < 1e-6));
    }

    #[test]
    fn is_the_two_tones() {
        let mut tone = Ringtone::new(RATE);
        let second: Vec<f32> = (0..RATE).map(|_| tone.next_sample()).collect();
        // Correlation with each tone, and with one that is not in it.
        let strength = |hz: f32| {
            let (mut re, mut im) = (0.0_f32, 0.0_f32);
            for (n, s) in second.iter().enumerate() {
                let phase = std::f32::consts::TAU * hz * n as f32 / RATE as f32;
                re += s * phase.cos();
                im += s * phase.sin();
            }
            (re * re + im * im).sqrt() / RATE as f32
        };
        assert!(strength(440.0) > 0.02 && strength(480.0) > 0.02);
        assert!(strength(1_000.0) < 0.001);
    }
}
