//! How good a call sounds, estimated the way a carrier's monitoring does:
//! ITU-T G.107's E-model, reduced to what a G.711 call with packet-loss
//! concealment depends on (no echo, no background noise beyond the
//! defaults): the one-way delay and the share of packets lost. Pure
//! functions; the phone feeds them its jitter buffer's counters.
//!
//! No crate computes the E-model for us; its formulas are short and
//! published (G.107 §7, Annex A; G.113 Appendix I for G.711's `Ie`/`Bpl`).
//!
//! ```
//! use earshot_telephony::quality::{mos, r_factor};
//! // A clean call on a LAN: R 93.2, MOS 4.4.
//! assert!((r_factor(0.0, 20.0) - 93.1).abs() < 0.5);
//! assert!((mos(0.0, 20.0) - 4.4).abs() < 0.05);
//! ```

/// The one-way delay of a call beyond its jitter buffer's, in ms, as the
/// phone assumes it (packetisation, the network, the sound cards): what
/// the buffer's own delay is added to for the E-model.
pub const OTHER_DELAY_MS: f64 = 60.0;
/// The part of [`OTHER_DELAY_MS`] that is not the network's
/// (packetisation and the sound cards), for when RTCP measured the round
/// trip: the one-way delay is then the buffer's, this, and half of it.
pub const LOCAL_DELAY_MS: f64 = 40.0;

/// R with the G.107 defaults and nothing impaired.
const R_DEFAULT: f64 = 93.2;
/// G.711's equipment impairment (G.113 Appendix I).
const IE_G711: f64 = 0.0;
/// G.711's robustness to random packet loss with concealment (G.113 Appendix I).
const BPL_G711_PLC: f64 = 25.1;

/// The transmission rating R (0–100) of a G.711 call with concealment that
/// loses `loss_percent` % of its packets at random, with `delay_ms` of
/// one-way (mouth-to-ear) delay.
#[must_use]
pub fn r_factor(loss_percent: f64, delay_ms: f64) -> f64 {
    let loss = loss_percent.clamp(0.0, 100.0);
    let delay = delay_ms.max(0.0);
    // Delay impairment (G.107 §7.4, simplified as in G.108 Appendix: the
    // talker-echo terms vanish with echo cancelled).
    let id = 0.024 * delay + if delay > 177.3 { 0.11 * (delay - 177.3) } else { 0.0 };
    // Effective equipment impairment with random loss (G.107 §7.5).
    let ie_eff = IE_G711 + (95.0 - IE_G711) * loss / (loss + BPL_G711_PLC);
    (R_DEFAULT - id - ie_eff).clamp(0.0, 100.0)
}

/// The mean opinion score (1–4.5) G.107 Annex B gives for R.
#[must_use]
pub fn mos_of(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7.0e-6
    }
}

/// The estimated MOS of a G.711 call losing `loss_percent` % of its packets
/// with `delay_ms` of one-way delay.
#[must_use]
pub fn mos(loss_percent: f64, delay_ms: f64) -> f64 {
    mos_of(r_factor(loss_percent, delay_ms))
}

#[cfg(test)]
mod tests {
    use super::{mos, mos_of, r_factor};

    #[test]
    fn known_points_of_the_e_model() {
        // R 93.2 is MOS 4.41 (G.107 Annex B).
        assert!((mos_of(93.2) - 4.41).abs() < 0.01);
        // R 50 is MOS 2.58, the edge of "nearly all users dissatisfied".
        assert!((mos_of(50.0) - 2.58).abs() < 0.01);
        assert!((mos_of(-3.0) - 1.0).abs() < f64::EPSILON);
        assert!((mos_of(120.0) - 4.5).abs() < f64::EPSILON);
    }

    #[test]
    fn loss_and_delay_cost_quality_in_order() {
        // 1 % loss with concealment costs G.711 about 3.6 points of R.
        assert!((r_factor(1.0, 0.0) - (93.2 - 95.0 / 26.1)).abs() < 1e-9);
        let mut last = f64::MAX;
        for loss in [0.0, 1.0, 2.0, 5.0, 10.0, 20.0] {
            let value = mos(loss, 60.0);
            assert!(value < last, "{loss} %: {value}");
            last = value;
        }
        // Past 177 ms, delay hurts faster.
        let slope_before = r_factor(0.0, 150.0) - r_factor(0.0, 160.0);
        let slope_after = r_factor(0.0, 300.0) - r_factor(0.0, 310.0);
        assert!(slope_after > 4.0 * slope_before);
        // 5 % loss at 100 ms one way is still a fair call (MOS about 3.8).
        assert!((3.6..4.0).contains(&mos(5.0, 100.0)), "{}", mos(5.0, 100.0));
    }
}
