//! One media leg: who may latch, and a held leg's stream.

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
    assert_eq!(leg.accept(addr("203.0.113.9:5555"), b"\x00\x01 not rtp"), Incoming::Garbage);
    let mut video = rtp(1);
    video[1] = 96;
    assert_eq!(leg.accept(addr("203.0.113.9:5555"), &video), Incoming::Garbage);
    // The phone, behind NAT, sends from another port than it described: it is latched.
    assert!(matches!(leg.accept(addr("192.0.2.7:4002"), &rtp(1)), Incoming::Audio(_)));
    assert_eq!(leg.destination(), Some(addr("192.0.2.7:4002")));
    // Now the stranger is foreign, even with good RTP of a stream of its own.
    let mut strangers = rtp(2);
    strangers[8..12].copy_from_slice(&77_u32.to_be_bytes());
    assert_eq!(leg.accept(addr("203.0.113.9:5555"), &strangers), Incoming::Foreign);
    // The address the phone described still counts, and takes the latch back.
    assert!(matches!(leg.accept(addr("192.0.2.7:4000"), &rtp(3)), Incoming::Audio(_)));
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
        assert_eq!(leg.relay(&mut packet, &view), None);
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
    assert!(matches!(leg.accept(addr("198.51.100.4:30000"), &rtp(1)), Incoming::Audio(_)));
    // The NAT gives the phone's stream (same SSRC) a new port: the audio follows it.
    assert!(matches!(leg.accept(addr("198.51.100.4:30002"), &rtp(2)), Incoming::Audio(_)));
    assert_eq!(leg.destination(), Some(addr("198.51.100.4:30002")));
    // Another stream from elsewhere is still a stranger.
    let mut other = rtp(3);
    other[8..12].copy_from_slice(&77_u32.to_be_bytes());
    assert_eq!(leg.accept(addr("203.0.113.9:5555"), &other), Incoming::Foreign);
    assert_eq!(leg.destination(), Some(addr("198.51.100.4:30002")));
}
