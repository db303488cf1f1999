//! One RTP media leg, sans-IO: what the SDP agreed (codec, events, which
//! way media may flow, where the peer is), symmetric RTP latching, one
//! clean outgoing stream (our SSRC, sequence and timestamps), and RFC 4733
//! events in and out. It knows nothing of sockets: datagrams come in with
//! their source and go out as [`Transmit`]s.
//!
//! The service's relay and the app's [`crate::endpoint::AudioEndpoint`]
//! both hold one per leg: the relay asks [`MediaLeg::accept`] what a
//! datagram is (without copying it) and relays or records it; the
//! endpoint decodes it into its jitter buffer.
//!
//! ```
//! use earshot_telephony::leg::{Incoming, MediaLeg};
//! use earshot_telephony::sdp::AudioSession;
//! use earshot_policy::Timestamp;
//!
//! let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
//! let mut leg = MediaLeg::new(0x1234, 1);
//! leg.set_peer(AudioSession::parse(offer.as_bytes()).unwrap());
//! // The phone sends from another port than it described: latched.
//! let packet = [0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9, 0xff, 0xff];
//! let from = "192.0.2.7:4002".parse().unwrap();
//! assert!(matches!(leg.accept(from, &packet, Timestamp(0)), Incoming::Audio(_)));
//! assert_eq!(leg.destination(), Some(from));
//! ```

use crate::dtmf::{DtmfSender, TelephoneEvent};
use crate::g711::G711;
use crate::rtcp::RtcpSession;
use crate::rtp::{OutgoingStream, RtpView};
use crate::sdp::{AudioSession, MediaDirection};
use crate::srtp::{Refused, SdesKey, SrtpSession, SrtpStats};
use earshot_policy::{Key, Timestamp};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddr;

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub destination: SocketAddr,
    /// What.
    pub payload: Vec<u8>,
}

/// What a received datagram is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// Audio in the agreed codec.
    Audio(RtpView<'a>),
    /// An RFC 4733 keypad event.
    Event(RtpView<'a>, TelephoneEvent),
    /// An RTCP report from the peer, taken in by the leg (on the RTP
    /// port, when both agreed to `a=rtcp-mux`).
    Control,
    /// From an address that is not the leg's peer (or no peer yet).
    Foreign,
    /// Not RTP, or a payload type or event the leg did not agree to.
    Garbage,
}

/// One leg's media.
#[derive(Debug)]
pub struct MediaLeg {
    peer: Option<AudioSession>,
    /// The address packets come from, learned from the first one, and the
    /// SSRC of the stream last accepted from it.
    latched: Option<SocketAddr>,
    latched_ssrc: Option<u32>,
    codec: G711,
    /// Our direction: whether we may send and receive.
    direction: MediaDirection,
    out: OutgoingStream,
    sender: DtmfSender,
    /// RTCP, when the peer agreed to send it on the RTP port.
    rtcp: RtcpSession,
    rtcp_mux: bool,
    /// Our SRTP key, when this leg takes media only as SRTP; the session
    /// once the peer described its key too. While a leg that must be SRTP
    /// has no session, nothing is sent and nothing taken (fail closed).
    our_key: Option<SdesKey>,
    srtp: Option<SrtpSession>,
    srtp_stats: SrtpStats,
    /// Packets that came before the peer's key ([`Refused::Unkeyed`]),
    /// the newest [`EARLY_MOST`], with where from and when they came,
    /// checked once the key is known.
    early: VecDeque<(SocketAddr, Vec<u8>, Timestamp)>,
}

/// Most packets held for a key not known yet: 320 ms of 20 ms frames,
/// more than an answer takes to follow its first packets.
const EARLY_MOST: usize = 16;

impl MediaLeg {
    /// A leg sending as `ssrc`, its first sequence number `first_sequence`
    /// (both should be random).
    #[must_use]
    pub fn new(ssrc: u32, first_sequence: u16) -> Self {
        Self {
            peer: None,
            latched: None,
            latched_ssrc: None,
            codec: G711::Pcmu,
            direction: MediaDirection::SendRecv,
            out: OutgoingStream::new(ssrc, first_sequence),
            sender: DtmfSender::new(),
            rtcp: RtcpSession::new(ssrc, &format!("{ssrc:08x}@earshot")),
            rtcp_mux: false,
            our_key: None,
            srtp: None,
            srtp_stats: SrtpStats::default(),
            early: VecDeque::new(),
        }
    }

    /// This leg's media is SRTP only, ours protected with `key` (the key
    /// our SDP gave); it starts once the peer's description gives its own.
    pub fn set_srtp_key(&mut self, key: SdesKey) {
        self.our_key = Some(key);
        self.update_srtp();
    }

    /// Whether media on this leg is SRTP.
    #[must_use]
    pub fn is_srtp(&self) -> bool {
        self.our_key.is_some()
    }

    /// SRTP packets refused so far (forged or replayed), and those let go
    /// unchecked before the peer's key.
    #[must_use]
    pub fn srtp_stats(&self) -> SrtpStats {
        self.srtp_stats
    }

    /// Checks and decrypts a datagram received from `from` at `now` in
    /// place, when this leg is SRTP: the length of what [`Self::accept`]
    /// should then be given (`data[..len]`). A plain leg takes the datagram
    /// as it is.
    ///
    /// # Errors
    /// Why a packet was refused (also counted in [`Self::srtp_stats`]); a
    /// leg that must be SRTP and has no peer key yet refuses everything as
    /// [`Refused::Unkeyed`], which is not counted as forged or replayed:
    /// the leg holds the newest few such packets for when the key is known
    /// ([`Self::take_early`]; a stranger's flood before the answer cannot
    /// grow the hold), and counts each one pushed out of the hold
    /// (`unkeyed_dropped`). Those still held when a leg ends without the
    /// peer's key are counted nowhere: a call that never got its answer.
    pub fn unprotect(&mut self, from: SocketAddr, data: &mut [u8], now: Timestamp) -> Result<usize, Refused> {
        if self.our_key.is_none() {
            return Ok(data.len());
        }
        let Some(srtp) = &mut self.srtp else {
            if self.early.len() == EARLY_MOST {
                self.early.pop_front();
                self.srtp_stats.unkeyed_dropped += 1;
            }
            self.early.push_back((from, data.to_vec(), now));
            return Err(Refused::Unkeyed);
        };
        let result = srtp.unprotect(data);
        if let Err(refused) = result {
            self.srtp_stats.count(refused);
        }
        result
    }

    /// The packets held for the peer's key, oldest first, with where from
    /// and when they came, once it is known (each then to
    /// [`Self::unprotect`], and to [`Self::accept_held`], not
    /// [`Self::accept`]); nothing before.
    pub fn take_early(&mut self) -> VecDeque<(SocketAddr, Vec<u8>, Timestamp)> {
        if self.srtp.is_none() {
            return VecDeque::new();
        }
        std::mem::take(&mut self.early)
    }

    /// A packet of ours as it goes on the wire: SRTP on an SRTP leg.
    fn seal(&mut self, packet: Vec<u8>) -> Option<Vec<u8>> {
        match (&self.our_key, &mut self.srtp) {
            (None, _) => Some(packet),
            (Some(_), Some(srtp)) => srtp.protect(&packet),
            (Some(_), None) => None,
        }
    }

    /// The SRTP session follows the keys: made once both are known, the
    /// peer's side re-keyed when a new description changes its key (ours,
    /// and with it our rollover counter, stays for the whole leg).
    fn update_srtp(&mut self) {
        let (Some(ours), Some(theirs)) = (&self.our_key, self.peer.as_ref().and_then(|p| p.crypto.as_ref()))
        else {
            return;
        };
        match &mut self.srtp {
            Some(srtp) => srtp.set_their_key(&theirs.key),
            None => self.srtp = Some(SrtpSession::new(ours, &theirs.key)),
        }
    }

    /// The peer described its audio (its offer or answer): its codec (the
    /// first it lists), events, address; our direction answers theirs. A
    /// new address forgets the latched one.
    pub fn set_peer(&mut self, theirs: AudioSession) {
        self.codec = theirs.codec();
        self.direction = theirs.direction.answer();
        self.rtcp_mux = theirs.rtcp_mux;
        if self.peer.as_ref().is_none_or(|p| p.addr != theirs.addr) {
            self.latched = None;
            self.latched_ssrc = None;
        }
        self.peer = Some(theirs);
        self.update_srtp();
    }

    /// Our own direction, where it is narrower than the answer to theirs
    /// (we hold: `SendOnly`).
    pub fn set_direction(&mut self, ours: MediaDirection) {
        let theirs = self.peer.as_ref().map_or(MediaDirection::SendRecv, |p| p.direction.answer());
        self.direction = ours.and(theirs);
    }

    /// The codec audio goes in.
    #[must_use]
    pub fn codec(&self) -> G711 {
        self.codec
    }

    /// Our direction.
    #[must_use]
    pub fn direction(&self) -> MediaDirection {
        self.direction
    }

    /// The payload type the peer takes keypad events on, if any.
    #[must_use]
    pub fn telephone_event(&self) -> Option<u8> {
        self.peer.as_ref().and_then(|p| p.telephone_event)
    }

    /// What the datagram `data` from `from`, received at `now`, is; a
    /// report from the peer is taken in here. Symmetric RTP: the first
    /// source heard sending RTP the leg agreed to is latched (a phone
    /// behind NAT, or one that describes another interface than it sends
    /// from); after that only the latched source, or the address the peer
    /// described, is the peer. Garbage latches nothing, so a scan or a
    /// stray packet on a reused port can't take the call's media. The same
    /// stream (its SSRC) from a new address is the peer's NAT having moved
    /// it: latched again, so the call's audio follows.
    pub fn accept<'a>(&mut self, from: SocketAddr, data: &'a [u8], now: Timestamp) -> Incoming<'a> {
        self.accept_as(from, data, now, false)
    }

    /// [`Self::accept`] for a packet held for the peer's key
    /// ([`Self::take_early`]): it latches nothing but the address the peer
    /// described. (Its tag checked, but a copy of a genuine packet sent
    /// from elsewhere checks too, and the hold's order is a stranger's to
    /// push: it must not move where the call's media goes.)
    pub fn accept_held<'a>(&mut self, from: SocketAddr, data: &'a [u8], now: Timestamp) -> Incoming<'a> {
        self.accept_as(from, data, now, true)
    }

    fn accept_as<'a>(
        &mut self,
        from: SocketAddr,
        data: &'a [u8],
        now: Timestamp,
        held: bool,
    ) -> Incoming<'a> {
        let Some(peer) = &self.peer else { return Incoming::Foreign };
        let known = from == peer.addr || self.latched == Some(from);
        if self.rtcp_mux && crate::rtcp::is_rtcp(data) {
            return match (known, self.rtcp.handle_report(now, data)) {
                (false, _) => Incoming::Foreign,
                (true, Ok(())) => Incoming::Control,
                (true, Err(_)) => Incoming::Garbage,
            };
        }
        let Ok(view) = RtpView::parse(data) else {
            return if known || self.latched.is_none() { Incoming::Garbage } else { Incoming::Foreign };
        };
        let moved = !known && self.latched.is_some() && self.latched_ssrc == Some(view.ssrc);
        if !known && self.latched.is_some() && !moved {
            return Incoming::Foreign;
        }
        let incoming = if Some(view.payload_type) == peer.telephone_event {
            match TelephoneEvent::parse(view.payload) {
                Ok(event) => Incoming::Event(view, event),
                Err(_) => return Incoming::Garbage,
            }
        } else if view.payload_type == self.codec.payload_type() {
            Incoming::Audio(view)
        } else {
            return Incoming::Garbage;
        };
        if held && from != peer.addr && self.latched != Some(from) {
            self.rtcp.received(now, view.ssrc, view.sequence, view.timestamp);
            return incoming;
        }
        if self.latched != Some(from) && (self.latched.is_none() || from == peer.addr || moved) {
            self.latched = Some(from);
        }
        self.latched_ssrc = Some(view.ssrc);
        self.rtcp.received(now, view.ssrc, view.sequence, view.timestamp);
        incoming
    }

    /// Where our RTP goes: the latched source, else the described address;
    /// none while our direction does not send, or the peer gave no address.
    #[must_use]
    pub fn destination(&self) -> Option<SocketAddr> {
        if !self.direction.sends() || (self.our_key.is_some() && self.srtp.is_none()) {
            return None;
        }
        self.rtcp_destination()
    }

    /// Rewrites a packet from another leg (already parsed as `view`) into
    /// this leg's stream, in place; where to send it, if anywhere, and the
    /// bytes to send (`data` itself, or its SRTP on an SRTP leg). Nothing
    /// is stamped while nothing is sent (on hold), so the peer sees no gap
    /// in sequence numbers when media comes back.
    pub fn relay<'d>(
        &mut self,
        data: &'d mut [u8],
        view: &RtpView<'_>,
    ) -> Option<(SocketAddr, Cow<'d, [u8]>)> {
        let destination = self.destination()?;
        self.out.relay(data, view);
        let timestamp = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
        self.rtcp.sent(timestamp, view.payload.len());
        match &mut self.srtp {
            _ if self.our_key.is_none() => Some((destination, Cow::Borrowed(data))),
            Some(srtp) => Some((destination, Cow::Owned(srtp.protect(data)?))),
            None => None,
        }
    }

    /// Rewrites an event packet from another leg into this leg's stream,
    /// with this peer's event payload type; where to send it, if this peer
    /// takes events.
    pub fn relay_event<'d>(
        &mut self,
        data: &'d mut [u8],
        view: &RtpView<'_>,
    ) -> Option<(SocketAddr, Cow<'d, [u8]>)> {
        let pt = self.telephone_event()?;
        self.destination()?;
        data[1] = (data[1] & 0x80) | pt;
        self.relay(data, view)
    }

    /// The next relayed packet continues our timestamps (after packets of
    /// our own, such as a prompt).
    pub fn reanchor(&mut self) {
        self.out.reanchor();
    }

    /// A packet of our own audio, `samples` encoded in the leg's codec,
    /// at `timestamp` on our stream's clock (see [`Self::next_timestamp`]).
    pub fn audio(&mut self, samples: &[i16], timestamp: u32, marker: bool) -> Option<Transmit> {
        let destination = self.destination()?;
        let payload = self.codec.encode(samples);
        let mut packet = Vec::with_capacity(12 + payload.len());
        self.out.packet(self.codec.payload_type(), marker, timestamp, &payload, &mut packet);
        self.rtcp.sent(timestamp, payload.len());
        Some(Transmit { destination, payload: self.seal(packet)? })
    }

    /// The timestamp of a packet of ours sent now: 20 ms after the last.
    #[must_use]
    pub fn next_timestamp(&self) -> u32 {
        self.out.now_timestamp()
    }

    /// The timestamp of the last packet sent.
    #[must_use]
    pub fn last_timestamp(&self) -> u32 {
        self.out.last_timestamp()
    }

    /// `key` goes down at `now`, stamped `timestamp` (RFC 4733: every
    /// packet of a press carries the timestamp it started at).
    pub fn press_key(&mut self, key: Key, timestamp: u32, now: Timestamp) {
        self.sender.press(key, timestamp, now);
    }

    /// The key down comes up at `now`.
    pub fn release_key(&mut self, now: Timestamp) {
        self.sender.release(now);
    }

    /// `key` pressed for `duration_ms` from `now` (queued behind a key
    /// still sounding).
    pub fn tap_key(&mut self, key: Key, duration_ms: i64, timestamp: u32, now: Timestamp) {
        self.sender.tap(key, duration_ms, timestamp, now);
    }

    /// Time has reached `now`: keypad event packets that are due, to send.
    /// `timestamp` stamps a queued key that starts now.
    pub fn handle_timeout(&mut self, timestamp: u32, now: Timestamp, out: &mut Vec<Transmit>) {
        if self.sender.poll_timeout().is_some_and(|at| at <= now) {
            self.sender.handle_timeout(timestamp, now);
        }
        let (pt, destination) = (self.telephone_event(), self.destination());
        while let Some(event) = self.sender.poll_packet() {
            let (Some(pt), Some(destination)) = (pt, destination) else { continue };
            let mut packet = Vec::with_capacity(16);
            self.out.packet(pt, event.marker, event.press, &event.event.to_bytes(), &mut packet);
            self.rtcp.sent(event.press, 4);
            if let Some(payload) = self.seal(packet) {
                out.push(Transmit { destination, payload });
            }
        }
        // Reports go on while on hold (RFC 3264 §5.1), to where RTP would.
        if self.rtcp_mux
            && let Some(report) = self.rtcp.handle_timeout(now)
            && let Some(destination) = self.rtcp_destination()
            && let Some(payload) = self.seal(report)
        {
            out.push(Transmit { destination, payload });
        }
    }

    /// When [`Self::handle_timeout`] is next due: a key sounding, or our
    /// next RTCP report.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let report = self.rtcp_mux.then(|| self.rtcp.poll_timeout());
        [self.sender.poll_timeout(), report].into_iter().flatten().min()
    }

    /// The round-trip time to the peer, from its RTCP reports, in ms.
    #[must_use]
    pub fn round_trip_ms(&self) -> Option<f64> {
        self.rtcp.round_trip_ms()
    }

    /// Where RTCP goes: where RTP would, whatever our direction.
    fn rtcp_destination(&self) -> Option<SocketAddr> {
        let peer = self.peer.as_ref()?;
        self.latched.or((peer.addr.port() != 0 && !peer.addr.ip().is_unspecified()).then_some(peer.addr))
    }

    /// Whether a key is sounding or waiting to.
    #[must_use]
    pub fn is_sending_keys(&self) -> bool {
        self.sender.poll_timeout().is_some()
    }
}
