//! SDP offer/answer for one audio stream of G.711 with RFC 4733 events
//! (RFC 3264), the only media Earshot speaks.
//!
//! Parsing goes through `ezk-sdp-types`; what we send is rendered here from
//! [`AudioSession`], because our offers and answers are a fixed handful of
//! lines and building the crate's full description type for them would be
//! longer than the text itself.
//!
//! [`Negotiation`] is one side of one dialog: it keeps the dialog's `o=`
//! session id and moves its version up on every description it sends
//! (RFC 3264 §8: a peer may ignore a description whose version did not
//! change, so a second hold or resume would go unheard), answers with what
//! both sides take (codec, events, direction), and remembers what the peer
//! described last.
//!
//! ```
//! use earshot_telephony::sdp::{MediaDirection, Negotiation};
//!
//! let mut caller = Negotiation::new("192.0.2.1:4000".parse().unwrap(), 7);
//! let mut callee = Negotiation::new("192.0.2.2:6000".parse().unwrap(), 9);
//! let offer = caller.offer(MediaDirection::SendRecv);
//! let answer = callee.handle_offer(offer.as_bytes()).unwrap();
//! caller.handle_answer(answer.as_bytes()).unwrap();
//! // Hold: the same session, the next version.
//! let hold = caller.offer(MediaDirection::SendOnly);
//! assert!(hold.contains("o=earshot 7 2 "));
//! let answer = callee.handle_offer(hold.as_bytes()).unwrap();
//! assert!(answer.contains("a=recvonly"));
//! ```

use crate::g711::G711;
use crate::srtp::SdesKey;
use bytesstr::BytesStr;
use ezk_sdp_types::{
    Direction, MediaType, SessionDescription, SrtpSessionParam, SrtpSuite, TaggedAddress, TransportProtocol,
};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// The RTP payload type we offer for `telephone-event/8000`.
pub const TELEPHONE_EVENT_PT: u8 = 101;

/// Why a body is not an offer or answer we can use.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum SdpError {
    /// Not SDP at all.
    #[error("the session description does not parse: {0}")]
    Syntax(String),
    /// No `m=audio` line with a port.
    #[error("the session description offers no audio stream")]
    NoAudio,
    /// Audio only encrypted in a way we do not speak: DTLS-SRTP, or SDES
    /// without an `AES_CM_128_HMAC_SHA1_80` key, or SRTP where the
    /// signalling is in clear (its keys would be readable on the way).
    #[error(
        "the session description offers audio only encrypted in a way we do not take here (we take SRTP keyed by SDES with AES_CM_128_HMAC_SHA1_80, over SIP on TLS)"
    )]
    EncryptedOnly,
    /// Audio in clear where we take only SRTP (the signalling is TLS).
    #[error(
        "the session description offers audio in clear (RTP/AVP without a=crypto); over SIP on TLS media must be SRTP"
    )]
    Unencrypted,
    /// Neither PCMU nor PCMA among the audio formats.
    #[error("the session description offers no codec we speak (PCMU or PCMA)")]
    NoCommonCodec,
    /// No usable IP address for the audio stream.
    #[error("the session description gives no IP address for its audio")]
    NoAddress,
}

/// Which way media flows, from the describing side's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaDirection {
    /// Both ways.
    SendRecv,
    /// The describing side only sends (it puts the other on hold).
    SendOnly,
    /// The describing side only receives.
    RecvOnly,
    /// No media (hold).
    Inactive,
}

impl MediaDirection {
    /// The direction to answer with (RFC 3264 §6.1).
    #[must_use]
    pub fn answer(self) -> Self {
        match self {
            Self::SendRecv => Self::SendRecv,
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            Self::Inactive => Self::Inactive,
        }
    }

    /// Whether this puts the other side on hold.
    #[must_use]
    pub fn is_hold(self) -> bool {
        matches!(self, Self::SendOnly | Self::Inactive)
    }

    fn attribute(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }
}

/// One side's audio stream: where it wants RTP, what it speaks, which way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioSession {
    /// Where to send RTP (port 0 = stream refused).
    pub addr: SocketAddr,
    /// The codecs, most preferred first.
    pub codecs: Vec<G711>,
    /// The payload type of `telephone-event/8000`, if offered.
    pub telephone_event: Option<u8>,
    /// The events it takes with that payload type (its `fmtp`; `0-15`
    /// when it names none, RFC 4733 §2.4.1).
    pub events: EventSet,
    /// Which way media flows.
    pub direction: MediaDirection,
    /// RTCP shares the RTP port (`a=rtcp-mux`, RFC 5761).
    pub rtcp_mux: bool,
    /// The SDES key its SRTP is protected with, when it offered or took one
    /// we speak (`a=crypto` with [`crate::srtp::SUITE`]).
    pub crypto: Option<Crypto>,
    /// Its `m=` line's profile is `RTP/SAVP` (or `SAVPF`): SRTP only.
    /// Some phones offer SRTP under `RTP/AVP` ("best effort", RFC 4568
    /// §6.1's note), which an answer echoes.
    pub savp: bool,
    /// The other `m=` lines of an offer, before and after the audio one,
    /// as an answer refuses them (port 0): an answer has as many `m=`
    /// lines as its offer, in the same order (RFC 3264 §6).
    pub refused: RefusedMedia,
}

/// One `a=crypto` line: its tag (an answer repeats the offer's) and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crypto {
    /// The line's tag.
    pub tag: u32,
    /// The master key and salt.
    pub key: SdesKey,
}

/// `m=` lines refused in an answer (port 0), around the audio one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefusedMedia {
    /// Before the audio stream.
    pub before: Vec<String>,
    /// After it.
    pub after: Vec<String>,
}

impl AudioSession {
    /// Parses the first audio stream of `body`.
    pub fn parse(body: &[u8]) -> Result<Self, SdpError> {
        let text = std::str::from_utf8(body).map_err(|e| SdpError::Syntax(e.to_string()))?;
        let sdp =
            SessionDescription::parse(&BytesStr::from(text)).map_err(|e| SdpError::Syntax(e.to_string()))?;
        let usable = |m: &&ezk_sdp_types::MediaDescription| {
            m.media.media_type == MediaType::Audio
                && match m.media.proto {
                    TransportProtocol::RtpAvp | TransportProtocol::RtpAvpf => true,
                    TransportProtocol::RtpSavp | TransportProtocol::RtpSavpf => sdes(m).is_some(),
                    _ => false,
                }
        };
        let Some(index) = sdp.media_descriptions.iter().position(|m| usable(&m)) else {
            let audio = sdp.media_descriptions.iter().any(|m| m.media.media_type == MediaType::Audio);
            return Err(if audio { SdpError::EncryptedOnly } else { SdpError::NoAudio });
        };
        let media = &sdp.media_descriptions[index];
        let refuse = |m: &ezk_sdp_types::MediaDescription| {
            let mut line = m.media.clone();
            line.port = 0;
            line.ports_num = None;
            line.to_string()
        };
        let refused = RefusedMedia {
            before: sdp.media_descriptions[..index].iter().map(refuse).collect(),
            after: sdp.media_descriptions[index + 1..].iter().map(refuse).collect(),
        };
        let connection = media.connection.as_ref().or(sdp.connection.as_ref()).ok_or(SdpError::NoAddress)?;
        let ip: IpAddr = match &connection.address {
            TaggedAddress::IP4(ip) => (*ip).into(),
            TaggedAddress::IP6(ip) => (*ip).into(),
            TaggedAddress::IP4FQDN(_) | TaggedAddress::IP6FQDN(_) => return Err(SdpError::NoAddress),
        };
        let mut codecs = Vec::new();
        let mut telephone_event = None;
        let mut events = EventSet::NONE;
        for &pt in &media.media.fmts {
            let map = media.rtpmap.iter().find(|m| m.payload == pt);
            let name = map.map(|m| m.encoding.to_ascii_lowercase());
            // G.711 only on its static payload types, so relayed packets need no renumbering.
            match (pt, name.as_deref()) {
                (0, None | Some("pcmu")) => codecs.push(G711::Pcmu),
                (8, None | Some("pcma")) => codecs.push(G711::Pcma),
                (96..=127, Some("telephone-event"))
                    if telephone_event.is_none() && map.is_some_and(|m| m.clock_rate == 8000) =>
                {
                    telephone_event = Some(pt);
                    events = media
                        .fmtp
                        .iter()
                        .find(|f| f.format == pt)
                        .map_or(EventSet::KEYPAD, |f| EventSet::parse(&f.params));
                }
                _ => {}
            }
        }
        if codecs.is_empty() {
            return Err(SdpError::NoCommonCodec);
        }
        let direction = match media.direction {
            Direction::SendRecv => match sdp.direction {
                Direction::SendRecv => MediaDirection::SendRecv,
                other => direction_of(other),
            },
            other => direction_of(other),
        };
        let mut direction = direction;
        if ip.is_unspecified() && direction == MediaDirection::SendRecv {
            // RFC 2543 hold: c=0.0.0.0.
            direction = MediaDirection::Inactive;
        }
        Ok(Self {
            addr: SocketAddr::new(ip, media.media.port),
            codecs,
            telephone_event,
            events,
            direction,
            rtcp_mux: media.rtcp_mux,
            crypto: sdes(media),
            savp: matches!(media.media.proto, TransportProtocol::RtpSavp | TransportProtocol::RtpSavpf),
            refused,
        })
    }

    /// Our answer to `offer`, receiving at `local`: the first offered codec,
    /// the offered events we take too ([`EventSet::OURS`]), the answering
    /// direction.
    #[must_use]
    pub fn answer_to(offer: &Self, local: SocketAddr) -> Self {
        let events = offer.events.and(EventSet::OURS);
        let telephone_event = offer.telephone_event.filter(|_| !events.is_empty());
        Self {
            addr: local,
            codecs: offer.codecs.first().copied().into_iter().collect(),
            telephone_event,
            events: if telephone_event.is_some() { events } else { EventSet::NONE },
            direction: offer.direction.answer(),
            // Only where offered (RFC 5761 §5.1.1).
            rtcp_mux: offer.rtcp_mux,
            crypto: None,
            savp: false,
            refused: offer.refused.clone(),
        }
    }

    /// The codec both sides use: the first one listed.
    #[must_use]
    pub fn codec(&self) -> G711 {
        self.codecs.first().copied().unwrap_or(G711::Pcmu)
    }

    /// The session description text, with `session` as its origin id and
    /// `version` as its version (bump it for every re-offer).
    #[must_use]
    pub fn render(&self, session: u64, version: u64) -> String {
        let ip = self.addr.ip();
        let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
        let mut fmts: Vec<u8> = self.codecs.iter().map(|c| c.payload_type()).collect();
        fmts.extend(self.telephone_event);
        let fmts = fmts.iter().map(u8::to_string).collect::<Vec<_>>().join(" ");
        let mut out = String::with_capacity(256);
        let _ = write!(
            out,
            "v=0\r\no=earshot {session} {version} IN {family} {ip}\r\ns=Earshot\r\nc=IN {family} {ip}\r\nt=0 0\r\n"
        );
        for line in &self.refused.before {
            let _ = write!(out, "m={line}\r\n");
        }
        let profile = if self.savp { "RTP/SAVP" } else { "RTP/AVP" };
        let _ = write!(out, "m=audio {port} {profile} {fmts}\r\n", port = self.addr.port());
        for codec in &self.codecs {
            let _ = write!(out, "a=rtpmap:{} {}/8000\r\n", codec.payload_type(), codec.encoding_name());
        }
        if let Some(pt) = self.telephone_event {
            let _ = write!(out, "a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} {}\r\n", self.events);
        }
        let _ = write!(out, "a=ptime:20\r\na={}\r\n", self.direction.attribute());
        if self.rtcp_mux {
            out.push_str("a=rtcp-mux\r\n");
        }
        if let Some(crypto) = &self.crypto {
            let _ = write!(
                out,
                "a=crypto:{} {} inline:{}\r\n",
                crypto.tag,
                crate::srtp::SUITE,
                crypto.key.inline()
            );
        }
        for line in &self.refused.after {
            let _ = write!(out, "m={line}\r\n");
        }
        out
    }
}

impl MediaDirection {
    /// Whether this side sends media.
    #[must_use]
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// Whether this side receives media.
    #[must_use]
    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }

    /// The direction that allows only what both allow: what a side that
    /// wants `self` answers when the offer allows `other`.
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        Self::from_flags(self.sends() && other.sends(), self.receives() && other.receives())
    }

    const fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Self::SendRecv,
            (true, false) => Self::SendOnly,
            (false, true) => Self::RecvOnly,
            (false, false) => Self::Inactive,
        }
    }
}

/// A set of RFC 4733 events (`fmtp` of `telephone-event`, e.g. `0-15`),
/// for event codes 0–63; the rest are tones nobody here sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventSet(u64);

impl EventSet {
    /// No events.
    pub const NONE: Self = Self(0);
    /// The sixteen keypad keys, 0–15: what a peer takes when its
    /// description names no events (RFC 4733 §2.4.1).
    pub const KEYPAD: Self = Self(0xffff);
    /// What we take and send: the keypad and flash (16).
    pub const OURS: Self = Self(0x1_ffff);

    /// Parses an `fmtp` value such as `0-15,16`; what it can't read it leaves out.
    #[must_use]
    pub fn parse(params: &str) -> Self {
        let mut bits = 0_u64;
        for part in params.split(',') {
            let part = part.trim();
            let (low, high) = part.split_once('-').unwrap_or((part, part));
            let (Ok(low), Ok(high)) = (low.trim().parse::<u8>(), high.trim().parse::<u8>()) else { continue };
            for event in low..=high.min(63) {
                bits |= 1 << event;
            }
        }
        Self(bits)
    }

    /// Whether `event` is in the set.
    #[must_use]
    pub const fn contains(self, event: u8) -> bool {
        event < 64 && self.0 & (1 << event) != 0
    }

    /// The events in both sets.
    #[must_use]
    pub const fn and(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// Whether the set is empty.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::fmt::Display for EventSet {
    /// As `fmtp` writes it: ranges, comma-separated (`0-15`, `0-11,16`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        let mut event = 0_u32;
        while event < 64 {
            if self.0 & (1 << event) == 0 {
                event += 1;
                continue;
            }
            let start = event;
            while event + 1 < 64 && self.0 & (1 << (event + 1)) != 0 {
                event += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == event {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{event}")?;
            }
            event += 1;
        }
        Ok(())
    }
}

/// The `o=` line's session id and version of a description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Stays the same for the whole dialog.
    pub session_id: u64,
    /// Goes up with every new description (RFC 3264 §8).
    pub version: u64,
}

impl Origin {
    /// The origin of `body`, when it is SDP with numeric id and version.
    #[must_use]
    pub fn of(body: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(body).ok()?;
        let line = text.lines().find_map(|l| l.trim().strip_prefix("o="))?;
        let mut fields = line.split_whitespace().skip(1);
        Some(Self { session_id: fields.next()?.parse().ok()?, version: fields.next()?.parse().ok()? })
    }
}

/// One side of one dialog's offer/answer exchanges (RFC 3264): where it
/// receives, the codecs it takes, one `o=` session id for the dialog and a
/// version that goes up with every description it sends (§8), the peer's
/// last description and what was agreed.
#[derive(Clone, Debug)]
pub struct Negotiation {
    local: SocketAddr,
    codecs: Vec<G711>,
    session_id: u64,
    /// The version of the last description sent (0: none yet).
    version: u64,
    /// The direction we last asked for in an offer, and answer with at most;
    /// and the one before, while that offer waits for its answer.
    wanted: MediaDirection,
    wanted_before: MediaDirection,
    /// Our last description sent, offer or answer.
    ours: Option<AudioSession>,
    /// The peer's last description.
    theirs: Option<AudioSession>,
    /// An offer of ours waiting for its answer.
    offering: bool,
    /// Our SRTP key, when this side takes media only as SRTP (the leg's
    /// signalling is TLS): offers and answers carry it, and a description
    /// without a key of the peer's is refused.
    srtp: Option<SdesKey>,
}

impl Negotiation {
    /// One side receiving at `local`, speaking PCMU and PCMA (that order)
    /// and the keypad events; `session_id` should be random per dialog.
    #[must_use]
    pub fn new(local: SocketAddr, session_id: u64) -> Self {
        Self::with_codecs(local, session_id, vec![G711::Pcmu, G711::Pcma])
    }

    /// Like [`Self::new`], offering `codecs` in this order (a back-to-back
    /// agent offers the callee what the caller offered).
    #[must_use]
    pub fn with_codecs(local: SocketAddr, session_id: u64, codecs: Vec<G711>) -> Self {
        Self {
            local,
            codecs,
            session_id,
            version: 0,
            wanted: MediaDirection::SendRecv,
            wanted_before: MediaDirection::SendRecv,
            ours: None,
            theirs: None,
            offering: false,
            srtp: None,
        }
    }

    /// This side takes media only as SRTP, sending with `key` (random per
    /// dialog and leg): for a leg whose signalling is TLS.
    #[must_use]
    pub fn with_srtp(mut self, key: SdesKey) -> Self {
        self.srtp = Some(key);
        self
    }

    /// The SRTP keys agreed, ours and the peer's, once both described one.
    #[must_use]
    pub fn srtp(&self) -> Option<(&SdesKey, &SdesKey)> {
        let theirs = self.theirs.as_ref()?.crypto.as_ref()?;
        Some((self.srtp.as_ref()?, &theirs.key))
    }

    /// The codecs we take, in the order we offer them.
    #[must_use]
    pub fn codecs(&self) -> &[G711] {
        &self.codecs
    }

    /// An offer (the first, or a re-offer: hold is `SendOnly`, resume
    /// `SendRecv`); the text to send.
    pub fn offer(&mut self, direction: MediaDirection) -> String {
        if !self.offering {
            self.wanted_before = self.wanted;
        }
        self.wanted = direction;
        let session = AudioSession {
            addr: self.local,
            codecs: self.codecs.clone(),
            telephone_event: Some(TELEPHONE_EVENT_PT),
            events: EventSet::OURS,
            direction,
            rtcp_mux: true,
            crypto: self.srtp.clone().map(|key| Crypto { tag: 1, key }),
            savp: self.srtp.is_some(),
            refused: RefusedMedia::default(),
        };
        self.offering = true;
        self.send(session)
    }

    /// The peer's answer to our offer.
    pub fn handle_answer(&mut self, body: &[u8]) -> Result<&AudioSession, SdpError> {
        let answer = AudioSession::parse(body)?;
        self.check_keys(&answer)?;
        self.offering = false;
        Ok(self.theirs.insert(answer))
    }

    /// The peer's offer (first or re-offer); the text of our answer: the
    /// first offered codec we take, the events both take, and the
    /// direction both allow (we stay on hold while we hold).
    pub fn handle_offer(&mut self, body: &[u8]) -> Result<String, SdpError> {
        let mut offer = AudioSession::parse(body)?;
        self.check_keys(&offer)?;
        offer.codecs.retain(|c| self.codecs.contains(c));
        if offer.codecs.is_empty() {
            return Err(SdpError::NoCommonCodec);
        }
        let mut answer = AudioSession::answer_to(&offer, self.local);
        answer.direction = answer.direction.and(self.wanted);
        if let (Some(key), Some(crypto)) = (&self.srtp, &offer.crypto) {
            // The offer's tag and profile, our key (RFC 4568 §5.1.2).
            answer.crypto = Some(Crypto { tag: crypto.tag, key: key.clone() });
            answer.savp = offer.savp;
        }
        self.offering = false;
        self.theirs = Some(offer);
        Ok(self.send(answer))
    }

    /// Whether the peer's description keys media the way this side takes
    /// it: SRTP with a key of its own where we take only SRTP; no SRTP-only
    /// profile where we do not (an `a=crypto` under `RTP/AVP` is then left
    /// aside, and the media is plain RTP).
    fn check_keys(&self, theirs: &AudioSession) -> Result<(), SdpError> {
        check_keys(self.srtp.is_some(), theirs)
    }

    /// Our last offer was refused (a final non-2xx, or 491): the session
    /// stays as it was, and so does the direction we answer with.
    pub fn offer_refused(&mut self) {
        if self.offering {
            self.offering = false;
            self.wanted = self.wanted_before;
        }
    }

    /// The peer's last description.
    #[must_use]
    pub fn theirs(&self) -> Option<&AudioSession> {
        self.theirs.as_ref()
    }

    /// The codec in use: the answer's (ours when we answered, theirs when
    /// they did).
    #[must_use]
    pub fn codec(&self) -> Option<G711> {
        let (ours, theirs) = (self.ours.as_ref()?, self.theirs.as_ref()?);
        ours.codecs.iter().copied().find(|c| theirs.codecs.contains(c))
    }

    fn send(&mut self, session: AudioSession) -> String {
        self.version += 1;
        let text = session.render(self.session_id, self.version);
        self.ours = Some(session);
        text
    }
}

/// Whether `theirs` keys media the way a side that takes only SRTP
/// (`srtp`), or only plain RTP, can take: SRTP with a key of the peer's
/// where we take only SRTP; no SRTP-only profile where we do not (an
/// `a=crypto` under `RTP/AVP` is then left aside, and media is plain RTP).
///
/// # Errors
/// [`SdpError::Unencrypted`] or [`SdpError::EncryptedOnly`].
pub fn check_keys(srtp: bool, theirs: &AudioSession) -> Result<(), SdpError> {
    match (srtp, &theirs.crypto) {
        (true, None) => Err(SdpError::Unencrypted),
        (false, _) if theirs.savp => Err(SdpError::EncryptedOnly),
        _ => Ok(()),
    }
}

/// The first `a=crypto` line of `media` we can key SRTP with: our suite,
/// one key without an MKI or a lifetime shorter than a call, and none of
/// the session parameters that turn encryption or authentication off.
fn sdes(media: &ezk_sdp_types::MediaDescription) -> Option<Crypto> {
    media.crypto.iter().find_map(|line| {
        let [material] = line.keys.as_slice() else { return None };
        let usable = line.suite == SrtpSuite::AES_CM_128_HMAC_SHA1_80
            && material.mki.is_none()
            && material.lifetime.is_none_or(|packets| packets >= 1 << 20)
            && line.params.iter().all(|p| matches!(p, SrtpSessionParam::WindowSizeHint(_)));
        if !usable {
            return None;
        }
        Some(Crypto { tag: line.tag, key: SdesKey::from_inline(&material.key_and_salt)? })
    })
}

fn direction_of(direction: Direction) -> MediaDirection {
    match direction {
        Direction::SendRecv => MediaDirection::SendRecv,
        Direction::RecvOnly => MediaDirection::RecvOnly,
        Direction::SendOnly => MediaDirection::SendOnly,
        Direction::Inactive => MediaDirection::Inactive,
    }
}
