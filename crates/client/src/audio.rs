//! The sound card, shared by the recording player and the phone: which
//! devices there are, opening one (a chosen device that is gone gives way
//! to the system's default), output and input streams in whatever sample
//! format the device speaks, and the resamplers between the device's rate
//! and ours (a linear one for the player, whose speed varies; a band-limited
//! one, `rubato`'s FFT resampler, for calls at 8 kHz).
//!
//! `cpal` streams are not `Send`: whoever opens one keeps it on its own
//! thread. The callbacks here only move samples; nothing in them allocates
//! or locks.

use crate::error::{ClientError, Result};
use cpal::traits::{DeviceTrait as _, HostTrait as _};
use rubato::Resampler as _;
use rubato::audioadapter_buffers::direct::InterleavedSlice;

/// The sound system: PulseAudio (or PipeWire's PulseAudio server), spoken
/// to directly, when one is running; ALSA otherwise. Through ALSA's
/// PulseAudio plugin, cpal's stream threads poll in a tight loop: a call's
/// two 20 ms streams cost a quarter of a core that way (docs/PERFORMANCE.md).
/// Each host is a connection to the sound server with a thread of its own:
/// whoever opens several streams together (a call's speaker and
/// microphone) opens them on one ([`output_device_on`], [`input_device_on`]).
#[must_use]
pub fn host() -> cpal::Host {
    #[cfg(target_os = "linux")]
    if let Ok(host) = cpal::host_from_id(cpal::HostId::PulseAudio) {
        return host;
    }
    cpal::default_host()
}

/// A sound device the user can choose (a microphone, a speaker, a headset).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
pub struct AudioDevice {
    /// Stable id, to choose it again.
    pub id: String,
    /// What to show.
    pub name: String,
    /// The system's default one.
    pub is_default: bool,
}

/// Whether a user would choose this device: ALSA also lists its plugins
/// (rate converters, up- and down-mixers, JACK and OSS bridges, `null`),
/// and PulseAudio every output's monitor ("Monitor of …", what a speaker
/// plays), which are not places to hear or speak. Kept: the default, the
/// sound servers, and the cards themselves. (A monitor that is the
/// system's default input is kept by the caller: it is what there is.)
fn is_a_device(id: &str) -> bool {
    if let Some(name) = id.strip_prefix("pulseaudio:") {
        return !name.ends_with(".monitor");
    }
    let Some(name) = id.strip_prefix("alsa:") else { return true };
    matches!(name, "default" | "pulse" | "pipewire")
        || ["hw:", "plughw:", "front:", "sysdefault:"].iter().any(|card| name.starts_with(card))
}

fn describe(devices: impl Iterator<Item = cpal::Device>, default: Option<String>) -> Vec<AudioDevice> {
    devices
        .filter_map(|device| {
            let id = device.id().ok()?.to_string();
            if !is_a_device(&id) && Some(&id) != default.as_ref() {
                return None;
            }
            let name = device.description().map_or_else(|_| id.clone(), |d| d.name().to_owned());
            Some(AudioDevice { is_default: Some(&id) == default.as_ref(), id, name })
        })
        .collect()
}

/// The outputs (speakers, headsets) `cpal` finds that a user would choose.
#[must_use]
pub fn output_devices() -> Vec<AudioDevice> {
    let host = host();
    let default = host.default_output_device().and_then(|d| d.id().ok()).map(|id| id.to_string());
    host.output_devices().map(|devices| describe(devices, default)).unwrap_or_default()
}

/// The inputs (microphones, headsets) `cpal` finds that a user would choose.
#[must_use]
pub fn input_devices() -> Vec<AudioDevice> {
    let host = host();
    let default = host.default_input_device().and_then(|d| d.id().ok()).map(|id| id.to_string());
    host.input_devices().map(|devices| describe(devices, default)).unwrap_or_default()
}

/// The output `id` (the default when `None`, or when it is gone).
///
/// # Errors
/// When there is no output at all.
pub fn output_device(id: Option<&str>) -> Result<cpal::Device> {
    output_device_on(&host(), id)
}

/// The output `id` on `host` (the default when `None`, or when it is gone).
///
/// # Errors
/// When there is no output at all.
pub fn output_device_on(host: &cpal::Host, id: Option<&str>) -> Result<cpal::Device> {
    // A chosen output that is gone (a headset unplugged, or an id from
    // another sound system) gives way to the default one.
    let chosen = id.and_then(|id| id.parse().ok()).and_then(|id| host.device_by_id(&id));
    if chosen.is_none()
        && let Some(id) = id
    {
        tracing::info!(id, "the chosen audio output is not there; using the default one");
    }
    chosen.or_else(|| host.default_output_device()).ok_or_else(|| ClientError::Audio {
        code: crate::error::AudioProblem::NoSpeaker,
        detail: "No speaker or headset was found.".into(),
    })
}

/// The input `id` (the default when `None`, or when it is gone).
///
/// # Errors
/// When there is no input at all.
pub fn input_device(id: Option<&str>) -> Result<cpal::Device> {
    input_device_on(&host(), id)
}

/// The input `id` on `host` (the default when `None`, or when it is gone).
///
/// # Errors
/// When there is no input at all.
pub fn input_device_on(host: &cpal::Host, id: Option<&str>) -> Result<cpal::Device> {
    let chosen = id.and_then(|id| id.parse().ok()).and_then(|id| host.device_by_id(&id));
    if chosen.is_none()
        && let Some(id) = id
    {
        tracing::info!(id, "the chosen microphone is not there; using the default one");
    }
    chosen.or_else(|| host.default_input_device()).ok_or_else(|| ClientError::Audio {
        code: crate::error::AudioProblem::NoMicrophone,
        detail: "No microphone was found.".into(),
    })
}

/// A device's default configuration with about `buffer_ms` buffered in the
/// sound system (left to itself, PulseAudio buffers 2 s, its default target
/// length), and its sample format.
fn buffered(
    supported: cpal::SupportedStreamConfig,
    buffer_ms: u32,
) -> (cpal::SampleFormat, cpal::StreamConfig) {
    let format = supported.sample_format();
    let buffer = *supported.buffer_size();
    let mut config: cpal::StreamConfig = supported.into();
    if let cpal::SupportedBufferSize::Range { min, max } = buffer {
        config.buffer_size =
            cpal::BufferSize::Fixed((config.sample_rate * buffer_ms / 1_000).clamp(min, max));
    }
    (format, config)
}

/// An output stream on `device` at its default rate, buffered about
/// `buffer_ms` in the sound system; `fill` writes interleaved samples
/// (`channels` per frame) in −1..1, `on_error` hears of failures (a device
/// unplugged). A late callback loses nothing ([`WhenLate::Resume`]).
/// Returns the stream (start it with `play`), its rate and its channels.
///
/// # Errors
/// When the device cannot be used.
pub fn output_stream(
    device: &cpal::Device,
    buffer_ms: u32,
    fill: impl FnMut(&mut [f32]) + Send + 'static,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> std::result::Result<(cpal::Stream, u32, usize), String> {
    output_stream_paced(device, buffer_ms, WhenLate::Resume, std::sync::Arc::default(), fill, on_error)
}

/// What an output stream does about time its callback came late for. On
/// PulseAudio the server then plays silence and goes on (its streams do
/// not wait to be refilled, vendor/README.md), and asks for the time it
/// played on top of a full buffer, dropping what is written for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenLate {
    /// Nothing is lost: that time is written as silence (which the server
    /// drops), and what `fill` gives next plays after the silence, late by
    /// it (a recording picks up where it was).
    Resume,
    /// The stream keeps its time: `fill` gives that time's sound too, which
    /// the server drops, and what follows plays when it was due (a call,
    /// whose echo canceller was shown each sample at its time).
    KeepTime,
}

/// An output stream's pace, as its callback sees it.
#[derive(Debug, Default)]
pub struct Pace {
    /// Frames asked for, all told.
    pub asked: std::sync::atomic::AtomicUsize,
    /// Frames the sound server played as silence because the callback came
    /// late, all told, each time counted up to a whole buffer ([`late_by`]).
    pub late: std::sync::atomic::AtomicUsize,
}

/// Frames the sound server played as silence before a callback asked for
/// `asked` frames, the stream's whole buffer being `whole_buffer` frames:
/// it asks for what it played meanwhile on top of a full buffer, so a
/// request beyond the whole buffer is time the callback was late by.
/// (With ALSA, or a stream of the server's default size, never more than
/// the buffer is asked for: 0.)
#[must_use]
pub fn late_by(asked: usize, whole_buffer: usize) -> usize {
    asked.saturating_sub(whole_buffer)
}

/// [`output_stream`], doing `when_late` what a late callback calls for and
/// counting its `pace`.
///
/// # Errors
/// When the device cannot be used.
pub fn output_stream_paced(
    device: &cpal::Device,
    buffer_ms: u32,
    when_late: WhenLate,
    pace: std::sync::Arc<Pace>,
    mut fill: impl FnMut(&mut [f32]) + Send + 'static,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> std::result::Result<(cpal::Stream, u32, usize), String> {
    use std::sync::atomic::Ordering;
    let supported = device.default_output_config().map_err(|e| e.to_string())?;
    let (format, config) = buffered(supported, buffer_ms);
    let (rate, channels) = (config.sample_rate, usize::from(config.channels.max(1)));
    // The server keeps two periods (cpal's double buffer).
    let whole_buffer = match config.buffer_size {
        cpal::BufferSize::Fixed(frames) => usize::try_from(frames).unwrap_or(usize::MAX).saturating_mul(2),
        cpal::BufferSize::Default => usize::MAX,
    };
    let mut scratch = vec![0.0_f32; 16_384];
    macro_rules! build {
        ($sample:ty) => {
            device.build_output_stream(
                config,
                move |data: &mut [$sample], _: &cpal::OutputCallbackInfo| {
                    let frames = data.len() / channels;
                    let late = late_by(frames, whole_buffer);
                    pace.asked.fetch_add(frames, Ordering::Relaxed);
                    // (One long stop, the machine suspended, is not a
                    // stream that cannot keep pace: up to a whole buffer.)
                    pace.late.fetch_add(late.min(whole_buffer), Ordering::Relaxed);
                    let skip = if when_late == WhenLate::Resume { late * channels } else { 0 };
                    let (dropped, data) = data.split_at_mut(skip.min(data.len()));
                    dropped.fill(<$sample as cpal::Sample>::EQUILIBRIUM);
                    for chunk in data.chunks_mut(scratch.len()) {
                        let out = &mut scratch[..chunk.len()];
                        fill(out);
                        for (slot, value) in chunk.iter_mut().zip(out.iter()) {
                            *slot = <$sample as cpal::FromSample<f32>>::from_sample_(*value);
                        }
                    }
                },
                on_error,
                None,
            )
        };
    }
    let stream = match format {
        cpal::SampleFormat::I16 => build!(i16),
        cpal::SampleFormat::I32 => build!(i32),
        cpal::SampleFormat::U16 => build!(u16),
        _ => build!(f32),
    }
    .map_err(|e| e.to_string())?;
    Ok((stream, rate, channels))
}

/// An input stream on `device` at its default rate, buffered about
/// `buffer_ms`; `take` receives each piece as mono samples in −1..1 (the
/// device's channels averaged). Returns the stream and its rate.
///
/// # Errors
/// When the device cannot be used.
pub fn input_stream(
    device: &cpal::Device,
    buffer_ms: u32,
    mut take: impl FnMut(&[f32]) + Send + 'static,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> std::result::Result<(cpal::Stream, u32), String> {
    let supported = device.default_input_config().map_err(|e| e.to_string())?;
    let (format, config) = buffered(supported, buffer_ms);
    let (rate, channels) = (config.sample_rate, usize::from(config.channels.max(1)));
    let mut mono = vec![0.0_f32; 16_384];
    macro_rules! build {
        ($sample:ty) => {
            device.build_input_stream(
                config,
                move |data: &[$sample], _: &cpal::InputCallbackInfo| {
                    for chunk in data.chunks(mono.len() * channels) {
                        let frames = chunk.len() / channels;
                        for (frame, slot) in chunk.chunks_exact(channels).zip(mono.iter_mut()) {
                            let sum: f32 = frame
                                .iter()
                                .map(|s| <f32 as cpal::FromSample<$sample>>::from_sample_(*s))
                                .sum();
                            *slot = sum / channels as f32;
                        }
                        take(&mono[..frames]);
                    }
                },
                on_error,
                None,
            )
        };
    }
    let stream = match format {
        cpal::SampleFormat::I16 => build!(i16),
        cpal::SampleFormat::I32 => build!(i32),
        cpal::SampleFormat::U16 => build!(u16),
        _ => build!(f32),
    }
    .map_err(|e| e.to_string())?;
    Ok((stream, rate))
}

/// Band-limited, fixed-ratio resampling of mono audio in 10 ms pieces (the
/// phone's: a device's rate to 8 kHz and back). `rubato`'s FFT resampler:
/// the anti-aliasing filter keeps what lies above 4 kHz out of a call
/// (67 dB down or more) and passes the telephone band, 300–3400 Hz, whole.
///
/// The window is Blackman² (squared Blackman). In 10 ms pieces the FFT is
/// short (80 points at 8 kHz), and the window sets where its filter cuts:
/// with Blackman-Harris², the first choice, the same alias rejection
/// cost the band's top (−4.9 dB at 3.3 kHz, −10 dB at 3.4 kHz each way),
/// against −0.3 and −1.6 dB with Blackman².
pub struct CallResampler {
    inner: rubato::Fft<f32>,
    input: usize,
    output: usize,
}

impl std::fmt::Debug for CallResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallResampler").field("input", &self.input).field("output", &self.output).finish()
    }
}

impl CallResampler {
    /// From `from` Hz to `to` Hz, 10 ms at a time.
    ///
    /// # Errors
    /// When a rate is not a whole number of samples per 10 ms.
    pub fn new(from: u32, to: u32) -> std::result::Result<Self, String> {
        Self::with_window(from, to, Self::WINDOW)
    }

    /// The anti-aliasing window the phone uses (the type's doc says why).
    pub const WINDOW: rubato::WindowFunction = rubato::WindowFunction::Blackman2;

    /// The same with another anti-aliasing window (for the chain bench,
    /// `examples/chain.rs`).
    ///
    /// # Errors
    /// When a rate is not a whole number of samples per 10 ms.
    pub fn with_window(
        from: u32,
        to: u32,
        window: rubato::WindowFunction,
    ) -> std::result::Result<Self, String> {
        if !from.is_multiple_of(100) || !to.is_multiple_of(100) || from == 0 || to == 0 {
            return Err(format!("{from} Hz to {to} Hz is not 10 ms pieces"));
        }
        let (input, output) = (from as usize / 100, to as usize / 100);
        let inner = rubato::Fft::<f32>::new_custom(
            from as usize,
            to as usize,
            input,
            1,
            1,
            window,
            rubato::FixedSync::Both,
        )
        .map_err(|e| e.to_string())?;
        Ok(Self { inner, input, output })
    }

    /// Samples in per piece.
    #[must_use]
    pub const fn input_len(&self) -> usize {
        self.input
    }

    /// Samples out per piece.
    #[must_use]
    pub const fn output_len(&self) -> usize {
        self.output
    }

    /// Resamples one 10 ms piece: `input` ([`Self::input_len`] samples) into
    /// `output` ([`Self::output_len`]).
    pub fn process(&mut self, input: &[f32], output: &mut [f32]) {
        let (Ok(from), Ok(mut to)) =
            (InterleavedSlice::new(input, 1, self.input), InterleavedSlice::new_mut(output, 1, self.output))
        else {
            output.fill(0.0);
            return;
        };
        if let Err(error) = self.inner.process_into_buffer(&from, &mut to, None) {
            tracing::warn!(%error, "resampling failed");
            output.fill(0.0);
        }
    }
}

/// Linear-interpolating resampler from the recording's rate to the
/// device's. Sans-IO: frames in, frames out. (Speed is the player's
/// `Stretcher`'s, before it, which keeps the pitch.)
#[derive(Clone, Debug)]
pub struct Resampler {
    source_rate: u32,
    output_rate: u32,
    /// Where between `current` and `next` the output is (0..1).
    fraction: f64,
    current: Option<[f32; 2]>,
    next: Option<[f32; 2]>,
}

impl Resampler {
    /// From `source_rate` to `output_rate`.
    #[must_use]
    pub const fn new(source_rate: u32, output_rate: u32) -> Self {
        Self { source_rate, output_rate, fraction: 0.0, current: None, next: None }
    }

    /// Source frames per output frame.
    #[must_use]
    pub fn step(&self) -> f64 {
        f64::from(self.source_rate) / f64::from(self.output_rate.max(1))
    }

    /// Forgets the frames held (after a seek).
    pub fn reset(&mut self) {
        self.fraction = 0.0;
        self.current = None;
        self.next = None;
    }

    /// Writes up to `frames` output frames to `out`, reading source frames
    /// from `source` (None: the end); true when the source ran out.
    pub fn fill(
        &mut self,
        source: &mut impl FnMut() -> Option<[f32; 2]>,
        frames: usize,
        mut out: impl FnMut([f32; 2]),
    ) -> bool {
        let step = self.step();
        if self.current.is_none() {
            self.current = source();
            self.next = source();
        }
        for _ in 0..frames {
            let Some(current) = self.current else { return true };
            let next = self.next.unwrap_or(current);
            let t = self.fraction as f32;
            out([current[0] + (next[0] - current[0]) * t, current[1] + (next[1] - current[1]) * t]);
            self.fraction += step;
            while self.fraction >= 1.0 {
                self.fraction -= 1.0;
                self.current = self.next;
                self.next = if self.current.is_some() { source() } else { None };
                if self.current.is_none() {
                    break;
                }
            }
        }
        self.current.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::{CallResampler, Resampler, is_a_device, late_by};

    #[test]
    fn what_a_stream_asks_beyond_its_whole_buffer_is_time_it_was_late_by() {
        // A 10 ms period at 48 kHz: a buffer of 960 frames, asked for a
        // period at a time, or the whole of it after a little delay.
        assert_eq!(late_by(480, 960), 0);
        assert_eq!(late_by(960, 960), 0);
        // 9 ms late: the server played 440 frames of silence, and asks for
        // them on top of a full buffer.
        assert_eq!(late_by(1_400, 960), 440);
        // A stream of the server's own size never is.
        assert_eq!(late_by(96_000, usize::MAX), 0);
    }

    #[test]
    fn alsa_plugins_and_pulseaudio_monitors_are_not_offered_as_devices() {
        for kept in [
            "alsa:default",
            "alsa:pulse",
            "alsa:hw:CARD=PCH,DEV=0",
            "alsa:sysdefault:CARD=PCH",
            "jack:system",
            "pulseaudio:alsa_input.pci-0000_00_1f.3.analog-stereo",
            "pulseaudio:alsa_output.pci-0000_00_1f.3.analog-stereo",
        ] {
            assert!(is_a_device(kept), "{kept}");
        }
        for dropped in [
            "alsa:null",
            "alsa:lavrate",
            "alsa:upmix",
            "alsa:vdownmix",
            "alsa:jack",
            "alsa:oss",
            "pulseaudio:alsa_output.pci-0000_00_1f.3.analog-stereo.monitor",
        ] {
            assert!(!is_a_device(dropped), "{dropped}");
        }
    }

    fn run(resampler: &mut Resampler, frames: usize, output: usize) -> Vec<[f32; 2]> {
        let mut n = 0;
        let mut source = || {
            n += 1;
            (n <= frames).then(|| [n as f32, -(n as f32)])
        };
        let mut out = Vec::new();
        let exhausted = resampler.fill(&mut source, output, |frame| out.push(frame));
        assert!(exhausted || out.len() == output);
        out
    }

    #[test]
    fn eight_khz_to_forty_eight_is_six_frames_each_interpolated() {
        let mut resampler = Resampler::new(8_000, 48_000);
        let out = run(&mut resampler, 100, 1_000_000);
        assert!(out.len().abs_diff(600) <= 2, "six output frames per source frame: {}", out.len());
        assert_eq!(out[0], [1.0, -1.0]);
        assert!((out[3][0] - 1.5).abs() < 1e-4, "halfway between 1 and 2: {:?}", out[3]);
        assert!((out[6][0] - 2.0).abs() < 1e-4, "{:?}", out[6]);
    }

    #[test]
    fn output_is_produced_in_pieces_without_losing_frames() {
        let mut whole = Resampler::new(8_000, 44_100);
        let all = run(&mut whole, 800, 1_000_000);
        let mut pieces = Resampler::new(8_000, 44_100);
        let mut n = 0;
        let mut source = || {
            n += 1;
            (n <= 800).then(|| [n as f32, -(n as f32)])
        };
        let mut out = Vec::new();
        while !pieces.fill(&mut source, 333, |frame| out.push(frame)) {}
        assert_eq!(out, all);
    }

    /// A tone's level through the call resampler, after its delay.
    fn level_through(from: u32, to: u32, hz: f32) -> f32 {
        let mut resampler = CallResampler::new(from, to).unwrap();
        let (n_in, n_out) = (resampler.input_len(), resampler.output_len());
        let mut out = Vec::new();
        let mut piece = vec![0.0; n_out];
        for k in 0..50 {
            let input: Vec<f32> = (0..n_in)
                .map(|i| 0.5 * (std::f32::consts::TAU * hz * (k * n_in + i) as f32 / from as f32).sin())
                .collect();
            resampler.process(&input, &mut piece);
            out.extend_from_slice(&piece);
        }
        let settled = &out[out.len() / 2..];
        (settled.iter().map(|s| s * s).sum::<f32>() / settled.len() as f32).sqrt()
    }

    /// A tone's gain through the call resampler, in dB.
    fn gain_db(from: u32, to: u32, hz: f32) -> f32 {
        // (the RMS of a 0.5 sine)
        20.0 * (level_through(from, to, hz) / (0.5 / std::f32::consts::SQRT_2)).log10()
    }

    #[test]
    fn a_call_keeps_the_telephone_band_and_drops_what_8_khz_cannot_hold() {
        for (from, to) in [(48_000, 8_000), (44_100, 8_000), (8_000, 48_000), (16_000, 8_000)] {
            // 300–3300 Hz within half a dB, 3.4 kHz (the band's top, G.712)
            // within 2 dB, each way.
            for hz in [300.0, 1_000.0, 2_000.0, 3_000.0, 3_300.0] {
                let gain = gain_db(from, to, hz);
                assert!(gain.abs() < 0.5, "{from} → {to}: {hz} Hz at {gain:.1} dB");
            }
            let top = gain_db(from, to, 3_400.0);
            assert!(top > -2.0, "{from} → {to}: 3.4 kHz at {top:.1} dB");
        }
        // Above 4 kHz a tone would fold back into the call at 8 kHz: 4.4 kHz
        // to 3.6 kHz, 6 kHz to 2 kHz. The filter takes them 60 dB down.
        for from in [48_000, 44_100, 16_000] {
            for hz in [4_000.0, 4_400.0, 6_000.0] {
                let aliased = gain_db(from, 8_000, hz);
                assert!(aliased < -60.0, "{from} → 8000: {hz} Hz leaked into the call at {aliased:.1} dB");
            }
        }
    }
}
