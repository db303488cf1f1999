//! SRTP and SRTCP (RFC 3711) keyed by SDES (RFC 4568): the one suite
//! Earshot speaks, `AES_CM_128_HMAC_SHA1_80`, the suite every SIP phone
//! that encrypts media offers. The cipher, the key derivation, the
//! rollover counter and the replay window are `rtc-srtp`'s (webrtc-rs's
//! sans-IO SRTP); this module holds one leg's two contexts (ours to
//! protect what we send, the peer's to check and decrypt what we receive),
//! the keys as SDP carries them (`inline:` base64 of the 16-byte master
//! key and 14-byte salt), and what a refused packet was.
//!
//! A packet that fails its authentication tag (forged, or keyed with
//! something else) or that repeats one already taken (replayed) is refused
//! before anything reads it: it latches no address, reaches no recording
//! and is counted. One that comes before the peer's key is known (the
//! callee sends as it answers, and its answer can be read after its first
//! packets) cannot be checked yet: the leg holds the newest few and checks
//! them once the key is there ([`Refused::Unkeyed`]).
//!
//! ```
//! use earshot_telephony::srtp::{SdesKey, SrtpSession, Refused};
//!
//! let (a, b) = (SdesKey::random(), SdesKey::random());
//! let mut alice = SrtpSession::new(&a, &b);
//! let mut bob = SrtpSession::new(&b, &a);
//! let rtp = [0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff];
//! let mut wire = alice.protect(&rtp).unwrap();
//! assert_ne!(wire[12..16], rtp[12..]);
//! let copy = wire.clone();
//! let len = bob.unprotect(&mut wire).unwrap();
//! assert_eq!(&wire[..len], &rtp);
//! // The same packet again is a replay.
//! let mut again = copy;
//! assert_eq!(bob.unprotect(&mut again), Err(Refused::Replayed));
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rtc_shared::error::Error;
use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

/// The crypto suite we offer and take.
pub const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";

/// Bytes of master key, then of master salt.
const KEY: usize = 16;
const SALT: usize = 14;

/// Packets the replay window remembers (RFC 3711 §3.3.2 asks at least 64).
const REPLAY_WINDOW: usize = 128;

/// A master key and salt, as an `a=crypto` line's `inline:` carries them.
/// Never printed: `Debug` shows that one is there, not what it is.
#[derive(Clone, PartialEq, Eq)]
pub struct SdesKey([u8; KEY + SALT]);

impl std::fmt::Debug for SdesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SdesKey(..)")
    }
}

impl SdesKey {
    /// A fresh random key and salt (one per leg and direction).
    #[must_use]
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// The key of an `inline:` value (base64 of 30 bytes), if it is one.
    #[must_use]
    pub fn from_inline(text: &str) -> Option<Self> {
        let bytes = STANDARD.decode(text.trim()).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// The `inline:` value.
    #[must_use]
    pub fn inline(&self) -> String {
        STANDARD.encode(self.0)
    }

    fn context(&self) -> Context {
        let (key, salt) = self.0.split_at(KEY);
        // Lengths are the profile's by construction.
        Context::new(
            key,
            salt,
            ProtectionProfile::Aes128CmHmacSha1_80,
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
        )
        .unwrap_or_else(|_| unreachable!("a 16-byte key and 14-byte salt fit AES_CM_128_HMAC_SHA1_80"))
    }
}

/// Why a received packet was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Its authentication tag does not check: forged, or keyed otherwise.
    #[error("its SRTP authentication tag does not check")]
    Forged,
    /// A packet already taken, sent again.
    #[error("it replays an SRTP packet already received")]
    Replayed,
    /// Too short or not RTP/RTCP at all.
    #[error("it is not an SRTP or SRTCP packet")]
    Malformed,
    /// It came before the peer's key was known (the far end sends as it
    /// answers; its answer, which carries the key, can come after its
    /// first packets): not checked yet, so not counted.
    #[error("it came before the peer's SRTP key was known")]
    Unkeyed,
}

/// One leg's SRTP: our key protects what we send, the peer's checks and
/// decrypts what we receive.
pub struct SrtpSession {
    ours: Context,
    theirs: Context,
    their_key: SdesKey,
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSession").finish_non_exhaustive()
    }
}

impl SrtpSession {
    /// Protects with `ours`, unprotects with `theirs`.
    #[must_use]
    pub fn new(ours: &SdesKey, theirs: &SdesKey) -> Self {
        Self { ours: ours.context(), theirs: theirs.context(), their_key: theirs.clone() }
    }

    /// The peer described a key again: a new one re-keys what we receive
    /// (its replay window and rollover counter start over); the same one
    /// changes nothing.
    pub fn set_their_key(&mut self, theirs: &SdesKey) {
        if *theirs != self.their_key {
            self.theirs = theirs.context();
            self.their_key = theirs.clone();
        }
    }

    /// `packet` (RTP, or RTCP by its packet type) as SRTP or SRTCP; `None`
    /// for something that is neither (never sent).
    pub fn protect(&mut self, packet: &[u8]) -> Option<Vec<u8>> {
        let protected = if crate::rtcp::is_rtcp(packet) {
            self.ours.encrypt_rtcp(packet)
        } else {
            self.ours.encrypt_rtp(packet)
        };
        protected.ok().map(|bytes| bytes.to_vec())
    }

    /// Checks and decrypts the SRTP or SRTCP packet in `data` in place:
    /// the plaintext is `data[..len]` for the `len` returned.
    ///
    /// # Errors
    /// [`Refused`]: forged, replayed or malformed; `data` is then unchanged.
    pub fn unprotect(&mut self, data: &mut [u8]) -> Result<usize, Refused> {
        let plain = if crate::rtcp::is_rtcp(data) {
            self.theirs.decrypt_rtcp(data)
        } else {
            self.theirs.decrypt_rtp(data)
        };
        let plain = plain.map_err(|error| match error {
            Error::RtpFailedToVerifyAuthTag
            | Error::RtcpFailedToVerifyAuthTag
            | Error::ErrFailedToVerifyAuthTag => Refused::Forged,
            Error::SrtpSsrcDuplicated(..) | Error::SrtcpSsrcDuplicated(..) | Error::ErrDuplicated => {
                Refused::Replayed
            }
            _ => Refused::Malformed,
        })?;
        if plain.len() > data.len() {
            return Err(Refused::Malformed);
        }
        data[..plain.len()].copy_from_slice(&plain);
        Ok(plain.len())
    }
}

/// What one leg refused, for the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SrtpStats {
    /// Packets whose tag did not check.
    pub forged: u64,
    /// Packets replayed.
    pub replayed: u64,
    /// Packets that came before the peer's key and were let go unchecked,
    /// pushed out of the hold by newer ones ([`crate::leg::MediaLeg::unprotect`]):
    /// a far end sending long before its answer, or a stranger's flood
    /// (those still held when a leg ends unkeyed are not counted).
    pub unkeyed_dropped: u64,
}

impl SrtpStats {
    /// Counts one refusal.
    pub fn count(&mut self, refused: Refused) {
        match refused {
            Refused::Forged | Refused::Malformed => self.forged += 1,
            Refused::Replayed => self.replayed += 1,
            Refused::Unkeyed => {}
        }
    }
}
