//! Playing a recording: the WAV is read over HTTP ranges (so a 60-minute
//! recording starts at once and seeks without downloading it), decoded by
//! `hound`, resampled to the output device and played through `cpal`.
//!
//! One thread per player owns the `cpal` stream (it is not `Send`), the
//! reader, the [`Stretcher`] and the [`Resampler`]; it fills a lock-free ring buffer (`rtrb`)
//! that the device's callback drains. The app drives it with
//! [`Player::play`], [`pause`](Player::pause), [`seek`](Player::seek) and
//! [`set_speed`](Player::set_speed), and reads [`Player::status`] for the
//! position. The right is checked locally before the first byte, and the
//! service checks again on every range: a right revoked mid-play stops the
//! player with the service's refusal, as does the app calling
//! [`Player::stop`] when [`History::apply`] says so.
//!
//! Speed (0.5×–2×) keeps the voices' pitch: the [`Stretcher`] plays the
//! source faster or slower by WSOLA before it is resampled to the device.
//! At 1× the recording is played sample for sample.

use crate::api::Api;
use crate::error::{ClientError, Result};
use crate::history::History;
use crate::stretch::Stretcher;
use cpal::traits::{DeviceTrait as _, HostTrait as _, StreamTrait as _};
use earshot_policy::{CallId, RecordingKind};
use reqwest::Method;
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// Bytes fetched per range request: about 8 s of a stereo recording.
const BLOCK: u64 = 256 * 1024;
/// Slowest and fastest playback.
pub const SPEEDS: std::ops::RangeInclusive<f64> = 0.5..=2.0;

/// An audio output the user can choose.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
pub struct OutputDevice {
    /// Stable id, to choose it again.
    pub id: String,
    /// What to show.
    pub name: String,
    /// The system's default output.
    pub is_default: bool,
}

/// Whether a user would choose this output: ALSA also lists its plugins
/// (rate converters, up- and down-mixers, JACK and OSS bridges, `null`),
/// which are not places to hear a recording. Kept: the default, the sound
/// servers, and the cards themselves.
fn is_an_output(id: &str) -> bool {
    let Some(name) = id.strip_prefix("alsa:") else { return true };
    matches!(name, "default" | "pulse" | "pipewire")
        || ["hw:", "plughw:", "front:", "sysdefault:"].iter().any(|card| name.starts_with(card))
}

/// The outputs `cpal` finds that a user would choose.
#[must_use]
pub fn output_devices() -> Vec<OutputDevice> {
    let host = cpal::default_host();
    let default = host.default_output_device().and_then(|d| d.id().ok()).map(|id| id.to_string());
    let Ok(devices) = host.output_devices() else { return Vec::new() };
    devices
        .filter_map(|device| {
            let id = device.id().ok()?.to_string();
            if !is_an_output(&id) {
                return None;
            }
            let name = device.description().map_or_else(|_| id.clone(), |d| d.name().to_owned());
            Some(OutputDevice { is_default: Some(&id) == default.as_ref(), id, name })
        })
        .collect()
}

/// Where a player is.
#[derive(Clone, Debug, PartialEq, serde::Serialize, ts_rs::TS)]
pub struct Status {
    /// Position in the recording, ms.
    pub position_ms: u64,
    /// The recording's length, ms.
    pub duration_ms: u64,
    /// Playing (not paused, not ended).
    pub playing: bool,
    /// Played to the end.
    pub ended: bool,
    /// Speed, 0.5 to 2.
    pub speed: f64,
    /// Why it stopped, when it did not end normally (a revoked right, the server gone).
    pub error: Option<String>,
}

enum Command {
    Play,
    Pause,
    Seek(u64),
    Speed(f64),
    Stop,
}

struct Shared {
    position_ms: AtomicU64,
    duration_ms: AtomicU64,
    paused: AtomicBool,
    ended: AtomicBool,
    /// The device callback empties the buffer and clears this (after a seek).
    flush: AtomicBool,
    speed_bits: AtomicU64,
    error: Mutex<Option<String>>,
}

/// A recording being played.
pub struct Player {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Player {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Player").field("status", &self.status()).finish_non_exhaustive()
    }
}

impl Player {
    /// Opens the `kind` recording of `call` on `device` (the default output
    /// when `None`), paused at the start. Checks the right locally first.
    /// Call from within a tokio runtime: range requests run on it.
    pub async fn open(
        api: &Api,
        history: &History,
        call: CallId,
        kind: RecordingKind,
        device: Option<&str>,
    ) -> Result<Self> {
        if !history.may_play(call, kind) {
            return Err(ClientError::Forbidden { detail: "You may not play this recording.".into() });
        }
        let recording = history.recording(call, kind)?.id;
        let path = format!("/recordings/{recording}/audio?app={}", history.app().as_str());
        let runtime = tokio::runtime::Handle::current();
        let api = api.clone();
        // The first block is fetched here, so an unplayable recording fails `open`.
        let reader = tokio::task::spawn_blocking(move || RangeReader::open(api, runtime, path))
            .await
            .map_err(|error| ClientError::Protocol(error.to_string()))??;
        let device = output_device(device)?;
        let shared = Arc::new(Shared {
            position_ms: AtomicU64::new(0),
            duration_ms: AtomicU64::new(0),
            paused: AtomicBool::new(true),
            ended: AtomicBool::new(false),
            flush: AtomicBool::new(false),
            speed_bits: AtomicU64::new(1.0_f64.to_bits()),
            error: Mutex::new(None),
        });
        let (commands, receiver) = mpsc::channel();
        let (ready, started) = mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("earshot-player".into())
            .spawn(move || play(reader, &device, &receiver, &thread_shared, &ready))
            .map_err(|error| ClientError::Protocol(error.to_string()))?;
        started
            .recv()
            .map_err(|_| ClientError::Protocol("the player thread stopped".into()))?
            .map_err(|detail| ClientError::Service { status: 0, detail })?;
        Ok(Self { commands, shared })
    }

    /// Plays (from where it is).
    pub fn play(&self) {
        let _ = self.commands.send(Command::Play);
    }

    /// Pauses.
    pub fn pause(&self) {
        let _ = self.commands.send(Command::Pause);
    }

    /// Moves to `position_ms`.
    pub fn seek(&self, position_ms: u64) {
        let _ = self.commands.send(Command::Seek(position_ms));
    }

    /// Sets the speed, clamped to 0.5–2.
    pub fn set_speed(&self, speed: f64) {
        let _ = self.commands.send(Command::Speed(speed.clamp(*SPEEDS.start(), *SPEEDS.end())));
    }

    /// Stops for good (the right was revoked, the user closed the call).
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
    }

    /// Where it is now.
    #[must_use]
    pub fn status(&self) -> Status {
        let shared = &self.shared;
        let ended = shared.ended.load(Ordering::Acquire);
        Status {
            position_ms: shared.position_ms.load(Ordering::Acquire),
            duration_ms: shared.duration_ms.load(Ordering::Acquire),
            playing: !ended && !shared.paused.load(Ordering::Acquire),
            ended,
            speed: f64::from_bits(shared.speed_bits.load(Ordering::Acquire)),
            error: shared.error.lock().ok().and_then(|e| e.clone()),
        }
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        self.stop();
    }
}

fn output_device(id: Option<&str>) -> Result<cpal::Device> {
    let host = cpal::default_host();
    // A chosen output that is gone (a headset unplugged, or an id from
    // another sound system) gives way to the default one.
    let chosen = id.and_then(|id| id.parse().ok()).and_then(|id| host.device_by_id(&id));
    if chosen.is_none()
        && let Some(id) = id
    {
        tracing::info!(id, "the chosen audio output is not there; playing on the default one");
    }
    chosen
        .or_else(|| host.default_output_device())
        .ok_or_else(|| ClientError::Service { status: 0, detail: "No audio output device was found.".into() })
}

/// The player thread: owns the stream, fills the buffer, obeys commands.
fn play(
    reader: RangeReader,
    device: &cpal::Device,
    commands: &mpsc::Receiver<Command>,
    shared: &Arc<Shared>,
    ready: &mpsc::Sender<Result<(), String>>,
) {
    let mut wav = match hound::WavReader::new(reader) {
        Ok(wav) => wav,
        Err(error) => {
            let _ = ready.send(Err(format!("The recording cannot be read: {error}")));
            return;
        }
    };
    let spec = wav.spec();
    let source_rate = spec.sample_rate;
    let source_channels = usize::from(spec.channels.max(1));
    shared
        .duration_ms
        .store(u64::from(wav.duration()) * 1_000 / u64::from(source_rate.max(1)), Ordering::Release);
    let config = match device.default_output_config() {
        Ok(config) => config,
        Err(error) => {
            let _ = ready.send(Err(format!("The audio output cannot be used: {error}")));
            return;
        }
    };
    let rate = config.sample_rate();
    let channels = usize::from(config.channels().max(1));
    // Half a second of output.
    let (mut producer, consumer) = rtrb::RingBuffer::<f32>::new(rate as usize / 2 * channels);
    let stream = match build_stream(device, &config, consumer, Arc::clone(shared)) {
        Ok(stream) => stream,
        Err(error) => {
            let _ = ready.send(Err(format!("The audio output cannot be used: {error}")));
            return;
        }
    };
    if let Err(error) = stream.play() {
        let _ = ready.send(Err(format!("The audio output cannot be started: {error}")));
        return;
    }
    let _ = ready.send(Ok(()));

    let mut resampler = Resampler::new(source_rate, rate);
    let mut stretcher = Stretcher::new(source_rate);
    let mut exhausted = false;
    let fail = |message: String| {
        if let Ok(mut error) = shared.error.lock() {
            *error = Some(message);
        }
        shared.paused.store(true, Ordering::Release);
        shared.ended.store(true, Ordering::Release);
    };
    loop {
        while let Ok(command) = commands.try_recv() {
            match command {
                Command::Play => {
                    if shared.ended.load(Ordering::Acquire) && shared.error.lock().is_ok_and(|e| e.is_none())
                    {
                        // Play after the end starts again.
                        shared.ended.store(false, Ordering::Release);
                        seek_to(&mut wav, shared, (&mut stretcher, &mut resampler), 0, source_rate);
                        exhausted = false;
                    }
                    shared.paused.store(false, Ordering::Release);
                }
                Command::Pause => shared.paused.store(true, Ordering::Release),
                Command::Seek(ms) => {
                    seek_to(&mut wav, shared, (&mut stretcher, &mut resampler), ms, source_rate);
                    exhausted = false;
                    shared.ended.store(false, Ordering::Release);
                }
                Command::Speed(speed) => {
                    stretcher.set_speed(speed);
                    shared.speed_bits.store(speed.to_bits(), Ordering::Release);
                }
                Command::Stop => return,
            }
        }
        if shared.ended.load(Ordering::Acquire) && shared.error.lock().is_ok_and(|e| e.is_some()) {
            // Stopped by an error: wait for the app to drop the player.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if shared.flush.load(Ordering::Acquire) {
            // After a seek: nothing new goes in until the device has dropped
            // what was queued from the old position.
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        let buffered = (producer.buffer().capacity() - producer.slots()) / channels;
        // What is queued for the device was taken from the source at the speed.
        let position = stretcher.position() - buffered as f64 * resampler.step() * stretcher.speed();
        shared
            .position_ms
            .store((position.max(0.0) * 1_000.0 / f64::from(source_rate)) as u64, Ordering::Release);
        if exhausted {
            if buffered == 0 && !shared.paused.load(Ordering::Acquire) {
                shared.paused.store(true, Ordering::Release);
                shared.ended.store(true, Ordering::Release);
                shared.position_ms.store(shared.duration_ms.load(Ordering::Acquire), Ordering::Release);
            }
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let free = producer.slots() / channels;
        if free < 256 {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let mut samples = wav.samples::<i16>();
        let mut failed = None;
        let mut next_frame = || -> Option<[f32; 2]> {
            let mut frame = [0.0_f32; 2];
            for index in 0..source_channels {
                match samples.next() {
                    Some(Ok(sample)) => {
                        if let Some(slot) = frame.get_mut(index) {
                            *slot = f32::from(sample) / 32_768.0;
                        }
                    }
                    Some(Err(error)) => {
                        failed = Some(error.to_string());
                        return None;
                    }
                    None => return None,
                }
            }
            if source_channels == 1 {
                frame[1] = frame[0];
            }
            Some(frame)
        };
        let mut out = Vec::with_capacity(free * channels);
        exhausted =
            resampler.fill(&mut || stretcher.next(&mut next_frame), free, |[left, right]| match channels {
                1 => out.push(f32::midpoint(left, right)),
                _ => {
                    out.push(left);
                    out.push(right);
                    out.extend(std::iter::repeat_n(0.0, channels - 2));
                }
            });
        if let Some(error) = failed {
            fail(format!("Playback stopped: {error}"));
            continue;
        }
        if let Ok(mut chunk) = producer.write_chunk(out.len()) {
            let (first, second) = chunk.as_mut_slices();
            let split = first.len();
            first.copy_from_slice(&out[..split]);
            second.copy_from_slice(&out[split..]);
            chunk.commit_all();
        }
    }
}

/// Moves the reader to `ms` and empties the output.
fn seek_to(
    wav: &mut hound::WavReader<RangeReader>,
    shared: &Shared,
    (stretcher, resampler): (&mut Stretcher, &mut Resampler),
    ms: u64,
    source_rate: u32,
) {
    let frame = (ms * u64::from(source_rate) / 1_000).min(u64::from(wav.duration()));
    // The device callback empties the buffer on its next run; the fill loop
    // waits for that before it queues audio from the new position.
    shared.flush.store(true, Ordering::Release);
    if let Err(error) = wav.seek(u32::try_from(frame).unwrap_or(u32::MAX))
        && let Ok(mut slot) = shared.error.lock()
    {
        *slot = Some(format!("Playback stopped: {error}"));
    }
    resampler.reset();
    stretcher.reset(frame);
    shared.position_ms.store(frame * 1_000 / u64::from(source_rate.max(1)), Ordering::Release);
}

fn build_stream(
    device: &cpal::Device,
    config: &cpal::SupportedStreamConfig,
    mut consumer: rtrb::Consumer<f32>,
    shared: Arc<Shared>,
) -> std::result::Result<cpal::Stream, cpal::Error> {
    let format = config.sample_format();
    let buffer = *config.buffer_size();
    let mut config: cpal::StreamConfig = (*config).into();
    // About 40 ms buffered in the sound system, so play, pause and seek are
    // heard at once: left to itself, PulseAudio buffers 2 s (its default
    // target length), and the first sound came that late. The half second
    // of decoded audio waiting in the ring buffer is what rides out hiccups.
    if let cpal::SupportedBufferSize::Range { min, max } = buffer {
        config.buffer_size = cpal::BufferSize::Fixed((config.sample_rate / 25).clamp(min, max));
    }
    let on_error = |error: cpal::Error| tracing::warn!(%error, "audio output");
    macro_rules! build {
        ($sample:ty) => {
            device.build_output_stream(
                config,
                move |data: &mut [$sample], _: &cpal::OutputCallbackInfo| {
                    if shared.flush.swap(false, Ordering::AcqRel) {
                        let waiting = consumer.slots();
                        if let Ok(chunk) = consumer.read_chunk(waiting) {
                            chunk.commit_all();
                        }
                    }
                    let paused = shared.paused.load(Ordering::Acquire);
                    for slot in data.iter_mut() {
                        let value = if paused { 0.0 } else { consumer.pop().unwrap_or(0.0) };
                        *slot = <$sample as cpal::FromSample<f32>>::from_sample_(value);
                    }
                },
                on_error,
                None,
            )
        };
    }
    match format {
        cpal::SampleFormat::I16 => build!(i16),
        cpal::SampleFormat::I32 => build!(i32),
        cpal::SampleFormat::U16 => build!(u16),
        _ => build!(f32),
    }
}

/// Linear-interpolating resampler from the recording's rate to the
/// device's. Sans-IO: frames in, frames out. (Speed is the [`Stretcher`]'s,
/// before it, which keeps the pitch.)
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

/// The recording's bytes, read by HTTP range in blocks: `Read + Seek` for `hound`.
struct RangeReader {
    api: Api,
    runtime: tokio::runtime::Handle,
    path: String,
    size: u64,
    position: u64,
    block_start: u64,
    block: Vec<u8>,
}

impl RangeReader {
    fn open(api: Api, runtime: tokio::runtime::Handle, path: String) -> Result<Self> {
        let mut reader = Self { api, runtime, path, size: 0, position: 0, block_start: 0, block: Vec::new() };
        reader.size = reader.fetch(0)?;
        Ok(reader)
    }

    /// Fetches the block at `start`; returns the file's size.
    fn fetch(&mut self, start: u64) -> Result<u64> {
        let request = self
            .api
            .request(Method::GET, &self.path)
            .header("range", format!("bytes={start}-{}", start + BLOCK - 1));
        let api = self.api.clone();
        let (size, bytes) = self.runtime.block_on(async move {
            let response = api.send(request).await?;
            let size = response
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit('/').next())
                .and_then(|v| v.parse::<u64>().ok());
            let bytes = response.bytes().await.map_err(|error| ClientError::Offline {
                server: api.server().to_owned(),
                reason: error.to_string(),
            })?;
            Ok::<_, ClientError>((size.unwrap_or(start + bytes.len() as u64), bytes))
        })?;
        self.block_start = start;
        self.block = bytes.to_vec();
        Ok(size)
    }
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.position >= self.size {
            return Ok(0);
        }
        let end = self.block_start + self.block.len() as u64;
        if self.position < self.block_start || self.position >= end {
            self.fetch(self.position).map_err(|error| std::io::Error::other(error.to_string()))?;
        }
        let offset = usize::try_from(self.position - self.block_start).unwrap_or(usize::MAX);
        let available = &self.block[offset.min(self.block.len())..];
        let count = available.len().min(buf.len());
        buf[..count].copy_from_slice(&available[..count]);
        self.position += count as u64;
        Ok(count)
    }
}

impl Seek for RangeReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let position = match to {
            SeekFrom::Start(at) => i128::from(at),
            SeekFrom::End(delta) => i128::from(self.size) + i128::from(delta),
            SeekFrom::Current(delta) => i128::from(self.position) + i128::from(delta),
        };
        self.position = u64::try_from(position)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "before the start"))?;
        Ok(self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::{Resampler, is_an_output};

    #[test]
    fn alsa_plugins_are_not_offered_as_outputs() {
        for kept in [
            "alsa:default",
            "alsa:pulse",
            "alsa:hw:CARD=PCH,DEV=0",
            "alsa:sysdefault:CARD=PCH",
            "jack:system",
        ] {
            assert!(is_an_output(kept), "{kept}");
        }
        for dropped in ["alsa:null", "alsa:lavrate", "alsa:upmix", "alsa:vdownmix", "alsa:jack", "alsa:oss"] {
            assert!(!is_an_output(dropped), "{dropped}");
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
}
