//! SDP offer/answer for one audio stream of G.711 with RFC 4733 events
//! (RFC 3264), the only media Earshot speaks.
//!
//! Parsing goes through `ezk-sdp-types`; what we send is rendered here from
//! [`AudioSession`], because our offers and answers are a fixed handful of
//! lines and building the crate's full description type for them would be
//! longer than the text itself.

use crate::g711::G711;
use bytesstr::BytesStr;
use ezk_sdp_types::{Direction, MediaType, SessionDescription, TaggedAddress};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// The RTP payload type we offer for `telephone-event/8000`.
pub const TELEPHONE_EVENT_PT: u8 = 101;

/// Why a body is not an offer or answer we can use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SdpError {
    /// Not SDP at all.
    #[error("the session description does not parse: {0}")]
    Syntax(String),
    /// No `m=audio` line with a port.
    #[error("the session description offers no audio stream")]
    NoAudio,
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
    /// Which way media flows.
    pub direction: MediaDirection,
}

impl AudioSession {
    /// Parses the first audio stream of `body`.
    pub fn parse(body: &[u8]) -> Result<Self, SdpError> {
        let text = std::str::from_utf8(body).map_err(|e| SdpError::Syntax(e.to_string()))?;
        let sdp =
            SessionDescription::parse(&BytesStr::from(text)).map_err(|e| SdpError::Syntax(e.to_string()))?;
        let media = sdp
            .media_descriptions
            .iter()
            .find(|m| m.media.media_type == MediaType::Audio)
            .ok_or(SdpError::NoAudio)?;
        let connection = media.connection.as_ref().or(sdp.connection.as_ref()).ok_or(SdpError::NoAddress)?;
        let ip: IpAddr = match &connection.address {
            TaggedAddress::IP4(ip) => (*ip).into(),
            TaggedAddress::IP6(ip) => (*ip).into(),
            TaggedAddress::IP4FQDN(_) | TaggedAddress::IP6FQDN(_) => return Err(SdpError::NoAddress),
        };
        let mut codecs = Vec::new();
        let mut telephone_event = None;
        for &pt in &media.media.fmts {
            let map = media.rtpmap.iter().find(|m| m.payload == pt);
            let name = map.map(|m| m.encoding.to_ascii_lowercase());
            // G.711 only on its static payload types, so relayed packets need no renumbering.
            match (pt, name.as_deref()) {
                (0, None | Some("pcmu")) => codecs.push(G711::Pcmu),
                (8, None | Some("pcma")) => codecs.push(G711::Pcma),
                (96..=127, Some("telephone-event")) if map.is_some_and(|m| m.clock_rate == 8000) => {
                    telephone_event = Some(pt);
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
        Ok(Self { addr: SocketAddr::new(ip, media.media.port), codecs, telephone_event, direction })
    }

    /// Our answer to `offer`, receiving at `local`: the first offered codec,
    /// events if offered, the answering direction.
    #[must_use]
    pub fn answer_to(offer: &Self, local: SocketAddr) -> Self {
        Self {
            addr: local,
            codecs: offer.codecs.first().copied().into_iter().collect(),
            telephone_event: offer.telephone_event,
            direction: offer.direction.answer(),
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
            "v=0\r\no=earshot {session} {version} IN {family} {ip}\r\ns=Earshot\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP {fmts}\r\n",
            port = self.addr.port(),
        );
        for codec in &self.codecs {
            let _ = write!(out, "a=rtpmap:{} {}/8000\r\n", codec.payload_type(), codec.encoding_name());
        }
        if let Some(pt) = self.telephone_event {
            let _ = write!(out, "a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} 0-16\r\n");
        }
        let _ = write!(out, "a=ptime:20\r\na={}\r\n", self.direction.attribute());
        out
    }
}

fn direction_of(direction: Direction) -> MediaDirection {
    match direction {
        Direction::SendRecv => MediaDirection::SendRecv,
        Direction::RecvOnly => MediaDirection::RecvOnly,
        Direction::SendOnly => MediaDirection::SendOnly,
        Direction::Inactive => MediaDirection::Inactive,
    }
}
