//! The door-keeper on the SIP port: `rsipstack` silently drops a message it
//! can't parse, but a SIP user expects a malformed request to be answered
//! `400 Bad Request` (RFC 3261 §8.2, §21.4.1). [`check`] judges one message;
//! malformed requests are answered, what isn't SIP at all is dropped, both
//! are counted, and well-formed messages pass through untouched.
//!
//! - UDP: [`GuardedSocket`] is the socket rsipstack reads from; it checks
//!   each datagram first.
//! - TCP: rsipstack reads the stream itself, so it carries a small patch
//!   (`vendor/rsipstack`, see `vendor/README.md`): each framed message
//!   passes a [`StreamDoor`] before it is parsed. A head whose
//!   Content-Length can't be read gets its 400 too, and then the connection
//!   closes, since the stream has lost its framing.

use crate::shield::{Admission, SharedShield};
use rsipstack::sip::SipMessage;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::transport::stream::StreamVerdict;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the door-keeper turned away.
#[derive(Debug, Default)]
pub struct GuardStats {
    /// Requests answered 400.
    pub bad_requests: AtomicU64,
    /// Messages (UDP or TCP) that were not SIP, or broken responses, dropped.
    pub dropped: AtomicU64,
}

impl GuardStats {
    /// What the door does with `message` judged `verdict`, over UDP (from
    /// `from`) or TCP: pass it, answer it 400, or drop it; refusals counted.
    fn door(&self, message: &[u8], verdict: Verdict, from: Option<SocketAddr>) -> StreamVerdict {
        match verdict {
            Verdict::Pass => StreamVerdict::Pass,
            Verdict::BadRequest(reason) => {
                self.bad_requests.fetch_add(1, Ordering::Relaxed);
                tracing::info!(?from, %reason, "malformed SIP request answered 400");
                StreamVerdict::Answer(bad_request(message, &reason))
            }
            Verdict::Drop => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(?from, len = message.len(), "dropped a message that is not SIP");
                StreamVerdict::Drop
            }
        }
    }
}

/// The SIP UDP socket as rsipstack sees it.
pub struct GuardedSocket {
    socket: tokio::net::UdpSocket,
    stats: Arc<GuardStats>,
    shield: Option<Arc<SharedShield>>,
}

impl GuardedSocket {
    /// Binds `addr`; what passes the door then passes `shield`, if any.
    pub async fn bind(
        addr: SocketAddr,
        stats: Arc<GuardStats>,
        shield: Option<Arc<SharedShield>>,
    ) -> std::io::Result<Self> {
        Ok(Self { socket: tokio::net::UdpSocket::bind(addr).await?, stats, shield })
    }
}

/// What the door-keeper does with a datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the SIP stack.
    Pass,
    /// A request we can answer: 400 with this reason.
    BadRequest(String),
    /// Not SIP, or a broken response: drop it.
    Drop,
}

/// Judges one datagram that arrived on the SIP port.
#[must_use]
pub fn check(datagram: &[u8]) -> Verdict {
    // Keep-alives (CRLF) and empty datagrams are rsipstack's business.
    if datagram.iter().all(u8::is_ascii_whitespace) {
        return Verdict::Pass;
    }
    let looks_like_request = looks_like_request(datagram);
    let message = match SipMessage::try_from(datagram) {
        Ok(message) => message,
        Err(error) if looks_like_request => return Verdict::BadRequest(format!("unparsable: {error}")),
        Err(_) => return Verdict::Drop,
    };
    let missing = [
        ("Via", message.via_header().is_err()),
        ("From", message.from_header().is_err()),
        ("To", message.to_header().is_err()),
        ("Call-ID", message.call_id_header().is_err()),
        ("CSeq", message.cseq_header().and_then(|c| c.seq()).is_err()),
    ]
    .into_iter()
    .filter_map(|(name, bad)| bad.then_some(name))
    .collect::<Vec<_>>();
    match (&message, missing.is_empty()) {
        (_, true) => Verdict::Pass,
        (SipMessage::Request(_), false) => {
            Verdict::BadRequest(format!("missing or bad {}", missing.join(", ")))
        }
        (SipMessage::Response(_), false) => Verdict::Drop,
    }
}

/// Whether the first line reads like a request line (`METHOD uri SIP/2.0`).
fn looks_like_request(message: &[u8]) -> bool {
    let line = message.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    line.trim_end().ends_with("SIP/2.0") && !line.starts_with("SIP/")
}

/// `400 Bad Request` for a request we could not take, echoing whatever of its
/// Via, From, To, Call-ID and CSeq lines could be read so the sender can match it.
#[must_use]
pub fn bad_request(datagram: &[u8], reason: &str) -> Vec<u8> {
    let reason: String = reason.chars().filter(|c| !c.is_control() && *c != '"').take(200).collect();
    refusal(datagram, "400 Bad Request", &[&format!("Warning: 399 earshotd \"{reason}\"")])
}

/// A response `status` (e.g. `400 Bad Request`) to a request we will not
/// take, echoing what of its Via, From, To, Call-ID and CSeq could be read,
/// with `extra` header lines.
fn refusal(datagram: &[u8], status: &str, extra: &[&str]) -> Vec<u8> {
    let text = String::from_utf8_lossy(datagram);
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in text.lines().skip(1) {
        if line.trim().is_empty() {
            break;
        }
        let name = line.split(':').next().unwrap_or_default().trim().to_ascii_lowercase();
        if ["via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"].contains(&name.as_str()) {
            out.push_str(line.trim_end());
            out.push_str("\r\n");
        }
    }
    for line in extra {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for GuardedSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        loop {
            let (len, from) = self.socket.recv_from(buf).await?;
            match self.stats.door(&buf[..len], check(&buf[..len]), Some(from)) {
                StreamVerdict::Pass
                    if self
                        .shield
                        .as_ref()
                        .is_some_and(|shield| shield.admit(from.ip(), &buf[..len]) != Admission::Pass) => {}
                StreamVerdict::Pass => return Ok((len, from)),
                StreamVerdict::Answer(answer) => {
                    let _ = self.socket.send_to(&answer, from).await;
                }
                StreamVerdict::Drop => {}
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}

/// The door-keeper of the TCP and TLS connections (rsipstack's stream guard).
pub struct StreamDoor {
    /// Where it counts what it turned away.
    pub stats: Arc<GuardStats>,
    /// What passes the door then passes this, if any.
    pub shield: Option<Arc<SharedShield>>,
}

impl rsipstack::transport::stream::StreamGuard for StreamDoor {
    fn check(&self, message: &[u8], framed: bool) -> StreamVerdict {
        self.check_from(message, framed, None)
    }

    fn check_from(&self, message: &[u8], framed: bool, peer: Option<SocketAddr>) -> StreamVerdict {
        let verdict = if framed {
            check(message)
        } else if looks_like_request(message) {
            Verdict::BadRequest("the Content-Length can't be read".into())
        } else {
            Verdict::Drop
        };
        match (self.stats.door(message, verdict, peer), self.shield.as_ref().zip(peer)) {
            (StreamVerdict::Pass, Some((shield, peer))) => match shield.admit(peer.ip(), message) {
                Admission::Pass => StreamVerdict::Pass,
                Admission::Drop => StreamVerdict::Drop,
                // A stream does not retransmit: say when to come back.
                Admission::Busy => StreamVerdict::Answer(refusal(
                    message,
                    "503 Service Unavailable",
                    &["Retry-After: 5", "Warning: 399 earshotd \"too many requests\""],
                )),
            },
            (verdict, _) => verdict,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str = "OPTIONS sip:earshot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
        From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:earshot@127.0.0.1>\r\nCall-ID: abc\r\nCSeq: 1 OPTIONS\r\n\
        Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn a_well_formed_request_passes() {
        assert!(matches!(check(OPTIONS.as_bytes()), Verdict::Pass));
    }

    #[test]
    fn a_request_without_call_id_gets_400_that_echoes_its_via() {
        let broken = OPTIONS.replace("Call-ID: abc\r\n", "");
        let Verdict::BadRequest(reason) = check(broken.as_bytes()) else { panic!("not refused") };
        assert!(reason.contains("Call-ID"), "{reason}");
        let answer = String::from_utf8(bad_request(broken.as_bytes(), &reason)).unwrap();
        assert!(answer.starts_with("SIP/2.0 400 Bad Request\r\n"));
        assert!(answer.contains("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"));
        assert!(answer.contains("CSeq: 1 OPTIONS\r\n"));
    }

    #[test]
    fn the_stream_door_answers_and_counts_what_it_turns_away() {
        use rsipstack::transport::stream::StreamGuard as _;
        let door = StreamDoor { stats: Arc::default(), shield: None };
        assert_eq!(door.check(OPTIONS.as_bytes(), true), StreamVerdict::Pass);
        let broken = OPTIONS.replace("Call-ID: abc\r\n", "");
        let StreamVerdict::Answer(answer) = door.check(broken.as_bytes(), true) else {
            panic!("not answered")
        };
        assert!(String::from_utf8(answer).unwrap().starts_with("SIP/2.0 400 Bad Request\r\n"));
        let unframable = OPTIONS.replace("Content-Length: 0", "Content-Length: many");
        let StreamVerdict::Answer(answer) = door.check(unframable.as_bytes(), false) else {
            panic!("not answered")
        };
        assert!(String::from_utf8(answer).unwrap().contains("Content-Length can't be read"));
        assert_eq!(door.check(b"SIP/2.0 200 OK\r\nContent-Length: x\r\n\r\n", false), StreamVerdict::Drop);
        assert_eq!(door.check(b"\x00\x01noise\r\n\r\n", true), StreamVerdict::Drop);
        assert_eq!(door.stats.bad_requests.load(Ordering::Relaxed), 2);
        assert_eq!(door.stats.dropped.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn over_a_stream_a_flood_is_answered_503_and_a_scanner_nothing() {
        use crate::shield::ShieldConfig;
        use rsipstack::transport::stream::StreamGuard as _;
        let config =
            ShieldConfig { new_requests_burst: 1.0, new_requests_per_second: 0.1, ..ShieldConfig::default() };
        let door = StreamDoor { stats: Arc::default(), shield: Some(Arc::new(SharedShield::new(config))) };
        let peer = Some(SocketAddr::from(([192, 0, 2, 7], 40_000)));
        assert_eq!(door.check_from(OPTIONS.as_bytes(), true, peer), StreamVerdict::Pass);
        let StreamVerdict::Answer(answer) = door.check_from(OPTIONS.as_bytes(), true, peer) else {
            panic!("a flood over TCP is answered")
        };
        let answer = String::from_utf8(answer).unwrap();
        assert!(answer.starts_with("SIP/2.0 503 Service Unavailable\r\n"), "{answer}");
        assert!(answer.contains("Retry-After: 5\r\n") && answer.contains("Call-ID: abc\r\n"), "{answer}");
        let scanner = OPTIONS.replace("Max-Forwards: 70", "Max-Forwards: 70\r\nUser-Agent: friendly-scanner");
        let other = Some(SocketAddr::from(([192, 0, 2, 8], 40_000)));
        assert_eq!(door.check_from(scanner.as_bytes(), true, other), StreamVerdict::Drop);
    }

    #[test]
    fn noise_is_dropped_not_answered() {
        assert!(matches!(check(b"\x80\x00\x01\x02garbage"), Verdict::Drop));
        assert!(matches!(check(b"hello there"), Verdict::Drop));
    }
}
