//! Any offer: parsing never panics, and an answer we render to one we took
//! parses back to the same session.
#![no_main]

use earshot_telephony::sdp::AudioSession;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(offer) = AudioSession::parse(data) {
        let answer = AudioSession::answer_to(&offer, "127.0.0.1:20000".parse().unwrap());
        let text = answer.render(1, 1);
        assert_eq!(AudioSession::parse(text.as_bytes()).as_ref(), Ok(&answer), "{text}");
    }
});
