//! Playing speech faster or slower without changing its pitch: a
//! time stretch by WSOLA (waveform-similarity overlap-add, Verhelst and
//! Roelands 1993), sans-IO: source frames in, frames out.
//!
//! Output is built from 30 ms Hann-windowed pieces of the source laid half
//! a piece apart. Each piece is taken near where the speed says the source
//! should be by now, at the offset (within ±10 ms) whose waveform best
//! continues the piece before, so the overlap adds up without the
//! phasiness or clicks of cutting at fixed places. Both channels are cut at
//! the same places (chosen on their mix), so the caller's and the agent's
//! sides stay aligned.
//!
//! At speed 1, until the speed first changes, frames pass through
//! untouched: normal playback is the recording sample for sample.
//!
//! Written here rather than taken from a crate: the Rust crates for time
//! stretching wrap C++ libraries (signalsmith-stretch, Rubber Band, SoundTouch)
//! tuned for music at 44.1 kHz and up, where 8 kHz telephone speech needs
//! nothing more than this, in about a hundred lines.

use std::collections::VecDeque;

type Frame = [f32; 2];

/// The time stretch; see the module doc.
#[derive(Clone, Debug)]
pub struct Stretcher {
    /// Frames per piece (30 ms).
    window: usize,
    /// Output frames per piece: half a piece.
    hop: usize,
    /// How far (frames) a piece may move from its place to fit (10 ms).
    tolerance: usize,
    /// The Hann window, `window` long.
    shape: Vec<f32>,
    speed: f64,
    /// Frames pass through untouched (speed 1 since the last reset).
    bypass: bool,
    /// Source frames held; `input[0]` is source frame `input_start`.
    input: VecDeque<Frame>,
    input_start: u64,
    /// The source has ended at `input_start + input.len()`.
    ended: bool,
    /// Where in the source the next piece should be taken from.
    ideal: f64,
    /// Where the piece after the last one would start if the source were
    /// played on unchanged: what the next piece should resemble. `None`
    /// before the first piece.
    natural: Option<u64>,
    /// The second half of the last piece, windowed, to add to the next
    /// (empty before the first piece).
    tail: Vec<Frame>,
    /// Frames ready to go out.
    ready: VecDeque<Frame>,
    /// Source position of the next frame out (for the player's position).
    position: f64,
}

impl Stretcher {
    /// A stretch for audio at `rate` Hz, at speed 1, from source frame 0.
    #[must_use]
    pub fn new(rate: u32) -> Self {
        let window = ((rate as usize * 30 / 1_000) & !1).max(16);
        let hop = window / 2;
        let shape = (0..window)
            .map(|n| {
                let phase = 2.0 * std::f64::consts::PI * n as f64 / window as f64;
                (0.5 - 0.5 * phase.cos()) as f32
            })
            .collect();
        Self {
            window,
            hop,
            tolerance: (rate as usize / 100).max(1),
            shape,
            speed: 1.0,
            bypass: true,
            input: VecDeque::new(),
            input_start: 0,
            ended: false,
            ideal: 0.0,
            natural: None,
            tail: Vec::new(),
            ready: VecDeque::new(),
            position: 0.0,
        }
    }

    /// The speed (source seconds per second played), from now on.
    pub fn set_speed(&mut self, speed: f64) {
        if (speed - self.speed).abs() > f64::EPSILON {
            if self.bypass {
                // Start stretching from the next source frame.
                self.bypass = false;
                self.ideal = self.position;
                self.input_start = self.position as u64;
            }
            self.speed = speed;
        }
    }

    /// The speed.
    #[must_use]
    pub const fn speed(&self) -> f64 {
        self.speed
    }

    /// Forgets everything held: the next frame comes from source frame
    /// `at` (after a seek). The speed stays; at speed 1 frames pass through again.
    pub fn reset(&mut self, at: u64) {
        self.bypass = (self.speed - 1.0).abs() <= f64::EPSILON;
        self.input.clear();
        self.input_start = at;
        self.ended = false;
        self.ideal = at as f64;
        self.natural = None;
        self.tail.clear();
        self.ready.clear();
        self.position = at as f64;
    }

    /// The source position of the next frame out, in frames.
    #[must_use]
    pub const fn position(&self) -> f64 {
        self.position
    }

    /// The next frame out, reading from `source` as needed (None: the end).
    pub fn next(&mut self, source: &mut impl FnMut() -> Option<Frame>) -> Option<Frame> {
        if self.bypass {
            let frame = source()?;
            self.position += 1.0;
            return Some(frame);
        }
        if self.ready.is_empty() && !self.piece(source) {
            return None;
        }
        let frame = self.ready.pop_front()?;
        self.position += self.speed;
        Some(frame)
    }

    /// Frame `at` of the source (silence past the end or before the start).
    fn at(&self, at: u64) -> Frame {
        at.checked_sub(self.input_start)
            .and_then(|index| usize::try_from(index).ok())
            .and_then(|index| self.input.get(index).copied())
            .unwrap_or([0.0; 2])
    }

    /// Reads the source until frame `end` (exclusive) is held or it ends.
    fn fill_to(&mut self, end: u64, source: &mut impl FnMut() -> Option<Frame>) {
        while !self.ended && self.input_start + (self.input.len() as u64) < end {
            match source() {
                Some(frame) => self.input.push_back(frame),
                None => self.ended = true,
            }
        }
    }

    /// Lays the next piece; false when the source is used up.
    fn piece(&mut self, source: &mut impl FnMut() -> Option<Frame>) -> bool {
        let ideal = self.ideal.round().max(0.0) as u64;
        let low = ideal.saturating_sub(self.tolerance as u64).max(self.input_start);
        let high = ideal + self.tolerance as u64;
        let natural = *self.natural.get_or_insert(ideal);
        self.fill_to(high.max(natural) + self.window as u64, source);
        let end = self.input_start + self.input.len() as u64;
        if self.ended && ideal >= end {
            // The source is used up: what is left of the last piece goes out.
            if self.natural.take().is_some() && self.tail.iter().any(|f| *f != [0.0; 2]) {
                self.ready.extend(self.tail.drain(..));
                return true;
            }
            return false;
        }
        if self.tail.is_empty() {
            // The first piece after a (re)start: as if the piece before it
            // had been taken where this one naturally starts, so the output
            // begins at full level, seamlessly.
            self.tail = (0..self.hop).map(|n| self.scaled(natural + n as u64, self.hop + n)).collect();
        }
        let start = self.best(low, high, natural);
        for n in 0..self.hop {
            let frame = self.scaled(start + n as u64, n);
            let tail = self.tail[n];
            self.ready.push_back([tail[0] + frame[0], tail[1] + frame[1]]);
        }
        for n in 0..self.hop {
            self.tail[n] = self.scaled(start + (self.hop + n) as u64, self.hop + n);
        }
        self.natural = Some(start + self.hop as u64);
        self.ideal += self.hop as f64 * self.speed;
        // Drop what no later piece can reach.
        let keep_from =
            (self.ideal as u64).saturating_sub(self.tolerance as u64).min(start + self.hop as u64);
        while self.input_start < keep_from && self.input.pop_front().is_some() {
            self.input_start += 1;
        }
        true
    }

    /// Source frame `at`, weighted by the window at `n`.
    fn scaled(&self, at: u64, n: usize) -> Frame {
        let frame = self.at(at);
        [frame[0] * self.shape[n], frame[1] * self.shape[n]]
    }

    /// The start in `low..=high` whose first half-piece best matches the
    /// half-piece at `natural` (normalised cross-correlation of the mix);
    /// `natural` itself wins ties.
    fn best(&self, low: u64, high: u64, natural: u64) -> u64 {
        let mut best = (natural.clamp(low, high), f32::MIN);
        for candidate in low..=high {
            let score = self.similarity(candidate, natural);
            if score > best.1 || (score == best.1 && candidate == natural) {
                best = (candidate, score);
            }
        }
        best.0
    }

    fn similarity(&self, candidate: u64, natural: u64) -> f32 {
        let (mut dot, mut energy) = (0.0_f32, 0.0_f32);
        for n in 0..self.hop as u64 {
            let a = self.at(candidate + n);
            let b = self.at(natural + n);
            let a = a[0] + a[1];
            dot += a * (b[0] + b[1]);
            energy += a * a;
        }
        if energy <= f32::EPSILON { 0.0 } else { dot / energy.sqrt() }
    }
}

#[cfg(test)]
mod tests {
    use super::Stretcher;

    const RATE: u32 = 8_000;

    fn sine(frames: usize, hz: f32) -> Vec<[f32; 2]> {
        (0..frames)
            .map(|n| {
                let value = (2.0 * std::f32::consts::PI * hz * n as f32 / RATE as f32).sin() * 0.5;
                [value, 0.0]
            })
            .collect()
    }

    fn stretch(input: &[[f32; 2]], speed: f64) -> Vec<[f32; 2]> {
        let mut stretcher = Stretcher::new(RATE);
        stretcher.set_speed(speed);
        let mut source = input.iter().copied();
        let mut out = Vec::new();
        while let Some(frame) = stretcher.next(&mut || source.next()) {
            out.push(frame);
        }
        out
    }

    /// Hz, by counting upward zero crossings over the middle of `frames`.
    fn pitch(frames: &[[f32; 2]]) -> f32 {
        let middle = &frames[frames.len() / 4..frames.len() * 3 / 4];
        let crossings = middle.windows(2).filter(|w| w[0][0] < 0.0 && w[1][0] >= 0.0).count();
        crossings as f32 * RATE as f32 / middle.len() as f32
    }

    #[test]
    fn at_speed_one_the_recording_passes_sample_for_sample() {
        let input: Vec<[f32; 2]> = (0..1_000).map(|n| [n as f32, -(n as f32)]).collect();
        assert_eq!(stretch(&input, 1.0), input);
    }

    #[test]
    fn faster_and_slower_keep_the_pitch() {
        let input = sine(RATE as usize * 2, 440.0);
        for speed in [0.5, 0.75, 1.5, 2.0] {
            let out = stretch(&input, speed);
            let expected = input.len() as f64 / speed;
            assert!(
                (out.len() as f64 - expected).abs() < 400.0,
                "{speed}×: {} frames, expected about {expected}",
                out.len()
            );
            let hz = pitch(&out);
            assert!((hz - 440.0).abs() < 10.0, "{speed}×: {hz} Hz");
        }
    }

    #[test]
    fn the_overlap_adds_up_to_the_original_level() {
        let input = sine(RATE as usize, 300.0);
        let out = stretch(&input, 1.5);
        let rms = |frames: &[[f32; 2]]| {
            let middle = &frames[frames.len() / 4..frames.len() * 3 / 4];
            (middle.iter().map(|f| f[0] * f[0]).sum::<f32>() / middle.len() as f32).sqrt()
        };
        let (was, now) = (rms(&input), rms(&out));
        assert!((now / was - 1.0).abs() < 0.05, "level {was} became {now}");
    }

    #[test]
    fn channels_stay_apart() {
        let out = stretch(&sine(RATE as usize, 440.0), 2.0);
        assert!(out.iter().all(|frame| frame[1] == 0.0), "nothing leaks into the silent channel");
    }

    #[test]
    fn a_change_of_speed_mid_play_continues_from_where_it_was() {
        let input: Vec<[f32; 2]> = sine(RATE as usize * 2, 440.0);
        let mut stretcher = Stretcher::new(RATE);
        let mut source = input.iter().copied();
        let mut out = Vec::new();
        for _ in 0..4_000 {
            out.extend(stretcher.next(&mut || source.next()));
        }
        assert_eq!(out[..], input[..4_000], "speed 1: untouched");
        assert!((stretcher.position() - 4_000.0).abs() < 1e-9);
        stretcher.set_speed(2.0);
        while let Some(frame) = stretcher.next(&mut || source.next()) {
            out.push(frame);
        }
        assert!(out.len().abs_diff(4_000 + 6_000) < 400, "{} frames", out.len());
        assert!((pitch(&out[4_000..]) - 440.0).abs() < 10.0);
        assert!(stretcher.position() >= 15_900.0, "{}", stretcher.position());
    }

    #[test]
    fn a_reset_starts_again_from_the_new_place() {
        let input: Vec<[f32; 2]> = (0..2_000).map(|n| [n as f32, 0.0]).collect();
        let mut stretcher = Stretcher::new(RATE);
        stretcher.set_speed(1.5);
        let mut source = input.iter().copied();
        for _ in 0..100 {
            stretcher.next(&mut || source.next());
        }
        let mut source = input[1_000..].iter().copied();
        stretcher.set_speed(1.0);
        stretcher.reset(1_000);
        assert_eq!(stretcher.next(&mut || source.next()), Some([1_000.0, 0.0]), "speed 1: untouched again");
        assert!((stretcher.position() - 1_001.0).abs() < 1e-9);
    }
}
