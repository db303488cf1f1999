//! The recorder on a simulated clock, and crash-safe WAV files (SPEC §6.2).

use earshot_policy::{PausedAudio, PausedSpan, Timestamp};
use earshot_telephony::wav::{FLUSH_EVERY, RecordingWriter, Repair, repair};
use earshot_telephony::{Channel, Recorder, SpanSoFar};

/// 20 ms of a leg's audio whose every sample says which packet it came from.
fn packet(leg: Channel, n: u32) -> Vec<i16> {
    let mark = (n as i16 + 1) * if leg == Channel::Ours { 1 } else { -1 };
    vec![mark; 160]
}

/// Feeds `packets` 20 ms packets per leg, each arriving at `arrival(leg, n)` ms (None: lost).
fn record(
    paused_audio: PausedAudio,
    packets: u32,
    arrival: impl Fn(Channel, u32) -> Option<i64>,
    pauses: &[(i64, i64)],
) -> (Vec<[i16; 2]>, Recorder) {
    let mut events: Vec<(i64, u8, Channel, u32)> = Vec::new();
    for n in 0..packets {
        for leg in [Channel::Ours, Channel::Theirs] {
            if let Some(at) = arrival(leg, n) {
                events.push((at, 1, leg, n));
            }
        }
    }
    for (i, (pause, resume)) in pauses.iter().enumerate() {
        events.push((*pause, 0, Channel::Ours, i as u32 * 2));
        events.push((*resume, 0, Channel::Ours, i as u32 * 2 + 1));
    }
    events.sort_by_key(|(at, kind, _, n)| (*at, *kind, *n));
    let mut recorder = Recorder::new(paused_audio);
    let mut frames = Vec::new();
    // The first event starts the timeline at 0.
    recorder.poll(Timestamp(0));
    for (at, kind, leg, n) in events {
        let now = Timestamp(at);
        if kind == 0 {
            if n % 2 == 0 { recorder.pause(now) } else { recorder.resume(now) }
        } else {
            let base = if leg == Channel::Ours { 1_000u32 } else { 4_000_000_000 };
            recorder.push(leg, base.wrapping_add(n * 160), &packet(leg, n), now);
        }
        frames.extend(recorder.poll(now));
    }
    frames.extend(recorder.finish());
    (frames, recorder)
}

fn on_time(_: Channel, n: u32) -> Option<i64> {
    Some(i64::from(n) * 20)
}

#[test]
fn s6_legs_line_up_by_rtp_timestamp_left_ours_right_theirs() {
    let (frames, recorder) = record(PausedAudio::Silence, 50, on_time, &[]);
    assert_eq!(frames.len(), 50 * 160);
    for (i, frame) in frames.iter().enumerate() {
        let n = (i / 160) as i16 + 1;
        assert_eq!(*frame, [n, -n], "frame {i}");
    }
    assert_eq!(recorder.stats().frames_written, 8_000);
    assert_eq!(recorder.stats().late_samples, 0);
}

#[test]
fn s6_jitter_within_the_window_does_not_move_audio() {
    // Their packets arrive 0-150 ms late and out of order: audio stays where its timestamp says.
    let jittery = |leg, n: u32| {
        Some(i64::from(n) * 20 + if leg == Channel::Theirs { i64::from((n * 37) % 150) } else { 0 })
    };
    let (frames, recorder) = record(PausedAudio::Silence, 50, jittery, &[]);
    let (reference, _) = record(PausedAudio::Silence, 50, on_time, &[]);
    assert_eq!(frames, reference);
    assert_eq!(recorder.stats().late_samples, 0);
}

#[test]
fn s6_lost_packets_are_silence_and_keep_the_timeline() {
    let lossy = |leg, n: u32| (leg == Channel::Ours || n % 5 != 3).then_some(i64::from(n) * 20);
    let (frames, _) = record(PausedAudio::Silence, 50, lossy, &[]);
    assert_eq!(frames.len(), 8_000);
    for n in 0..50usize {
        let right = frames[n * 160][1];
        assert_eq!(right, if n % 5 == 3 { 0 } else { -(n as i16 + 1) }, "packet {n}");
        assert_eq!(frames[n * 160][0], n as i16 + 1);
    }
}

#[test]
fn s6_packets_later_than_the_window_are_dropped_and_counted() {
    let late =
        |leg, n: u32| Some(i64::from(n) * 20 + if leg == Channel::Theirs && n == 10 { 900 } else { 0 });
    let (frames, recorder) = record(PausedAudio::Silence, 100, late, &[]);
    assert_eq!(recorder.stats().late_samples, 160);
    assert_eq!(frames[10 * 160][1], 0, "never written: it came too late");
    assert_eq!(frames[11 * 160][1], -12);
}

#[test]
fn s6_2_paused_span_is_silence_to_the_sample() {
    // Pause at 100 ms, resume at 300 ms: samples 800..2400 hold nothing either side said.
    let (frames, recorder) = record(PausedAudio::Silence, 50, on_time, &[(100, 300)]);
    assert_eq!(frames.len(), 8_000, "the timeline is kept");
    for (i, frame) in frames.iter().enumerate() {
        if (800..2_400).contains(&i) {
            assert_eq!(*frame, [0, 0], "sample {i} is paused");
        } else {
            assert_ne!(*frame, [0, 0], "sample {i} is recorded");
        }
    }
    assert_eq!(recorder.paused_spans(), &[PausedSpan { start_ms: 100, end_ms: 300, cut_ms: 0 }]);
}

#[test]
fn s6_2_paused_span_is_cut_out_with_skip() {
    let (frames, recorder) = record(PausedAudio::Skip, 50, on_time, &[(100, 300)]);
    assert_eq!(frames.len(), 8_000 - 1_600);
    assert_eq!(frames[799], [5, -5]);
    assert_eq!(frames[800], [16, -16], "the first sample after the resume follows at once");
    assert_eq!(recorder.paused_spans(), &[PausedSpan { start_ms: 100, end_ms: 100, cut_ms: 200 }]);
}

#[test]
fn s6_2_audio_spoken_while_paused_but_delivered_after_the_resume_is_not_written() {
    // Their packet 7 (140-160 ms, inside the pause) arrives at 320 ms, after the resume.
    let late = |leg, n: u32| Some(if leg == Channel::Theirs && n == 7 { 320 } else { i64::from(n) * 20 });
    let (frames, _) = record(PausedAudio::Silence, 50, late, &[(100, 300)]);
    assert!(frames[1_120..1_280].iter().all(|f| *f == [0, 0]));
}

#[test]
fn s6_2_two_pauses() {
    let (frames, recorder) = record(PausedAudio::Silence, 50, on_time, &[(100, 200), (600, 1_000)]);
    assert_eq!(frames.len(), 8_000);
    assert_eq!(
        recorder.paused_spans(),
        &[
            PausedSpan { start_ms: 100, end_ms: 200, cut_ms: 0 },
            PausedSpan { start_ms: 600, end_ms: 1_000, cut_ms: 0 }
        ]
    );
    assert!(frames[4_800..].iter().all(|f| *f == [0, 0]));
    assert!(frames[1_600..4_800].iter().all(|f| *f != [0, 0]));
}

#[test]
fn s6_2_a_pause_left_open_at_hang_up_lasts_to_the_end() {
    let mut recorder = Recorder::new(PausedAudio::Silence);
    recorder.push(Channel::Ours, 0, &[5; 800], Timestamp(0));
    recorder.pause(Timestamp(50));
    assert!(recorder.is_paused());
    let frames = recorder.finish();
    assert_eq!(frames.len(), 800);
    assert!(frames[400..].iter().all(|f| *f == [0, 0]));
    assert_eq!(recorder.paused_spans(), &[PausedSpan { start_ms: 50, end_ms: 100, cut_ms: 0 }]);
}

/// What a keypad code does to the recorder, at the times the media path
/// learns of it, on the keying leg's RTP clock (ours, starting at 1_000).
#[derive(Clone, Copy)]
enum KeyStep {
    /// A `#` that may begin a code starts at RTP sample `rtp` (ms `at`).
    Hold { at: i64, rtp: u32 },
    /// `#11#` was detected; its last key's event ends at `rtp`, known at `at`.
    PauseEnds { at: i64, rtp: u32 },
    /// `#12#` was detected at `at`; its first key's event started at `rtp`.
    ResumeFrom { at: i64, rtp: u32 },
}

/// Our leg speaks continuously for `seconds` (every sample its own index
/// plus one, so any sample's place is known), packets on time; the other
/// leg is silent; `steps` happen at their times. Polls every 20 ms, as the
/// relay does.
fn keyed(paused_audio: PausedAudio, seconds: u32, steps: &[KeyStep]) -> (Vec<[i16; 2]>, Recorder) {
    let mut recorder = Recorder::new(paused_audio);
    let mut frames = Vec::new();
    for n in 0..seconds * 50 {
        let now = Timestamp(i64::from(n) * 20);
        let samples: Vec<i16> = (0..160).map(|i| ((n * 160 + i) % 30_000 + 1) as i16).collect();
        recorder.push(Channel::Ours, 1_000 + n * 160, &samples, now);
        for step in steps {
            match *step {
                KeyStep::Hold { at, rtp } if at == now.0 => {
                    recorder.hold_from(Channel::Ours, 1_000 + rtp, now);
                }
                KeyStep::PauseEnds { at, rtp } if at == now.0 => {
                    recorder.pause_at(Channel::Ours, 1_000 + rtp, now);
                    recorder.release_hold(Channel::Ours);
                }
                KeyStep::ResumeFrom { at, rtp } if at == now.0 => {
                    recorder.resume_at(Channel::Ours, 1_000 + rtp, now);
                    recorder.release_hold(Channel::Ours);
                }
                _ => {}
            }
        }
        frames.extend(recorder.poll(now));
    }
    frames.extend(recorder.finish());
    (frames, recorder)
}

/// The sample our leg said at timeline sample `i`.
fn said(i: usize) -> i16 {
    (i % 30_000 + 1) as i16
}

/// `#11#` keyed from 1.0 s (the last `#` from 1.7 s to 1.88 s: its event
/// ends at sample 15_040), `#12#` from 4.0 s (sample 32_000) and detected
/// at `resume_known` ms.
fn pause_and_resume(resume_known: i64) -> Vec<KeyStep> {
    vec![
        KeyStep::Hold { at: 1_000, rtp: 8_000 },
        KeyStep::PauseEnds { at: 1_880, rtp: 15_040 },
        KeyStep::Hold { at: 4_000, rtp: 32_000 },
        KeyStep::ResumeFrom { at: resume_known, rtp: 32_000 },
    ]
}

#[test]
fn s6_2_codes_cut_from_the_end_of_11_to_the_start_of_12_to_the_sample() {
    // Keyed quickly (#12# known 0.7 s after it began) and slowly (3 s between keys: 9.2 s after).
    for resume_known in [4_700, 13_200] {
        let (frames, recorder) = keyed(PausedAudio::Silence, 16, &pause_and_resume(resume_known));
        assert_eq!(frames.len(), 16 * 8_000, "the timeline is kept");
        for (i, frame) in frames.iter().enumerate() {
            let expected = if (15_040..32_000).contains(&i) { 0 } else { said(i) };
            assert_eq!(frame[0], expected, "sample {i}, #12# known at {resume_known} ms");
        }
        assert_eq!(recorder.paused_spans(), &[PausedSpan { start_ms: 1_880, end_ms: 4_000, cut_ms: 0 }]);
    }
}

#[test]
fn s6_2_codes_cut_exactly_with_skip_and_the_span_says_how_long() {
    for resume_known in [4_700, 13_200] {
        let (frames, recorder) = keyed(PausedAudio::Skip, 16, &pause_and_resume(resume_known));
        assert_eq!(frames.len(), 16 * 8_000 - (32_000 - 15_040));
        assert_eq!(frames[15_039][0], said(15_039), "speech up to the end of #11#");
        assert_eq!(frames[15_040][0], said(32_000), "then speech from the start of #12#");
        assert!(
            frames.iter().enumerate().all(|(i, f)| f[0] == said(if i < 15_040 { i } else { i + 16_960 }))
        );
        assert_eq!(recorder.paused_spans(), &[PausedSpan { start_ms: 1_880, end_ms: 1_880, cut_ms: 2_120 }]);
        let journal = recorder.spans_so_far();
        assert_eq!(journal, [SpanSoFar { start_ms: 1_880, end_ms: Some(1_880), cut_ms: 2_120 }]);
    }
}

#[test]
fn s6_2_keys_that_were_no_code_hold_nothing_back_for_good() {
    // A `#` that turned out not to be a code: held, then released with nothing cut.
    let steps = [KeyStep::Hold { at: 1_000, rtp: 8_000 }, KeyStep::ResumeFrom { at: 1_400, rtp: 8_000 }];
    let (frames, recorder) = keyed(PausedAudio::Silence, 3, &steps);
    assert!(frames.iter().enumerate().all(|(i, f)| f[0] == said(i)));
    assert!(recorder.paused_spans().is_empty());
}

#[test]
fn s6_2_a_recording_started_by_12_begins_at_its_first_key() {
    // Recording was off: the media path makes a recorder when a `#` that may
    // begin a code comes (1.0 s, sample 8_000), holding from it; #12# is
    // known at 1.7 s and starts the recording at its first key.
    let mut recorder = Recorder::new(PausedAudio::Silence);
    let mut frames = Vec::new();
    for n in 50..150_u32 {
        let now = Timestamp(i64::from(n) * 20);
        let samples: Vec<i16> = (0..160).map(|i| ((n * 160 + i) % 30_000 + 1) as i16).collect();
        // The key's packet came a little before the audio of the same moment.
        if n == 50 {
            recorder.hold_from(Channel::Ours, 1_000 + 8_000, now);
        }
        recorder.push(Channel::Ours, 1_000 + n * 160, &samples, now);
        if n == 85 {
            recorder.start_at(Channel::Ours, 1_000 + 8_000, now);
            recorder.release_hold(Channel::Ours);
        }
        frames.extend(recorder.poll(now));
    }
    frames.extend(recorder.finish());
    assert_eq!(frames.len(), 100 * 160);
    assert!(frames.iter().enumerate().all(|(i, f)| f[0] == said(i + 8_000)));
    assert!(recorder.paused_spans().is_empty());
}

#[test]
fn s6_2_each_party_keys_hold_their_own_channel_in_an_internal_call() {
    // Both users key: theirs turns out no code while ours is still held.
    let mut recorder = Recorder::new(PausedAudio::Silence);
    let mut frames = Vec::new();
    for n in 0..150_u32 {
        let now = Timestamp(i64::from(n) * 20);
        let samples: Vec<i16> = (0..160).map(|i| ((n * 160 + i) % 30_000 + 1) as i16).collect();
        recorder.push(Channel::Ours, 1_000 + n * 160, &samples, now);
        recorder.push(Channel::Theirs, 7_000 + n * 160, &samples, now);
        match n {
            50 => recorder.hold_from(Channel::Ours, 1_000 + 8_000, now),
            55 => recorder.hold_from(Channel::Theirs, 7_000 + 8_800, now),
            60 => recorder.release_hold(Channel::Theirs),
            // Ours was #12# while paused... here: a pause from its end at sample 12_000.
            90 => {
                recorder.pause_at(Channel::Ours, 1_000 + 12_000, now);
                recorder.release_hold(Channel::Ours);
            }
            _ => {}
        }
        // Nothing from ours's hold on is written while it holds.
        let written: usize = frames.len();
        if (52..90).contains(&n) {
            assert!(written <= 8_000, "written to {written} at tick {n} while ours holds from 8_000");
        }
        frames.extend(recorder.poll(now));
    }
    frames.extend(recorder.finish());
    assert!(frames[..12_000].iter().enumerate().all(|(i, f)| f[0] == said(i)));
    assert!(frames[12_000..].iter().all(|f| *f == [0, 0]));
}

#[test]
fn s6_a_new_stream_re_anchors() {
    let mut recorder = Recorder::new(PausedAudio::Silence);
    recorder.push(Channel::Ours, 1_000, &[1; 160], Timestamp(0));
    // After a re-INVITE the far end starts a new stream with a new timestamp base.
    recorder.push(Channel::Ours, 900_000, &[2; 160], Timestamp(20));
    let frames = recorder.finish();
    assert_eq!(recorder.stats().reanchors, 1);
    assert_eq!(frames.len(), 320);
    assert_eq!(frames[160], [2, 0]);
}

#[test]
fn s6_a_crash_leaves_a_playable_wav_and_repair_recovers_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("call.wav");
    let mut writer = RecordingWriter::create(&path, 2).unwrap();
    let frames: Vec<[i16; 2]> = (0..20_050).map(|i| [(i % 1000) as i16, -((i % 1000) as i16)]).collect();
    writer.write_frames(&frames).unwrap();
    // The process dies here: no finalize, buffered samples lost.
    std::mem::forget(writer);
    let reader = hound::WavReader::open(&path).expect("playable after a crash");
    // Up to the last flush (every 100 ms): the 50 frames after it are lost.
    assert_eq!(u64::from(reader.duration()), 20_050 / FLUSH_EVERY * FLUSH_EVERY);
    drop(reader);
    // Bytes past the last header update, and half a frame: repair counts the whole frames.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[1, 0, 2, 0, 3, 0, 4, 0, 9, 9]);
    std::fs::write(&path, &bytes).unwrap();
    let outcome = repair(&path).unwrap();
    assert!(matches!(outcome, Repair::Repaired { .. }), "{outcome:?}");
    let reader = hound::WavReader::open(&path).unwrap();
    let extra = (bytes.len() as u64 - 44) / 4;
    assert_eq!(u64::from(reader.duration()), extra);
    let samples: Vec<i16> = reader.into_samples().map(Result::unwrap).collect();
    assert_eq!(&samples[samples.len() - 4..], &[1, 2, 3, 4]);
    assert_eq!(repair(&path).unwrap(), Repair::AlreadyValid);
    std::fs::write(dir.path().join("junk.wav"), b"not a wav at all").unwrap();
    assert!(repair(&dir.path().join("junk.wav")).is_err());
}

#[test]
fn s6_a_finished_wav_is_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("call.wav");
    let mut writer = RecordingWriter::create(&path, 2).unwrap();
    writer.write_frames(&vec![[7, -7]; 12_345]).unwrap();
    assert_eq!(writer.frames(), 12_345);
    writer.finish().unwrap();
    let reader = hound::WavReader::open(&path).unwrap();
    assert_eq!((reader.duration(), reader.spec().channels, reader.spec().sample_rate), (12_345, 2, 8_000));
    assert_eq!(repair(&path).unwrap(), Repair::AlreadyValid);
}

#[test]
fn s6_2_spans_so_far_match_the_file_before_they_are_written() {
    for (paused_audio, expected) in [
        (PausedAudio::Silence, [(100, 200), (600, 1_000)]),
        // Cut out: the second pause starts 100 ms earlier in the file.
        (PausedAudio::Skip, [(100, 100), (500, 500)]),
    ] {
        let (_, recorder) = record(paused_audio, 50, on_time, &[(100, 200), (600, 1_000)]);
        let so_far: Vec<(u64, u64)> =
            recorder.spans_so_far().iter().map(|s| (s.start_ms, s.end_ms.unwrap())).collect();
        assert_eq!(so_far, expected, "{paused_audio:?}");
        let written: Vec<(u64, u64)> =
            recorder.paused_spans().iter().map(|s| (s.start_ms, s.end_ms)).collect();
        assert_eq!(so_far, written, "what a journal keeps is what the file got");
    }
    // Still paused, nothing written yet: the span is open.
    let mut recorder = Recorder::new(PausedAudio::Silence);
    recorder.push(Channel::Ours, 0, &[5; 800], Timestamp(0));
    recorder.pause(Timestamp(50));
    assert_eq!(recorder.spans_so_far(), [SpanSoFar { start_ms: 50, end_ms: None, cut_ms: 0 }]);
    assert!(recorder.paused_spans().is_empty());
}
