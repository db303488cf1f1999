//! The jitter buffer on a simulated network and clock: reordering,
//! duplicates, loss, jitter from 0 to 80 ms, a delay that grows and shrinks
//! back, streams that start over, timestamps and sequence numbers that wrap.

use earshot_policy::Timestamp;
use earshot_telephony::jitter::{Arrival, FrameKind, JitterBuffer, JitterStats};
use earshot_telephony::plc::FRAME;
use earshot_telephony::sim::{Conditions, Link};

/// The sample at position `n` of the test signal: a ramp that tells every
/// sample's place, never zero.
fn signal(n: u64) -> i16 {
    1 + (n % 20_000) as i16
}

#[derive(Clone)]
struct Packet {
    arrival: Arrival,
    samples: Vec<i16>,
}

struct Run {
    frames: Vec<(FrameKind, [i16; FRAME])>,
    stats: JitterStats,
    /// Delay in ms after each pull.
    delays: Vec<f64>,
}

impl Run {
    fn count(&self, kind: FrameKind) -> usize {
        self.frames.iter().filter(|(k, _)| *k == kind).count()
    }

    /// Audio frames whose samples are not the signal's next ones after the
    /// audio frame before them: the delay was cut there (a frame left out,
    /// two breaks: the splice and the jump), or audio is wrong. The two
    /// frames after a substitution are not looked at: the start of the
    /// audio after it is cross-faded, and leaves `OUTPUT_DELAY` late.
    fn discontinuities(&self) -> usize {
        let mut last: Option<i16> = None;
        let mut breaks = 0;
        let mut after_gap = 2;
        for (kind, frame) in &self.frames {
            if *kind != FrameKind::Audio {
                last = None;
                after_gap = 2;
                continue;
            }
            if after_gap > 0 {
                after_gap -= 1;
                last = (after_gap == 0).then_some(frame[FRAME - 1]);
                continue;
            }
            if frame.windows(2).any(|w| w[1] != w[0] % 20_000 + 1) {
                breaks += 1;
            }
            if let Some(before) = last
                && frame[0] != before % 20_000 + 1
            {
                breaks += 1;
            }
            last = Some(frame[FRAME - 1]);
        }
        breaks
    }
}

struct Stream {
    ssrc: u32,
    first_sequence: u16,
    first_timestamp: u32,
    /// The receiver pulls this many ms after each send tick.
    phase_ms: i64,
    /// When the run starts, in ms, and how many 20 ms ticks it pulls
    /// before the first packet is sent.
    start_ms: i64,
    lead: u64,
}

impl Default for Stream {
    fn default() -> Self {
        Self {
            ssrc: 0x1234,
            first_sequence: 1_000,
            first_timestamp: 90_000,
            phase_ms: 7,
            start_ms: 0,
            lead: 0,
        }
    }
}

/// Ticks pulled after the last packet is sent, for what is in flight.
const DRAIN: u64 = 10;

/// Sends `seconds` of the signal, a packet per 20 ms, through `link`, and
/// pulls a frame every 20 ms; `weather(second)` may change the conditions.
fn run(
    stream: &Stream,
    seconds: u64,
    seed: u64,
    mut weather: impl FnMut(u64) -> Conditions,
    buffer: &mut JitterBuffer,
) -> Run {
    let mut link = Link::new(weather(0), seed);
    let mut frames = Vec::new();
    let mut delays = Vec::new();
    let packets = seconds * 50;
    for step in 0..stream.lead + packets + DRAIN {
        let tick_ms = stream.start_ms + i64::try_from(step).unwrap() * 20;
        let tick = step.wrapping_sub(stream.lead);
        if step >= stream.lead && tick < packets {
            if tick % 50 == 0 {
                link.set_conditions(weather(tick / 50));
            }
            let samples: Vec<i16> = (0..FRAME as u64).map(|i| signal(tick * FRAME as u64 + i)).collect();
            let arrival = Arrival {
                sequence: stream.first_sequence.wrapping_add(tick as u16),
                timestamp: stream.first_timestamp.wrapping_add((tick * FRAME as u64) as u32),
                ssrc: stream.ssrc,
            };
            link.send(Timestamp(tick_ms), Packet { arrival, samples });
        }
        // Deliver everything up to the pull, in arrival order, then pull.
        let pull_at = Timestamp(tick_ms + stream.phase_ms);
        while let Some(at) = link.poll_timeout().filter(|at| *at <= pull_at) {
            let packet = link.poll(at).unwrap();
            buffer.handle_packet(at, packet.arrival, &packet.samples);
        }
        let mut frame = [0; FRAME];
        let kind = buffer.pull(pull_at, &mut frame);
        frames.push((kind, frame));
        delays.push(buffer.stats().delay_ms);
    }
    Run { frames, stats: buffer.stats(), delays }
}

fn steady(conditions: Conditions) -> impl FnMut(u64) -> Conditions {
    move |_| conditions
}

#[test]
fn a_clean_stream_plays_whole_and_at_once() {
    let run = run(
        &Stream::default(),
        10,
        1,
        steady(Conditions { delay_ms: 40, ..Default::default() }),
        &mut JitterBuffer::new(),
    );
    assert_eq!(run.stats.lost, 0);
    assert_eq!(run.stats.late, 0);
    // Only the end of the stream, which the buffer can't tell from a gap, is concealed.
    assert!(run.count(FrameKind::Concealed) <= 3, "{:?}", run.stats);
    assert_eq!(run.count(FrameKind::Audio), 500);
    assert_eq!(run.discontinuities(), 0);
    // The buffer adds less than a frame: the network's 40 ms are not its.
    let most = run.delays.iter().copied().fold(f64::MIN, f64::max);
    assert!(most < 20.0, "{most} ms: {:?}", run.stats);
}

#[test]
fn reordered_and_duplicated_packets_play_once_in_order() {
    // 30 ms of jitter over 20 ms spacing: packets overtake each other.
    let conditions = Conditions { delay_ms: 10, jitter_ms: 30, duplicate: 0.2, ..Default::default() };
    let run = run(&Stream::default(), 20, 2, steady(conditions), &mut JitterBuffer::new());
    assert!(run.stats.duplicates > 100, "{:?}", run.stats);
    assert_eq!(run.stats.lost, 0);
    assert_eq!(run.discontinuities(), 0);
    let audio = run.count(FrameKind::Audio) as f64;
    assert!(audio >= 1_000.0 * 0.97, "{audio} audio frames of 1000: {:?}", run.stats);
}

#[test]
fn jitter_of_0_to_80_ms_and_loss_of_0_to_10_percent() {
    for jitter_ms in [0, 20, 40, 80] {
        for loss in [0.0, 0.01, 0.05, 0.10] {
            let conditions = Conditions { delay_ms: 20, jitter_ms, loss, duplicate: 0.0 };
            let run = run(
                &Stream::default(),
                30,
                jitter_ms as u64 * 100 + (loss * 100.0) as u64,
                steady(conditions),
                &mut JitterBuffer::new(),
            );
            let stats = run.stats;
            let case = format!("jitter {jitter_ms} ms, loss {loss}: {stats:?}");
            // Late packets stay rare: a few percent at most.
            assert!(stats.late as f64 <= 1_500.0 * 0.04, "{case}");
            // Lost is what the link lost, give or take the packets still in
            // flight at the end.
            let lost_share = stats.lost as f64 / 1_500.0;
            assert!((lost_share - loss).abs() < 0.03, "{case}");
            // Every frame that did not arrive in time was concealed, not silent.
            let missing = stats.lost + stats.late;
            assert!(stats.concealed_frames + 5 >= missing, "{case}");
            // The delay stays near the jitter: no more than it plus 60 ms.
            let mean = run.delays[500..].iter().sum::<f64>() / (run.delays.len() - 500) as f64;
            assert!(mean <= jitter_ms as f64 + 60.0, "mean delay {mean:.1} ms, {case}");
            // What played as audio is the signal, in order, but where a frame was left out.
            assert!(run.discontinuities() as u64 <= 2 * stats.dropped_frames, "{case}");
        }
    }
}

#[test]
fn the_delay_grows_on_jitter_and_shrinks_back() {
    let calm = Conditions { delay_ms: 20, ..Default::default() };
    let stormy = Conditions { jitter_ms: 80, ..calm };
    let run = run(
        &Stream::default(),
        50,
        7,
        |second| if (10..20).contains(&second) { stormy } else { calm },
        &mut JitterBuffer::new(),
    );
    let mean = |from: usize, to: usize| {
        run.delays[from * 50..to * 50].iter().sum::<f64>() / ((to - from) * 50) as f64
    };
    let before = mean(5, 10);
    let during = mean(15, 20);
    let after = mean(45, 50);
    assert!(before < 20.0, "before {before:.1}");
    assert!(during > 50.0, "during {during:.1}");
    assert!(after < 35.0, "after {after:.1} (during {during:.1})");
    assert!(run.stats.dropped_frames > 0, "{:?}", run.stats);
}

#[test]
fn a_new_source_or_a_jump_starts_over() {
    let mut buffer = JitterBuffer::new();
    let clean = Conditions { delay_ms: 10, ..Default::default() };
    run(&Stream::default(), 2, 1, steady(clean), &mut buffer);
    // Time goes on with a new SSRC and timestamps far away.
    let start_ms = (100 + DRAIN as i64) * 20;
    let other = Stream { ssrc: 0x9999, first_timestamp: 7, first_sequence: 3, start_ms, ..Stream::default() };
    let second = run(&other, 2, 2, steady(clean), &mut buffer);
    assert_eq!(second.stats.restarts, 1);
    assert_eq!(second.stats.late, 0);
    assert!(second.count(FrameKind::Audio) >= 95, "{:?}", second.stats);
}

#[test]
fn timestamps_and_sequence_numbers_wrap() {
    let stream = Stream { first_sequence: 65_500, first_timestamp: u32::MAX - 16_000, ..Stream::default() };
    let run = run(
        &stream,
        10,
        3,
        steady(Conditions { delay_ms: 5, jitter_ms: 30, ..Default::default() }),
        &mut JitterBuffer::new(),
    );
    assert_eq!(run.stats.restarts, 0);
    assert_eq!(run.stats.lost, 0);
    assert_eq!(run.discontinuities(), 0);
    assert!(run.count(FrameKind::Audio) >= 480, "{:?}", run.stats);
}

#[test]
fn after_a_silence_the_stream_plays_again_whatever_its_timestamps() {
    for held_timestamps in [false, true] {
        let mut buffer = JitterBuffer::new();
        let clean = Conditions { delay_ms: 10, ..Default::default() };
        run(&Stream::default(), 2, 1, steady(clean), &mut buffer);
        // Two seconds of nothing, then the same source again: with
        // timestamps that went on with time, or that stood still (some
        // phones hold them while on hold).
        let (start_ms, lead) = ((100 + DRAIN as i64) * 20, 90);
        let ticks = 100 + DRAIN + lead;
        let timestamp = if held_timestamps { 90_000 + 100 * 160 } else { 90_000 + ticks as u32 * 160 };
        let again =
            Stream { first_timestamp: timestamp, first_sequence: 1_100, start_ms, lead, ..Stream::default() };
        let second = run(&again, 2, 2, steady(clean), &mut buffer);
        assert!(second.count(FrameKind::Audio) >= 95, "held {held_timestamps}: {:?}", second.stats);
        // The gap between was silence, not hundreds of concealed frames.
        assert!(second.stats.concealed_frames < 10, "held {held_timestamps}: {:?}", second.stats);
    }
}

#[test]
fn nothing_received_is_silence() {
    let mut buffer = JitterBuffer::new();
    let mut frame = [1; FRAME];
    assert_eq!(buffer.pull(Timestamp(0), &mut frame), FrameKind::Silence);
    assert!(frame.iter().all(|s| *s == 0));
    buffer.handle_packet(Timestamp(0), Arrival { sequence: 1, timestamp: 0, ssrc: 1 }, &[]);
    assert_eq!(buffer.pull(Timestamp(20), &mut frame), FrameKind::Silence);
}

#[test]
fn a_first_frame_with_a_packet_lost_still_starts_the_stream() {
    // 10 ms packets; the second one (the first frame's second half) is lost.
    let mut buffer = JitterBuffer::new();
    let mut frame = [0; FRAME];
    let mut audio = 0;
    for n in 0..100_u32 {
        let now = Timestamp(i64::from(n) * 10);
        if n != 1 {
            let arrival = Arrival { sequence: n as u16, timestamp: n * 80, ssrc: 5 };
            buffer.handle_packet(now, arrival, &[1_000; 80]);
        }
        if n % 2 == 1 && buffer.pull(now, &mut frame) == FrameKind::Audio {
            audio += 1;
        }
    }
    assert!(audio >= 45, "{audio} audio frames: {:?}", buffer.stats());
}

#[test]
fn one_stray_packet_far_off_does_not_throw_the_stream_away() {
    let mut buffer = JitterBuffer::new();
    let mut frame = [0; FRAME];
    for n in 0..100_u32 {
        let now = Timestamp(i64::from(n) * 20);
        buffer.handle_packet(now, Arrival { sequence: n as u16, timestamp: n * 160, ssrc: 5 }, &[1_000; 160]);
        if n == 50 {
            // One packet with a timestamp a minute away.
            buffer.handle_packet(now, Arrival { sequence: 9_999, timestamp: 480_000, ssrc: 5 }, &[7; 160]);
        }
        buffer.pull(now.plus_millis(5), &mut frame);
    }
    let stats = buffer.stats();
    assert_eq!(stats.restarts, 0, "{stats:?}");
    assert!(stats.concealed_frames <= 3, "{stats:?}");
}

/// Packets sent every 20 ms that arrive `late_ms(n)` after they were sent,
/// pulled every 20 ms 7 ms after a send; what played and the delays.
fn paced(packets: u64, late_ms: impl Fn(u64) -> i64) -> Run {
    paced_speech(packets, late_ms, |_| true)
}

/// [`paced`], with packet `n` silent unless `voiced(n)`.
fn paced_speech(packets: u64, late_ms: impl Fn(u64) -> i64, voiced: impl Fn(u64) -> bool) -> Run {
    let mut buffer = JitterBuffer::new();
    let mut arrivals: Vec<(i64, u64)> = (0..packets).map(|n| (n as i64 * 20 + late_ms(n), n)).collect();
    arrivals.sort_unstable();
    let mut arrivals = arrivals.into_iter().peekable();
    let (mut frames, mut delays) = (Vec::new(), Vec::new());
    for tick in 0..packets + DRAIN {
        let pull_at = tick as i64 * 20 + 7;
        while let Some((at, n)) = arrivals.next_if(|(at, _)| *at <= pull_at) {
            let samples: Vec<i16> =
                (0..FRAME as u64).map(|i| if voiced(n) { signal(n * FRAME as u64 + i) } else { 0 }).collect();
            let arrival = Arrival { sequence: n as u16, timestamp: (n * FRAME as u64) as u32, ssrc: 9 };
            buffer.handle_packet(Timestamp(at), arrival, &samples);
        }
        let mut frame = [0; FRAME];
        frames.push((buffer.pull(Timestamp(pull_at), &mut frame), frame));
        delays.push(buffer.stats().delay_ms);
    }
    Run { frames, stats: buffer.stats(), delays }
}

#[test]
fn a_rare_long_spike_is_not_waited_for() {
    // One packet in ten seconds 200 ms late: waiting would cost every
    // other packet 200 ms; losing it costs a frame.
    let run = paced(1_500, |n| if n % 500 == 250 { 200 } else { 0 });
    assert!(run.stats.late <= 3, "{:?}", run.stats);
    let mean = run.delays[500..1_500].iter().sum::<f64>() / 1_000.0;
    assert!(mean < 20.0, "mean delay {mean:.1} ms: {:?}", run.stats);
}

#[test]
fn a_delay_grown_by_jitter_comes_back_at_a_pause_a_frame_over_target() {
    // A second of every other packet 30 ms late raises the target and
    // grows the delay; a frame (not two) over target once they have left
    // the window, it comes back at a pause (a quiet 100 ms every 3 s).
    let run =
        paced_speech(1_500, |n| if (100..150).contains(&n) && n % 2 == 0 { 30 } else { 0 }, |n| n % 150 >= 5);
    let before = run.delays[200];
    let after = run.delays[1_000..1_500].iter().copied().fold(f64::MIN, f64::max);
    assert!(before >= 25.0, "before {before:.1} ms: {:?}", run.stats);
    // Back under a frame once the spikes left the window, a frame or two
    // left out on the way, quiet ones.
    assert!(after < 20.0, "after {after:.1} ms: {:?}", run.stats);
    assert!((1..=4).contains(&run.stats.dropped_frames), "{:?}", run.stats);
}
