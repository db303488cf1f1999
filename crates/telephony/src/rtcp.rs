//! RTCP for one leg (RFC 3550 §6), sans-IO: what we sent and received goes
//! in, a compound report (SR or RR, and SDES with our CNAME) comes out
//! every few seconds, and the peer's reports give the round-trip time.
//!
//! RTCP travels on the RTP port (RFC 5761), and only when both sides said
//! so (`a=rtcp-mux`): we bind no second port, and a peer that wants RTCP
//! on port + 1 gets none from us (its RTT stays unmeasured; audio is not
//! affected). The round trip is RFC 3550 §6.4.1's: the peer echoes the
//! middle 32 bits of our last SR's NTP timestamp (LSR) and how long it
//! held it (DLSR); `now − LSR − DLSR` is the time on the wire both ways.
//! Our NTP timestamps are the caller's clock (`now`), not the wall clock:
//! only our own reports' echoes are compared with it, and audio alone
//! needs no lip sync.
//!
//! The packets are read and written with `rtcp-types` (GStreamer's
//! authors); reception statistics follow RFC 3550 Appendix A.3 and A.8.
//!
//! ```
//! use earshot_policy::Timestamp;
//! use earshot_telephony::rtcp::RtcpSession;
//!
//! let (mut ada, mut bo) = (RtcpSession::new(1, "ada"), RtcpSession::new(2, "bo"));
//! // Reports on the wire: when they arrive, whether for Bo, what.
//! let mut wire: Vec<(i64, bool, Vec<u8>)> = Vec::new();
//! for ms in 0..12_000_i64 {
//!     let now = Timestamp(ms);
//!     if ms % 20 == 0 {
//!         let (sequence, timestamp) = ((ms / 20) as u16, (ms * 8) as u32);
//!         ada.sent(timestamp, 160);
//!         bo.sent(timestamp, 160);
//!         ada.received(now, 2, sequence, timestamp);
//!         bo.received(now, 1, sequence, timestamp);
//!     }
//!     // 15 ms each way.
//!     wire.extend(ada.handle_timeout(now).map(|report| (ms + 15, true, report)));
//!     wire.extend(bo.handle_timeout(now).map(|report| (ms + 15, false, report)));
//!     for (_, for_bo, report) in wire.iter().filter(|(at, ..)| *at == ms) {
//!         let to = if *for_bo { &mut bo } else { &mut ada };
//!         to.handle_report(now, report).unwrap();
//!     }
//! }
//! let rtt = ada.round_trip_ms().unwrap();
//! assert!((rtt - 30.0).abs() < 1.0, "{rtt}");
//! ```

use earshot_policy::Timestamp;
use rtcp_types::{
    Compound, CompoundBuilder, Packet, ReceiverReport, ReportBlock, ReportBlockBuilder,
    RtcpPacketWriterExt as _, Sdes, SdesChunk, SdesItem, SenderReport,
};

/// The interval between our reports, in ms (RFC 3550 §6.2's minimum).
pub const INTERVAL_MS: i64 = 5_000;
/// Samples per ms of the audio clock (8 kHz).
const PER_MS: i64 = 8;

/// Why a datagram was not a report we could read.
#[derive(Debug, thiserror::Error)]
#[error("malformed RTCP: {0}")]
pub struct RtcpError(String);

/// Whether `data` is RTCP rather than RTP on a shared port (RFC 5761 §4:
/// version 2 and a second byte of 192–223, the RTCP packet types).
#[must_use]
pub fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= 8 && data[0] >> 6 == 2 && (192..=223).contains(&data[1])
}

/// What we received of the peer's stream (RFC 3550 A.3, A.8).
#[derive(Clone, Copy, Debug)]
struct Reception {
    ssrc: u32,
    base_sequence: u32,
    max_sequence: u16,
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// The last packet's relative transit time, in samples.
    transit: Option<i64>,
    /// Interarrival jitter, in samples.
    jitter: f64,
}

impl Reception {
    fn new(ssrc: u32, sequence: u16) -> Self {
        Self {
            ssrc,
            base_sequence: u32::from(sequence),
            max_sequence: sequence,
            cycles: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter: 0.0,
        }
    }

    fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_sequence))
    }

    /// The report block about this stream at `now`, with the peer's last
    /// SR, if any, and when it came.
    fn block(&mut self, now: Timestamp, last_sr: Option<(u32, Timestamp)>) -> ReportBlockBuilder {
        let expected = self.extended_max().wrapping_sub(self.base_sequence).wrapping_add(1);
        let lost = i64::from(expected) - i64::from(self.received);
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            u8::try_from((lost_interval << 8) / i64::from(expected_interval)).unwrap_or(u8::MAX)
        };
        // 24 bits, signed (duplicates can make it negative), clamped.
        let cumulative = (lost.clamp(-0x80_0000, 0x7f_ffff) as u32) & 0xff_ffff;
        let (lsr, dlsr) = last_sr.map_or((0, 0), |(lsr, at)| {
            let held = u32::try_from((now.0 - at.0).max(0) * 65_536 / 1_000).unwrap_or(u32::MAX);
            (lsr, held)
        });
        ReportBlock::builder(self.ssrc)
            .fraction_lost(fraction)
            .cumulative_lost(cumulative)
            .extended_sequence_number(self.extended_max())
            .interarrival_jitter(self.jitter as u32)
            .last_sender_report_timestamp(lsr)
            .delay_since_last_sender_report_timestamp(dlsr)
    }
}

/// One leg's RTCP: counters in, reports out, the round trip measured.
#[derive(Clone, Debug)]
pub struct RtcpSession {
    ssrc: u32,
    cname: String,
    reception: Option<Reception>,
    /// What we sent since the start: packets, payload octets, the last
    /// RTP timestamp and whether anything was sent since the last report.
    sent_packets: u32,
    sent_octets: u32,
    last_rtp_timestamp: u32,
    sent_since_report: bool,
    /// The middle 32 bits of the peer's last SR's NTP timestamp, and when
    /// it arrived.
    last_sr: Option<(u32, Timestamp)>,
    next_report: Option<Timestamp>,
    round_trip_ms: Option<f64>,
    /// Spreads the report times (RFC 3550 §6.3.1: 0.5–1.5 × the interval).
    spread: u32,
}

impl RtcpSession {
    /// A session for our stream `ssrc`, naming itself `cname` in SDES.
    #[must_use]
    pub fn new(ssrc: u32, cname: &str) -> Self {
        Self {
            ssrc,
            cname: cname.to_owned(),
            reception: None,
            sent_packets: 0,
            sent_octets: 0,
            last_rtp_timestamp: 0,
            sent_since_report: false,
            last_sr: None,
            next_report: None,
            round_trip_ms: None,
            spread: ssrc | 1,
        }
    }

    /// We sent an RTP packet stamped `rtp_timestamp` with `payload` octets.
    pub fn sent(&mut self, rtp_timestamp: u32, payload: usize) {
        self.sent_packets = self.sent_packets.wrapping_add(1);
        self.sent_octets = self.sent_octets.wrapping_add(u32::try_from(payload).unwrap_or(u32::MAX));
        self.last_rtp_timestamp = rtp_timestamp;
        self.sent_since_report = true;
    }

    /// An RTP packet from `ssrc` numbered `sequence` and stamped
    /// `rtp_timestamp` (8 kHz) arrived at `now`. Another source starts
    /// the statistics over.
    pub fn received(&mut self, now: Timestamp, ssrc: u32, sequence: u16, rtp_timestamp: u32) {
        let reception = match &mut self.reception {
            Some(reception) if reception.ssrc == ssrc => reception,
            slot => slot.insert(Reception::new(ssrc, sequence)),
        };
        let delta = sequence.wrapping_sub(reception.max_sequence);
        if delta < 0x8000 {
            if sequence < reception.max_sequence {
                reception.cycles = reception.cycles.wrapping_add(1 << 16);
            }
            reception.max_sequence = sequence;
        }
        reception.received = reception.received.wrapping_add(1);
        let transit = now.0 * PER_MS - i64::from(rtp_timestamp);
        if let Some(last) = reception.transit {
            // Timestamps wrap: the difference is taken on 32 bits.
            let difference = f64::from((transit - last) as i32).abs();
            reception.jitter += (difference - reception.jitter) / 16.0;
        }
        reception.transit = Some(transit);
    }

    /// A compound RTCP packet from the peer, at `now`: its SR's time is
    /// kept for our next report, and a report block about our stream with
    /// an echo of our SR gives the round trip.
    pub fn handle_report(&mut self, now: Timestamp, data: &[u8]) -> Result<(), RtcpError> {
        let compound = Compound::parse(data).map_err(|e| RtcpError(e.to_string()))?;
        for packet in compound {
            match packet.map_err(|e| RtcpError(e.to_string()))? {
                Packet::Sr(sr) => {
                    self.last_sr = Some(((sr.ntp_timestamp() >> 16) as u32, now));
                    for block in sr.report_blocks() {
                        self.take_block(now, &block);
                    }
                }
                Packet::Rr(rr) => {
                    for block in rr.report_blocks() {
                        self.take_block(now, &block);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// When [`Self::handle_timeout`] is next due: at once before the first
    /// call (which only starts the clock), half an interval after it, then
    /// every interval, spread.
    #[must_use]
    pub fn poll_timeout(&self) -> Timestamp {
        self.next_report.unwrap_or(Timestamp(0))
    }

    /// Time has reached `now`: our report, when one is due.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Option<Vec<u8>> {
        let Some(due) = self.next_report else {
            // The first report half an interval in (RFC 3550 §6.2).
            self.next_report = Some(Timestamp(now.0 + INTERVAL_MS / 2));
            return None;
        };
        if now < due {
            return None;
        }
        // xorshift: a spread of 0.5–1.5 intervals, without a random source.
        self.spread ^= self.spread << 13;
        self.spread ^= self.spread >> 17;
        self.spread ^= self.spread << 5;
        let spread = INTERVAL_MS / 2 + i64::from(self.spread % 1_000) * INTERVAL_MS / 1_000;
        self.next_report = Some(Timestamp(now.0 + spread));
        Some(self.report(now))
    }

    /// The round-trip time the peer's last report gave, in ms.
    #[must_use]
    pub fn round_trip_ms(&self) -> Option<f64> {
        self.round_trip_ms
    }

    fn take_block(&mut self, now: Timestamp, block: &ReportBlock<'_>) {
        let lsr = block.last_sender_report_timestamp();
        if block.ssrc() != self.ssrc || lsr == 0 {
            return;
        }
        let round_trip =
            middle_ntp(now).wrapping_sub(lsr).wrapping_sub(block.delay_since_last_sender_report_timestamp());
        // Above 2^31 is negative: a report from before a clock jump.
        if round_trip < 0x8000_0000 {
            self.round_trip_ms = Some(f64::from(round_trip) * 1_000.0 / 65_536.0);
        }
    }

    fn report(&mut self, now: Timestamp) -> Vec<u8> {
        let block = self.reception.as_mut().map(|r| r.block(now, self.last_sr));
        let cname = SdesChunk::builder(self.ssrc).add_item(SdesItem::builder(SdesItem::CNAME, &self.cname));
        let sdes = Sdes::builder().add_chunk(cname);
        let compound = if self.sent_since_report {
            let mut sr = SenderReport::builder(self.ssrc)
                .ntp_timestamp(ntp(now))
                .rtp_timestamp(self.last_rtp_timestamp)
                .packet_count(self.sent_packets)
                .octet_count(self.sent_octets);
            if let Some(block) = block {
                sr = sr.add_report_block(block);
            }
            CompoundBuilder::default().add_packet(sr).add_packet(sdes)
        } else {
            let mut rr = ReceiverReport::builder(self.ssrc);
            if let Some(block) = block {
                rr = rr.add_report_block(block);
            }
            CompoundBuilder::default().add_packet(rr).add_packet(sdes)
        };
        self.sent_since_report = false;
        let mut out = vec![0; 256];
        // 256 bytes hold an SR, a block and a CNAME of up to 200 bytes.
        let length = compound.write_into(&mut out).unwrap_or(0);
        out.truncate(length);
        out
    }
}

/// `now` as a 64-bit NTP timestamp (seconds, and a fraction of 2^-32).
fn ntp(now: Timestamp) -> u64 {
    let ms = u64::try_from(now.0.max(0)).unwrap_or(0);
    ((ms / 1_000) << 32) | (((ms % 1_000) << 32) / 1_000)
}

/// The middle 32 bits of `now`'s NTP timestamp (units of 1/65536 s).
fn middle_ntp(now: Timestamp) -> u32 {
    (ntp(now) >> 16) as u32
}

#[cfg(test)]
mod tests {
    use super::{RtcpSession, is_rtcp, ntp};
    use earshot_policy::Timestamp;
    use rtcp_types::{Compound, Packet};

    #[test]
    fn rtp_and_rtcp_are_told_apart_on_one_port() {
        let rtp = [0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
        let event = [0x80, 101 | 0x80, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
        assert!(!is_rtcp(&rtp));
        assert!(!is_rtcp(&event));
        let mut session = RtcpSession::new(7, "ada@acme");
        session.handle_timeout(Timestamp(0));
        let report = session.handle_timeout(Timestamp(2_500)).unwrap();
        assert!(is_rtcp(&report));
        assert!(!is_rtcp(&report[..4]));
    }

    #[test]
    fn a_receiver_only_sends_a_receiver_report_with_its_cname() {
        let mut session = RtcpSession::new(7, "ada@acme");
        session.received(Timestamp(0), 9, 100, 0);
        session.received(Timestamp(40), 9, 102, 320);
        session.handle_timeout(Timestamp(0));
        let report = session.handle_timeout(Timestamp(2_500)).unwrap();
        let packets: Vec<_> = Compound::parse(&report).unwrap().map(Result::unwrap).collect();
        let Packet::Rr(rr) = &packets[0] else { panic!("{packets:?}") };
        assert_eq!(rr.ssrc(), 7);
        let block = rr.report_blocks().next().unwrap();
        assert_eq!(block.ssrc(), 9);
        // 101 never came: one of three lost.
        assert_eq!(block.cumulative_lost(), 1);
        assert_eq!(block.fraction_lost(), 85);
        assert_eq!(block.extended_sequence_number(), 102);
        let Packet::Sdes(sdes) = &packets[1] else { panic!("{packets:?}") };
        let chunk = sdes.chunks().next().unwrap();
        assert_eq!(chunk.items().next().unwrap().value(), b"ada@acme");
    }

    #[test]
    fn reports_come_every_2_5_to_7_5_seconds() {
        let mut session = RtcpSession::new(0x1234_5678, "bo");
        let mut times = Vec::new();
        for ms in (0..60_000).step_by(20) {
            if session.handle_timeout(Timestamp(ms)).is_some() {
                times.push(ms);
            }
        }
        assert_eq!(times[0], 2_500);
        for pair in times.windows(2) {
            assert!((2_500..=7_500).contains(&(pair[1] - pair[0])), "{times:?}");
        }
        assert!((8..=20).contains(&times.len()), "{times:?}");
    }

    #[test]
    fn no_echo_of_our_report_no_round_trip() {
        let (mut ada, mut bo) = (RtcpSession::new(1, "ada"), RtcpSession::new(2, "bo"));
        ada.received(Timestamp(0), 2, 1, 0);
        bo.received(Timestamp(0), 1, 1, 0);
        // Bo reports before he has seen an SR of Ada's: LSR 0.
        bo.sent(0, 160);
        bo.handle_timeout(Timestamp(0));
        let report = bo.handle_timeout(Timestamp(2_500)).unwrap();
        ada.handle_report(Timestamp(2_510), &report).unwrap();
        assert_eq!(ada.round_trip_ms(), None);
        // Garbage is an error, and changes nothing.
        assert!(ada.handle_report(Timestamp(2_600), &[0x80, 200, 0, 9, 1]).is_err());
        assert_eq!(ada.round_trip_ms(), None);
    }

    #[test]
    fn ntp_time_of_a_timestamp() {
        assert_eq!(ntp(Timestamp(1_500)), (1 << 32) | (1 << 31));
    }
}
