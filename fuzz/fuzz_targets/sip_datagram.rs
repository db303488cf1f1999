//! Any datagram on the SIP port: the door-keeper judges it without
//! panicking, a 400 it writes is itself a SIP response, and whatever it lets
//! through parses; a digest answer and an SDP body in it parse or fail cleanly.
#![no_main]

use earshot_sip::digest::Credentials;
use earshot_sip::guard::{Verdict, bad_request, check};
use earshot_telephony::sdp::AudioSession;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match check(data) {
        Verdict::BadRequest(reason) => {
            let answer = bad_request(data, &reason);
            assert!(answer.starts_with(b"SIP/2.0 400 Bad Request\r\n"));
            assert!(answer.ends_with(b"\r\n\r\n"));
        }
        Verdict::Pass | Verdict::Drop => {}
    }
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("Authorization:") {
            if let Some(credentials) = Credentials::parse(value.trim()) {
                let _ = credentials.verify("0123456789abcdef0123456789abcdef", "REGISTER");
            }
        }
    }
    if let Some(at) = text.find("\r\n\r\n") {
        let _ = AudioSession::parse(&data[(at + 4).min(data.len())..]);
    }
});
