//! RFC 4733 events to key presses to keypad codes (SPEC §6.2, D9), on a simulated clock.

use earshot_policy::{Key, KeypadCode, Timestamp};
use earshot_telephony::dtmf::{DtmfReceiver, EventError, KeyEdge, KeypadLeg, LegAction, TelephoneEvent};

fn event(key: char, end: bool, duration: u16) -> TelephoneEvent {
    TelephoneEvent { key: Key::from_char(key).unwrap(), end, volume: 10, duration }
}

/// The packets a phone sends for one press: start, two continuations, three ends.
fn press(key: char, rtp: u32) -> Vec<(u32, TelephoneEvent)> {
    vec![
        (rtp, event(key, false, 400)),
        (rtp, event(key, false, 800)),
        (rtp, event(key, false, 1_200)),
        (rtp, event(key, true, 1_600)),
        (rtp, event(key, true, 1_600)),
        (rtp, event(key, true, 1_600)),
    ]
}

#[test]
fn s6_2_payloads_parse_and_round_trip() {
    let parsed = TelephoneEvent::parse(&[11, 0x8a, 0x03, 0x20]).unwrap();
    assert_eq!(parsed, TelephoneEvent { key: Key::HASH, end: true, volume: 10, duration: 800 });
    assert_eq!(parsed.to_bytes(), [11, 0x8a, 0x03, 0x20]);
    assert_eq!(TelephoneEvent::parse(&[1, 0, 0]), Err(EventError::TooShort(3)));
    assert_eq!(TelephoneEvent::parse(&[16, 0, 0, 0]), Err(EventError::NotAKey(16)));
    for (code, c) in "0123456789*#ABCD".chars().enumerate() {
        assert_eq!(TelephoneEvent::parse(&[code as u8, 0, 0, 0]).unwrap().key.as_char(), c);
    }
}

#[test]
fn s6_2_one_down_and_one_up_per_press_whatever_repeats() {
    let mut receiver = DtmfReceiver::new();
    let mut edges = Vec::new();
    for (i, (rtp, e)) in press('5', 1_000).into_iter().enumerate() {
        edges.extend(receiver.handle(rtp, e, Timestamp(i as i64 * 50)));
    }
    let five = Key::digit(5);
    assert_eq!(edges, vec![KeyEdge::Down(five), KeyEdge::Up(five)]);
}

#[test]
fn s6_2_lost_start_packets_still_make_a_whole_press() {
    let mut receiver = DtmfReceiver::new();
    let edges = receiver.handle(2_000, event('7', true, 1_600), Timestamp(0));
    assert_eq!(edges, vec![KeyEdge::Down(Key::digit(7)), KeyEdge::Up(Key::digit(7))]);
    assert!(receiver.handle(2_000, event('7', true, 1_600), Timestamp(20)).is_empty());
}

#[test]
fn s6_2_lost_end_packets_end_at_the_next_press_or_after_five_seconds() {
    let mut receiver = DtmfReceiver::new();
    receiver.handle(1_000, event('1', false, 400), Timestamp(0));
    let edges = receiver.handle(5_000, event('2', false, 400), Timestamp(300));
    assert_eq!(edges, vec![KeyEdge::Up(Key::digit(1)), KeyEdge::Down(Key::digit(2))]);
    assert_eq!(receiver.poll_timeout(), Some(Timestamp(5_300)));
    assert!(receiver.handle_timeout(Timestamp(5_299)).is_empty());
    assert_eq!(receiver.handle_timeout(Timestamp(5_300)), vec![KeyEdge::Up(Key::digit(2))]);
    assert_eq!(receiver.poll_timeout(), None);
}

#[test]
fn s6_2_a_late_packet_of_an_earlier_press_is_ignored() {
    let mut receiver = DtmfReceiver::new();
    receiver.handle(1_000, event('1', true, 400), Timestamp(0));
    receiver.handle(3_000, event('2', false, 400), Timestamp(200));
    assert!(receiver.handle(1_000, event('1', true, 400), Timestamp(210)).is_empty());
    // Timestamps wrap around u32: still "earlier".
    let mut receiver = DtmfReceiver::new();
    receiver.handle(100, event('3', false, 400), Timestamp(0));
    assert!(receiver.handle(u32::MAX - 50, event('4', false, 400), Timestamp(10)).is_empty());
}

/// Feeds presses (key, start ms) to a leg; returns what it says about keys, as text.
fn run_leg(presses: &[(char, i64)]) -> Vec<String> {
    run_leg_with_marks(presses, false)
}

/// The same, with where codes may begin, begin and end on the RTP clock
/// (press `k` starts at RTP 10_000 + 3_200·(k + 1) and lasts 1_600).
fn run_leg_with_marks(presses: &[(char, i64)], marks: bool) -> Vec<String> {
    let mut leg = KeypadLeg::new();
    let mut out = Vec::new();
    let mut rtp = 10_000u32;
    let drain = |leg: &mut KeypadLeg, out: &mut Vec<String>| {
        while let Some(action) = leg.poll_action() {
            let text = match action {
                LegAction::PressKey(key) => format!("press {key}"),
                LegAction::ReleaseKey(key) => format!("release {key}"),
                LegAction::ReplayKey { key, duration_ms } if marks => format!("replay {key}({duration_ms})"),
                LegAction::ReplayKey { key, .. } => format!("replay {key}"),
                LegAction::Code { code, from } if marks => format!("code {} from {from}", code.code),
                LegAction::Code { code, .. } => format!("code {}", code.code),
                LegAction::MayBeCode { from } if marks => format!("may be a code from {from}"),
                LegAction::NoCode if marks => "no code".to_owned(),
                LegAction::CodeEnds { at } if marks => format!("code ends at {at}"),
                LegAction::MayBeCode { .. } | LegAction::NoCode | LegAction::CodeEnds { .. } => continue,
            };
            out.push(text);
        }
    };
    for (key, start) in presses {
        rtp = rtp.wrapping_add(8 * 400);
        if let Some(deadline) = leg.poll_timeout()
            && deadline.0 <= *start
        {
            leg.handle_timeout(deadline);
        }
        for (i, (ts, e)) in press(*key, rtp).into_iter().enumerate() {
            leg.handle_packet(ts, e, Timestamp(start + i as i64 * 20));
        }
        drain(&mut leg, &mut out);
    }
    while let Some(deadline) = leg.poll_timeout() {
        leg.handle_timeout(deadline);
    }
    drain(&mut leg, &mut out);
    out
}

#[test]
fn d9_codes_from_packets_are_consumed_other_keys_relayed() {
    let out = run_leg(&[('1', 0), ('#', 500), ('1', 900), ('1', 1_300), ('#', 1_700), ('4', 2_100)]);
    assert_eq!(
        out,
        vec!["press 1", "release 1", &format!("code {}", KeypadCode::Pause), "press 4", "release 4"]
    );
}

#[test]
fn d9_a_hash_sequence_that_is_no_code_reaches_the_far_end_in_order() {
    let out = run_leg(&[('#', 0), ('1', 400), ('3', 800)]);
    assert_eq!(out, vec!["replay #", "replay 1", "press 3", "release 3"]);
    let out = run_leg(&[('#', 0), ('1', 400), ('2', 4_000)]);
    assert_eq!(out, vec!["replay #", "replay 1", "press 2", "release 2"], "over 3 s between keys");
}

#[test]
fn s6_2_codes_say_where_they_begin_and_end_on_the_rtp_clock() {
    // `1`, then `#11#`: the code may begin at the first `#` (press 1, RTP 16_400)
    // and ends where the last `#` (press 4, RTP 26_000) ends: 26_000 + 1_600.
    let out = run_leg_with_marks(&[('1', 0), ('#', 500), ('1', 900), ('1', 1_300), ('#', 1_700)], true);
    assert_eq!(
        out,
        vec![
            "press 1".to_owned(),
            "release 1".to_owned(),
            "may be a code from 16400".to_owned(),
            format!("code {} from 16400", KeypadCode::Pause),
            "code ends at 27600".to_owned(),
        ]
    );
    // `##12#`: the first `#` turns out not to begin it; the second does.
    let out = run_leg_with_marks(&[('#', 0), ('#', 400), ('1', 800), ('2', 1_200), ('#', 1_600)], true);
    assert_eq!(
        out,
        vec![
            "may be a code from 13200".to_owned(),
            "replay #(60)".to_owned(),
            "may be a code from 16400".to_owned(),
            format!("code {} from 16400", KeypadCode::Resume),
            "code ends at 27600".to_owned(),
        ]
    );
    // `#5`: no code.
    let out = run_leg_with_marks(&[('#', 0), ('5', 400)], true);
    assert_eq!(out, ["may be a code from 13200", "replay #(60)", "press 5", "no code", "release 5"]);
    // `#` alone: no code once the 3 s are up.
    let out = run_leg_with_marks(&[('#', 0)], true);
    assert_eq!(out, ["may be a code from 13200", "replay #(60)", "no code"]);
}

#[test]
fn s6_2_resume_code_from_packets() {
    let out = run_leg(&[('#', 0), ('1', 300), ('2', 600), ('#', 900)]);
    assert_eq!(out, vec![format!("code {}", KeypadCode::Resume)]);
}

/// Drives a sender to `until` ms in 10 ms steps; returns every packet with the time it left.
fn drain(
    sender: &mut earshot_telephony::dtmf::DtmfSender,
    from: i64,
    until: i64,
) -> Vec<(i64, earshot_telephony::dtmf::EventPacket)> {
    let mut out = Vec::new();
    let mut now = from;
    while now <= until {
        if sender.poll_timeout().is_some_and(|at| at <= Timestamp(now)) {
            sender.handle_timeout(now as u32 * 8, Timestamp(now));
        }
        while let Some(packet) = sender.poll_packet() {
            out.push((now, packet));
        }
        now += 10;
    }
    out
}

#[test]
fn d9_a_relayed_press_is_sent_as_one_event_with_three_ends() {
    use earshot_telephony::dtmf::DtmfSender;
    let mut sender = DtmfSender::new();
    sender.press(Key::from_char('5').unwrap(), 8_000, Timestamp(1_000));
    let mut packets = drain(&mut sender, 1_000, 1_180);
    sender.release(Timestamp(1_200));
    packets.extend(drain(&mut sender, 1_200, 1_300));
    assert!(packets[0].1.marker, "the first packet is marked");
    assert!(packets.iter().all(|(_, p)| p.press == 8_000), "one timestamp for the whole press");
    assert!(packets.iter().skip(1).all(|(_, p)| !p.marker));
    let ends: Vec<_> = packets.iter().filter(|(_, p)| p.event.end).collect();
    assert_eq!(ends.len(), 3, "RFC 4733: the end packet three times");
    assert_eq!(ends[0].1.event.duration, 1_600, "200 ms at 8 kHz");
    // Continuations every 50 ms while held.
    let held: Vec<i64> = packets.iter().filter(|(_, p)| !p.event.end).map(|(at, _)| *at).collect();
    assert_eq!(held, [1_000, 1_050, 1_100, 1_150]);
    // A receiver makes exactly one press of it.
    let mut receiver = DtmfReceiver::new();
    let edges: Vec<KeyEdge> =
        packets.iter().flat_map(|(at, p)| receiver.handle(p.press, p.event, Timestamp(*at))).collect();
    assert_eq!(
        edges,
        [KeyEdge::Down(Key::from_char('5').unwrap()), KeyEdge::Up(Key::from_char('5').unwrap())]
    );
}

#[test]
fn d9_replayed_keys_queue_behind_a_held_one_and_each_is_whole() {
    use earshot_telephony::dtmf::DtmfSender;
    let mut sender = DtmfSender::new();
    let hash = Key::from_char('#').unwrap();
    let one = Key::from_char('1').unwrap();
    sender.tap(hash, 180, 100, Timestamp(0));
    sender.tap(one, 120, 100, Timestamp(0));
    let packets = drain(&mut sender, 0, 600);
    let mut receiver = DtmfReceiver::new();
    let edges: Vec<KeyEdge> = packets
        .iter()
        .flat_map(|(at, p)| {
            receiver.handle(p.press.wrapping_add(u32::from(p.event.key == one)), p.event, Timestamp(*at))
        })
        .collect();
    assert_eq!(edges, [KeyEdge::Down(hash), KeyEdge::Up(hash), KeyEdge::Down(one), KeyEdge::Up(one)]);
    // Each replayed key sounds as long as it was held (issue 15: a held `#` went out as 100 ms, not 180).
    let end_of =
        |key| packets.iter().find(|(_, p)| p.event.key == key && p.event.end).unwrap().1.event.duration;
    assert_eq!(end_of(hash), 180 * 8);
    assert_eq!(end_of(one), 120 * 8);
}

#[test]
fn d9_a_key_pressed_while_a_replayed_one_sounds_keeps_its_length() {
    use earshot_telephony::dtmf::DtmfSender;
    let mut sender = DtmfSender::new();
    let (hash, five) = (Key::from_char('#').unwrap(), Key::from_char('5').unwrap());
    // `#5`: the `#` was held back 180 ms; `5` went down as the `#` was let through, and is held 150 ms.
    sender.tap(hash, 180, 100, Timestamp(0));
    sender.press(five, 100, Timestamp(0));
    let mut packets = drain(&mut sender, 0, 150);
    sender.release(Timestamp(150));
    packets.extend(drain(&mut sender, 150, 600));
    let ends: Vec<(Key, u16)> =
        packets.iter().filter(|(_, p)| p.event.end).map(|(_, p)| (p.event.key, p.event.duration)).collect();
    assert_eq!(
        ends,
        [(hash, 1_440), (hash, 1_440), (hash, 1_440), (five, 1_200), (five, 1_200), (five, 1_200)]
    );
}

#[test]
fn a_press_on_a_new_clock_far_behind_is_a_new_press_not_a_late_packet() {
    let mut receiver = DtmfReceiver::new();
    receiver.handle(0x9000_0000, event('#', true, 800), Timestamp(0));
    // The phone's stream started over (a re-INVITE) with a clock far behind.
    let edges = receiver.handle(0x1000_0000, event('1', false, 400), Timestamp(100));
    assert_eq!(edges, [KeyEdge::Down(Key::from_char('1').unwrap())]);
    // A packet a little behind the current press is still a late one.
    assert!(receiver.handle(0x1000_0000 - 800, event('5', false, 400), Timestamp(120)).is_empty());
}

#[test]
fn a_release_finds_its_key_behind_others_in_the_queue() {
    use earshot_telephony::dtmf::DtmfSender;
    let mut sender = DtmfSender::new();
    let (one, two, three) =
        (Key::from_char('1').unwrap(), Key::from_char('2').unwrap(), Key::from_char('3').unwrap());
    sender.tap(one, 200, 100, Timestamp(0));
    sender.press(two, 100, Timestamp(10));
    sender.tap(three, 100, 100, Timestamp(20));
    // `2` comes up while `1` still sounds and `3` waits behind it.
    sender.release(Timestamp(90));
    let packets = drain(&mut sender, 0, 1_000);
    let ends: Vec<(Key, u16)> = packets
        .iter()
        .filter(|(_, p)| p.event.end)
        .map(|(_, p)| (p.event.key, p.event.duration))
        .step_by(3)
        .collect();
    assert_eq!(ends, [(one, 1_600), (two, 640), (three, 800)]);
}
