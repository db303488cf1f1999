//! RTP packets and the outgoing stream that mixes relayed and own packets.

use earshot_telephony::rtp::{OutgoingStream, RtpError, RtpView};

fn packet(pt: u8, sequence: u16, timestamp: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, pt];
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn relay(stream: &mut OutgoingStream, data: &mut [u8]) {
    let copy = data.to_vec();
    let view = RtpView::parse(&copy).unwrap();
    stream.relay(data, &view);
}

#[test]
fn parses_header_and_payload() {
    let data = packet(0x80 | 8, 7, 1_600, 0xdead_beef, &[1, 2, 3]);
    let view = RtpView::parse(&data).unwrap();
    assert_eq!(
        (view.payload_type, view.marker, view.sequence, view.timestamp, view.ssrc),
        (8, true, 7, 1_600, 0xdead_beef)
    );
    assert_eq!(view.payload, [1, 2, 3]);
}

#[test]
fn garbage_and_rtcp_are_refused() {
    assert!(matches!(RtpView::parse(b"garbage"), Err(RtpError::Malformed(_))));
    assert!(RtpView::parse(&[0x80, 0]).is_err());
    // RTCP sender report (PT 200 = marker + 72) on the RTP port.
    assert!(RtpView::parse(&packet(200, 0, 0, 1, &[0; 20])).is_err());
}

#[test]
fn relayed_packets_are_renumbered_into_one_clean_stream() {
    let mut stream = OutgoingStream::new(0x1111, 100);
    let mut first = packet(0, 5_000, 80_000, 0xaaaa, &[0; 160]);
    relay(&mut stream, &mut first);
    let out = RtpView::parse(&first).unwrap();
    assert_eq!((out.sequence, out.ssrc, out.timestamp, out.marker), (100, 0x1111, 80_000, true));
    let mut second = packet(0, 5_001, 80_160, 0xaaaa, &[0; 160]);
    relay(&mut stream, &mut second);
    let out = RtpView::parse(&second).unwrap();
    assert_eq!((out.sequence, out.timestamp, out.marker), (101, 80_160, false));
    // Our own packet continues the sequence.
    let mut own = Vec::new();
    stream.packet(101, true, stream.last_timestamp(), &[1, 0, 0, 0], &mut own);
    let out = RtpView::parse(&own).unwrap();
    assert_eq!((out.sequence, out.ssrc, out.timestamp, out.payload_type), (102, 0x1111, 80_160, 101));
    // A new source after a prompt continues our timestamps, marked.
    stream.reanchor();
    let mut third = packet(0, 9, 3, 0xbbbb, &[0; 160]);
    relay(&mut stream, &mut third);
    let out = RtpView::parse(&third).unwrap();
    assert_eq!((out.sequence, out.timestamp, out.marker), (103, 80_320, true));
}
