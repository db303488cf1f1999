//! G.711, the codecs every SIP phone speaks: PCMU (μ-law, RTP payload type 0)
//! and PCMA (A-law, payload type 8). Decoding is the `audio-codec` crate's
//! (pinned at 0.4.13, which fixed a PCMU encoder bug); encoding picks, for
//! each sample, the code whose decoded level is nearest to it.
//!
//! Why not `audio-codec`'s encoders: they follow the decision values of
//! the classic G.711 routines, which at the top of each segment lie short
//! of halfway to the next segment's first level, so an input there goes to
//! the farther level (μ-law 16 255 becomes 16 764, not 15 996), and its A-law
//! encoder turns −8 into +8. The nearest level is never farther and, for a
//! few hundred of the 65 536 inputs, nearer; every G.711 decoder reads the
//! codes the same. On the call bench's speech (docs/PERFORMANCE.md) the
//! signal-to-noise ratio is 0.10–0.16 dB higher for μ-law and 0.09–0.10 dB
//! for A-law at every level tried (−4 to +4 dB); PESQ moves within its own
//! spread (μ-law alone: +0.003 on average over those levels). Ties keep
//! `audio-codec`'s code, so silence encodes as it always did.

use audio_codec::{Decoder as _, Encoder as _};
use std::sync::LazyLock;

/// For each 16-bit sample (at [`index`]), its code.
type EncodeTable = Box<[u8]>;

static PCMU_NEAREST: LazyLock<EncodeTable> = LazyLock::new(|| nearest_levels(G711::Pcmu));
static PCMA_NEAREST: LazyLock<EncodeTable> = LazyLock::new(|| nearest_levels(G711::Pcma));

/// A sample's place in an [`EncodeTable`].
fn index(sample: i16) -> usize {
    usize::from(sample.cast_unsigned() ^ 0x8000)
}

/// The encode table that gives each sample the code of the nearest level
/// (built once, in one sweep up the samples: about a millisecond).
fn nearest_levels(law: G711) -> EncodeTable {
    let samples: Vec<i16> = (i16::MIN..=i16::MAX).collect();
    let standard = law.encode_standard(&samples);
    let decoded = law.decode(&(0..=u8::MAX).collect::<Vec<_>>());
    // Each level once, with the standard encoder's code for it where that
    // code decodes to it (μ-law's +0, not −0; A-law's −8 it gets wrong).
    let mut levels: Vec<(i16, u8)> = (0..=u8::MAX).map(|code| (decoded[usize::from(code)], code)).collect();
    levels.sort_by_key(|&(level, code)| (level, code != standard[index(level)]));
    levels.dedup_by_key(|(level, _)| *level);
    // The highest level at or under the sample (the lowest, under it).
    let mut below = 0;
    samples
        .iter()
        .zip(&standard)
        .map(|(&sample, &code)| {
            while levels.get(below + 1).is_some_and(|(level, _)| *level <= sample) {
                below += 1;
            }
            let distance = |level: i16| (i32::from(level) - i32::from(sample)).abs();
            let nearest = levels[below..levels.len().min(below + 2)]
                .iter()
                .min_by_key(|(level, _)| distance(*level))
                .map_or(code, |(_, nearest)| *nearest);
            // Ties keep the standard encoder's code.
            if distance(decoded[usize::from(code)]) <= distance(decoded[usize::from(nearest)]) {
                code
            } else {
                nearest
            }
        })
        .collect()
}

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

    /// 16-bit samples in, one byte per sample out: each sample's nearest
    /// level (the module's doc).
    #[must_use]
    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        let table = match self {
            Self::Pcmu => &PCMU_NEAREST,
            Self::Pcma => &PCMA_NEAREST,
        };
        samples.iter().map(|&sample| table[index(sample)]).collect()
    }

    /// `audio-codec`'s encoder: G.711's decision values.
    fn encode_standard(self, samples: &[i16]) -> Vec<u8> {
        match self {
            Self::Pcmu => audio_codec::pcmu::PcmuEncoder::new().encode(samples),
            Self::Pcma => audio_codec::pcma::PcmaEncoder::new().encode(samples),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::G711;

    #[test]
    fn the_nearest_level_differs_from_the_standard_encoder_only_where_it_is_nearer() {
        let samples: Vec<i16> = (i16::MIN..=i16::MAX).collect();
        for law in [G711::Pcmu, G711::Pcma] {
            let (ours, standard) =
                (law.decode(&law.encode(&samples)), law.decode(&law.encode_standard(&samples)));
            let error = |level: i16, sample: i16| (i32::from(level) - i32::from(sample)).abs();
            let mut nearer = 0;
            for ((&sample, &ours), &standard) in samples.iter().zip(&ours).zip(&standard) {
                assert!(
                    error(ours, sample) <= error(standard, sample),
                    "{law:?}: {sample} → {ours} ({standard})"
                );
                nearer += usize::from(error(ours, sample) < error(standard, sample));
            }
            // The segments' tops (and A-law's −8): a few hundred of 65 536.
            assert!((100..2_000).contains(&nearer), "{law:?}: {nearer} samples nearer");
        }
        assert_eq!(G711::Pcmu.decode(&G711::Pcmu.encode(&[16_255])), vec![15_996]);
        assert_eq!(G711::Pcmu.decode(&G711::Pcmu.encode_standard(&[16_255])), vec![16_764]);
    }
}
