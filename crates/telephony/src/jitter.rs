//! The receiving side of an endpoint's audio: an adaptive jitter buffer
//! with packet-loss concealment, sans-IO.
//!
//! Packets go in as they arrive ([`JitterBuffer::handle_packet`], decoded
//! samples with their RTP sequence number and timestamp, plus `now`); the
//! sound card's clock takes 20 ms frames out ([`JitterBuffer::pull`]). In
//! between the buffer:
//!
//! - puts samples where their RTP timestamp says (reordering is free;
//!   duplicates and packets later than their place are dropped and counted);
//! - keeps the least delay that keeps late packets rare. Each packet's
//!   *relative delay* (arrival in samples minus its timestamp) goes into a
//!   window of the last [`WINDOW`] packets; the target delay is the
//!   [`TARGET_QUANTILE`] quantile of how far they came after the fastest.
//!   (Waiting for rarer spikes, as the E-model would rate best, was tried:
//!   each spike then costs a wait and, later, a frame left out to catch up,
//!   and PESQ of a call fell from 4.1 to 3.1–3.9 in `./x bench-call`
//!   against concealing the few late frames.)
//!   The delay grows when a frame is due and not there yet while the delay
//!   is under target (the frame is waited for, and a substitution plays:
//!   *expand*), and shrinks back when it is over target, by leaving out a
//!   frame, cross-faded (*accelerate*): a quiet one when two frames over,
//!   or after a second a frame over; any one when five over;
//! - conceals a frame that is due, missing, and can no longer come in time
//!   with [`crate::plc::Concealer`] (pitch-based waveform substitution,
//!   fading over longer gaps) instead of playing silence;
//! - starts over when the stream does (another SSRC, or a timestamp jump of
//!   over two seconds, as after a re-INVITE);
//! - counts what it did ([`JitterStats`]), with loss as RFC 3550 counts it
//!   (expected by sequence number minus received) and its interarrival
//!   jitter, for the call-quality figures.
//!
//! Why our own: `neteq` 0.9 (a NetEQ port, "early preview") reads the
//! process clock in its packet and delay paths instead of taking `now`, so
//! it cannot run on a simulated clock; it conceals only underruns, with
//! near-silent noise, and skips a single lost frame; it orders timestamps
//! without wrap-around. `rustrtc` 0.4's buffer only reorders, with fixed
//! delays and a global clock, and no concealment. What we took from them is
//! ideas: a quantile of recent delays as the target (NetEQ), and restarting
//! on a new SSRC or a large timestamp jump (rustrtc).
//!
//! ```
//! use earshot_policy::Timestamp;
//! use earshot_telephony::jitter::{Arrival, FrameKind, JitterBuffer};
//!
//! let mut buffer = JitterBuffer::new();
//! let mut frame = [0_i16; 160];
//! for n in 0..50_u16 {
//!     let now = Timestamp(i64::from(n) * 20);
//!     // Every packet but the 10th arrives, on time.
//!     if n != 10 {
//!         let arrival = Arrival { sequence: n, timestamp: u32::from(n) * 160, ssrc: 7 };
//!         buffer.handle_packet(now, arrival, &[1_000; 160]);
//!     }
//!     buffer.pull(now, &mut frame);
//! }
//! let stats = buffer.stats();
//! assert_eq!(stats.lost, 1);
//! assert_eq!(stats.concealed_frames, 1);
//! ```

use crate::plc::{Concealer, FRAME};
use earshot_policy::Timestamp;
use std::collections::VecDeque;

/// Packets whose relative delays make the target.
pub const WINDOW: usize = 500;
/// Samples per millisecond.
const PER_MS: i64 = 8;
/// Frame length in samples, signed.
const FRAME_I: i64 = FRAME as i64;
/// The share of recent packets the target delay lets arrive in time.
pub const TARGET_QUANTILE: f64 = 0.97;
/// A timestamp this far from where the stream is starts it over, in samples.
const RESTART_JUMP: i64 = 16_000;
/// Over target by this much, a quiet frame is left out (40 ms).
const SHRINK_QUIET: i64 = 2 * FRAME_I;
/// Over target by this much, any frame is left out (100 ms).
const SHRINK_ANY: i64 = 5 * FRAME_I;
/// Pulls in a row a frame or more over target after which a quiet frame
/// is left out (1 s: the delay has settled high, not a burst's phase).
const SETTLED_OVER: u32 = 50;
/// The most the buffer holds ahead of playout, in samples (2 s).
const MAX_AHEAD: i64 = 16_000;
/// Frames without audio after which the stream counts as silent (60 ms:
/// the substitution has faded out).
const SILENT_GAP: u64 = 3;
/// A frame quieter than this share of the recent level is "quiet".
const QUIET_SHARE: f64 = 0.1;
/// Samples cross-faded where a frame was left out.
const SPLICE: usize = 40;

/// What a received packet says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// RTP sequence number.
    pub sequence: u16,
    /// RTP timestamp of its first sample (8 kHz).
    pub timestamp: u32,
    /// RTP synchronisation source.
    pub ssrc: u32,
}

/// What a pulled frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// Audio as it arrived.
    Audio,
    /// A substitution for audio that did not arrive (or not yet).
    Concealed,
    /// Nothing to play: before the first packet, or long after the last.
    Silence,
}

/// What the buffer did, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct JitterStats {
    /// Packets taken in time (not late, not duplicates).
    pub received: u64,
    /// Packets expected by sequence number and never received (RFC 3550
    /// §6.4.1; a late packet was received, so it is not lost).
    pub lost: u64,
    /// Packets that came after their place had been played, and were dropped.
    pub late: u64,
    /// Packets received twice.
    pub duplicates: u64,
    /// Frames pulled.
    pub frames: u64,
    /// Frames that were substitutions.
    pub concealed_frames: u64,
    /// Substitutions played while waiting for late audio (the delay grew).
    pub expanded_frames: u64,
    /// Frames left out to bring the delay down.
    pub dropped_frames: u64,
    /// Times the stream started over.
    pub restarts: u64,
    /// The delay the buffer added to the frame last pulled, beyond the
    /// fastest recent packet, in ms, with the concealer's 3.75 ms
    /// (negative: it was not there yet).
    pub delay_ms: f64,
    /// The delay it aims at, in ms.
    pub target_ms: f64,
    /// RFC 3550 interarrival jitter, in ms.
    pub jitter_ms: f64,
}

/// One stream's jitter buffer. Sans-IO: time is passed in.
#[derive(Clone, Debug)]
pub struct JitterBuffer {
    /// The stream: its SSRC, and the extended timestamp of the next sample to play.
    ssrc: Option<u32>,
    playout: i64,
    /// Whether the first frame has played.
    playing: bool,
    /// Samples from `playout` on, and which of them arrived.
    samples: VecDeque<i16>,
    arrived: VecDeque<bool>,
    /// The newest extended timestamp seen, to extend the next one.
    newest: i64,
    /// Recent relative delays (arrival in samples − timestamp), oldest first.
    delays: VecDeque<i64>,
    /// The target delay beyond the fastest recent packet, in samples.
    target: i64,
    /// Packets since the target was last worked out.
    since_target: usize,
    /// Sequence numbers: the first, and the highest (extended) received.
    first_sequence: Option<i64>,
    highest_sequence: i64,
    /// RFC 3550 jitter, in samples, and the last transit time.
    jitter: f64,
    last_transit: Option<i64>,
    /// The mean absolute level of recent audio frames.
    level: f64,
    /// Frames in a row that were not audio.
    gap: u64,
    /// Pulls in a row that found the delay a frame or more over target.
    frames_over: u32,
    /// The timestamp of a packet that said the stream started over,
    /// waiting for a second to agree.
    restart_candidate: Option<u32>,
    /// Packets received (late ones too, duplicates not) and lost, before
    /// the stream last started over.
    packets: u64,
    lost_before: u64,
    concealer: Concealer,
    stats: JitterStats,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl JitterBuffer {
    /// A buffer that has seen nothing.
    #[must_use]
    pub fn new() -> Self {
        Self {
            ssrc: None,
            playout: 0,
            playing: false,
            samples: VecDeque::new(),
            arrived: VecDeque::new(),
            newest: 0,
            delays: VecDeque::with_capacity(WINDOW),
            target: 0,
            since_target: 0,
            first_sequence: None,
            highest_sequence: 0,
            jitter: 0.0,
            last_transit: None,
            level: 0.0,
            gap: 0,
            frames_over: 0,
            restart_candidate: None,
            packets: 0,
            lost_before: 0,
            concealer: Concealer::new(),
            stats: JitterStats::default(),
        }
    }

    /// A packet's decoded `samples`, arriving at `now`.
    pub fn handle_packet(&mut self, now: Timestamp, arrival: Arrival, samples: &[i16]) {
        if samples.is_empty() {
            return;
        }
        let mut timestamp = self.extend(arrival.timestamp);
        let length = samples.len() as i64;
        let offset = timestamp - self.playout;
        // A new stream: another source at once; the same source after a
        // jump (a re-INVITE) or late after a silence (a phone that held its
        // timestamps while on hold) once a second packet agrees, so one
        // stray packet does not throw the stream away.
        let silent = self.gap >= SILENT_GAP && !self.arrived.iter().any(|a| *a);
        let jumped = !(-RESTART_JUMP..=MAX_AHEAD).contains(&offset) || (offset + length <= 0 && silent);
        if self.ssrc != Some(arrival.ssrc) {
            self.restart(arrival.ssrc, arrival.timestamp);
            timestamp = self.playout;
        } else if jumped {
            let agrees = self
                .restart_candidate
                .is_some_and(|earlier| arrival.timestamp.wrapping_sub(earlier) < RESTART_JUMP as u32);
            if !agrees {
                self.restart_candidate = Some(arrival.timestamp);
                return;
            }
            self.restart(arrival.ssrc, arrival.timestamp);
            timestamp = self.playout;
        }
        self.restart_candidate = None;
        self.newest = self.newest.max(timestamp);
        self.count_sequence(arrival.sequence);
        self.learn_delay(now.0 * PER_MS - timestamp);

        let offset = timestamp - self.playout;
        if offset + length <= 0 {
            self.packets += 1;
            self.stats.late += 1;
            return;
        }
        let skip = usize::try_from(-offset).unwrap_or(0);
        let start = usize::try_from(offset).unwrap_or(0);
        let end = start + samples.len() - skip;
        if start < self.arrived.len() && self.arrived.range(start..end.min(self.arrived.len())).any(|a| *a) {
            self.stats.duplicates += 1;
            return;
        }
        self.packets += 1;
        self.stats.received += 1;
        if self.samples.len() < end {
            self.samples.resize(end, 0);
            self.arrived.resize(end, false);
        }
        for (i, sample) in samples[skip..].iter().enumerate() {
            self.samples[start + i] = *sample;
            self.arrived[start + i] = true;
        }
    }

    /// The next 20 ms to play, at `now`, into `out`; what it is.
    pub fn pull(&mut self, now: Timestamp, out: &mut [i16; FRAME]) -> FrameKind {
        self.stats.frames += 1;
        // The concealer's look-ahead delays every frame a little more.
        let delay = self.delay(now) + crate::plc::OUTPUT_DELAY as i64;
        self.stats.delay_ms = if self.ssrc.is_some() { delay as f64 / PER_MS as f64 } else { 0.0 };
        let kind = self.next_frame(now, out);
        match kind {
            FrameKind::Audio => self.gap = 0,
            FrameKind::Concealed => {
                self.stats.concealed_frames += 1;
                self.gap += 1;
                self.frames_over = 0;
            }
            FrameKind::Silence => self.gap += 1,
        }
        self.stats.target_ms = self.target as f64 / PER_MS as f64;
        kind
    }

    /// What the buffer did so far.
    #[must_use]
    pub fn stats(&self) -> JitterStats {
        let expected = self.first_sequence.map_or(0, |first| self.highest_sequence - first + 1);
        let lost = u64::try_from(expected).unwrap_or(0).saturating_sub(self.packets);
        JitterStats { jitter_ms: self.jitter / PER_MS as f64, lost: self.lost_before + lost, ..self.stats }
    }

    fn next_frame(&mut self, now: Timestamp, out: &mut [i16; FRAME]) -> FrameKind {
        if self.ssrc.is_none() {
            out.fill(0);
            return FrameKind::Silence;
        }
        let delay = self.delay(now);
        if !self.playing {
            // Wait for the first frame to be there and the delay to reach
            // the target; a first frame that stays incomplete (a packet of
            // it lost) starts once a frame more has passed, concealed.
            let ready = (self.frame_complete() && delay >= self.target)
                || (self.arrived.iter().any(|a| *a) && delay >= self.target + FRAME_I);
            if !ready {
                out.fill(0);
                return FrameKind::Silence;
            }
            self.playing = true;
        }
        if self.frame_complete() {
            // Over target by much, at once; by a frame, once it has stayed
            // so for a second, at the next pause (a voiced frame left out
            // is heard, and costs the speech's quality).
            let over = delay - self.target;
            self.frames_over = if over >= FRAME_I { self.frames_over + 1 } else { 0 };
            let quiet = self.frame_is_quiet();
            let leave_out =
                over >= SHRINK_ANY || (quiet && (over >= SHRINK_QUIET || self.frames_over >= SETTLED_OVER));
            if leave_out && self.drop_frame(out) {
                self.stats.dropped_frames += 1;
                self.frames_over = 0;
                return FrameKind::Audio;
            }
            self.take_frame(out);
            self.concealer.good_frame(out);
            return FrameKind::Audio;
        }
        if self.arrived.iter().take(FRAME).any(|a| *a) && delay >= self.target {
            // Part of the frame came (packets of another length, one of
            // them lost): the whole frame is substituted, the rest plays on.
            self.concealer.conceal(out);
            self.advance(FRAME);
            return FrameKind::Concealed;
        }
        if self.gap >= SILENT_GAP && !self.arrived.iter().any(|a| *a) {
            // Long after the last packet (hold, the far end quiet): silence,
            // time goes on.
            out.fill(0);
            self.advance(FRAME);
            return FrameKind::Silence;
        }
        self.concealer.conceal(out);
        if delay < self.target {
            // Late, and the delay is under target: wait for it (expand).
            self.stats.expanded_frames += 1;
        } else {
            // It can no longer come in time: lost, or too late.
            self.advance(FRAME);
        }
        FrameKind::Concealed
    }

    /// How far playout is behind the fastest recent packet, in samples:
    /// negative when the frame due now would come from a packet that
    /// cannot have arrived yet.
    fn delay(&self, now: Timestamp) -> i64 {
        let fastest = self.delays.iter().copied().min().unwrap_or(0);
        now.0 * PER_MS - self.playout - fastest
    }

    /// Samples held from the playout point on (what has arrived, and the gaps between).
    #[must_use]
    pub fn held_samples(&self) -> usize {
        self.samples.len()
    }

    /// Whether the frame due next has all arrived and playing has begun:
    /// a pull now plays it as it came.
    #[must_use]
    pub fn next_is_whole(&self) -> bool {
        self.playing && self.frame_complete()
    }

    fn frame_complete(&self) -> bool {
        self.arrived.len() >= FRAME && self.arrived.iter().take(FRAME).all(|a| *a)
    }

    fn frame_is_quiet(&self) -> bool {
        let sum: f64 = self.samples.iter().take(FRAME).map(|s| f64::from(s.unsigned_abs())).sum();
        sum / (FRAME as f64) < self.level * QUIET_SHARE + 1.0
    }

    /// Leaves the frame due out, splicing the next one on; false when the
    /// next one is not complete (then nothing is left out).
    fn drop_frame(&mut self, out: &mut [i16; FRAME]) -> bool {
        let next_complete =
            self.arrived.len() >= 2 * FRAME && self.arrived.iter().skip(FRAME).take(FRAME).all(|a| *a);
        if !next_complete {
            return false;
        }
        let dropped: Vec<i16> = self.samples.iter().take(SPLICE).copied().collect();
        self.advance(FRAME);
        self.take_frame(out);
        for (i, (sample, old)) in out.iter_mut().zip(&dropped).enumerate() {
            let weight = (i + 1) as f32 / (SPLICE + 1) as f32;
            *sample = (f32::from(*sample) * weight + f32::from(*old) * (1.0 - weight)) as i16;
        }
        self.concealer.good_frame(out);
        true
    }

    fn take_frame(&mut self, out: &mut [i16; FRAME]) {
        for (slot, sample) in out.iter_mut().zip(self.samples.drain(..FRAME)) {
            *slot = sample;
        }
        self.arrived.drain(..FRAME);
        self.playout += FRAME_I;
        let level = out.iter().map(|s| f64::from(s.unsigned_abs())).sum::<f64>() / FRAME as f64;
        self.level += (level - self.level) * 0.05;
    }

    fn advance(&mut self, count: usize) {
        let held = count.min(self.samples.len());
        self.samples.drain(..held);
        self.arrived.drain(..held);
        self.playout += count as i64;
    }

    /// The RTP timestamp `timestamp` on the extended (unwrapped) timeline.
    fn extend(&self, timestamp: u32) -> i64 {
        let reference = self.newest;
        let low = reference as u32;
        reference + i64::from(timestamp.wrapping_sub(low) as i32)
    }

    fn restart(&mut self, ssrc: u32, timestamp: u32) {
        let same_source = self.ssrc == Some(ssrc);
        if self.ssrc.is_some() {
            self.stats.restarts += 1;
            self.lost_before = self.stats().lost;
        }
        // The new stream's timestamps start a fresh extended timeline.
        let timestamp = i64::from(timestamp);
        self.ssrc = Some(ssrc);
        self.playout = timestamp;
        self.newest = timestamp;
        self.playing = false;
        self.samples.clear();
        self.arrived.clear();
        self.delays.clear();
        // The same source on a new clock keeps the delay it needed.
        if !same_source {
            self.target = 0;
        }
        self.since_target = 0;
        self.first_sequence = None;
        self.packets = 0;
        self.last_transit = None;
        self.gap = 0;
        self.frames_over = 0;
        self.concealer.reset();
    }

    fn count_sequence(&mut self, sequence: u16) {
        let Some(first) = self.first_sequence else {
            self.first_sequence = Some(i64::from(sequence));
            self.highest_sequence = i64::from(sequence);
            return;
        };
        let extended =
            self.highest_sequence + i64::from(sequence.wrapping_sub(self.highest_sequence as u16) as i16);
        self.highest_sequence = self.highest_sequence.max(extended);
        // A packet sent before the first one received (reordered at the start).
        self.first_sequence = Some(first.min(extended));
    }

    fn learn_delay(&mut self, transit: i64) {
        if let Some(last) = self.last_transit {
            let difference = (transit - last).abs() as f64;
            self.jitter += (difference - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
        if self.delays.len() == WINDOW {
            self.delays.pop_front();
        }
        self.delays.push_back(transit);
        self.since_target += 1;
        // A packet later than the target raises it at once; otherwise the
        // target is worked out every 10 packets (it only moves slowly).
        let fastest = self.delays.iter().copied().min().unwrap_or(transit);
        if transit - fastest > self.target || self.since_target >= 10 {
            self.since_target = 0;
            let mut sorted: Vec<i64> = self.delays.iter().map(|d| d - fastest).collect();
            sorted.sort_unstable();
            self.target = sorted[((sorted.len() - 1) as f64 * TARGET_QUANTILE).round() as usize];
        }
    }
}
