//! What the sipp peers say: speech, tones and keypad events as RTP in pcap
//! files (sipp's `play_pcap_audio`), and how to listen to a recording.

use earshot_policy::Key;
use earshot_telephony::dtmf::TelephoneEvent;
use earshot_telephony::g711::G711;
use std::path::Path;

/// 8 kHz samples per ms.
const PER_MS: usize = 8;

/// One side's audio on a timeline from the moment the call is answered.
#[derive(Default)]
pub struct Track {
    samples: Vec<i16>,
    /// Keys: start ms, key, length ms.
    keys: Vec<(usize, Key, usize)>,
}

impl Track {
    pub fn new() -> Self {
        Self::default()
    }

    fn place(&mut self, at_ms: usize, samples: &[i16]) {
        let start = at_ms * PER_MS;
        if self.samples.len() < start + samples.len() {
            self.samples.resize(start + samples.len(), 0);
        }
        self.samples[start..start + samples.len()].copy_from_slice(samples);
    }

    /// A speech clip from the demo's espeak-ng recordings, cut to `ms`.
    pub fn speech(mut self, at_ms: usize, clip: &str, ms: usize) -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/speech").join(format!("{clip}.wav"));
        let mut reader = hound::WavReader::open(&path).unwrap();
        let mut samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        samples.truncate(ms * PER_MS);
        self.place(at_ms, &samples);
        self
    }

    /// A pure tone, so a listener can tell exactly whether this stretch was recorded.
    pub fn tone(mut self, at_ms: usize, hz: f64, ms: usize) -> Self {
        let samples: Vec<i16> = (0..ms * PER_MS)
            .map(|n| (9_000.0 * (n as f64 * std::f64::consts::TAU * hz / 8_000.0).sin()) as i16)
            .collect();
        self.place(at_ms, &samples);
        self
    }

    /// Keys pressed one after another, 120 ms each, `gap_ms` apart (start to start).
    pub fn keys(mut self, at_ms: usize, keys: &str, gap_ms: usize) -> Self {
        for (i, c) in keys.chars().enumerate() {
            self.keys.push((at_ms + i * gap_ms, Key::from_char(c).unwrap(), 120));
        }
        self
    }

    /// Speech clips one after another from `at_ms` to `until_ms`, over a
    /// faint hum, so that no sample of it is silent: every sample a
    /// listener hears can be told apart from a gap.
    pub fn talk(mut self, at_ms: usize, until_ms: usize) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/speech");
        let mut speech = Vec::new();
        for clip in ["agent-greeting", "agent-check", "agent-account", "agent-solved"] {
            let mut reader = hound::WavReader::open(dir.join(format!("{clip}.wav"))).unwrap();
            speech.extend(reader.samples::<i16>().map(Result::unwrap));
        }
        let count = (until_ms - at_ms) * PER_MS;
        let samples: Vec<i16> = (0..count)
            .map(|n| {
                let hum = 300.0 * (n as f64 * std::f64::consts::TAU * 150.0 / 8_000.0).sin();
                let sample = f64::from(speech[n % speech.len()]) + hum;
                // Never 0 after µ-law either: at least the smallest step away.
                let sample = sample.clamp(-32_000.0, 32_000.0) as i16;
                if sample.abs() < 16 { 16 * if sample < 0 { -1 } else { 1 } } else { sample }
            })
            .collect();
        self.place(at_ms, &samples);
        self
    }

    /// Keys pressed one after another, each `length_ms` long, `gap_ms` apart (start to start).
    pub fn keys_held(mut self, at_ms: usize, keys: &str, gap_ms: usize, length_ms: usize) -> Self {
        for (i, c) in keys.chars().enumerate() {
            self.keys.push((at_ms + i * gap_ms, Key::from_char(c).unwrap(), length_ms));
        }
        self
    }

    /// What a listener decodes from the track, sample by sample from its
    /// start: the µ-law audio of every frame sent as audio, and silence
    /// where keys were sent instead (as `write_pcap` sends them).
    pub fn heard(&self) -> Vec<i16> {
        let mut out = vec![0; self.samples.len().div_ceil(160) * 160];
        self.packets(|frame, _, audio| {
            if let Some(chunk) = audio {
                out[frame * 160..(frame + 1) * 160]
                    .copy_from_slice(&G711::Pcmu.decode(&G711::Pcmu.encode(chunk)));
            }
        });
        out
    }

    /// Where each key's event lies, in samples from the track's start:
    /// its start, and its start plus the duration its end packets give.
    pub fn key_spans(&self) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        self.packets(|_, event, _| {
            if let Some((at, event)) = event
                && event.end
                && spans.last().is_none_or(|(start, _)| *start != at)
            {
                spans.push((at, at + usize::from(event.duration)));
            }
        });
        spans
    }

    /// The track's samples as played (before any codec).
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Silence up to `ms`.
    pub fn until(mut self, ms: usize) -> Self {
        if self.samples.len() < ms * PER_MS {
            self.samples.resize(ms * PER_MS, 0);
        }
        self
    }

    /// Writes the track as 20 ms PCMU packets (keys as RFC 4733 events,
    /// payload type 101, audio suppressed meanwhile) into a pcap at `path`.
    pub fn write_pcap(&self, path: &Path) {
        let mut pcap = Pcap::new();
        let ssrc = 0x5eed_0001_u32;
        let mut sequence = 1_u16;
        self.packets(|frame, event, audio| {
            let ms = frame * 20;
            if let Some((at, event)) = event {
                let marker = event.duration == 0;
                pcap.rtp(ms, 101, marker, sequence, 1_000 + at as u32, ssrc, &event.to_bytes());
            } else if let Some(chunk) = audio {
                let timestamp = 1_000 + (frame as u32) * 160;
                pcap.rtp(ms, 0, false, sequence, timestamp, ssrc, &G711::Pcmu.encode(chunk));
            }
            sequence = sequence.wrapping_add(1);
        });
        std::fs::write(path, pcap.bytes).unwrap();
    }

    /// Calls `packet(frame, event, audio)` for every packet of the track in
    /// order: an event (its press's start in samples, and the payload), or
    /// a frame of audio.
    fn packets(&self, mut packet: impl FnMut(usize, Option<(usize, TelephoneEvent)>, Option<&[i16]>)) {
        let frames = self.samples.len().div_ceil(160);
        let mut keys = self.keys.iter().peekable();
        let mut current: Option<(usize, Key, usize, usize)> = None;
        for frame in 0..frames {
            let ms = frame * 20;
            if current.is_none()
                && let Some(&&(start, key, length)) = keys.peek()
                && start <= ms
            {
                keys.next();
                current = Some((start, key, length, frame * 160));
                packet(frame, Some((frame * 160, event(key, false, 0))), None);
                continue;
            }
            if let Some((start, key, length, at)) = current {
                let elapsed = (ms - start) as u16 * 8;
                if ms >= start + length {
                    for _ in 0..3 {
                        packet(frame, Some((at, event(key, true, elapsed))), None);
                    }
                    current = None;
                } else {
                    packet(frame, Some((at, event(key, false, elapsed))), None);
                }
                continue;
            }
            let end = ((frame + 1) * 160).min(self.samples.len());
            let mut chunk = self.samples[frame * 160..end].to_vec();
            chunk.resize(160, 0);
            packet(frame, None, Some(&chunk));
        }
    }
}

fn event(key: Key, end: bool, duration: u16) -> TelephoneEvent {
    TelephoneEvent { key, end, volume: 10, duration }
}

/// A libpcap file of Ethernet/IPv4/UDP packets (sipp rewrites the addresses).
struct Pcap {
    bytes: Vec<u8>,
}

impl Pcap {
    fn new() -> Self {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes());
        bytes.extend_from_slice(&2_u16.to_le_bytes());
        bytes.extend_from_slice(&4_u16.to_le_bytes());
        bytes.extend_from_slice(&0_i32.to_le_bytes());
        bytes.extend_from_slice(&0_u32.to_le_bytes());
        bytes.extend_from_slice(&65_535_u32.to_le_bytes());
        bytes.extend_from_slice(&1_u32.to_le_bytes());
        Self { bytes }
    }

    #[allow(clippy::too_many_arguments)]
    fn rtp(
        &mut self,
        ms: usize,
        pt: u8,
        marker: bool,
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
        payload: &[u8],
    ) {
        let mut rtp = vec![0x80, pt | if marker { 0x80 } else { 0 }];
        rtp.extend_from_slice(&sequence.to_be_bytes());
        rtp.extend_from_slice(&timestamp.to_be_bytes());
        rtp.extend_from_slice(&ssrc.to_be_bytes());
        rtp.extend_from_slice(payload);
        let udp_len = 8 + rtp.len();
        let ip_len = 20 + udp_len;
        let mut frame = vec![0_u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&[0x45, 0, (ip_len >> 8) as u8, ip_len as u8, 0, 0, 0x40, 0, 64, 17, 0, 0]);
        frame.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
        frame.extend_from_slice(&[0x1f, 0x40, 0x1f, 0x40, (udp_len >> 8) as u8, udp_len as u8, 0, 0]);
        frame.extend_from_slice(&rtp);
        let seconds = (ms / 1_000) as u32;
        let micros = ((ms % 1_000) * 1_000) as u32;
        for value in [seconds, micros, frame.len() as u32, frame.len() as u32] {
            self.bytes.extend_from_slice(&value.to_le_bytes());
        }
        self.bytes.extend_from_slice(&frame);
    }
}

/// A recording as a listener hears it.
pub struct Heard {
    /// Frames of the WAV (mono files give `[s, 0]`).
    pub frames: Vec<[i16; 2]>,
    pub channels: u16,
}

impl Heard {
    pub fn read(bytes: &[u8]) -> Self {
        let mut reader = hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap();
        let spec = reader.spec();
        assert_eq!(spec.sample_rate, 8_000);
        assert_eq!(spec.bits_per_sample, 16);
        let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        let frames = if spec.channels == 2 {
            samples.chunks_exact(2).map(|c| [c[0], c[1]]).collect()
        } else {
            samples.iter().map(|s| [*s, 0]).collect()
        };
        Self { frames, channels: spec.channels }
    }

    pub fn duration_ms(&self) -> usize {
        self.frames.len() / PER_MS
    }

    fn channel(&self, channel: usize, from_ms: usize, to_ms: usize) -> Vec<f64> {
        let to = (to_ms * PER_MS).min(self.frames.len());
        let from = (from_ms * PER_MS).min(to);
        self.frames[from..to].iter().map(|f| f64::from(f[channel])).collect()
    }

    /// Root mean square of `channel` (0 left, 1 right) between two instants.
    pub fn rms(&self, channel: usize, from_ms: usize, to_ms: usize) -> f64 {
        let samples = self.channel(channel, from_ms, to_ms);
        if samples.is_empty() {
            return 0.0;
        }
        (samples.iter().map(|s| s * s).sum::<f64>() / samples.len() as f64).sqrt()
    }

    /// The loudest 20 ms window's power at `hz` on `channel` (Goertzel), relative to that window's power.
    pub fn tone_share(&self, channel: usize, hz: f64) -> f64 {
        let samples = self.channel(channel, 0, self.duration_ms());
        let mut worst: f64 = 0.0;
        for window in samples.chunks(160) {
            let energy: f64 = window.iter().map(|s| s * s).sum();
            if energy < 1e6 {
                continue;
            }
            let coefficient = 2.0 * (std::f64::consts::TAU * hz / 8_000.0).cos();
            let (mut s1, mut s2) = (0.0, 0.0);
            for sample in window {
                let s0 = sample + coefficient * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
            worst = worst.max(power / (energy * window.len() as f64 / 2.0));
        }
        worst
    }
}
