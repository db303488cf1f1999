//! Any offer, then any re-offer, to one side of a dialog: the negotiation
//! never panics; an answer parses back, offers nothing the offer did not
//! (codec, events), and every description keeps the dialog's session id
//! with a version one up from the last (RFC 3264 §8).
#![no_main]

use earshot_telephony::sdp::{AudioSession, Negotiation, Origin};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bodies: (Vec<u8>, Vec<u8>, bool)| {
    let (first, second, hold) = bodies;
    let mut side = Negotiation::new("127.0.0.1:20000".parse().unwrap(), 77);
    let mut last_version = 0;
    for body in [&first, &second] {
        let Ok(answer) = side.handle_offer(body) else { continue };
        let offer = AudioSession::parse(body).expect("an offer that was answered parses");
        let parsed = AudioSession::parse(answer.as_bytes()).expect("our answer parses");
        assert!(parsed.codecs.iter().all(|c| offer.codecs.contains(c)), "{answer}");
        if parsed.telephone_event.is_some() {
            assert_eq!(parsed.telephone_event, offer.telephone_event, "{answer}");
            assert_eq!(parsed.events.and(offer.events), parsed.events, "more events than offered: {answer}");
        }
        let origin = Origin::of(answer.as_bytes()).expect("an o= line");
        assert_eq!(origin.session_id, 77);
        assert_eq!(origin.version, last_version + 1);
        last_version = origin.version;
    }
    let direction = if hold { earshot_telephony::sdp::MediaDirection::SendOnly } else { earshot_telephony::sdp::MediaDirection::SendRecv };
    let offer = side.offer(direction);
    assert_eq!(Origin::of(offer.as_bytes()).map(|o| o.version), Some(last_version + 1));
});
