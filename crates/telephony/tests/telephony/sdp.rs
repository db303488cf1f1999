//! SDP offer/answer for one G.711 audio stream (RFC 3264).

use earshot_telephony::g711::G711;
use earshot_telephony::sdp::{AudioSession, MediaDirection, SdpError};

const SIPP_OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
    m=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
    a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";

#[test]
fn an_offer_gives_address_codecs_in_order_and_events() {
    let offer = AudioSession::parse(SIPP_OFFER.as_bytes()).unwrap();
    assert_eq!(offer.addr, "127.0.0.1:6000".parse().unwrap());
    assert_eq!(offer.codecs, [G711::Pcma, G711::Pcmu]);
    assert_eq!(offer.telephone_event, Some(101));
    assert_eq!(offer.direction, MediaDirection::SendRecv);
}

#[test]
fn the_answer_takes_the_first_codec_and_mirrors_the_direction() {
    let offer =
        AudioSession::parse(SIPP_OFFER.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n").as_bytes()).unwrap();
    assert_eq!(offer.direction, MediaDirection::SendOnly);
    assert!(offer.direction.is_hold());
    let answer = AudioSession::answer_to(&offer, "127.0.0.1:20000".parse().unwrap());
    assert_eq!(answer.codecs, [G711::Pcma]);
    assert_eq!(answer.direction, MediaDirection::RecvOnly);
    let text = answer.render(7, 1);
    assert!(text.contains("m=audio 20000 RTP/AVP 8 101\r\n"), "{text}");
    assert!(text.contains("a=rtpmap:101 telephone-event/8000\r\n"));
    assert!(text.contains("a=recvonly\r\n"));
    // What we render, we parse back the same.
    assert_eq!(AudioSession::parse(text.as_bytes()).unwrap(), answer);
}

#[test]
fn static_payload_types_need_no_rtpmap_and_zero_address_is_hold() {
    let offer =
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let offer = AudioSession::parse(offer.as_bytes()).unwrap();
    assert_eq!(offer.codecs, [G711::Pcmu]);
    assert_eq!(offer.telephone_event, None);
    assert_eq!(offer.direction, MediaDirection::Inactive);
}

#[test]
fn offers_we_cannot_take_say_why() {
    let opus = SIPP_OFFER
        .replace("RTP/AVP 8 0 101", "RTP/AVP 111")
        .replace("a=rtpmap:8 PCMA/8000\r\n", "a=rtpmap:111 opus/48000/2\r\n");
    assert_eq!(AudioSession::parse(opus.as_bytes()), Err(SdpError::NoCommonCodec));
    let video = SIPP_OFFER.replace("m=audio 6000 RTP/AVP 8 0 101", "m=video 6000 RTP/AVP 96");
    assert_eq!(AudioSession::parse(video.as_bytes()), Err(SdpError::NoAudio));
    assert!(matches!(AudioSession::parse(b"not sdp"), Err(SdpError::Syntax(_))));
    assert!(matches!(AudioSession::parse(&[0xff, 0xfe]), Err(SdpError::Syntax(_))));
}

#[test]
fn an_answer_has_the_offers_m_lines_refusing_all_but_audio_rfc_3264_6() {
    let offer = SIPP_OFFER.replace(
        "m=audio 6000 RTP/AVP 8 0 101\r\n",
        "m=video 7000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=audio 6000 RTP/AVP 8 0 101\r\n",
    ) + "m=text 8000 RTP/AVP 98\r\n";
    let mut side = earshot_telephony::sdp::Negotiation::new("127.0.0.1:20000".parse().unwrap(), 1);
    let answer = side.handle_offer(offer.as_bytes()).unwrap();
    let m_lines: Vec<&str> = answer.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(
        m_lines,
        ["m=video 0 RTP/AVP 96", "m=audio 20000 RTP/AVP 8 101", "m=text 0 RTP/AVP 98"],
        "{answer}"
    );
    // It parses back to the same audio session.
    assert_eq!(AudioSession::parse(answer.as_bytes()).unwrap().codecs, [G711::Pcma]);
}

#[test]
fn audio_only_over_srtp_is_refused_with_its_reason() {
    let srtp = SIPP_OFFER.replace("RTP/AVP 8 0 101", "RTP/SAVP 8 0 101");
    assert_eq!(AudioSession::parse(srtp.as_bytes()), Err(SdpError::EncryptedOnly));
}

#[test]
fn rtcp_shares_the_rtp_port_only_where_both_said_so_rfc_5761() {
    use earshot_telephony::sdp::Negotiation;
    // Our offers say a=rtcp-mux, and it parses back.
    let mut ours = Negotiation::new("127.0.0.1:20000".parse().unwrap(), 1);
    let offer = ours.offer(MediaDirection::SendRecv);
    assert!(offer.contains("a=rtcp-mux\r\n"), "{offer}");
    assert!(AudioSession::parse(offer.as_bytes()).unwrap().rtcp_mux);
    // An offer without it is answered without it (sipp's, baresip's by default).
    let plain = AudioSession::parse(SIPP_OFFER.as_bytes()).unwrap();
    assert!(!plain.rtcp_mux);
    let answer = AudioSession::answer_to(&plain, "127.0.0.1:20000".parse().unwrap());
    assert!(!answer.render(7, 1).contains("rtcp-mux"));
    // One with it is answered with it.
    let muxed = AudioSession::parse(format!("{SIPP_OFFER}a=rtcp-mux\r\n").as_bytes()).unwrap();
    assert!(muxed.rtcp_mux);
    let answer = AudioSession::answer_to(&muxed, "127.0.0.1:20000".parse().unwrap());
    assert!(answer.render(7, 1).contains("a=rtcp-mux\r\n"));
}
