//! A call's sound: the microphone and the speaker between the sound card
//! and the phone's media (8 kHz, 20 ms frames), with echo cancellation,
//! noise suppression and gain control (`sonora`, WebRTC's audio processing
//! in Rust), each switchable.
//!
//! One thread per call owns the `cpal` streams (they are not `Send`). The
//! device callbacks only move samples through lock-free rings; the thread
//! takes the microphone 10 ms at a time (its clock paces everything): the
//! far end's next 10 ms is resampled to the speaker's rate, queued for it
//! and shown to the echo canceller as what is being played; the
//! microphone's 10 ms is resampled to 8 kHz, processed against it and
//! queued for the phone. The phone's media task takes and gives 20 ms
//! frames through [`CallAudio`], its [`AudioPort`].
//!
//! A microphone that cannot be opened leaves the call going (silence goes
//! out, the far end is still heard, paced by the clock) and says so; a
//! device that fails mid-call (unplugged) is reopened as the system's
//! default without dropping the call.

use crate::audio::{CallResampler, input_device, input_stream, output_device, output_stream};
use crate::error::{AudioProblem, ClientError, Result};
use cpal::traits::{DeviceTrait as _, StreamTrait as _};
use earshot_sip::phone::AudioPort;
use earshot_telephony::plc::FRAME;
use sonora::config::{EchoCanceller, GainController2, NoiseSuppression, TransparentModeType};
use sonora::{AudioProcessing, Config, StreamConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The phone's rate.
const RATE: u32 = 8_000;
/// Samples of a 10 ms piece at 8 kHz.
const PIECE: usize = 80;
/// Most microphone audio waiting for the phone before the oldest is
/// dropped (the media task's clock and the sound card's drift apart).
const MIC_MOST: usize = 800;
/// What is kept when that happens.
const MIC_KEEP: usize = 320;
/// Most far-end audio waiting to be played, likewise.
const FAR_MOST: usize = 1_600;
const FAR_KEEP: usize = 320;
/// Most audio queued for the speaker, in ms.
const SPEAKER_MOST_MS: usize = 150;

/// How a call sounds: which devices, which processing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub struct AudioSettings {
    /// The microphone's id (`None`: the system's default).
    pub microphone: Option<String>,
    /// The speaker's id (`None`: the system's default).
    pub speaker: Option<String>,
    /// Cancel the speaker's echo in the microphone.
    pub echo_cancellation: bool,
    /// Suppress steady background noise.
    pub noise_suppression: bool,
    /// Bring the voice to an even level.
    pub gain_control: bool,
}

impl Default for AudioSettings {
    fn default() -> Self {
        Self {
            microphone: None,
            speaker: None,
            echo_cancellation: true,
            noise_suppression: true,
            gain_control: true,
        }
    }
}

/// What the call's audio thread and the app share.
#[derive(Debug, Default)]
struct Shared {
    muted: AtomicBool,
    stop: AtomicBool,
    /// What went wrong with a device, for the ui.
    problem: Mutex<Option<(AudioProblem, String)>>,
}

/// The app's handle on a call's sound: mute, and device problems.
/// Dropping it stops the sound.
#[derive(Debug)]
pub struct CallSound {
    shared: Arc<Shared>,
}

impl CallSound {
    /// Mutes or unmutes the microphone (silence goes out while muted).
    pub fn set_muted(&self, muted: bool) {
        self.shared.muted.store(muted, Ordering::Release);
    }

    /// The last device problem, if any (the call goes on).
    #[must_use]
    pub fn problem(&self) -> Option<ClientError> {
        let problem = self.shared.problem.lock().ok()?.clone();
        problem.map(|(code, detail)| ClientError::Audio { code, detail })
    }
}

impl Drop for CallSound {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
    }
}

/// The phone's side of a call's sound: its [`AudioPort`].
pub struct CallAudio {
    mic: rtrb::Consumer<i16>,
    far: rtrb::Producer<i16>,
    shared: Arc<Shared>,
}

impl CallAudio {
    /// Opens the devices `settings` name and starts the call's sound.
    ///
    /// # Errors
    /// When there is no speaker at all (a missing microphone is not an
    /// error: the call goes on without it, and [`CallSound::problem`] says so).
    pub fn open(settings: &AudioSettings) -> Result<(Self, CallSound)> {
        let shared = Arc::new(Shared::default());
        let (mic_in, mic) = rtrb::RingBuffer::new(8_000);
        let (far, far_out) = rtrb::RingBuffer::new(8_000);
        let (ready, started) = std::sync::mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let settings = settings.clone();
        std::thread::Builder::new()
            .name("earshot-call-audio".into())
            .spawn(move || run(&settings, mic_in, far_out, &thread_shared, &ready))
            .map_err(|error| ClientError::Protocol(error.to_string()))?;
        started.recv().map_err(|_| ClientError::Protocol("the call's audio thread stopped".into()))??;
        Ok((Self { mic, far, shared: Arc::clone(&shared) }, CallSound { shared }))
    }
}

impl AudioPort for CallAudio {
    fn capture(&mut self, frame: &mut [i16; FRAME]) {
        let waiting = self.mic.slots();
        if waiting > MIC_MOST
            && let Ok(chunk) = self.mic.read_chunk(waiting - MIC_KEEP)
        {
            chunk.commit_all();
        }
        let take = self.mic.slots().min(FRAME);
        let muted = self.shared.muted.load(Ordering::Acquire);
        frame.fill(0);
        if let Ok(chunk) = self.mic.read_chunk(take) {
            let (first, second) = chunk.as_slices();
            if !muted {
                // Short of a frame (the device started late): the rest is silence.
                frame[FRAME - take..FRAME - take + first.len()].copy_from_slice(first);
                frame[FRAME - take + first.len()..].copy_from_slice(second);
            }
            chunk.commit_all();
        }
    }

    fn play(&mut self, frame: &[i16; FRAME]) {
        if let Ok(mut chunk) = self.far.write_chunk(FRAME) {
            let (first, second) = chunk.as_mut_slices();
            let split = first.len();
            first.copy_from_slice(&frame[..split]);
            second.copy_from_slice(&frame[split..]);
            chunk.commit_all();
        }
    }
}

impl Drop for CallAudio {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
    }
}

/// The devices of a call, open.
struct Devices {
    /// The microphone's stream, its rate, and what it captured (raw, mono).
    input: Option<(cpal::Stream, u32, rtrb::Consumer<f32>)>,
    /// The speaker's stream, its rate, and where to queue for it (mono).
    output: (cpal::Stream, u32, rtrb::Producer<f32>),
    /// Set by a stream's error callback (a device unplugged).
    failed: Arc<AtomicBool>,
}

fn open_devices(settings: &AudioSettings, shared: &Shared) -> Result<Devices> {
    let failed = Arc::new(AtomicBool::new(false));
    let speaker = output_device(settings.speaker.as_deref())?;
    let channels = speaker.default_output_config().map_or(1, |c| usize::from(c.channels().max(1)));
    let (out_tx, mut out_rx) = rtrb::RingBuffer::<f32>::new(48_000);
    let output_failed = Arc::clone(&failed);
    let (stream, out_rate, _) = output_stream(
        &speaker,
        20,
        move |out: &mut [f32]| {
            // Mono to every channel; nothing queued is silence.
            for frame in out.chunks_mut(channels) {
                frame.fill(out_rx.pop().unwrap_or(0.0));
            }
        },
        move |error| {
            tracing::warn!(%error, "the call's speaker failed");
            output_failed.store(true, Ordering::Release);
        },
    )
    .map_err(|detail| ClientError::Audio {
        code: AudioProblem::SpeakerFailed,
        detail: format!("The speaker cannot be used: {detail}"),
    })?;
    stream.play().map_err(|error| ClientError::Audio {
        code: AudioProblem::SpeakerFailed,
        detail: format!("The speaker cannot be started: {error}"),
    })?;
    let input = match open_microphone(settings, &failed) {
        Ok(input) => {
            *shared.problem.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            Some(input)
        }
        Err(ClientError::Audio { code, detail }) => {
            tracing::warn!(%detail, "the call goes on without a microphone");
            *shared.problem.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((code, detail));
            None
        }
        Err(other) => return Err(other),
    };
    Ok(Devices { input, output: (stream, out_rate, out_tx), failed })
}

fn open_microphone(
    settings: &AudioSettings,
    failed: &Arc<AtomicBool>,
) -> Result<(cpal::Stream, u32, rtrb::Consumer<f32>)> {
    let microphone = input_device(settings.microphone.as_deref())?;
    let (mut in_tx, in_rx) = rtrb::RingBuffer::<f32>::new(96_000);
    let input_failed = Arc::clone(failed);
    let (stream, rate) = input_stream(
        &microphone,
        20,
        move |samples: &[f32]| {
            for sample in samples {
                if in_tx.push(*sample).is_err() {
                    break;
                }
            }
        },
        move |error| {
            tracing::warn!(%error, "the call's microphone failed");
            input_failed.store(true, Ordering::Release);
        },
    )
    .map_err(|detail| ClientError::Audio {
        code: AudioProblem::MicrophoneFailed,
        detail: format!("The microphone cannot be used: {detail}"),
    })?;
    stream.play().map_err(|error| ClientError::Audio {
        code: AudioProblem::MicrophoneFailed,
        detail: format!("The microphone cannot be started: {error}"),
    })?;
    Ok((stream, rate, in_rx))
}

/// The processing between the devices and the phone. The echo canceller,
/// noise suppressor and gain control work on the call's own 8 kHz (sonora
/// runs them at 16 kHz inside): at the devices' 48 kHz, AEC3 splits into
/// three bands and cost a quarter of a core (docs/PERFORMANCE.md), for
/// sound a G.711 call cannot carry anyway.
struct Chain {
    apm: AudioProcessing,
    /// Microphone rate → 8 kHz.
    down: CallResampler,
    /// 8 kHz → speaker rate.
    up: CallResampler,
    mic_rate: u32,
    speaker_rate: u32,
    /// 10 ms of the microphone at its rate, and of the speaker at its rate.
    mic: Vec<f32>,
    speaker: Vec<f32>,
}

impl Chain {
    fn new(settings: &AudioSettings, mic_rate: u32, speaker_rate: u32) -> std::result::Result<Self, String> {
        let config = Config {
            // Most agents wear headsets, which have no echo: the HMM detector
            // finds that within seconds, where the legacy counter took ten
            // seconds of cutting the agent's words whenever the caller spoke.
            echo_canceller: settings.echo_cancellation.then(|| EchoCanceller {
                transparent_mode: TransparentModeType::Hmm,
                ..EchoCanceller::default()
            }),
            noise_suppression: settings.noise_suppression.then(NoiseSuppression::default),
            gain_controller2: settings.gain_control.then(GainController2::default),
            ..Default::default()
        };
        let apm = AudioProcessing::builder()
            .config(config)
            .capture_config(StreamConfig::new(RATE, 1))
            .render_config(StreamConfig::new(RATE, 1))
            .build();
        let (down, up) = (CallResampler::new(mic_rate, RATE)?, CallResampler::new(RATE, speaker_rate)?);
        let (mic, speaker) = (vec![0.0; down.input_len()], vec![0.0; up.output_len()]);
        Ok(Self { apm, down, up, mic_rate, speaker_rate, mic, speaker })
    }
}

/// How long a device may stop moving before the call's audio reopens it
/// (a stream just opened gets as long again to start: a Bluetooth headset
/// takes its time).
const STALL: Duration = Duration::from_secs(1);

/// Notices a stream that stopped without an error: with small buffers a
/// PulseAudio stream can stop asking for sound after an underrun, and
/// nothing tells the app (cpal issue 487). A microphone that delivers
/// nothing, or a speaker that takes nothing, for [`STALL`] is reopened,
/// rather than leaving a call silent. Sans-IO: it is told what happened and
/// when.
#[derive(Debug)]
struct Watchdog {
    last_mic: Instant,
    speaker_full_since: Option<Instant>,
}

impl Watchdog {
    fn new(now: Instant) -> Self {
        Self { last_mic: now + STALL, speaker_full_since: None }
    }

    /// The microphone gave 10 ms.
    const fn mic_piece(&mut self, now: Instant) {
        self.last_mic = now;
    }

    /// Whether the speaker's queue was full when 10 ms more was ready.
    fn speaker(&mut self, now: Instant, full: bool) {
        self.speaker_full_since = if full { self.speaker_full_since.or(Some(now)) } else { None };
    }

    /// Which device stopped, if one did (`has_mic`: there is a microphone stream).
    fn stalled(&self, now: Instant, has_mic: bool) -> Option<&'static str> {
        if has_mic && now.duration_since(self.last_mic) >= STALL {
            Some("microphone")
        } else if self.speaker_full_since.is_some_and(|since| now.duration_since(since) >= STALL) {
            Some("speaker")
        } else {
            None
        }
    }
}

/// The call's audio thread.
fn run(
    settings: &AudioSettings,
    mut mic_out: rtrb::Producer<i16>,
    mut far_in: rtrb::Consumer<i16>,
    shared: &Arc<Shared>,
    ready: &std::sync::mpsc::Sender<Result<()>>,
) {
    let mut devices = match open_devices(settings, shared) {
        Ok(devices) => devices,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut chain: Option<Chain> = None;
    let mut clock = Instant::now();
    let mut retry_at = Instant::now() + Duration::from_secs(1);
    let mut far = [0.0_f32; PIECE];
    let mut render = [0.0_f32; PIECE];
    let mut mic8 = [0.0_f32; PIECE];
    let mut processed = [0.0_f32; PIECE];
    let mut watchdog = Watchdog::new(Instant::now());
    while !shared.stop.load(Ordering::Acquire) {
        let stalled = watchdog.stalled(Instant::now(), devices.input.is_some());
        if let Some(device) = stalled {
            tracing::warn!(device, "the call's {device} stopped moving; reopening it");
        }
        if devices.failed.swap(false, Ordering::AcqRel)
            || stalled.is_some()
            || (devices.input.is_none() && Instant::now() >= retry_at)
        {
            // A device went away or stopped (or there was no microphone): it
            // is opened again, the chosen one if it is still there, else the
            // system's default; the call goes on.
            retry_at = Instant::now() + Duration::from_secs(2);
            let fallback = AudioSettings { microphone: None, speaker: None, ..settings.clone() };
            if let Ok(reopened) = open_devices(settings, shared).or_else(|_| open_devices(&fallback, shared))
            {
                tracing::info!("the call's audio devices were opened again");
                devices = reopened;
                chain = None;
            }
            watchdog = Watchdog::new(Instant::now());
        }
        let mic_rate = devices.input.as_ref().map_or(48_000, |(_, rate, _)| *rate);
        let speaker_rate = devices.output.1;
        if chain.as_ref().is_none_or(|c| c.mic_rate != mic_rate || c.speaker_rate != speaker_rate) {
            match Chain::new(settings, mic_rate, speaker_rate) {
                Ok(new) => chain = Some(new),
                Err(detail) => {
                    tracing::warn!(%detail, "no audio processing for these devices");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
        }
        let Some(chain) = chain.as_mut() else { continue };
        let piece_in = chain.down.input_len();
        let mut pieces = 0;
        loop {
            // The microphone's clock paces the call; without one, the wall clock.
            let have_mic = match devices.input.as_mut() {
                Some((_, _, raw)) => {
                    if raw.slots() < piece_in {
                        break;
                    }
                    if let Ok(chunk) = raw.read_chunk(piece_in) {
                        let (first, second) = chunk.as_slices();
                        chain.mic[..first.len()].copy_from_slice(first);
                        chain.mic[first.len()..].copy_from_slice(second);
                        chunk.commit_all();
                    }
                    watchdog.mic_piece(Instant::now());
                    true
                }
                None => {
                    if clock.elapsed() < Duration::from_millis(10) {
                        break;
                    }
                    clock += Duration::from_millis(10);
                    chain.mic.fill(0.0);
                    false
                }
            };
            pieces += 1;
            // The far end's next 10 ms, to the speaker and to the echo canceller.
            if far_in.slots() > FAR_MOST
                && let Ok(chunk) = far_in.read_chunk(far_in.slots() - FAR_KEEP)
            {
                chunk.commit_all();
            }
            far.fill(0.0);
            let take = far_in.slots().min(PIECE);
            if let Ok(chunk) = far_in.read_chunk(take) {
                for (slot, sample) in far.iter_mut().zip(chunk) {
                    *slot = f32::from(sample) / 32_768.0;
                }
            }
            chain.up.process(&far, &mut chain.speaker);
            let (_, _, queue) = &mut devices.output;
            let queued_ms = (queue.buffer().capacity() - queue.slots()) * 1_000 / chain.speaker_rate as usize;
            watchdog.speaker(Instant::now(), queued_ms >= SPEAKER_MOST_MS);
            if queued_ms < SPEAKER_MOST_MS {
                for sample in &chain.speaker {
                    let _ = queue.push(*sample);
                }
            }
            let _ = chain.apm.process_render_f32(&[&far], &mut [&mut render]);
            if !have_mic {
                continue;
            }
            // The microphone's 10 ms, to 8 kHz, cleaned, to the phone.
            chain.down.process(&chain.mic, &mut mic8);
            if chain.apm.process_capture_f32(&[&mic8], &mut [&mut processed]).is_err() {
                processed = mic8;
            }
            for sample in processed {
                let _ = mic_out.push((sample.clamp(-1.0, 1.0) * 32_767.0) as i16);
            }
        }
        if pieces == 0 {
            std::thread::sleep(Duration::from_millis(4));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{STALL, Watchdog};
    use std::time::{Duration, Instant};

    const TEN_MS: Duration = Duration::from_millis(10);

    #[test]
    fn devices_that_keep_moving_are_left_alone() {
        let start = Instant::now();
        let mut dog = Watchdog::new(start);
        for piece in 1..200 {
            let now = start + TEN_MS * piece;
            dog.mic_piece(now);
            // The speaker's queue is full now and then, and drains.
            dog.speaker(now, piece % 7 == 0);
            assert_eq!(dog.stalled(now, true), None);
        }
    }

    #[test]
    fn a_microphone_that_never_starts_is_given_time_then_noticed() {
        let start = Instant::now();
        let dog = Watchdog::new(start);
        assert_eq!(dog.stalled(start + STALL, true), None);
        assert_eq!(dog.stalled(start + STALL * 2, true), Some("microphone"));
    }

    #[test]
    fn a_microphone_that_stops_delivering_is_noticed() {
        let start = Instant::now();
        let mut dog = Watchdog::new(start);
        dog.mic_piece(start + TEN_MS);
        assert_eq!(dog.stalled(start + TEN_MS + STALL - TEN_MS, true), None);
        assert_eq!(dog.stalled(start + TEN_MS + STALL, true), Some("microphone"));
        // Without a microphone stream there is nothing to wait for.
        assert_eq!(dog.stalled(start + TEN_MS + STALL, false), None);
    }

    #[test]
    fn a_speaker_that_stops_taking_sound_is_noticed() {
        let start = Instant::now();
        let mut dog = Watchdog::new(start);
        let pieces = u32::try_from(STALL.as_millis() / 10).unwrap();
        for piece in 0..=pieces {
            let now = start + TEN_MS * piece;
            dog.mic_piece(now);
            dog.speaker(now, true);
        }
        assert_eq!(dog.stalled(start + STALL - TEN_MS, true), None);
        assert_eq!(dog.stalled(start + STALL, true), Some("speaker"));
    }
}
