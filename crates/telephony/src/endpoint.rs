//! The media of a phone's call, sans-IO: one [`MediaLeg`] to the far end,
//! 20 ms frames of captured audio in and out as RTP, received RTP through
//! the [`JitterBuffer`] and its concealment to the speaker, keys sent and
//! received as RFC 4733 events. The app's phone and the demo's carrier each
//! run one per call on a socket and a sound card (or a script); here it is
//! driven by the caller with `now`.
//!
//! ```
//! use earshot_policy::Timestamp;
//! use earshot_telephony::endpoint::AudioEndpoint;
//! use earshot_telephony::sdp::Negotiation;
//!
//! let (a_addr, b_addr) = ("192.0.2.1:4000".parse().unwrap(), "192.0.2.2:6000".parse().unwrap());
//! let (mut a_sdp, mut b_sdp) = (Negotiation::new(a_addr, 1), Negotiation::new(b_addr, 2));
//! let offer = a_sdp.offer(earshot_telephony::sdp::MediaDirection::SendRecv);
//! let answer = b_sdp.handle_offer(offer.as_bytes()).unwrap();
//! a_sdp.handle_answer(answer.as_bytes()).unwrap();
//! let (mut a, mut b) = (AudioEndpoint::new(11, 1), AudioEndpoint::new(22, 1));
//! a.set_peer(a_sdp.theirs().unwrap().clone());
//! b.set_peer(b_sdp.theirs().unwrap().clone());
//! let mut heard = [0_i16; 160];
//! for tick in 0..10 {
//!     let now = Timestamp(tick * 20);
//!     a.send_audio(now, &[1_000; 160]);
//!     while let Some(datagram) = a.poll_transmit() {
//!         assert_eq!(datagram.destination, b_addr);
//!         b.handle_datagram(now, a_addr, &datagram.payload);
//!     }
//!     b.pull_audio(now, &mut heard);
//! }
//! assert!(heard.iter().all(|s| (*s - 1_000).abs() < 40));
//! ```

use crate::dtmf::{DtmfReceiver, KeyEdge};
use crate::jitter::{Arrival, FrameKind, JitterBuffer, JitterStats};
use crate::leg::{Incoming, MediaLeg, Transmit};
use crate::plc::FRAME;
use crate::sdp::{AudioSession, MediaDirection};
use earshot_policy::{Key, Timestamp};
use std::collections::VecDeque;
use std::net::SocketAddr;

/// Samples per millisecond.
const PER_MS: i64 = 8;

/// What an endpoint counted.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EndpointStats {
    /// RTP packets sent (audio and events).
    pub sent_packets: u64,
    /// Audio packets received from the peer.
    pub received_packets: u64,
    /// Datagrams from someone who is not the peer.
    pub foreign_packets: u64,
    /// Datagrams that were not RTP we agreed to.
    pub garbage_packets: u64,
    /// What the jitter buffer did.
    pub jitter: JitterStats,
    /// The round-trip time to the peer from its RTCP reports, in ms
    /// (none until a report echoed ours, or if the peer sends none).
    pub round_trip_ms: Option<f64>,
    /// SRTP packets refused (forged or replayed), and those that came
    /// before the peer's key and were pushed out of the hold.
    pub srtp: crate::srtp::SrtpStats,
}

/// One call's media at a phone.
#[derive(Debug)]
pub struct AudioEndpoint {
    leg: MediaLeg,
    jitter: JitterBuffer,
    receiver: DtmfReceiver,
    keys: VecDeque<KeyEdge>,
    transmits: VecDeque<Transmit>,
    /// Our audio clock: the timestamp of the next frame, and when the last
    /// frame was sent.
    clock: Option<(u32, Timestamp)>,
    decoded: Vec<i16>,
    /// A received SRTP packet, decrypted (kept for the call).
    plain: Vec<u8>,
    stats: EndpointStats,
}

impl AudioEndpoint {
    /// An endpoint sending as `ssrc` from `first_sequence` (both random).
    #[must_use]
    pub fn new(ssrc: u32, first_sequence: u16) -> Self {
        Self {
            leg: MediaLeg::new(ssrc, first_sequence),
            jitter: JitterBuffer::new(),
            receiver: DtmfReceiver::new(),
            keys: VecDeque::new(),
            transmits: VecDeque::new(),
            clock: None,
            decoded: Vec::with_capacity(FRAME),
            plain: Vec::new(),
            stats: EndpointStats::default(),
        }
    }

    /// The peer's description, after each offer/answer.
    pub fn set_peer(&mut self, theirs: AudioSession) {
        self.leg.set_peer(theirs);
        self.take_held();
    }

    /// What came before the peer's key (its answer), once the key is
    /// known: taken at the times it came.
    fn take_held(&mut self) {
        for (from, held, at) in self.leg.take_early() {
            self.take_srtp(at, from, &held, true);
        }
    }

    /// Our own direction where narrower (on hold: `SendOnly` or `Inactive`).
    pub fn set_direction(&mut self, ours: MediaDirection) {
        self.leg.set_direction(ours);
    }

    /// The call's media is SRTP, ours protected with `key` (the key our
    /// SDP gave); see [`MediaLeg::set_srtp_key`].
    pub fn set_srtp_key(&mut self, key: crate::srtp::SdesKey) {
        self.leg.set_srtp_key(key);
    }

    /// A datagram from `from`, received at `now`.
    pub fn handle_datagram(&mut self, now: Timestamp, from: SocketAddr, data: &[u8]) {
        if !self.leg.is_srtp() {
            self.take_as(now, from, data, false);
            return;
        }
        self.take_srtp(now, from, data, false);
    }

    /// An SRTP datagram (`held`: one held for the peer's key): checked,
    /// decrypted and taken (the leg holds it when the peer's key is not
    /// known yet).
    fn take_srtp(&mut self, now: Timestamp, from: SocketAddr, data: &[u8], held: bool) {
        let mut plain = std::mem::take(&mut self.plain);
        plain.clear();
        plain.extend_from_slice(data);
        if let Ok(len) = self.leg.unprotect(from, &mut plain, now) {
            self.take_as(now, from, &plain[..len], held);
        }
        self.plain = plain;
    }

    /// A datagram in clear (`held`: one held for the peer's key).
    fn take_as(&mut self, now: Timestamp, from: SocketAddr, data: &[u8], held: bool) {
        let receives = self.leg.direction().receives();
        let incoming =
            if held { self.leg.accept_held(from, data, now) } else { self.leg.accept(from, data, now) };
        match incoming {
            Incoming::Audio(view) => {
                self.stats.received_packets += 1;
                if receives {
                    self.leg.codec().decode_into(view.payload, &mut self.decoded);
                    let arrival =
                        Arrival { sequence: view.sequence, timestamp: view.timestamp, ssrc: view.ssrc };
                    self.jitter.handle_packet(now, arrival, &self.decoded);
                }
            }
            Incoming::Event(view, event) => {
                self.keys.extend(self.receiver.handle(view.timestamp, event, now));
            }
            Incoming::Control => {}
            Incoming::Foreign => self.stats.foreign_packets += 1,
            Incoming::Garbage => self.stats.garbage_packets += 1,
        }
    }

    /// 20 ms of captured audio at `now`: a packet, when our direction sends.
    pub fn send_audio(&mut self, now: Timestamp, samples: &[i16]) {
        let (timestamp, marker) = self.next_frame(now, samples.len());
        if let Some(transmit) = self.leg.audio(samples, timestamp, marker) {
            self.stats.sent_packets += 1;
            self.transmits.push_back(transmit);
        }
    }

    /// The next 20 ms for the speaker at `now`, into `out`.
    pub fn pull_audio(&mut self, now: Timestamp, out: &mut [i16; FRAME]) -> FrameKind {
        self.jitter.pull(now, out)
    }

    /// Whether the far end's next frame is here whole
    /// ([`JitterBuffer::next_is_whole`]).
    #[must_use]
    pub fn next_frame_is_whole(&self) -> bool {
        self.jitter.next_is_whole()
    }

    /// `key` goes down at `now` (the keypad).
    pub fn press_key(&mut self, key: Key, now: Timestamp) {
        let timestamp = self.clock_at(now);
        self.leg.press_key(key, timestamp, now);
        self.flush_keys(now);
    }

    /// The key down comes up at `now`.
    pub fn release_key(&mut self, now: Timestamp) {
        self.leg.release_key(now);
        self.flush_keys(now);
    }

    /// `key` pressed for `duration_ms` at `now` (a button that sends keys,
    /// such as pause recording's `#11#`), after any key still sounding.
    pub fn tap_key(&mut self, key: Key, duration_ms: i64, now: Timestamp) {
        let timestamp = self.clock_at(now);
        self.leg.tap_key(key, duration_ms, timestamp, now);
        self.flush_keys(now);
    }

    /// Time has reached `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.flush_keys(now);
        if self.receiver.poll_timeout().is_some_and(|at| at <= now) {
            self.keys.extend(self.receiver.handle_timeout(now));
        }
    }

    /// When [`Self::handle_timeout`] is next due (keys sounding, a key
    /// from the peer that never ended, our next RTCP report), if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        [self.leg.poll_timeout(), self.receiver.poll_timeout()].into_iter().flatten().min()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next key pressed or released at the far end.
    pub fn poll_key(&mut self) -> Option<KeyEdge> {
        self.keys.pop_front()
    }

    /// What was counted so far.
    #[must_use]
    pub fn stats(&self) -> EndpointStats {
        EndpointStats {
            jitter: self.jitter.stats(),
            round_trip_ms: self.leg.round_trip_ms(),
            srtp: self.leg.srtp_stats(),
            ..self.stats
        }
    }

    fn flush_keys(&mut self, now: Timestamp) {
        let timestamp = self.clock_at(now);
        let mut out = Vec::new();
        self.leg.handle_timeout(timestamp, now, &mut out);
        self.stats.sent_packets += out.iter().filter(|t| !crate::rtcp::is_rtcp(&t.payload)).count() as u64;
        self.transmits.extend(out);
    }

    /// The timestamp of a frame of `samples` sent at `now`, and whether it
    /// starts a talk spurt (the first, or after a pause in sending: the
    /// clock moves on by the time that passed).
    fn next_frame(&mut self, now: Timestamp, samples: usize) -> (u32, bool) {
        let (timestamp, marker) = match self.clock {
            None => (self.leg.next_timestamp(), true),
            Some((next, last)) => {
                let gap = now.millis_since(last);
                if gap > 3 * 20 {
                    let skipped = (gap - 20) * PER_MS / FRAME as i64 * FRAME as i64;
                    (next.wrapping_add(skipped as u32), true)
                } else {
                    (next, false)
                }
            }
        };
        self.clock = Some((timestamp.wrapping_add(samples as u32), now));
        (timestamp, marker)
    }

    /// Our clock's timestamp at `now`, for a key that starts now.
    fn clock_at(&self, now: Timestamp) -> u32 {
        match self.clock {
            None => self.leg.next_timestamp(),
            Some((next, last)) => {
                let since = (now.millis_since(last) - 20).max(0);
                next.wrapping_add((since * PER_MS) as u32)
            }
        }
    }
}
