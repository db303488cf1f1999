//! Keypad codes: `#11#` pauses recording, `#12#` starts or resumes it
//! (SPEC §6.2, D9).
//!
//! [`KeypadCodeDetector`] is sans-IO, in the style of `quinn-proto`: the media
//! path feeds it key presses and releases with the time they arrived, and
//! polls it for what to do: relay a key to the far end now, replay keys held
//! back, or act on a code. Time is passed in; the detector never reads a clock.
//!
//! - A key sequence that begins with `#` is held back until it is either a
//!   code (consumed: the far end never hears it) or cannot become one (its
//!   keys are relayed in order, at once). Other keys pass through without
//!   delay (D9).
//! - A code counts when its four keys arrive in order with at most 3 s
//!   between one key's arrival and the next (§6.2).
//! - The 3 s window runs from one key's arrival to the next key's arrival
//!   (§6.2: keys "arrive"), so a `#` held down for over 3 s before the next
//!   key breaks the code; the held `#` is then pressed at the far end.
//!
//! The RFC 4733 layer below (`earshot-telephony`) turns packets into key
//! presses: one [`KeypadCodeDetector::handle_key_down`] per event (start
//! packets repeat, so it de-duplicates them by the event's RTP timestamp), one
//! [`KeypadCodeDetector::handle_key_up`] when the event ends, and a down then
//! an up for an event whose start packets were all lost. It also bounds how
//! long a relayed key may stay down at the far end. The detector still
//! tolerates what slips through: a release of a key that is not down (a
//! repeated end) is ignored, and a key still down when the next one arrives is
//! taken as released then.

use crate::ids::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::VecDeque;
use std::fmt;

/// The longest gap between the arrival of two keys of one code (§6.2).
pub const CODE_KEY_WINDOW_MS: i64 = 3_000;

/// A keypad key: `0`–`9`, `*`, `#`, and `A`–`D`. Written as its character.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(type = "string"))]
pub struct Key(char);

impl Key {
    /// The `#` key, which starts every code.
    pub const HASH: Self = Self('#');
    /// The `*` key.
    pub const STAR: Self = Self('*');

    /// The key for `c`, if `c` is one (`a`–`d` are taken as `A`–`D`).
    #[must_use]
    pub const fn from_char(c: char) -> Option<Self> {
        match c {
            '0'..='9' | '*' | '#' | 'A'..='D' => Some(Self(c)),
            'a'..='d' => Some(Self(c.to_ascii_uppercase())),
            _ => None,
        }
    }

    /// The digit key `0`–`9`.
    ///
    /// # Panics
    /// When `digit` is over 9.
    #[must_use]
    pub const fn digit(digit: u8) -> Self {
        assert!(digit <= 9, "a digit key is 0-9");
        Self((b'0' + digit) as char)
    }

    /// The key's character.
    #[must_use]
    pub const fn as_char(self) -> char {
        self.0
    }

    /// The keys of `text`, or `None` if any character is not a key.
    #[must_use]
    pub fn parse_all(text: &str) -> Option<Vec<Self>> {
        text.chars().map(Self::from_char).collect()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.0)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A key as a pattern (JSON Schema, `regex`): what [`Key::from_char`] takes.
pub const KEY_PATTERN: &str = "^[0-9*#A-Da-d]$";

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Key {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(KEY_PATTERN))
            .description(Some("A keypad key: `0`-`9`, `*`, `#`, `A`-`D`."))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Key {}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0; 4];
        serializer.serialize_str(self.0.encode_utf8(&mut buf))
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut chars = text.chars();
        match (chars.next().and_then(Self::from_char), chars.next()) {
            (Some(key), None) => Ok(key),
            _ => Err(serde::de::Error::custom(format!("{text:?} is not a keypad key (0-9, *, #, A-D)"))),
        }
    }
}

/// A keypad code.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeypadCode {
    /// `#11#`: pause (stop) the recording.
    Pause,
    /// `#12#`: start or resume the recording.
    Resume,
}

impl KeypadCode {
    /// Every code.
    pub const ALL: [Self; 2] = [Self::Pause, Self::Resume];

    /// The keys that make the code.
    #[must_use]
    pub const fn keys(self) -> [Key; 4] {
        match self {
            Self::Pause => [Key::HASH, Key('1'), Key('1'), Key::HASH],
            Self::Resume => [Key::HASH, Key('1'), Key('2'), Key::HASH],
        }
    }

    /// The code these keys make, if they make one.
    #[must_use]
    pub fn from_keys(keys: &[Key]) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.keys() == keys)
    }

    /// Whether `keys` can still grow into a code.
    #[must_use]
    pub fn is_prefix(keys: &[Key]) -> bool {
        Self::ALL.into_iter().any(|code| code.keys().starts_with(keys))
    }
}

impl fmt::Display for KeypadCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys();
        keys.iter().try_for_each(|key| write!(f, "{key}"))
    }
}

/// A code the detector recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectedCode {
    /// Which code.
    pub code: KeypadCode,
    /// When its first key arrived.
    pub first_key_at: Timestamp,
    /// When its last key arrived.
    pub last_key_at: Timestamp,
}

/// What the media path must do, in the order the detector returns them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum KeypadAction {
    /// Relay the start of this key press to the far end now.
    PressKey {
        /// The key.
        key: Key,
    },
    /// Relay the end of the key press started by the last `PressKey`.
    ReleaseKey {
        /// The key.
        key: Key,
    },
    /// Relay a whole key press that was held back: press, then release after `duration_ms`.
    ReplayKey {
        /// The key.
        key: Key,
        /// How long the key was down.
        duration_ms: u32,
    },
    /// A code: act on it. Its keys are consumed and never reach the far end.
    Code(DetectedCode),
}

/// What became of the key that is down now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Disposition {
    /// Passed through: its release is relayed too.
    Relayed,
    /// Held back as part of a possible code: its release is remembered.
    Held,
    /// The last key of a code: its release is swallowed.
    Consumed,
}

#[derive(Clone, Copy, Debug)]
struct HeldKey {
    key: Key,
    down_at: Timestamp,
    up_at: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug)]
struct DownKey {
    key: Key,
    disposition: Disposition,
}

/// Finds `#11#` and `#12#` in one call leg's key presses (SPEC §6.2, D9).
///
/// ```
/// use earshot_policy::{Key, KeypadAction, KeypadCode, KeypadCodeDetector, Timestamp};
///
/// let mut detector = KeypadCodeDetector::new();
/// let mut at = Timestamp(0);
/// for c in "#11#".chars() {
///     let key = Key::from_char(c).unwrap();
///     detector.handle_key_down(at, key);
///     detector.handle_key_up(at.plus_millis(100), key);
///     at = at.plus_millis(400);
/// }
/// let actions: Vec<_> = std::iter::from_fn(|| detector.poll_action()).collect();
/// assert!(matches!(actions[..], [KeypadAction::Code(code)] if code.code == KeypadCode::Pause));
/// ```
#[derive(Clone, Debug, Default)]
pub struct KeypadCodeDetector {
    held: Vec<HeldKey>,
    down: Option<DownKey>,
    actions: VecDeque<KeypadAction>,
}

impl KeypadCodeDetector {
    /// A detector with nothing held.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A key went down at `at`. A key that was still down is taken as released at `at`.
    pub fn handle_key_down(&mut self, at: Timestamp, key: Key) {
        if let Some(down) = self.down {
            self.release(at, down);
        }
        self.expire(at);
        if !self.held.is_empty() {
            let mut candidate: Vec<Key> = self.held.iter().map(|held| held.key).collect();
            candidate.push(key);
            if let Some(code) = KeypadCode::from_keys(&candidate) {
                self.actions.push_back(KeypadAction::Code(DetectedCode {
                    code,
                    first_key_at: self.held[0].down_at,
                    last_key_at: at,
                }));
                self.held.clear();
                self.down = Some(DownKey { key, disposition: Disposition::Consumed });
                return;
            }
            if KeypadCode::is_prefix(&candidate) {
                self.hold(at, key);
                return;
            }
            // These keys can no longer be a code: relay them, then take the new key afresh.
            self.relay_held();
        }
        if key == Key::HASH {
            self.hold(at, key);
        } else {
            self.actions.push_back(KeypadAction::PressKey { key });
            self.down = Some(DownKey { key, disposition: Disposition::Relayed });
        }
    }

    /// A key went up at `at`. Repeated or unmatched releases are ignored.
    pub fn handle_key_up(&mut self, at: Timestamp, key: Key) {
        if let Some(down) = self.down.filter(|down| down.key == key) {
            self.release(at, down);
        }
    }

    /// Time has reached `now`: keys held longer than the code window are relayed.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.expire(now);
    }

    /// When [`Self::handle_timeout`] should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.held.last().map(|last| last.down_at.plus_millis(CODE_KEY_WINDOW_MS + 1))
    }

    /// The next thing to do, in order; `None` when there is nothing more.
    pub fn poll_action(&mut self) -> Option<KeypadAction> {
        self.actions.pop_front()
    }

    /// Whether keys are being held back now.
    #[must_use]
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// How many keys are held back now: 1 when a possible code has just begun.
    #[must_use]
    pub fn held_keys(&self) -> usize {
        self.held.len()
    }

    fn hold(&mut self, at: Timestamp, key: Key) {
        self.held.push(HeldKey { key, down_at: at, up_at: None });
        self.down = Some(DownKey { key, disposition: Disposition::Held });
    }

    fn release(&mut self, at: Timestamp, down: DownKey) {
        self.down = None;
        match down.disposition {
            Disposition::Relayed => self.actions.push_back(KeypadAction::ReleaseKey { key: down.key }),
            Disposition::Held => {
                if let Some(last) = self.held.last_mut() {
                    last.up_at = Some(at);
                }
            }
            Disposition::Consumed => {}
        }
    }

    fn expire(&mut self, now: Timestamp) {
        if self.held.last().is_some_and(|last| now.millis_since(last.down_at) > CODE_KEY_WINDOW_MS) {
            self.relay_held();
        }
    }

    /// Relays every held key in order. A held key still down is pressed now
    /// and its release, when it comes, is relayed as usual.
    fn relay_held(&mut self) {
        for held in self.held.drain(..) {
            match held.up_at {
                Some(up_at) => {
                    let duration_ms =
                        u32::try_from(up_at.millis_since(held.down_at).max(0)).unwrap_or(u32::MAX);
                    self.actions.push_back(KeypadAction::ReplayKey { key: held.key, duration_ms });
                }
                None => {
                    self.actions.push_back(KeypadAction::PressKey { key: held.key });
                    if let Some(down) = self.down.as_mut() {
                        down.disposition = Disposition::Relayed;
                    }
                }
            }
        }
    }
}
