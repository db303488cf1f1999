//! SRTP keyed by SDES: offers and answers that carry keys, two legs that
//! talk through SRTP, and what a forger or a replayer gets (nothing).

use earshot_policy::Timestamp;
use earshot_telephony::endpoint::AudioEndpoint;
use earshot_telephony::leg::{Incoming, MediaLeg};
use earshot_telephony::sdp::{AudioSession, MediaDirection, Negotiation, SdpError};
use earshot_telephony::srtp::{Refused, SdesKey, SrtpSession};
use std::net::SocketAddr;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Two legs that agreed SRTP through offer and answer; the SDP texts too.
fn secure_pair() -> (MediaLeg, MediaLeg, String, String) {
    let (ada_key, bo_key) = (SdesKey::random(), SdesKey::random());
    let mut ada_sdp = Negotiation::new(addr("192.0.2.1:4000"), 1).with_srtp(ada_key.clone());
    let mut bo_sdp = Negotiation::new(addr("192.0.2.2:6000"), 2).with_srtp(bo_key.clone());
    let offer = ada_sdp.offer(MediaDirection::SendRecv);
    let answer = bo_sdp.handle_offer(offer.as_bytes()).unwrap();
    ada_sdp.handle_answer(answer.as_bytes()).unwrap();
    let (mut ada, mut bo) = (MediaLeg::new(1, 1), MediaLeg::new(2, 1));
    ada.set_srtp_key(ada_key);
    bo.set_srtp_key(bo_key);
    ada.set_peer(ada_sdp.theirs().unwrap().clone());
    bo.set_peer(bo_sdp.theirs().unwrap().clone());
    (ada, bo, offer, answer)
}

/// Ada's and Bo's endpoints keyed for SRTP, Bo's told Ada's offer; Ada's
/// negotiation, and Bo's answer, which she has not read yet.
fn secure_endpoints() -> (AudioEndpoint, AudioEndpoint, Negotiation, String) {
    let (ada_key, bo_key) = (SdesKey::random(), SdesKey::random());
    let mut ada_sdp = Negotiation::new(ADA_AT, 1).with_srtp(ada_key.clone());
    let mut bo_sdp = Negotiation::new(BO_AT, 2).with_srtp(bo_key.clone());
    let answer = bo_sdp.handle_offer(ada_sdp.offer(MediaDirection::SendRecv).as_bytes()).unwrap();
    let (mut ada, mut bo) = (AudioEndpoint::new(1, 1), AudioEndpoint::new(2, 1));
    ada.set_srtp_key(ada_key);
    bo.set_srtp_key(bo_key);
    bo.set_peer(bo_sdp.theirs().unwrap().clone());
    (ada, bo, ada_sdp, answer)
}

/// Where [`secure_endpoints`] are.
const ADA_AT: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)), 4000);
const BO_AT: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)), 6000);

/// 20 ms of a loud tone.
fn tone() -> Vec<i16> {
    (0..160).map(|i| (f64::from(i) * 0.3).sin().mul_add(8000.0, 0.0) as i16).collect()
}

/// A peer at 192.0.2.7:4000 that takes SRTP keyed with `key`.
fn keyed_peer(key: &SdesKey) -> AudioSession {
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n",
        key.inline()
    );
    AudioSession::parse(sdp.as_bytes()).unwrap()
}

#[test]
fn an_srtp_offer_carries_our_key_and_the_answer_its_own_under_the_offers_tag() {
    let (_, _, offer, answer) = secure_pair();
    assert!(offer.contains("m=audio 4000 RTP/SAVP 0 8 101\r\n"), "{offer}");
    assert!(offer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"), "{offer}");
    assert!(answer.contains("RTP/SAVP"), "{answer}");
    assert!(answer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"), "{answer}");
    let (ours, theirs) =
        (AudioSession::parse(offer.as_bytes()).unwrap(), AudioSession::parse(answer.as_bytes()).unwrap());
    assert_ne!(ours.crypto.unwrap().key, theirs.crypto.unwrap().key, "each side sends with a key of its own");
}

#[test]
fn a_best_effort_offer_under_rtp_avp_is_answered_with_srtp_in_the_same_profile() {
    // baresip's `mediaenc=srtp`: SRTP offered under RTP/AVP.
    let key = SdesKey::random();
    let offer = format!(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n\
         a=crypto:7 AES_CM_128_HMAC_SHA1_32 inline:{k}\r\na=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:{k}\r\n",
        k = key.inline()
    );
    let mut secure = Negotiation::new(addr("192.0.2.1:4000"), 1).with_srtp(SdesKey::random());
    let answer = secure.handle_offer(offer.as_bytes()).unwrap();
    assert!(answer.contains("m=audio 4000 RTP/AVP 0\r\n"), "{answer}");
    assert!(
        answer.contains("a=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:"),
        "the tag of the suite we take: {answer}"
    );
    assert_eq!(secure.srtp().unwrap().1, &key);
    // A side in clear takes the same offer as plain RTP, with no key.
    let mut plain = Negotiation::new(addr("192.0.2.1:4000"), 1);
    let answer = plain.handle_offer(offer.as_bytes()).unwrap();
    assert!(!answer.contains("a=crypto"), "{answer}");
    assert!(plain.srtp().is_none());
}

#[test]
fn keys_are_refused_where_they_do_not_fit() {
    let plain_offer =
        "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let mut secure = Negotiation::new(addr("192.0.2.1:4000"), 1).with_srtp(SdesKey::random());
    assert_eq!(secure.handle_offer(plain_offer.as_bytes()), Err(SdpError::Unencrypted));
    let savp = format!(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n",
        SdesKey::random().inline()
    );
    let mut plain = Negotiation::new(addr("192.0.2.1:4000"), 1);
    assert_eq!(plain.handle_offer(savp.as_bytes()), Err(SdpError::EncryptedOnly), "SRTP keys sent in clear");
    // Suites we do not speak, a key with an MKI, a broken key: not usable.
    for crypto in [
        format!("a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{}", SdesKey::random().inline()),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}|2^20|1:4", SdesKey::random().inline()),
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=".to_owned(),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{} UNENCRYPTED_SRTP", SdesKey::random().inline()),
    ] {
        let offer = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n{crypto}\r\n"
        );
        assert_eq!(AudioSession::parse(offer.as_bytes()), Err(SdpError::EncryptedOnly), "{crypto}");
    }
}

#[test]
fn audio_and_keys_cross_two_srtp_legs_and_nothing_on_the_wire_is_in_clear() {
    let (mut ada, mut bo, _, _) = secure_pair();
    let samples: Vec<i16> = (0..160).map(|i| ((i * 37) % 2000 - 1000) as i16).collect();
    let sent = ada.audio(&samples, 160, true).unwrap();
    assert_eq!(sent.destination, addr("192.0.2.2:6000"));
    let clear = earshot_telephony::g711::G711::Pcmu.encode(&samples);
    assert_eq!(sent.payload.len(), 12 + clear.len() + 10, "the 80-bit tag");
    assert_ne!(&sent.payload[12..12 + clear.len()], &clear[..], "the payload is encrypted");
    let mut wire = sent.payload;
    let len = bo.unprotect(addr("192.0.2.1:4000"), &mut wire, Timestamp(0)).unwrap();
    match bo.accept(addr("192.0.2.1:4000"), &wire[..len], Timestamp(0)) {
        Incoming::Audio(view) => assert_eq!(view.payload, &clear[..]),
        other => panic!("{other:?}"),
    }
    // A key press goes out as SRTP too.
    ada.tap_key(earshot_policy::Key::HASH, 100, 320, Timestamp(20));
    let mut out = Vec::new();
    ada.handle_timeout(320, Timestamp(20), &mut out);
    let mut event = out.first().unwrap().payload.clone();
    let len = bo.unprotect(addr("192.0.2.1:4000"), &mut event, Timestamp(0)).unwrap();
    assert!(matches!(bo.accept(addr("192.0.2.1:4000"), &event[..len], Timestamp(20)), Incoming::Event(..)));
}

#[test]
fn forged_and_replayed_packets_are_dropped_counted_and_latch_nothing() {
    let (mut ada, mut bo, _, _) = secure_pair();
    let packet = ada.audio(&[0; 160], 160, true).unwrap().payload;
    // A forger who knows the stream but not the key: a flipped payload bit.
    let mut forged = packet.clone();
    forged[20] ^= 1;
    assert_eq!(bo.unprotect(addr("192.0.2.1:4000"), &mut forged, Timestamp(0)), Err(Refused::Forged));
    // Plain RTP sent to an SRTP leg: no tag that checks.
    let mut clear = vec![0x80, 0, 0, 9, 0, 0, 1, 0, 0, 0, 0, 1];
    clear.extend([0xff; 160]);
    assert_eq!(bo.unprotect(addr("192.0.2.1:4000"), &mut clear, Timestamp(0)), Err(Refused::Forged));
    // The genuine packet, then the same again.
    let mut genuine = packet.clone();
    assert!(bo.unprotect(addr("192.0.2.1:4000"), &mut genuine, Timestamp(0)).is_ok());
    let mut replayed = packet;
    assert_eq!(bo.unprotect(addr("192.0.2.1:4000"), &mut replayed, Timestamp(0)), Err(Refused::Replayed));
    let stats = bo.srtp_stats();
    assert_eq!((stats.forged, stats.replayed), (2, 1));
    // Nothing refused reached `accept`: the leg still sends to the described address.
    assert_eq!(bo.destination(), Some(addr("192.0.2.1:4000")));
}

#[test]
fn a_leg_that_must_be_srtp_sends_nothing_until_the_peer_gave_its_key() {
    let mut leg = MediaLeg::new(1, 1);
    leg.set_srtp_key(SdesKey::random());
    let plain =
        "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    leg.set_peer(AudioSession::parse(plain.as_bytes()).unwrap());
    assert!(leg.audio(&[0; 160], 160, true).is_none(), "never in clear");
    assert_eq!(leg.destination(), None);
    let mut packet = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9, 0xff, 0xff];
    assert!(leg.unprotect(addr("192.0.2.7:4000"), &mut packet, Timestamp(0)).is_err());
}

#[test]
fn packets_that_come_before_the_peers_key_are_held_not_counted_as_forged_and_heard_once_it_is_known() {
    // The callee sends as it answers; its answer, with its key, can reach
    // us after its first packets (flaky in a TLS test until this held them:
    // they were counted as forged).
    let (mut ada, mut bo, mut ada_sdp, answer) = secure_endpoints();
    let (bo_at, tone) = (BO_AT, tone());
    // Bo's first three packets, before Ada has read his answer: the third
    // reaches her only as a stranger's copy from elsewhere (a genuine
    // packet's tag checks wherever it is sent from).
    let stranger = addr("198.51.100.9:5000");
    for frame in 0..3_i64 {
        bo.send_audio(Timestamp(frame * 20), &tone);
        while let Some(transmit) = bo.poll_transmit() {
            let from = if frame == 2 { stranger } else { bo_at };
            ada.handle_datagram(Timestamp(frame * 20), from, &transmit.payload);
        }
    }
    assert_eq!(ada.stats().srtp.forged, 0, "not checked yet, so not counted");
    assert_eq!(ada.stats().received_packets, 0);
    // Her answer read: the three are taken at once, at the times they came.
    ada_sdp.handle_answer(answer.as_bytes()).unwrap();
    ada.set_peer(ada_sdp.theirs().unwrap().clone());
    assert_eq!(ada.stats().received_packets, 3, "the three held");
    assert_eq!(ada.stats().srtp.forged, 0);
    // The stranger's copy latched nothing: Ada sends to Bo.
    ada.send_audio(Timestamp(60), &tone);
    assert_eq!(ada.poll_transmit().unwrap().destination, bo_at);
    bo.send_audio(Timestamp(60), &tone);
    while let Some(transmit) = bo.poll_transmit() {
        ada.handle_datagram(Timestamp(60), bo_at, &transmit.payload);
    }
    assert_eq!(ada.stats().received_packets, 4);

    // On a bare leg: the newest 16 are held, and what does not check once
    // the key is known is counted then.
    let (ours, theirs) = (SdesKey::random(), SdesKey::random());
    let mut leg = MediaLeg::new(1, 1);
    leg.set_srtp_key(ours);
    let mut forged = vec![0x80, 0, 0, 9, 0, 0, 1, 0, 0, 0, 0, 1];
    forged.extend([0x55; 170]);
    for _ in 0..20 {
        let mut copy = forged.clone();
        assert_eq!(leg.unprotect(bo_at, &mut copy, Timestamp(0)), Err(Refused::Unkeyed));
    }
    assert!(leg.take_early().is_empty(), "nothing until the key is known");
    assert_eq!(leg.srtp_stats().unkeyed_dropped, 4, "the oldest four pushed out, counted");
    assert_eq!(leg.srtp_stats().forged, 0);
    leg.set_peer(keyed_peer(&theirs));
    let held = leg.take_early();
    assert_eq!(held.len(), 16);
    for (_, mut packet, _) in held {
        assert_eq!(leg.unprotect(bo_at, &mut packet, Timestamp(0)), Err(Refused::Forged));
    }
    assert_eq!(leg.srtp_stats().forged, 16);
    assert!(leg.take_early().is_empty(), "taken once");
}

#[test]
fn a_new_key_from_the_peer_re_keys_what_we_receive() {
    let (ours, first, second) = (SdesKey::random(), SdesKey::random(), SdesKey::random());
    let mut leg = MediaLeg::new(1, 1);
    leg.set_srtp_key(ours.clone());
    leg.set_peer(keyed_peer(&first));
    let mut peer = SrtpSession::new(&first, &ours);
    let rtp = |sequence: u16| {
        let mut packet = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 0, 0, 0, 9];
        packet[2..4].copy_from_slice(&sequence.to_be_bytes());
        packet.extend([0xff; 160]);
        packet
    };
    let mut packet = peer.protect(&rtp(1)).unwrap();
    assert!(leg.unprotect(addr("192.0.2.7:4000"), &mut packet, Timestamp(0)).is_ok());
    // A re-INVITE with a new key: packets under it are taken, the old key's are not.
    leg.set_peer(keyed_peer(&second));
    let mut renewed = SrtpSession::new(&second, &ours);
    let mut packet = renewed.protect(&rtp(2)).unwrap();
    assert!(leg.unprotect(addr("192.0.2.7:4000"), &mut packet, Timestamp(0)).is_ok());
    let mut stale = peer.protect(&rtp(3)).unwrap();
    assert_eq!(leg.unprotect(addr("192.0.2.7:4000"), &mut stale, Timestamp(0)), Err(Refused::Forged));
}

#[test]
fn two_endpoints_talk_through_srtp_and_count_a_forgery() {
    let (mut ada, mut bo, mut ada_sdp, answer) = secure_endpoints();
    ada_sdp.handle_answer(answer.as_bytes()).unwrap();
    ada.set_peer(ada_sdp.theirs().unwrap().clone());
    let (ada_at, tone) = (ADA_AT, tone());
    let mut heard = 0_i64;
    for frame in 0..50_i64 {
        let now = Timestamp(frame * 20);
        ada.send_audio(now, &tone);
        while let Some(transmit) = ada.poll_transmit() {
            bo.handle_datagram(now, ada_at, &transmit.payload);
        }
        let mut out = [0_i16; 160];
        bo.pull_audio(now, &mut out);
        heard += out.iter().map(|s| i64::from(s.unsigned_abs())).sum::<i64>();
    }
    assert!(heard > 50 * 160 * 1000, "Bo hears Ada's tone through SRTP ({heard})");
    assert_eq!(bo.stats().received_packets, 50);
    bo.handle_datagram(
        Timestamp(1_000),
        ada_at,
        &[0x80, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    );
    assert_eq!(bo.stats().srtp.forged, 1);
    assert_eq!(bo.stats().received_packets, 50);
}
