//! One media leg: who may latch, and a held leg's stream.

use earshot_policy::Timestamp;
use earshot_telephony::leg::{Incoming, MediaLeg};
use earshot_telephony::rtp::RtpView;
use earshot_telephony::sdp::AudioSession;
use std::net::SocketAddr;

fn peer(direction: &str) -> AudioSession {
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\n\
         a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    );
    AudioSession::parse(sdp.as_bytes()).unwrap()
}

fn rtp(sequence: u16) -> Vec<u8> {
    let mut packet = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 0, 0, 0, 9];
    packet[2..4].copy_from_slice(&sequence.to_be_bytes());
    packet.extend([0xff; 160]);
    packet
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

#[test]
fn garbage_from_a_stranger_latches_nothing_and_the_phone_still_gets_its_media() {
    let mut leg = MediaLeg::new(1, 1);
    leg.set_peer(peer("sendrecv"));
    // A scan hits the port first: garbage, and RTP of a payload type nobody agreed to.
    assert_eq!(leg.accept(addr("203.0.113.9:5555"), b"\x00\x01 not rtp", Timestamp(0)), Incoming::Garbage);
    let mut video = rtp(1);
    video[1] = 96;
    assert_eq!(leg.accept(addr("203.0.113.9:5555"), &video, Timestamp(0)), Incoming::Garbage);
    // The phone, behind NAT, sends from another port than it described: it is latched.
    assert!(matches!(leg.accept(addr("192.0.2.7:4002"), &rtp(1), Timestamp(0)), Incoming::Audio(_)));
    assert_eq!(leg.destination(), Some(addr("192.0.2.7:4002")));
    // Now the stranger is foreign, even with good RTP of a stream of its own.
    let mut strangers = rtp(2);
    strangers[8..12].copy_from_slice(&77_u32.to_be_bytes());
    assert_eq!(leg.accept(addr("203.0.113.9:5555"), &strangers, Timestamp(0)), Incoming::Foreign);
    // The address the phone described still counts, and takes the latch back.
    assert!(matches!(leg.accept(addr("192.0.2.7:4000"), &rtp(3), Timestamp(0)), Incoming::Audio(_)));
    assert_eq!(leg.destination(), Some(addr("192.0.2.7:4000")));
}

#[test]
fn a_leg_on_hold_sends_nothing_and_its_stream_has_no_gap_after() {
    let mut leg = MediaLeg::new(7, 100);
    leg.set_peer(peer("sendonly"));
    let mut packet = rtp(50);
    let view = RtpView::parse(&packet).unwrap();
    let view = RtpView { payload: &[], ..view };
    // The peer holds us (it only sends): nothing goes to it, nothing is numbered.
    for _ in 0..100 {
        assert!(leg.relay(&mut packet, &view).is_none());
    }
    leg.set_peer(peer("sendrecv"));
    assert!(leg.relay(&mut packet, &view).is_some());
    assert_eq!(
        u16::from_be_bytes([packet[2], packet[3]]),
        100,
        "the first packet after the hold goes on where we were"
    );
}

#[test]
fn the_same_stream_from_a_new_address_is_the_phone_behind_a_nat_that_moved() {
    let mut leg = MediaLeg::new(1, 1);
    leg.set_peer(peer("sendrecv"));
    assert!(matches!(leg.accept(addr("198.51.100.4:30000"), &rtp(1), Timestamp(0)), Incoming::Audio(_)));
    // The NAT gives the phone's stream (same SSRC) a new port: the audio follows it.
    assert!(matches!(leg.accept(addr("198.51.100.4:30002"), &rtp(2), Timestamp(0)), Incoming::Audio(_)));
    assert_eq!(leg.destination(), Some(addr("198.51.100.4:30002")));
    // Another stream from elsewhere is still a stranger.
    let mut other = rtp(3);
    other[8..12].copy_from_slice(&77_u32.to_be_bytes());
    assert_eq!(leg.accept(addr("203.0.113.9:5555"), &other, Timestamp(0)), Incoming::Foreign);
    assert_eq!(leg.destination(), Some(addr("198.51.100.4:30002")));
}

/// A leg at `ours` whose peer, at `theirs`, said `a=rtcp-mux` (or not).
fn muxed_leg(ssrc: u32, theirs: &str, mux: bool) -> MediaLeg {
    let addr = addr(theirs);
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n{mux}",
        ip = addr.ip(),
        port = addr.port(),
        mux = if mux { "a=rtcp-mux\r\n" } else { "" },
    );
    let mut leg = MediaLeg::new(ssrc, 1);
    leg.set_peer(AudioSession::parse(sdp.as_bytes()).unwrap());
    leg
}

#[test]
fn two_legs_report_on_the_rtp_port_and_measure_their_round_trip() {
    let (ada_at, bo_at) = ("192.0.2.1:4000", "192.0.2.2:6000");
    let (mut ada, mut bo) = (muxed_leg(1, bo_at, true), muxed_leg(2, ada_at, true));
    // 40 ms each way; audio every 20 ms both ways, reports when due.
    let mut wire: Vec<(i64, bool, Vec<u8>)> = Vec::new();
    let mut reports = 0;
    for ms in 0..15_000_i64 {
        let now = Timestamp(ms);
        let mut out = Vec::new();
        if ms % 20 == 0 {
            let timestamp = u32::try_from(ms * 8).unwrap();
            out.extend(ada.audio(&[0; 160], timestamp, false).map(|t| (true, t)));
            out.extend(bo.audio(&[0; 160], timestamp, false).map(|t| (false, t)));
        }
        let (mut from_ada, mut from_bo) = (Vec::new(), Vec::new());
        ada.handle_timeout(0, now, &mut from_ada);
        bo.handle_timeout(0, now, &mut from_bo);
        out.extend(from_ada.into_iter().map(|t| (true, t)));
        out.extend(from_bo.into_iter().map(|t| (false, t)));
        for (to_bo, transmit) in out {
            assert_eq!(transmit.destination, addr(if to_bo { bo_at } else { ada_at }));
            wire.push((ms + 40, to_bo, transmit.payload));
        }
        for (_, to_bo, data) in wire.iter().filter(|(at, ..)| *at == ms) {
            let (leg, from) = if *to_bo { (&mut bo, ada_at) } else { (&mut ada, bo_at) };
            match leg.accept(addr(from), data, now) {
                Incoming::Control => reports += 1,
                Incoming::Audio(_) => {}
                other => panic!("{other:?}"),
            }
        }
        wire.retain(|(at, ..)| *at > ms);
    }
    assert!(reports >= 4, "{reports} reports");
    for leg in [&ada, &bo] {
        let rtt = leg.round_trip_ms().unwrap();
        assert!((rtt - 80.0).abs() < 1.0, "{rtt}");
    }
}

#[test]
fn reports_from_a_stranger_garbage_or_a_peer_without_rtcp_mux_are_not_taken() {
    let mut leg = muxed_leg(1, "192.0.2.2:6000", true);
    let mut them = muxed_leg(2, "192.0.2.1:4000", true);
    let mut out = Vec::new();
    them.handle_timeout(0, Timestamp(0), &mut out);
    them.handle_timeout(0, Timestamp(2_500), &mut out);
    let report = out.pop().unwrap().payload;
    assert_eq!(leg.accept(addr("203.0.113.9:5555"), &report, Timestamp(2_510)), Incoming::Foreign);
    assert_eq!(leg.accept(addr("192.0.2.2:6000"), &report[..10], Timestamp(2_510)), Incoming::Garbage);
    assert_eq!(leg.accept(addr("192.0.2.2:6000"), &report, Timestamp(2_510)), Incoming::Control);
    // A peer that did not agree to share the port gets no reports, and
    // RTCP from it is not RTP it agreed to.
    let mut plain = muxed_leg(1, "192.0.2.2:6000", false);
    assert_eq!(plain.poll_timeout(), None);
    let mut nothing = Vec::new();
    plain.handle_timeout(0, Timestamp(0), &mut nothing);
    plain.handle_timeout(0, Timestamp(10_000), &mut nothing);
    assert!(nothing.is_empty());
    assert_eq!(plain.accept(addr("192.0.2.2:6000"), &report, Timestamp(2_510)), Incoming::Garbage);
}
