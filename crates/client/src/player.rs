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
use crate::audio::{Resampler, output_device, output_stream};
use crate::error::{ClientError, Result};
use crate::history::History;
use crate::stretch::Stretcher;
use cpal::traits::{DeviceTrait as _, StreamTrait as _};
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
    let mut consumer = consumer;
    let callback = Arc::clone(shared);
    let fill = move |out: &mut [f32]| {
        if callback.flush.swap(false, Ordering::AcqRel) {
            let waiting = consumer.slots();
            if let Ok(chunk) = consumer.read_chunk(waiting) {
                chunk.commit_all();
            }
        }
        let paused = callback.paused.load(Ordering::Acquire);
        for slot in out.iter_mut() {
            *slot = if paused { 0.0 } else { consumer.pop().unwrap_or(0.0) };
        }
    };
    // About 40 ms buffered in the sound system, so play, pause and seek are
    // heard at once; the half second of decoded audio waiting in the ring
    // buffer is what rides out hiccups.
    let on_error = |error: cpal::Error| tracing::warn!(%error, "audio output");
    let stream = match output_stream(device, 40, fill, on_error) {
        Ok((stream, _, _)) => stream,
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
