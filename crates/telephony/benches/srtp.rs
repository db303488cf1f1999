//! What SRTP adds to relaying a packet (docs/PERFORMANCE.md): the relay's
//! per-packet path through two `MediaLeg`s — `unprotect` on the leg it came
//! in on, `accept`, `relay` on the other — once with both legs plain and
//! once with both SRTP (`AES_CM_128_HMAC_SHA1_80`, rtc-srtp), for 20 ms of
//! PCMU (172-byte packets). Prints ns per packet and, for a call (both
//! directions, 50 packets a second each), % of one core.
//!
//! `cargo bench -p earshot-telephony --bench srtp`; `-- --test` (as
//! `./x test` runs it) a short run.

#![allow(clippy::print_stdout)]

use earshot_policy::Timestamp;
use earshot_telephony::leg::{Incoming, MediaLeg};
use earshot_telephony::rtp::RtpView;
use earshot_telephony::sdp::{MediaDirection, Negotiation};
use earshot_telephony::srtp::SdesKey;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

/// Caller → relay leg A, relay leg B → callee; the packets the caller sends.
fn legs(srtp: bool) -> (MediaLeg, MediaLeg, Vec<Vec<u8>>) {
    let (caller_at, callee_at): (SocketAddr, SocketAddr) =
        ("192.0.2.1:4000".parse().unwrap(), "192.0.2.2:6000".parse().unwrap());
    let pair = |theirs: SocketAddr, ours: SocketAddr, session| {
        let (their_key, our_key) = (SdesKey::random(), SdesKey::random());
        let mut them = Negotiation::new(theirs, session);
        let mut us = Negotiation::new(ours, session + 1);
        if srtp {
            them = them.with_srtp(their_key.clone());
            us = us.with_srtp(our_key.clone());
        }
        let answer = us.handle_offer(them.offer(MediaDirection::SendRecv).as_bytes()).unwrap();
        them.handle_answer(answer.as_bytes()).unwrap();
        let (mut far, mut relay) = (MediaLeg::new(1, 1), MediaLeg::new(2, 1));
        if srtp {
            far.set_srtp_key(their_key);
            relay.set_srtp_key(our_key);
        }
        far.set_peer(them.theirs().unwrap().clone());
        relay.set_peer(us.theirs().unwrap().clone());
        (far, relay)
    };
    let (mut caller, a) = pair(caller_at, "198.51.100.1:20000".parse().unwrap(), 1);
    let (_, b) = pair(callee_at, "198.51.100.1:20002".parse().unwrap(), 3);
    let samples: Vec<i16> = (0..160).map(|i| ((i * 37) % 2000 - 1000) as i16).collect();
    let packets = (0..50_000_u32).map(|i| caller.audio(&samples, i * 160, false).unwrap().payload).collect();
    (a, b, packets)
}

/// Relays every packet from A to B; ns per packet.
fn relay(srtp: bool, count: usize) -> f64 {
    let (mut a, mut b, packets) = legs(srtp);
    let from: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let mut buffer = vec![0_u8; 2048];
    let started = Instant::now();
    for packet in packets.iter().take(count) {
        let data = &mut buffer[..packet.len()];
        data.copy_from_slice(packet);
        let Ok(len) = a.unprotect(from, data, Timestamp(0)) else { panic!("refused") };
        let data = &mut data[..len];
        let Incoming::Audio(view) = a.accept(from, data, Timestamp(0)) else { panic!("not audio") };
        let view = RtpView { payload: &[], ..view };
        let (_, bytes) = b.relay(data, &view).unwrap();
        black_box(bytes);
    }
    started.elapsed().as_nanos() as f64 / count as f64
}

fn main() {
    let test = std::env::args().any(|arg| arg == "--test");
    let count = if test { 2_000 } else { 50_000 };
    println!("relaying a 20 ms PCMU packet between two legs, {count} packets");
    for round in 0..3 {
        let (plain, srtp) = (relay(false, count), relay(true, count));
        // A call: 50 packets a second each way through the relay.
        let per_call = |ns: f64| ns * 100.0 / 1e9 * 100.0;
        println!(
            "  round {round}: plain {plain:6.0} ns/packet ({:.4} % of a core per call); SRTP both legs {srtp:6.0} ns/packet ({:.4} %): {:+.0} ns",
            per_call(plain),
            per_call(srtp),
            srtp - plain
        );
    }
}
