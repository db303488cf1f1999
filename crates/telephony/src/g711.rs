//! G.711, the codecs every SIP phone speaks: PCMU (μ-law, RTP payload type 0)
//! and PCMA (A-law, payload type 8), through the `audio-codec` crate (pinned
//! at 0.4.13, which fixed a PCMU encoder bug).

use audio_codec::{Decoder as _, Encoder as _};

/// A G.711 variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum G711 {
    /// μ-law, payload type 0.
    Pcmu,
    /// A-law, payload type 8.
    Pcma,
}

impl G711 {
    /// The static RTP payload type (RFC 3551).
    #[must_use]
    pub const fn payload_type(self) -> u8 {
        match self {
            Self::Pcmu => 0,
            Self::Pcma => 8,
        }
    }

    /// The codec for a static payload type, if it is one of these.
    #[must_use]
    pub const fn from_payload_type(payload_type: u8) -> Option<Self> {
        match payload_type {
            0 => Some(Self::Pcmu),
            8 => Some(Self::Pcma),
            _ => None,
        }
    }

    /// The encoding name in SDP `rtpmap` lines.
    #[must_use]
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
        }
    }

    /// One byte per sample in, 16-bit samples out.
    #[must_use]
    pub fn decode(self, payload: &[u8]) -> Vec<i16> {
        match self {
            Self::Pcmu => audio_codec::pcmu::PcmuDecoder::new().decode(payload),
            Self::Pcma => audio_codec::pcma::PcmaDecoder::new().decode(payload),
        }
    }

    /// Like [`G711::decode`], into `out` (cleared first), so a caller that
    /// decodes every packet can reuse one buffer.
    pub fn decode_into(self, payload: &[u8], out: &mut Vec<i16>) {
        out.clear();
        out.resize(payload.len(), 0);
        let written = match self {
            Self::Pcmu => audio_codec::pcmu::PcmuDecoder::new().decode_into(payload, out),
            Self::Pcma => audio_codec::pcma::PcmaDecoder::new().decode_into(payload, out),
        };
        out.truncate(written.unwrap_or(0));
    }

    /// 16-bit samples in, one byte per sample out.
    #[must_use]
    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            Self::Pcmu => audio_codec::pcmu::PcmuEncoder::new().encode(samples),
            Self::Pcma => audio_codec::pcma::PcmaEncoder::new().encode(samples),
        }
    }
}
