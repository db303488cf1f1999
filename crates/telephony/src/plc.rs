//! Packet-loss concealment for 8 kHz speech: what plays in place of a
//! frame that never came, sans-IO.
//!
//! Pitch-based waveform substitution, as ITU-T G.711 Appendix I describes
//! it: find the pitch period of the last audio played, and go on repeating
//! its last period (then, as the gap lasts, its last two and three periods,
//! so a long gap does not buzz), fading out from 10 ms into the gap until it
//! is silent at 60 ms. Audio leaves [`OUTPUT_DELAY`] late, so that the last
//! quarter period before a gap can still be cross-faded into the
//! substitution; when audio comes back, the first samples of the real frame
//! are cross-faded with the substitution's continuation. So neither end of
//! a gap clicks. Written here because no crate does it: `neteq` fills
//! gaps with near-silent noise and `rustrtc` does not conceal at all (see
//! [`crate::jitter`]).

/// Samples in one 20 ms frame.
pub const FRAME: usize = 160;
/// How much later audio leaves than it comes in, in samples (3.75 ms: a
/// quarter of the longest pitch period).
pub const OUTPUT_DELAY: usize = 30;
/// Audio kept to find the pitch in, in samples (48.75 ms).
const HISTORY: usize = 390;
/// Shortest and longest pitch period searched, in samples (200 Hz, 66 Hz).
const PITCH_MIN: usize = 40;
const PITCH_MAX: usize = 120;
/// The stretch of recent audio compared against the past to find the pitch.
const CORRELATION_WINDOW: usize = 160;
/// Samples per 10 ms: the unit of the fading and of the period count.
const TEN_MS: usize = 80;
/// After this many samples of a gap (60 ms) the substitution is silence.
const SILENT_AFTER: usize = 480;

/// Conceals lost frames of one stream.
#[derive(Clone, Debug)]
pub struct Concealer {
    /// The last [`HISTORY`] samples played, oldest first.
    history: Vec<i16>,
    /// Samples concealed so far in the current gap (0: no gap).
    erased: usize,
    /// The pitch period found at the start of the gap.
    pitch: usize,
    /// The last three periods of audio before the gap.
    periods: Vec<f32>,
    /// Where the substitution reads next, counted back from the end of
    /// `periods` within the periods in use.
    position: usize,
    /// How many periods the substitution cycles through (1–3).
    in_use: usize,
    /// Samples left of the cross-fade from the span of periods used
    /// before, which was this long.
    blend: usize,
    blend_span: usize,
    /// The last [`OUTPUT_DELAY`] samples, not handed out yet.
    held: [i16; OUTPUT_DELAY],
}

impl Default for Concealer {
    fn default() -> Self {
        Self::new()
    }
}

impl Concealer {
    /// A concealer that has heard nothing yet (it conceals with silence).
    #[must_use]
    pub fn new() -> Self {
        Self {
            history: vec![0; HISTORY],
            erased: 0,
            pitch: PITCH_MAX,
            periods: Vec::new(),
            position: 0,
            in_use: 1,
            blend: 0,
            blend_span: 0,
            held: [0; OUTPUT_DELAY],
        }
    }

    /// Whether the last frame handed out was a substitution.
    #[must_use]
    pub fn in_gap(&self) -> bool {
        self.erased > 0
    }

    /// A frame that arrived (`frame.len()` ≥ [`OUTPUT_DELAY`]): handed on
    /// [`OUTPUT_DELAY`] late, and after a gap its start cross-faded from
    /// the substitution.
    pub fn good_frame(&mut self, frame: &mut [i16]) {
        if self.erased > 0 {
            // A quarter period, and 4 ms more for every 10 ms the gap lasted
            // beyond its first, 10 ms at most (as G.711 Appendix I).
            let extra = (self.erased / TEN_MS).saturating_sub(1) * 32;
            let length = (self.pitch / 4 + extra).min(TEN_MS).min(frame.len());
            let mut tail = vec![0.0; length];
            self.synthesize(&mut tail);
            for (i, (sample, synthetic)) in frame.iter_mut().zip(&tail).enumerate() {
                let weight = (i + 1) as f32 / (length + 1) as f32;
                *sample = to_sample(f32::from(*sample) * weight + synthetic * (1.0 - weight));
            }
            self.erased = 0;
        }
        self.remember(frame);
        self.hand_on(frame);
    }

    /// A frame that did not arrive: its substitution, into `out`
    /// (`out.len()` ≥ [`OUTPUT_DELAY`]).
    pub fn conceal(&mut self, out: &mut [i16]) {
        if self.erased == 0 {
            self.start_gap();
        }
        let mut synthetic = vec![0.0; out.len()];
        self.synthesize(&mut synthetic);
        for (sample, value) in out.iter_mut().zip(&synthetic) {
            *sample = to_sample(*value);
        }
        self.remember(out);
        self.hand_on(out);
    }

    /// Hands `frame` on [`OUTPUT_DELAY`] late: the samples held from
    /// before first, and keeps its last ones.
    fn hand_on(&mut self, frame: &mut [i16]) {
        let split = frame.len() - OUTPUT_DELAY;
        let mut next = [0; OUTPUT_DELAY];
        next.copy_from_slice(&frame[split..]);
        frame.copy_within(..split, OUTPUT_DELAY);
        frame[..OUTPUT_DELAY].copy_from_slice(&self.held);
        self.held = next;
    }

    /// Forgets what was heard (a new stream begins).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    fn start_gap(&mut self) {
        self.pitch = find_pitch(&self.history);
        let keep = 3 * self.pitch;
        self.periods = self.history[HISTORY - keep..].iter().map(|&s| f32::from(s)).collect();
        self.position = 0;
        self.in_use = 1;
        self.blend = 0;
        // The last quarter period, still held, fades into the quarter
        // period before the one the substitution repeats, so the repeat
        // starts where the signal is.
        let quarter = self.pitch / 4;
        for i in 0..quarter {
            let weight = (i + 1) as f32 / (quarter + 1) as f32;
            let held = &mut self.held[OUTPUT_DELAY - quarter + i];
            let before = f32::from(self.history[HISTORY - self.pitch - quarter + i]);
            *held = to_sample(f32::from(*held) * (1.0 - weight) + before * weight);
        }
    }

    /// The next `out.len()` samples of the substitution, faded as the gap
    /// goes on; advances the gap.
    fn synthesize(&mut self, out: &mut [f32]) {
        let quarter = self.pitch / 4;
        for value in out.iter_mut() {
            let in_use = (1 + self.erased / TEN_MS).min(3);
            if in_use != self.in_use {
                // More periods from here on, at the same phase (one period
                // further back), cross-faded from the fewer.
                self.blend_span = self.in_use * self.pitch;
                self.blend = quarter;
                self.in_use = in_use;
            }
            let span = self.in_use * self.pitch;
            let mut sample = self.read(span, self.position % span);
            if self.blend > 0 {
                let weight = (quarter - self.blend + 1) as f32 / (quarter + 1) as f32;
                let before = self.read(self.blend_span, self.position % self.blend_span);
                sample = sample * weight + before * (1.0 - weight);
                self.blend -= 1;
            }
            self.position = (self.position + 1) % span;
            *value = sample * gain(self.erased);
            self.erased += 1;
        }
    }

    /// The sample at `position` of the last `span` samples before the gap.
    fn read(&self, span: usize, position: usize) -> f32 {
        self.periods.get(self.periods.len() - span + position).copied().unwrap_or(0.0)
    }

    fn remember(&mut self, frame: &[i16]) {
        if frame.len() >= HISTORY {
            self.history.copy_from_slice(&frame[frame.len() - HISTORY..]);
        } else {
            self.history.drain(..frame.len());
            self.history.extend_from_slice(frame);
        }
    }
}

/// The fade of a substitution `erased` samples into its gap: full for the
/// first 10 ms, then 20 % less every 10 ms, silent from 60 ms.
fn gain(erased: usize) -> f32 {
    if erased < TEN_MS {
        1.0
    } else if erased >= SILENT_AFTER {
        0.0
    } else {
        1.0 - 0.2 * (erased - TEN_MS) as f32 / TEN_MS as f32
    }
}

/// The pitch period of `history`: the lag, 40–120 samples, at which the
/// last 20 ms best match the audio before them (normalized correlation).
fn find_pitch(history: &[i16]) -> usize {
    let end = history.len();
    let window = &history[end - CORRELATION_WINDOW..];
    let mut best = (PITCH_MAX, f64::MIN);
    for lag in PITCH_MIN..=PITCH_MAX {
        let past = &history[end - CORRELATION_WINDOW - lag..end - lag];
        let (mut cross, mut energy) = (0.0_f64, 0.0_f64);
        for (a, b) in window.iter().zip(past) {
            cross += f64::from(*a) * f64::from(*b);
            energy += f64::from(*b) * f64::from(*b);
        }
        let score = if energy > 0.0 { cross / energy.sqrt() } else { 0.0 };
        if score > best.1 {
            best = (lag, score);
        }
    }
    best.0
}

fn to_sample(value: f32) -> i16 {
    value.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(period: usize, start: usize, count: usize) -> Vec<i16> {
        (start..start + count)
            .map(|n| (8_000.0 * (2.0 * std::f32::consts::PI * n as f32 / period as f32).sin()) as i16)
            .collect()
    }

    #[test]
    fn the_pitch_of_a_periodic_signal_is_its_period() {
        for period in [45, 64, 80, 100, 118] {
            assert_eq!(find_pitch(&tone(period, 0, HISTORY)), period, "period {period}");
        }
    }

    fn heard_tone(period: usize, frames: usize) -> Concealer {
        let mut concealer = Concealer::new();
        for frame in 0..frames {
            let mut audio = tone(period, frame * FRAME, FRAME);
            concealer.good_frame(&mut audio);
        }
        concealer
    }

    #[test]
    fn a_lost_frame_of_a_tone_is_the_tone_and_the_next_frame_plays_as_it_came() {
        let period = 80;
        let mut concealer = heard_tone(period, 5);
        let mut out = [0_i16; FRAME];
        concealer.conceal(&mut out);
        // Audio leaves OUTPUT_DELAY late; the first 10 ms go on with the tone where it left off.
        let expected = tone(period, 5 * FRAME - OUTPUT_DELAY, FRAME);
        for (got, want) in out.iter().zip(&expected).take(TEN_MS) {
            assert!((i32::from(*got) - i32::from(*want)).abs() < 300, "{got} vs {want}");
        }
        assert!(concealer.in_gap());
        let mut back = tone(period, 6 * FRAME, FRAME);
        let clean = back.clone();
        concealer.good_frame(&mut back);
        assert!(!concealer.in_gap());
        // Cross-faded at the start (the substitution is in phase, so close), then as it came.
        let delayed = tone(period, 6 * FRAME - OUTPUT_DELAY, FRAME);
        for (got, want) in back.iter().zip(&delayed).take(FRAME / 2) {
            assert!((i32::from(*got) - i32::from(*want)).abs() < 2_000, "{got} vs {want}");
        }
        assert_eq!(back[100..], clean[100 - OUTPUT_DELAY..FRAME - OUTPUT_DELAY]);
    }

    #[test]
    fn a_long_gap_fades_to_silence() {
        let mut concealer = heard_tone(64, 5);
        let mut out = [0_i16; FRAME];
        concealer.conceal(&mut out);
        let first: i64 = out.iter().map(|s| i64::from(s.unsigned_abs())).sum();
        concealer.conceal(&mut out);
        let second: i64 = out.iter().map(|s| i64::from(s.unsigned_abs())).sum();
        assert!(second < first, "fading: {second} after {first}");
        for _ in 0..3 {
            concealer.conceal(&mut out);
        }
        // 60 ms in and after: silence.
        assert!(out.iter().all(|s| *s == 0), "{:?}", &out[..8]);
    }

    #[test]
    fn nothing_heard_conceals_as_silence() {
        let mut concealer = Concealer::new();
        let mut out = [7_i16; FRAME];
        concealer.conceal(&mut out);
        assert!(out.iter().all(|s| *s == 0));
    }
}
