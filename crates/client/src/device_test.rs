//! Trying the sound devices from Settings, before a call needs them: a test
//! sound on a speaker (a second of the ringtone's two tones), and a test
//! recording on a microphone (a few seconds, how loud they were, played
//! back on the call speaker so one hears oneself as the far end would).
//!
//! Both block for as long as the sound lasts; the app runs them on a
//! blocking thread. The levels are decided by [`Levels::of`] (sans-IO).
//!
//! And a live level meter ([`LevelMeter`]): the microphone's level ten
//! times a second for as long as Settings shows it, cut into blocks by
//! [`LevelBlocks`] (sans-IO) on the device's own thread.

use crate::audio::{input_device, input_stream, output_device, output_stream};
use crate::error::{AudioProblem, ClientError, Result};
use crate::ringer::Ringtone;
use cpal::traits::{DeviceTrait as _, StreamTrait as _};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ts_rs::TS;

/// How long the test sound plays.
const TEST_SOUND: Duration = Duration::from_millis(1_200);
/// Below this peak a microphone heard nothing a person said.
const HEARD_DBFS: f64 = -50.0;
/// What silence is reported as, in dBFS.
const SILENCE_DBFS: f64 = -120.0;

/// What a test recording heard.
#[derive(Clone, Debug, PartialEq, Serialize, TS)]
pub struct MicrophoneTest {
    /// The loudest sample, in dB below full scale.
    pub peak_dbfs: f64,
    /// The average level, in dB below full scale.
    pub rms_dbfs: f64,
    /// Whether it heard anything like a voice (the peak above −50 dBFS).
    pub heard: bool,
}

/// Levels of a recording.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Levels {
    /// Peak, dBFS.
    pub peak_dbfs: f64,
    /// RMS, dBFS.
    pub rms_dbfs: f64,
}

impl Levels {
    /// The levels of `samples` (−1..1); silence for none.
    #[must_use]
    pub fn of(samples: &[f32]) -> Self {
        let db = |x: f64| if x > 0.0 { (20.0 * x.log10()).max(SILENCE_DBFS) } else { SILENCE_DBFS };
        let peak = samples.iter().fold(0.0_f32, |m, s| m.max(s.abs()));
        let power =
            samples.iter().map(|s| f64::from(*s) * f64::from(*s)).sum::<f64>() / samples.len().max(1) as f64;
        Self { peak_dbfs: db(f64::from(peak)), rms_dbfs: db(power.sqrt()) }
    }
}

/// How often the level meter reports, in ms.
pub const METER_EVERY_MS: u32 = 100;

/// Cuts a stream of samples into blocks of a set length and gives the
/// levels of each.
#[derive(Clone, Debug)]
pub struct LevelBlocks {
    length: usize,
    block: Vec<f32>,
}

impl LevelBlocks {
    /// Blocks of `length` samples.
    #[must_use]
    pub fn new(length: usize) -> Self {
        Self { length: length.max(1), block: Vec::with_capacity(length.max(1)) }
    }

    /// Takes `samples`; calls `done` with the levels of each block filled.
    pub fn take(&mut self, samples: &[f32], mut done: impl FnMut(Levels)) {
        for chunk in samples.chunks(self.length) {
            let room = self.length - self.block.len();
            let (now, later) = chunk.split_at(room.min(chunk.len()));
            self.block.extend_from_slice(now);
            if self.block.len() == self.length {
                done(Levels::of(&self.block));
                self.block.clear();
            }
            self.block.extend_from_slice(later);
        }
    }
}

/// A microphone's level, reported every [`METER_EVERY_MS`] until dropped.
/// The stream lives on a thread of its own (cpal streams stay on the
/// thread that made them).
#[derive(Debug)]
pub struct LevelMeter {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LevelMeter {
    /// Opens `microphone` (its id; the system's default when `None` or
    /// gone) and calls `report` with its levels from then on.
    ///
    /// # Errors
    /// When there is no microphone, or it cannot be opened.
    pub fn start(microphone: Option<&str>, report: impl Fn(Levels) + Send + 'static) -> Result<Self> {
        let failed = |detail: String| ClientError::Audio {
            code: AudioProblem::MicrophoneFailed,
            detail: format!("The microphone cannot be used: {detail}"),
        };
        let microphone = microphone.map(str::to_owned);
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (opened, open) = std::sync::mpsc::channel::<Result<()>>();
        let thread = std::thread::Builder::new()
            .name("level-meter".into())
            .spawn(move || {
                let started = input_device(microphone.as_deref()).and_then(|device| {
                    // The stream runs at the device's default rate.
                    let rate =
                        device.default_input_config().map_err(|e| failed(e.to_string()))?.sample_rate();
                    let mut blocks = LevelBlocks::new((rate * METER_EVERY_MS / 1_000) as usize);
                    let (stream, _) = input_stream(
                        &device,
                        20,
                        move |samples: &[f32]| blocks.take(samples, &report),
                        |error| tracing::warn!(%error, "the microphone failed under the level meter"),
                    )
                    .map_err(failed)?;
                    stream.play().map_err(|e| failed(e.to_string()))?;
                    Ok(stream)
                });
                match started {
                    Ok(stream) => {
                        let _ = opened.send(Ok(()));
                        // Until stopped, or the meter is dropped.
                        let _ = stopped.recv();
                        drop(stream);
                    }
                    Err(error) => {
                        let _ = opened.send(Err(error));
                    }
                }
            })
            .map_err(|e| failed(e.to_string()))?;
        match open.recv() {
            Ok(Ok(())) => Ok(Self { stop: Some(stop), thread: Some(thread) }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(_) => Err(failed("its thread ended".into())),
        }
    }
}

impl Drop for LevelMeter {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Plays a second of the ringtone's tones on `speaker` (an output's id;
/// the system's default when `None` or gone).
///
/// # Errors
/// When there is no speaker, or it cannot be opened.
pub fn play_test_sound(speaker: Option<&str>) -> Result<()> {
    play(speaker, |rate| {
        let mut tone = Ringtone::new(rate);
        let length = (f64::from(rate) * TEST_SOUND.as_secs_f64()) as usize;
        // The ring fades in and out only at its ends: end this one likewise.
        let fade = (rate / 100) as usize;
        (0..length).map(|n| tone.next_sample() * (length - n).min(fade) as f32 / fade as f32).collect()
    })
}

/// Records `seconds` from `microphone`, then plays it back on `speaker`;
/// what it heard.
///
/// # Errors
/// When the microphone or the speaker cannot be opened.
pub fn test_microphone(
    microphone: Option<&str>,
    speaker: Option<&str>,
    seconds: f64,
) -> Result<MicrophoneTest> {
    let failed = |detail: String| ClientError::Audio {
        code: AudioProblem::MicrophoneFailed,
        detail: format!("The microphone cannot be used: {detail}"),
    };
    let device = input_device(microphone)?;
    let recorded = Arc::new(Mutex::new(Vec::<f32>::new()));
    let into = Arc::clone(&recorded);
    let (stream, rate) = input_stream(
        &device,
        20,
        move |samples: &[f32]| {
            into.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(samples);
        },
        |error| tracing::warn!(%error, "the microphone failed during its test"),
    )
    .map_err(failed)?;
    stream.play().map_err(|e| failed(e.to_string()))?;
    std::thread::sleep(Duration::from_secs_f64(seconds));
    drop(stream);
    let recorded = std::mem::take(&mut *recorded.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let levels = Levels::of(&recorded);
    play(speaker, |out_rate| resample(&recorded, rate, out_rate))?;
    Ok(MicrophoneTest {
        peak_dbfs: levels.peak_dbfs,
        rms_dbfs: levels.rms_dbfs,
        heard: levels.peak_dbfs > HEARD_DBFS,
    })
}

/// `samples` at `from` Hz, linearly at `to` Hz (good enough to hear
/// oneself back; calls use rubato).
fn resample(samples: &[f32], from: u32, to: u32) -> Vec<f32> {
    if samples.is_empty() || from == to {
        return samples.to_vec();
    }
    let step = f64::from(from) / f64::from(to);
    let length = (samples.len() as f64 / step) as usize;
    (0..length)
        .map(|n| {
            let at = n as f64 * step;
            let i = at as usize;
            let next = samples.get(i + 1).copied().unwrap_or(samples[samples.len() - 1]);
            let part = (at - i as f64) as f32;
            samples[i.min(samples.len() - 1)] * (1.0 - part) + next * part
        })
        .collect()
}

/// Plays what `make` makes at the speaker's rate (mono), to its end.
fn play(speaker: Option<&str>, make: impl FnOnce(u32) -> Vec<f32>) -> Result<()> {
    let failed = |detail: String| ClientError::Audio {
        code: AudioProblem::SpeakerFailed,
        detail: format!("The speaker cannot be used: {detail}"),
    };
    let device = output_device(speaker)?;
    let config = device.default_output_config().map_err(|e| failed(e.to_string()))?;
    let channels = usize::from(config.channels().max(1));
    let rate = config.sample_rate();
    let sound = make(rate);
    let length = Duration::from_secs_f64(sound.len() as f64 / f64::from(rate.max(1)));
    let mut samples = sound.into_iter();
    let (stream, _, _) = output_stream(
        &device,
        50,
        move |out: &mut [f32]| {
            for frame in out.chunks_mut(channels) {
                frame.fill(samples.next().unwrap_or(0.0));
            }
        },
        |error| tracing::warn!(%error, "the speaker failed during its test"),
    )
    .map_err(failed)?;
    stream.play().map_err(|e| failed(e.to_string()))?;
    // Its length, and the stream's own buffer to drain.
    std::thread::sleep(length + Duration::from_millis(250));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{LevelBlocks, Levels, resample};

    #[test]
    fn level_blocks_report_each_full_block_whatever_the_pieces() {
        let mut blocks = LevelBlocks::new(800);
        let mut reported = Vec::new();
        // Pieces of 300 of a loud then a silent stretch: 1000 loud, 700 silent.
        let samples: Vec<f32> = (0..1_700).map(|n| if n < 1_000 { 0.5 } else { 0.0 }).collect();
        for piece in samples.chunks(300) {
            blocks.take(piece, |levels| reported.push(levels));
        }
        assert_eq!(reported.len(), 2);
        assert!((reported[0].peak_dbfs + 6.02).abs() < 0.01, "{reported:?}");
        // The second block: 200 loud of 800.
        assert!((reported[1].rms_dbfs + 12.04).abs() < 0.01, "{reported:?}");
        // One piece longer than a block gives a report for each block in it.
        let mut more = 0;
        LevelBlocks::new(100).take(&[0.1; 350], |_| more += 1);
        assert_eq!(more, 3);
    }

    #[test]
    fn levels_of_silence_a_full_scale_tone_and_nothing() {
        assert_eq!(Levels::of(&[]), Levels { peak_dbfs: -120.0, rms_dbfs: -120.0 });
        assert_eq!(Levels::of(&[0.0; 100]), Levels { peak_dbfs: -120.0, rms_dbfs: -120.0 });
        let tone: Vec<f32> = (0..8_000).map(|n| (n as f32 * 0.1).sin()).collect();
        let levels = Levels::of(&tone);
        assert!(levels.peak_dbfs.abs() < 0.01, "{levels:?}");
        // A sine's RMS is 3 dB under its peak.
        assert!((levels.rms_dbfs + 3.01).abs() < 0.05, "{levels:?}");
        let quiet: Vec<f32> = tone.iter().map(|s| s * 0.01).collect();
        assert!((Levels::of(&quiet).peak_dbfs + 40.0).abs() < 0.01);
    }

    #[test]
    fn resampling_keeps_the_length_in_time_and_the_shape() {
        let ramp: Vec<f32> = (0..480).map(|n| n as f32 / 480.0).collect();
        let down = resample(&ramp, 48_000, 8_000);
        assert_eq!(down.len(), 80);
        assert!((down[40] - 0.5).abs() < 0.01);
        assert_eq!(resample(&ramp, 8_000, 8_000), ramp);
        assert_eq!(resample(&ramp, 8_000, 16_000).len(), 960);
    }
}
