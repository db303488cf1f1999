//! When a phone plays the far end's frames, sans-IO.
//!
//! A phone whose sound card has a clock takes a frame from the jitter
//! buffer for each frame the card plays. Taken on the card's tick, a frame
//! that arrived just after a tick waits most of a frame for the next one:
//! a phase of 0–20 ms between the far end's clock and ours, set when the
//! call starts and kept all call long, that adds to the mouth-to-ear delay
//! (docs/PERFORMANCE.md measured it as the largest part of that delay's
//! spread between calls). [`Playout`] takes frames on a schedule of its
//! own instead: one each 20 ms, moved a little earlier while the jitter
//! buffer's delay at the take is over its target by more than
//! [`MARGIN_MS`] and a little later while it is under, so each frame is
//! played as soon as the buffer's target lets it, whatever the phase. A
//! frame that waited for a late packet (the buffer's delay grew by a
//! frame) is caught up the same way, the schedule moving earlier, and the
//! sound taken early waits in the speaker's queue, which leaves out what
//! it has to spare in the next pauses; nothing voiced is left out for it.
//! (A schedule that only moved earlier was tried: each wait for a late
//! packet then used up for good the one frame it may run ahead of the
//! clock, and `./x bench-call` measured 80–96 ms against 54–66.) Moving
//! later, the takes draw on the speaker's queue (2 ms a frame, at most
//! the two frames the clock allows), which its slack covers when the
//! target rises a little; a target that rises by more than that slack
//! while every packet still comes whole could run the queue dry for a
//! moment, which no bench run has shown yet (docs/PERFORMANCE.md).
//!
//! The card's clock still sets the pace: the schedule may run at most one
//! frame ahead of its ticks (a take then waits for the next tick), and it
//! takes at once when it is [`BEHIND`] frames behind them (a far end whose
//! clock is slower than ours; the buffer then substitutes).
//!
//! ```
//! use earshot_policy::Timestamp;
//! use earshot_telephony::jitter::{Arrival, JitterBuffer};
//! use earshot_telephony::playout::Playout;
//!
//! let (mut buffer, mut playout) = (JitterBuffer::new(), Playout::new());
//! let mut frame = [0_i16; 160];
//! let mut waited = Vec::new();
//! for now in (0..2_000).map(Timestamp) {
//!     // The far end's packets arrive 3 ms after each of our ticks.
//!     if now.0 % 20 == 3 {
//!         let n = u16::try_from(now.0 / 20).unwrap();
//!         let arrival = Arrival { sequence: n, timestamp: u32::from(n) * 160, ssrc: 7 };
//!         buffer.handle_packet(now, arrival, &[1_000; 160]);
//!     }
//!     if now.0 % 20 == 0 {
//!         playout.ticked(now, 1);
//!     }
//!     // (A whole frame may be taken early when awake anyway: here, not.)
//!     while playout.due(now, false) {
//!         let kind = buffer.pull(now, &mut frame);
//!         playout.pulled(now, kind, &buffer.stats());
//!         waited.push((now.0 - 3).rem_euclid(20));
//!     }
//! }
//! // Taken on the ticks, every frame would wait 17 ms; now, about MARGIN_MS.
//! assert!(waited[50..].iter().all(|ms| *ms <= 5), "{waited:?}");
//! ```

use crate::jitter::{FrameKind, JitterStats};
use crate::plc::OUTPUT_DELAY;
use earshot_policy::Timestamp;

/// How far over its target the jitter buffer's delay is kept at a take,
/// in ms: what a packet a little later than the target still makes.
pub const MARGIN_MS: f64 = 4.0;
/// Frames behind the clock's ticks at which a frame is taken at once.
pub const BEHIND: i64 = 2;
/// How long before its time a frame already whole is taken when the phone
/// is awake anyway (its packet came, the clock ticked), in ms: a wake-up
/// saved. The schedule, which stands for packets still on their way, does
/// not move for it; the frame only waits in the speaker's queue instead.
pub const EARLY_MS: i64 = FRAME_MS;
/// A frame's time, in ms.
const FRAME_MS: i64 = 20;
/// Most the schedule moves per frame, earlier and later, in ms.
const EARLIER_MS: i64 = 5;
const LATER_MS: i64 = 2;
/// The concealer's look-ahead, part of every frame's delay, in ms.
const OUTPUT_DELAY_MS: f64 = OUTPUT_DELAY as f64 / 8.0;

/// When to take the far end's next frame from the jitter buffer.
#[derive(Clone, Debug, Default)]
pub struct Playout {
    /// Frames the clock ticked minus frames taken: a take needs it at
    /// least 0 (so the schedule is at most a frame ahead of the clock).
    owed: i64,
    /// When the next frame is due; none before the clock's first tick.
    next: Option<Timestamp>,
}

impl Playout {
    /// A playout before the clock's first tick.
    #[must_use]
    pub const fn new() -> Self {
        Self { owed: 0, next: None }
    }

    /// The sound card's clock ticked `frames` frames at `now`.
    pub fn ticked(&mut self, now: Timestamp, frames: usize) {
        self.owed += i64::try_from(frames).unwrap_or(i64::MAX);
        self.next.get_or_insert(now);
    }

    /// Whether a frame is to be taken at `now` (any wake-up: a tick, a
    /// packet, [`Self::poll_timeout`]); `whole`: the next frame is there
    /// whole ([`crate::jitter::JitterBuffer::next_is_whole`]), then it may
    /// be taken up to [`EARLY_MS`] early.
    #[must_use]
    pub fn due(&self, now: Timestamp, whole: bool) -> bool {
        let early = if whole { EARLY_MS } else { 0 };
        self.owed >= BEHIND || (self.owed >= 0 && self.next.is_some_and(|at| at.0 <= now.0 + early))
    }

    /// When the next frame is due, if a timer is to wake for it (none
    /// while a frame ahead of the clock: its next tick decides).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.owed >= 0 { self.next } else { None }
    }

    /// A frame was taken at `now`: what it was, and the buffer's figures
    /// after it ([`crate::jitter::JitterBuffer::stats`]).
    pub fn pulled(&mut self, now: Timestamp, kind: FrameKind, stats: &JitterStats) {
        self.owed -= 1;
        // The schedule goes on from the frame's time, whether it was taken
        // early or a little late; from now when it is a frame or more behind;
        // and never from further ahead than a whole frame may be taken
        // early (taken at once, [`BEHIND`] frames behind the clock, while
        // nothing plays to move the schedule: a far end on hold, a clock a
        // little fast, the schedule would otherwise run ahead for good).
        let due = self
            .next
            .filter(|at| at.0 > now.0 - FRAME_MS)
            .map_or(now, |at| Timestamp(at.0.min(now.0 + EARLY_MS)));
        // Only a frame that played audio says where the schedule stands:
        // a substitution's delay is that of a packet not there. Its delay
        // is as it would have been at its time.
        let earlier = if kind == FrameKind::Audio {
            let at_due = stats.delay_ms + (due.0 - now.0) as f64;
            let over = at_due - stats.target_ms - OUTPUT_DELAY_MS - MARGIN_MS;
            (over.round() as i64).clamp(-LATER_MS, EARLIER_MS)
        } else {
            0
        };
        self.next = Some(Timestamp(due.0 + FRAME_MS - earlier));
    }
}

#[cfg(test)]
mod tests {
    use super::{BEHIND, EARLY_MS, MARGIN_MS, Playout};
    use crate::jitter::{Arrival, FrameKind, JitterBuffer};
    use crate::plc::FRAME;
    use crate::sim::Weather;
    use earshot_policy::Timestamp;

    /// What a simulated call's receiving side did.
    #[derive(Debug, Default)]
    struct Run {
        /// The jitter buffer's delay at each frame of audio taken, beyond
        /// the fastest packet (what the phase and the target add), in ms.
        waited: Vec<i64>,
        ticks: i64,
        taken: i64,
        concealed: u64,
        dropped: u64,
        /// Largest lead of takes over ticks, and of ticks over takes.
        ahead: i64,
        behind: i64,
        /// Most the schedule moved later than a frame at one take, in ms.
        later: i64,
    }

    /// How the simulation takes frames.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Take {
        /// On the clock's ticks, as before [`Playout`].
        OnTicks,
        /// When the playout says, its timer being the only wake-up.
        OnSchedule,
        /// Also whole frames early, as when a packet wakes the phone.
        WholeEarly,
    }

    /// Packets sent every `period_us` µs (the far end's clock), arriving
    /// `phase_ms` after our tick plus up to `jitter_ms`, over `ms`: talk
    /// with a quiet frame in five; our clock ticks every 20 ms; frames
    /// taken as `take` says.
    fn run(period_us: i64, phase_ms: i64, jitter_ms: i64, ms: i64, take: Take) -> Run {
        let on_ticks = take == Take::OnTicks;
        let (mut buffer, mut playout, mut weather) = (JitterBuffer::new(), Playout::new(), Weather::new(9));
        let mut arrivals: Vec<(i64, u16)> = (0..)
            .map(|n: i64| (n * period_us / 1_000 + phase_ms + weather.upto(jitter_ms), n))
            .take_while(|(at, _)| *at < ms)
            .map(|(at, n)| (at, u16::try_from(n).unwrap_or(u16::MAX)))
            .collect();
        arrivals.sort_unstable();
        let mut next_arrival = arrivals.iter().peekable();
        let mut frame = [0_i16; FRAME];
        let mut result = Run::default();
        for now in 0..ms {
            while let Some((_, n)) = next_arrival.next_if(|(at, _)| *at <= now) {
                let arrival = Arrival { sequence: *n, timestamp: u32::from(*n) * 160, ssrc: 3 };
                buffer.handle_packet(Timestamp(now), arrival, &[if n % 5 == 4 { 0 } else { 2_000 }; FRAME]);
            }
            let tick = now % 20 == 0;
            if tick {
                result.ticks += 1;
                playout.ticked(Timestamp(now), 1);
            }
            result.behind = result.behind.max(result.ticks - result.taken);
            let whole = take == Take::WholeEarly && buffer.next_is_whole();
            while if on_ticks {
                tick && result.taken < result.ticks
            } else {
                playout.due(Timestamp(now), whole)
            } {
                let kind = buffer.pull(Timestamp(now), &mut frame);
                let stats = buffer.stats();
                let before = playout.poll_timeout();
                playout.pulled(Timestamp(now), kind, &stats);
                result.taken += 1;
                if kind == FrameKind::Audio {
                    result.waited.push((stats.delay_ms - 3.75).round() as i64);
                }
                if let (Some(before), Some(after)) = (before, playout.poll_timeout()) {
                    result.later = result.later.max(after.0 - before.0 - 20);
                }
                result.ahead = result.ahead.max(result.taken - result.ticks);
            }
        }
        let stats = buffer.stats();
        (result.concealed, result.dropped) = (stats.concealed_frames, stats.dropped_frames);
        result
    }

    fn mean(values: &[i64]) -> f64 {
        values.iter().sum::<i64>() as f64 / values.len().max(1) as f64
    }

    #[test]
    fn frames_play_soon_after_they_arrive_whatever_the_phase() {
        for phase in [1, 7, 13, 19] {
            let (ticks, ours) = (
                run(20_000, phase, 0, 20_000, Take::OnTicks),
                run(20_000, phase, 0, 20_000, Take::OnSchedule),
            );
            // After the first second, once the schedule has moved.
            let settled = &ours.waited[50..];
            assert!(mean(settled) <= MARGIN_MS + 1.0, "phase {phase}: {:.1} ms", mean(settled));
            assert!(mean(&ticks.waited[50..]) >= (20 - phase - 1) as f64, "phase {phase}: {ticks:?}");
            assert_eq!(ours.concealed, 0, "phase {phase}");
            assert!(ours.ahead <= 1 && ours.behind <= 1, "phase {phase}: {ours:?}");
        }
    }

    #[test]
    fn jittery_packets_wait_for_the_target_and_no_longer() {
        for phase in [2, 11, 18] {
            let (ticks, ours) = (
                run(20_000, phase, 8, 60_000, Take::OnTicks),
                run(20_000, phase, 8, 60_000, Take::OnSchedule),
            );
            let (on_ticks, now) = (mean(&ticks.waited[100..]), mean(&ours.waited[100..]));
            // On the ticks, the phase decides (anywhere from the target to a
            // frame beyond it); here, the margin.
            assert!(now <= on_ticks + MARGIN_MS, "phase {phase}: {now:.1} against {on_ticks:.1} ms");
            assert!(now <= 8.0 + MARGIN_MS + 2.0, "phase {phase}: {now:.1} ms");
            // The target is the 97th percentile: a few frames substituted.
            assert!(ours.concealed <= 3 * 60, "phase {phase}: {ours:?}");
            assert!(ours.ahead <= 1 && ours.behind <= BEHIND, "phase {phase}");
        }
    }

    #[test]
    fn the_card_sets_the_pace_when_the_far_end_is_faster_or_slower() {
        // 0.5 % fast and slow: a frame every 4 s to leave out or fill in.
        for period_us in [19_900, 20_100] {
            let (ticks, ours) =
                (run(period_us, 5, 2, 60_000, Take::OnTicks), run(period_us, 5, 2, 60_000, Take::OnSchedule));
            assert!((ours.taken - ours.ticks).abs() <= BEHIND, "{period_us}: {ours:?}");
            assert!(ours.ahead <= 1 && ours.behind <= BEHIND, "{period_us}: {ours:?}");
            let (on_ticks, now) = (mean(&ticks.waited[100..]), mean(&ours.waited[100..]));
            assert!(now <= on_ticks + 2.0, "{period_us}: {now:.1} against {on_ticks:.1} ms");
            // A frame left out, or filled in, each 4 s or so.
            let (changed, on_ticks_changed) =
                (ours.dropped + ours.concealed, ticks.dropped + ticks.concealed);
            eprintln!("{period_us}: {changed} frames left out or filled in, {on_ticks_changed} on the ticks");
            assert!(changed <= on_ticks_changed + 5, "{period_us}: {changed} against {on_ticks_changed}");
        }
    }

    #[test]
    fn nothing_is_taken_before_the_clock_ticks_and_a_stalled_schedule_catches_up() {
        let mut playout = Playout::new();
        assert!(!playout.due(Timestamp(0), true));
        assert_eq!(playout.poll_timeout(), None);
        playout.ticked(Timestamp(100), 1);
        assert!(playout.due(Timestamp(100), false));
        playout.pulled(Timestamp(100), FrameKind::Silence, &crate::jitter::JitterStats::default());
        assert_eq!(playout.poll_timeout(), Some(Timestamp(120)));
        // On time, though the clock has not ticked again: a frame ahead.
        assert!(!playout.due(Timestamp(119), false));
        assert!(playout.due(Timestamp(120), false));
        playout.pulled(Timestamp(120), FrameKind::Silence, &crate::jitter::JitterStats::default());
        // A frame ahead of the clock: the next take waits for its tick.
        assert_eq!(playout.poll_timeout(), None);
        assert!(!playout.due(Timestamp(200), true));
        // Three ticks at once (the task was not run): taken at once.
        playout.ticked(Timestamp(200), 3);
        let mut taken = 0;
        while playout.due(Timestamp(200), false) {
            playout.pulled(Timestamp(200), FrameKind::Silence, &crate::jitter::JitterStats::default());
            taken += 1;
        }
        assert_eq!(taken, 1, "down to one behind, the next at its time");
        assert_eq!(playout.poll_timeout(), Some(Timestamp(220)));
    }

    #[test]
    fn a_whole_frame_taken_early_does_not_move_the_schedule() {
        let stats = crate::jitter::JitterStats { delay_ms: 3.75 + MARGIN_MS, ..Default::default() };
        let (mut early, mut on_time) = (Playout::new(), Playout::new());
        for playout in [&mut early, &mut on_time] {
            playout.ticked(Timestamp(0), 1);
            playout.pulled(Timestamp(0), FrameKind::Audio, &stats);
            playout.ticked(Timestamp(20), 1);
        }
        // Due at 20; whole at 5, and taken then, its delay 15 ms less.
        assert!(!early.due(Timestamp(5), false));
        assert!(early.due(Timestamp(5), true) && !early.due(Timestamp(20 - EARLY_MS - 1), true));
        early.pulled(
            Timestamp(5),
            FrameKind::Audio,
            &crate::jitter::JitterStats { delay_ms: stats.delay_ms - 15.0, ..stats },
        );
        on_time.pulled(Timestamp(20), FrameKind::Audio, &stats);
        assert_eq!(early.poll_timeout(), Some(Timestamp(40)));
        assert_eq!(early.poll_timeout(), on_time.poll_timeout());
    }

    #[test]
    fn whole_frames_taken_early_keep_every_promise_of_the_schedule() {
        for (phase, jitter) in [(3, 0), (17, 0), (6, 8), (15, 8)] {
            let (scheduled, early) = (
                run(20_000, phase, jitter, 30_000, Take::OnSchedule),
                run(20_000, phase, jitter, 30_000, Take::WholeEarly),
            );
            let (at_schedule, taken_early) = (mean(&scheduled.waited[50..]), mean(&early.waited[50..]));
            assert!(
                taken_early <= at_schedule + 0.5,
                "phase {phase}: {taken_early:.1} against {at_schedule:.1} ms"
            );
            assert!(early.concealed <= scheduled.concealed, "phase {phase}: {early:?}");
            assert!(early.ahead <= 1 && early.behind <= BEHIND, "phase {phase}: {early:?}");
        }
    }

    #[test]
    fn the_schedule_moves_later_only_a_little_at_a_time() {
        for (period_us, jitter) in [(20_000, 60), (20_000, 0), (19_900, 8), (20_100, 8)] {
            for take in [Take::OnSchedule, Take::WholeEarly] {
                let ours = run(period_us, 9, jitter, 30_000, take);
                assert!(ours.later <= super::LATER_MS, "{period_us} µs, {jitter} ms: {ours:?}");
            }
        }
    }

    #[test]
    fn a_clock_a_little_fast_with_nothing_to_play_does_not_carry_the_schedule_away() {
        // Our card ticks every 19.98 ms of the wall clock; the far end is on
        // hold for an hour: every frame taken is silence, each at once
        // when two behind.
        let (mut playout, mut buffer) = (Playout::new(), JitterBuffer::new());
        let mut frame = [0_i16; FRAME];
        let (mut ticks, mut furthest) = (0_i64, 0_i64);
        for now in 0..3_600_000_i64 {
            if now * 1_000 >= ticks * 19_980 {
                ticks += 1;
                playout.ticked(Timestamp(now), 1);
            }
            while playout.due(Timestamp(now), false) {
                let kind = buffer.pull(Timestamp(now), &mut frame);
                playout.pulled(Timestamp(now), kind, &buffer.stats());
            }
            if let Some(at) = playout.poll_timeout() {
                furthest = furthest.max(at.0 - now);
            }
        }
        assert!(furthest <= 2 * 20 + EARLY_MS, "the schedule ran {furthest} ms ahead");
    }
}
