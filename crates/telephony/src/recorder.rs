//! The call recorder: a sans-IO tap on the media path (STYLE.md: recording is
//! a tap, not something signalling code does).
//!
//! The media relay feeds it each leg's decoded samples with the packet's RTP
//! timestamp and the time it arrived; pauses and resumes come from the
//! keypad flow. It returns stereo frames (left: our user, right: the other
//! party) on one timeline that starts when the first packet arrives:
//!
//! - a leg's first packet anchors its RTP clock to the arrival time; later
//!   packets sit where their timestamp says, so jitter doesn't move audio;
//!   a jump of over a second (a new stream after a re-INVITE, say) re-anchors;
//! - what never arrived is silence; a packet later than the jitter window
//!   (already written) is dropped and counted;
//! - a paused span holds no audio: silence with `paused_audio = silence`, cut
//!   out with `skip`. Pauses act on the timeline, not on arrival, so audio
//!   spoken after the pause but delivered later is not written either —
//!   to the sample (§6.2);
//! - keypad codes cut exactly where SPEC §6.2 draws the line: from the end
//!   of the `#11#` event to the start of the `#12#` event, on the keying
//!   leg's RTP clock ([`Recorder::pause_at`], [`Recorder::resume_at`]).
//!   We only know keys are a code once the last one arrives, so while keys
//!   may be one, nothing from the first key on is handed out
//!   ([`Recorder::hold_from`]): it waits in memory, never on disk, until
//!   the keys turn out to be a code or not ([`Recorder::release_hold`]).

use earshot_policy::{PausedAudio, PausedSpan, Timestamp};
use std::collections::VecDeque;

/// Samples per millisecond at 8 kHz.
pub const SAMPLES_PER_MS: i64 = 8;
/// How long audio waits for late packets before it is written, in ms.
const JITTER_WINDOW_MS: i64 = 200;
/// The longest audio is held in memory for keys that may be a code, in ms:
/// four keys up to 3 s apart, the last held down up to 5 s, and more.
const MAX_HOLD_MS: i64 = 16_000;
/// A leg whose timestamps stray this far from arrival is re-anchored, in samples.
const REANCHOR_SAMPLES: i64 = 8_000;

/// Which side of the call a sample is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// Our user: the left channel.
    Ours = 0,
    /// The other party: the right channel.
    Theirs = 1,
}

#[derive(Clone, Copy, Debug, Default)]
struct Anchor {
    rtp: u32,
    position: i64,
}

/// A paused span as the file will hold it, in ms from the file's start;
/// `end_ms` is `None` while recording is still paused. Crash journals keep
/// it as JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpanSoFar {
    /// Where the span starts.
    pub start_ms: u64,
    /// Where it ends, once recording resumed.
    pub end_ms: Option<u64>,
    /// With `skip`, how long the cut was, once recording resumed.
    #[serde(default)]
    pub cut_ms: u64,
}

/// What the recorder saw, for metrics and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Samples written (per channel, the file's length in frames).
    pub frames_written: u64,
    /// Samples that arrived after their place was written, and were dropped.
    pub late_samples: u64,
    /// Times a leg's RTP clock was re-anchored.
    pub reanchors: u64,
}

/// A call's recorder. Sans-IO: time is passed in, frames are handed out.
#[derive(Clone, Debug)]
pub struct Recorder {
    paused_audio: PausedAudio,
    start: Option<Timestamp>,
    anchors: [Option<Anchor>; 2],
    /// Samples from timeline position `written` on, per channel.
    pending: [VecDeque<i16>; 2],
    /// Timeline position (in samples) up to which frames have been handed out.
    written: i64,
    /// Paused spans on the timeline, in samples; the last may be open.
    paused: Vec<(i64, Option<i64>)>,
    /// Paused spans as they are in the file, in ms.
    spans: Vec<PausedSpan>,
    /// Frames handed out so far (the file's length).
    frames_out: u64,
    /// The frame being handed out is inside a paused span.
    in_span: bool,
    /// Samples cut out of the current span (`skip`).
    cut_samples: u64,
    /// Per channel: nothing from this timeline position on is handed out
    /// yet (keys keyed on that channel that may be a code began there), and
    /// when that began.
    hold: [Option<(i64, Timestamp)>; 2],
    stats: RecorderStats,
}

impl Recorder {
    /// A recorder writing paused spans as `paused_audio` says.
    #[must_use]
    pub fn new(paused_audio: PausedAudio) -> Self {
        Self {
            paused_audio,
            start: None,
            anchors: [None, None],
            pending: [VecDeque::new(), VecDeque::new()],
            written: 0,
            paused: Vec::new(),
            spans: Vec::new(),
            frames_out: 0,
            in_span: false,
            cut_samples: 0,
            hold: [None, None],
            stats: RecorderStats::default(),
        }
    }

    fn position_at(&mut self, now: Timestamp) -> i64 {
        let start = *self.start.get_or_insert(now);
        now.millis_since(start).max(0) * SAMPLES_PER_MS
    }

    /// A leg's samples: `samples` start at RTP timestamp `rtp` (8 kHz units), arriving at `now`.
    pub fn push(&mut self, channel: Channel, rtp: u32, samples: &[i16], now: Timestamp) {
        let arrival = self.position_at(now);
        let leg = channel as usize;
        let anchor = *self.anchors[leg].get_or_insert(Anchor { rtp, position: arrival });
        let mut position = anchor.position + i64::from(rtp.wrapping_sub(anchor.rtp) as i32);
        if (position - arrival).abs() > REANCHOR_SAMPLES {
            self.anchors[leg] = Some(Anchor { rtp, position: arrival });
            self.stats.reanchors += 1;
            position = arrival;
        }
        // Samples before what is already written came too late.
        let late = usize::try_from(self.written - position).unwrap_or(0).min(samples.len());
        self.stats.late_samples += late as u64;
        let samples = &samples[late..];
        if samples.is_empty() {
            return;
        }
        let start = usize::try_from(position + late as i64 - self.written).unwrap_or(0);
        let buffer = &mut self.pending[leg];
        if buffer.len() < start {
            buffer.resize(start, 0);
        }
        // Overwrite what overlaps, append the rest.
        let overlap = buffer.len().saturating_sub(start).min(samples.len());
        for (slot, sample) in buffer.range_mut(start..start + overlap).zip(samples) {
            *slot = *sample;
        }
        buffer.extend(&samples[overlap..]);
    }

    /// Recording pauses at `now`.
    pub fn pause(&mut self, now: Timestamp) {
        let position = self.position_at(now);
        self.pause_from(position);
    }

    /// Recording resumes at `now`.
    pub fn resume(&mut self, now: Timestamp) {
        let position = self.position_at(now);
        self.resume_from(position);
    }

    /// Recording pauses from RTP timestamp `rtp` of `channel`'s stream (the
    /// end of the `#11#` event that paused it), on that stream's timeline.
    pub fn pause_at(&mut self, channel: Channel, rtp: u32, now: Timestamp) {
        let position = self.position_of(channel, rtp, now);
        self.pause_from(position);
    }

    /// Recording resumes from RTP timestamp `rtp` of `channel`'s stream
    /// (the start of the `#12#` event that resumed it). What was said from
    /// there is still held ([`Self::hold_from`]), so it is written.
    pub fn resume_at(&mut self, channel: Channel, rtp: u32, now: Timestamp) {
        let position = self.position_of(channel, rtp, now);
        self.resume_from(position);
    }

    /// The recording begins at RTP timestamp `rtp` of `channel`'s stream
    /// (a `#12#` started a recording that was off: the file begins at the
    /// start of its event); what came before is dropped.
    pub fn start_at(&mut self, channel: Channel, rtp: u32, now: Timestamp) {
        let position = self.position_of(channel, rtp, now).max(self.written);
        let drop = usize::try_from(position - self.written).unwrap_or(0);
        for pending in &mut self.pending {
            pending.drain(..drop.min(pending.len()));
        }
        self.written = position;
        // Pauses before the new start are gone; one across it begins there.
        self.paused.retain(|(_, end)| end.is_none_or(|end| end > position));
        for (start, _) in &mut self.paused {
            *start = (*start).max(position);
        }
    }

    /// Keys that may be a code began at RTP timestamp `rtp` of `channel`'s
    /// stream: nothing from there on is handed out until
    /// [`Self::release_hold`] (at most [`MAX_HOLD_MS`]), so the code, once
    /// known, can still cut exactly where it began.
    pub fn hold_from(&mut self, channel: Channel, rtp: u32, now: Timestamp) {
        let position = self.position_of(channel, rtp, now).max(self.written);
        self.hold[channel as usize] = Some((position, now));
    }

    /// The keys held for on `channel` turned out to be a code or not: audio
    /// is handed out again as it comes (unless the other channel holds).
    pub fn release_hold(&mut self, channel: Channel) {
        self.hold[channel as usize] = None;
    }

    /// Whether keys on either channel may be a code now.
    #[must_use]
    pub fn is_holding(&self) -> bool {
        self.hold.iter().any(Option::is_some)
    }

    fn pause_from(&mut self, position: i64) {
        let position = position.max(self.written);
        if self.paused.last().is_none_or(|(_, end)| end.is_some()) {
            self.paused.push((position, None));
        }
    }

    fn resume_from(&mut self, position: i64) {
        if let Some((start, end)) = self.paused.last_mut()
            && end.is_none()
        {
            *end = Some(position.max(*start));
        }
    }

    /// The timeline position of RTP timestamp `rtp` on `channel`'s stream;
    /// before the stream's first packet, the position of `now`.
    fn position_of(&mut self, channel: Channel, rtp: u32, now: Timestamp) -> i64 {
        match self.anchors[channel as usize] {
            Some(anchor) => anchor.position + i64::from(rtp.wrapping_sub(anchor.rtp) as i32),
            None => self.position_at(now),
        }
    }

    /// Whether recording is paused now.
    #[must_use]
    pub fn is_paused(&self) -> bool {
        self.paused.last().is_some_and(|(_, end)| end.is_none())
    }

    /// Frames whose jitter window has passed at `now`, in order, up to a
    /// hold for keys that may be a code.
    pub fn poll(&mut self, now: Timestamp) -> Vec<[i16; 2]> {
        let mut until = self.position_at(now) - JITTER_WINDOW_MS * SAMPLES_PER_MS;
        for hold in &mut self.hold {
            if hold.is_some_and(|(_, since)| now.millis_since(since) > MAX_HOLD_MS) {
                *hold = None;
            }
            if let Some((held, _)) = *hold {
                until = until.min(held);
            }
        }
        self.drain_until(until)
    }

    /// Everything still held, at the end of the call.
    pub fn finish(&mut self) -> Vec<[i16; 2]> {
        self.hold = [None, None];
        let until = self.written + self.pending.iter().map(VecDeque::len).max().unwrap_or(0) as i64;
        let frames = self.drain_until(until);
        if let Some((start, end)) = self.paused.last_mut()
            && end.is_none()
        {
            *end = Some(until.max(*start));
        }
        frames
    }

    /// Paused spans as they are in the file (ms): the silent spans, or with
    /// `skip` the points where a span was cut out (start = end).
    #[must_use]
    pub fn paused_spans(&self) -> &[PausedSpan] {
        &self.spans
    }

    /// Every pause so far as the file will hold it, including what is not
    /// written yet: for a crash journal, which must keep what the recorder
    /// decided when the recorder itself is lost. With `skip` each span is the
    /// point where it is cut out (start = end).
    #[must_use]
    pub fn spans_so_far(&self) -> Vec<SpanSoFar> {
        let mut cut = 0;
        let ms = |samples: i64| u64::try_from(samples / SAMPLES_PER_MS).unwrap_or(0);
        self.paused
            .iter()
            .map(|&(start, end)| {
                let at = start - cut;
                match self.paused_audio {
                    PausedAudio::Silence => SpanSoFar { start_ms: ms(at), end_ms: end.map(ms), cut_ms: 0 },
                    PausedAudio::Skip => {
                        let length = end.map_or(0, |end| end - start);
                        cut += length;
                        SpanSoFar { start_ms: ms(at), end_ms: Some(ms(at)), cut_ms: ms(length) }
                    }
                }
            })
            .collect()
    }

    /// What the recorder saw.
    #[must_use]
    pub const fn stats(&self) -> RecorderStats {
        self.stats
    }

    fn paused_at(&self, position: i64) -> bool {
        self.paused.iter().any(|(start, end)| position >= *start && end.is_none_or(|end| position < end))
    }

    fn drain_until(&mut self, until: i64) -> Vec<[i16; 2]> {
        let mut frames = Vec::with_capacity(usize::try_from(until - self.written).unwrap_or(0));
        // The common case, no pause anywhere in the stretch: move it whole.
        let paused_here =
            self.paused.iter().any(|(start, end)| *start < until && end.is_none_or(|end| end > self.written));
        if !paused_here && until > self.written {
            let count = usize::try_from(until - self.written).unwrap_or(0);
            let [left, right] = &mut self.pending;
            let (l, r) = (count.min(left.len()), count.min(right.len()));
            // Gaps at the end of a channel stay silence.
            frames.resize(count, [0, 0]);
            for (frame, sample) in frames.iter_mut().zip(left.drain(..l)) {
                frame[0] = sample;
            }
            for (frame, sample) in frames.iter_mut().zip(right.drain(..r)) {
                frame[1] = sample;
            }
            self.in_span = false;
            self.written = until;
            self.frames_out += count as u64;
            self.stats.frames_written = self.frames_out;
            return frames;
        }
        while self.written < until {
            let left = self.pending[0].pop_front().unwrap_or(0);
            let right = self.pending[1].pop_front().unwrap_or(0);
            let position = self.written;
            self.written += 1;
            if self.paused_at(position) {
                if !self.in_span {
                    let at = self.frames_out / SAMPLES_PER_MS as u64;
                    self.spans.push(PausedSpan { start_ms: at, end_ms: at, cut_ms: 0 });
                    self.cut_samples = 0;
                    self.in_span = true;
                }
                if self.paused_audio == PausedAudio::Skip {
                    self.cut_samples += 1;
                    if let Some(span) = self.spans.last_mut() {
                        span.cut_ms = self.cut_samples / SAMPLES_PER_MS as u64;
                    }
                    continue;
                }
                frames.push([0, 0]);
                self.frames_out += 1;
                if let Some(span) = self.spans.last_mut() {
                    span.end_ms = self.frames_out / SAMPLES_PER_MS as u64;
                }
            } else {
                self.in_span = false;
                frames.push([left, right]);
                self.frames_out += 1;
            }
        }
        self.stats.frames_written = self.frames_out;
        frames
    }
}
