//! RTP packets (RFC 3550) as the relay sees them: parsed through `rtp-types`,
//! and one outgoing stream per leg that carries both relayed packets and
//! packets we make ourselves (prompts, keypad events), renumbered into one
//! sequence and one SSRC so the receiver sees a single clean stream.

/// Why a datagram is not an RTP packet we take.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RtpError {
    /// Not RTP version 2, too short, or lengths that don't add up.
    #[error("not an RTP packet: {0}")]
    Malformed(String),
}

/// The parts of a received RTP packet the relay uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpView<'a> {
    /// Payload type.
    pub payload_type: u8,
    /// Marker bit.
    pub marker: bool,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp (8 kHz for everything we carry).
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// The payload, without padding.
    pub payload: &'a [u8],
}

impl<'a> RtpView<'a> {
    /// Parses `data`; RTCP ([`crate::rtcp::is_rtcp`], RFC 5761) is refused too.
    pub fn parse(data: &'a [u8]) -> Result<Self, RtpError> {
        if crate::rtcp::is_rtcp(data) {
            return Err(RtpError::Malformed("RTCP on the RTP port".into()));
        }
        let packet = rtp_types::RtpPacket::parse(data).map_err(|e| RtpError::Malformed(format!("{e:?}")))?;
        let view = Self {
            payload_type: packet.payload_type(),
            marker: packet.marker_bit(),
            sequence: packet.sequence_number(),
            timestamp: packet.timestamp(),
            ssrc: packet.ssrc(),
            payload: &data[packet.payload_offset()..packet.payload_offset() + packet.payload_len()],
        };
        Ok(view)
    }
}

/// One outgoing RTP stream: our SSRC, our sequence numbers, timestamps that
/// never jump back when the source behind it changes.
#[derive(Clone, Debug)]
pub struct OutgoingStream {
    ssrc: u32,
    next_sequence: u16,
    /// Added to a source's timestamps so they continue ours.
    offset: u32,
    source: Option<u32>,
    last_timestamp: u32,
    started: bool,
}

impl OutgoingStream {
    /// A stream with this SSRC whose first sequence number is `first_sequence`.
    #[must_use]
    pub fn new(ssrc: u32, first_sequence: u16) -> Self {
        Self {
            ssrc,
            next_sequence: first_sequence,
            offset: 0,
            source: None,
            last_timestamp: 0,
            started: false,
        }
    }

    /// Rewrites a relayed packet `data` (already parsed as `view`) in place:
    /// our SSRC and sequence number, the source's timestamp moved onto ours.
    /// A new source (say, the other party after a prompt) continues our
    /// timestamps 20 ms on and is marked.
    pub fn relay(&mut self, data: &mut [u8], view: &RtpView<'_>) {
        if self.source != Some(view.ssrc) {
            let continue_at =
                if self.started { self.last_timestamp.wrapping_add(160) } else { view.timestamp };
            self.offset = continue_at.wrapping_sub(view.timestamp);
            self.source = Some(view.ssrc);
            data[1] |= 0x80;
        }
        let timestamp = view.timestamp.wrapping_add(self.offset);
        self.stamp(data, timestamp);
    }

    /// Writes a packet of ours into `out` (cleared first). `timestamp` is on
    /// our stream's clock; see [`Self::now_timestamp`].
    pub fn packet(
        &mut self,
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        out.clear();
        out.extend_from_slice(&[0x80, payload_type & 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        if marker {
            out[1] |= 0x80;
        }
        out.extend_from_slice(payload);
        self.stamp(out, timestamp);
    }

    /// The next relayed packet continues our timestamps (call after playing
    /// packets of our own, such as a prompt, between relayed ones).
    pub fn reanchor(&mut self) {
        self.source = None;
    }

    /// The timestamp a packet of ours sent now continues from: 20 ms after
    /// the last one sent.
    #[must_use]
    pub fn now_timestamp(&self) -> u32 {
        if self.started { self.last_timestamp.wrapping_add(160) } else { rand_free_start(self.ssrc) }
    }

    /// The timestamp of the last packet sent (for keypad events, which are
    /// stamped with the time their key went down).
    #[must_use]
    pub fn last_timestamp(&self) -> u32 {
        self.last_timestamp
    }

    fn stamp(&mut self, data: &mut [u8], timestamp: u32) {
        data[2..4].copy_from_slice(&self.next_sequence.to_be_bytes());
        data[4..8].copy_from_slice(&timestamp.to_be_bytes());
        data[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.last_timestamp = timestamp;
        self.started = true;
    }
}

/// A start timestamp derived from the SSRC (itself random), so streams don't
/// all start at 0.
fn rand_free_start(ssrc: u32) -> u32 {
    ssrc.rotate_left(16) ^ 0x5bd1_e995
}
