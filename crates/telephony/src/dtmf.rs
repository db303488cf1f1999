//! RFC 4733 telephone events in, key presses out: the receiving half of the
//! keypad path (SPEC §6.2, D9), sans-IO.
//!
//! The payload is four bytes (event, end bit, volume, duration); parsing it
//! by hand is smaller than any dependency. The part that matters is the state
//! machine: all packets of one key press share its RTP timestamp, the first
//! may be lost, continuation packets repeat, and the end packet is sent three
//! times. [`DtmfReceiver`] turns that stream into exactly one key-down and
//! one key-up per press, which is the contract
//! `earshot_policy::KeypadCodeDetector` expects; [`KeypadLeg`] puts the two
//! together for one user's leg.

use earshot_policy::{Key, KeypadAction, KeypadCodeDetector, Timestamp};

/// A press with no end packet is ended after this long, in ms, so a lost end
/// never leaves a key held down.
pub const MAX_PRESS_MS: i64 = 5_000;

/// One RFC 4733 telephone-event payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The key (events 0–15; others are not keypad keys).
    pub key: Key,
    /// The E bit: this press has ended.
    pub end: bool,
    /// Volume, in −dBm0 (0–63).
    pub volume: u8,
    /// Duration so far, in timestamp units (1/8000 s).
    pub duration: u16,
}

/// Why a payload was not a keypad event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// Fewer than four bytes.
    #[error("a telephone-event payload has 4 bytes, this one {0}")]
    TooShort(usize),
    /// An event that is not one of the 16 keypad keys (flash, tones, …).
    #[error("event {0} is not a keypad key")]
    NotAKey(u8),
}

const KEYS: &[u8; 16] = b"0123456789*#ABCD";

impl TelephoneEvent {
    /// Parses a payload (RFC 4733 §2.3).
    pub fn parse(payload: &[u8]) -> Result<Self, EventError> {
        let [event, flags, high, low, ..] = *payload else {
            return Err(EventError::TooShort(payload.len()));
        };
        let key = KEYS
            .get(usize::from(event))
            .and_then(|c| Key::from_char(char::from(*c)))
            .ok_or(EventError::NotAKey(event))?;
        Ok(Self {
            key,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([high, low]),
        })
    }

    /// The payload for this event.
    #[must_use]
    pub fn to_bytes(self) -> [u8; 4] {
        let event = KEYS.iter().position(|c| char::from(*c) == self.key.as_char()).unwrap_or(0) as u8;
        let [high, low] = self.duration.to_be_bytes();
        [event, u8::from(self.end) << 7 | (self.volume & 0x3f), high, low]
    }
}

/// A key press or release, once per press.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyEdge {
    /// A key went down.
    Down(Key),
    /// It came up.
    Up(Key),
}

#[derive(Clone, Copy, Debug)]
struct Press {
    rtp: u32,
    key: Key,
    down_at: Timestamp,
    ended: bool,
}

/// Turns one leg's telephone-event packets into key edges.
#[derive(Clone, Debug, Default)]
pub struct DtmfReceiver {
    current: Option<Press>,
}

impl DtmfReceiver {
    /// A receiver that has seen nothing.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A packet with RTP timestamp `rtp` and `event`, arriving at `now`.
    pub fn handle(&mut self, rtp: u32, event: TelephoneEvent, now: Timestamp) -> Vec<KeyEdge> {
        let mut edges = Vec::new();
        match self.current {
            Some(press) if press.rtp == rtp => {
                // The same press again: a repeat, a longer duration, or (one of three) ends.
                if event.end && !press.ended {
                    edges.push(KeyEdge::Up(press.key));
                    self.current = Some(Press { ended: true, ..press });
                }
            }
            // A late packet of an earlier press: that press is over.
            Some(press) if (rtp.wrapping_sub(press.rtp) as i32) < 0 => {}
            _ => {
                if let Some(press) = self.current.filter(|p| !p.ended) {
                    edges.push(KeyEdge::Up(press.key));
                }
                edges.push(KeyEdge::Down(event.key));
                // Its start packets were all lost: the end is all we get, so it is a whole press.
                if event.end {
                    edges.push(KeyEdge::Up(event.key));
                }
                self.current = Some(Press { rtp, key: event.key, down_at: now, ended: event.end });
            }
        }
        edges
    }

    /// Time has reached `now`: a press held longer than [`MAX_PRESS_MS`] is ended.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Vec<KeyEdge> {
        match self.current {
            Some(press) if !press.ended && now.millis_since(press.down_at) >= MAX_PRESS_MS => {
                self.current = Some(Press { ended: true, ..press });
                vec![KeyEdge::Up(press.key)]
            }
            _ => Vec::new(),
        }
    }

    /// When [`Self::handle_timeout`] should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.current.filter(|p| !p.ended).map(|p| p.down_at.plus_millis(MAX_PRESS_MS))
    }
}

/// One user's leg: telephone events in; keys to relay, keys to replay and
/// codes out (SPEC §6.2, D9).
#[derive(Clone, Debug, Default)]
pub struct KeypadLeg {
    receiver: DtmfReceiver,
    detector: KeypadCodeDetector,
}

impl KeypadLeg {
    /// A leg that has seen nothing.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A telephone-event packet arriving at `now`.
    pub fn handle_packet(&mut self, rtp: u32, event: TelephoneEvent, now: Timestamp) {
        let edges = self.receiver.handle(rtp, event, now);
        self.feed(&edges, now);
    }

    /// Time has reached `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let edges = self.receiver.handle_timeout(now);
        self.feed(&edges, now);
        self.detector.handle_timeout(now);
    }

    /// When [`Self::handle_timeout`] should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        [self.receiver.poll_timeout(), self.detector.poll_timeout()].into_iter().flatten().min()
    }

    /// The next thing to do, in order.
    pub fn poll_action(&mut self) -> Option<KeypadAction> {
        self.detector.poll_action()
    }

    fn feed(&mut self, edges: &[KeyEdge], now: Timestamp) {
        for edge in edges {
            match *edge {
                KeyEdge::Down(key) => self.detector.handle_key_down(now, key),
                KeyEdge::Up(key) => self.detector.handle_key_up(now, key),
            }
        }
    }
}

/// How often a held key's event packet is repeated, in ms (RFC 4733 §2.5.1.2).
pub const SEND_INTERVAL_MS: i64 = 50;

/// The shortest a key sounds, in ms: a key released before it started
/// sounding (queued behind another) still makes a press a receiver takes.
pub const SHORTEST_KEY_MS: i64 = 40;

/// One event packet to send: its RTP timestamp (the press's start), whether
/// it is the first of the press (marker bit), and the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventPacket {
    /// Timestamp offset of the press: every packet of one press carries the same.
    pub press: u32,
    /// The first packet of a press carries the marker bit.
    pub marker: bool,
    /// The payload.
    pub event: TelephoneEvent,
}

/// How long a queued key sounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    /// Still held: until it is released.
    Held,
    /// It was down this long, in ms.
    For(i64),
}

#[derive(Clone, Copy, Debug)]
struct Sending {
    key: Key,
    press: u32,
    down_at: Timestamp,
    next_at: Timestamp,
    /// A key of known length ends by itself at this time.
    release_at: Option<Timestamp>,
}

/// Sends keys as RFC 4733 events, sans-IO: key down and up in (as the keypad
/// detector decides, SPEC D9), event packets out. A key that comes while
/// another sounds waits its turn and then sounds as long as it was held.
/// The end packet goes out three times (RFC 4733 §2.5.1.4).
#[derive(Clone, Debug, Default)]
pub struct DtmfSender {
    current: Option<Sending>,
    /// Keys waiting their turn: the key, when it went down, how long it sounds.
    queue: std::collections::VecDeque<(Key, Timestamp, Hold)>,
    out: std::collections::VecDeque<EventPacket>,
}

impl DtmfSender {
    /// A sender with nothing to send.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// `key` goes down at `now`; `press` is the stream timestamp to stamp it with.
    pub fn press(&mut self, key: Key, press: u32, now: Timestamp) {
        if self.current.is_some() || !self.queue.is_empty() {
            self.queue.push_back((key, now, Hold::Held));
            return;
        }
        self.start(key, press, now, None);
    }

    /// The key down comes up at `now`.
    pub fn release(&mut self, now: Timestamp) {
        if let Some((_, down_at, hold)) = self.queue.back_mut().filter(|(_, _, hold)| *hold == Hold::Held) {
            // Released before it started sounding: it sounds as long as it was held.
            *hold = Hold::For(now.millis_since(*down_at).max(SHORTEST_KEY_MS));
            return;
        }
        if let Some(sending) = self.current.take() {
            self.end(sending, now);
        }
    }

    /// `key` pressed and released again, sounding `duration_ms` (a key
    /// held back by the code detector and let through after all, as long
    /// as it was held; or a key the app sends by itself).
    pub fn tap(&mut self, key: Key, duration_ms: i64, press: u32, now: Timestamp) {
        let duration_ms = duration_ms.max(SHORTEST_KEY_MS);
        if self.current.is_some() || !self.queue.is_empty() {
            self.queue.push_back((key, now, Hold::For(duration_ms)));
            return;
        }
        self.start(key, press, now, Some(duration_ms));
    }

    /// Time has reached `now`; `press` is the stream timestamp for a key that starts now.
    pub fn handle_timeout(&mut self, press: u32, now: Timestamp) {
        while let Some(mut sending) = self.current {
            if sending.release_at.is_some_and(|at| at <= now) {
                self.current = None;
                let at = sending.release_at.unwrap_or(now);
                self.end(sending, at);
                continue;
            }
            if sending.next_at <= now {
                self.out.push_back(EventPacket {
                    press: sending.press,
                    marker: false,
                    event: event(sending.key, false, duration(sending.down_at, now)),
                });
                sending.next_at = now.plus_millis(SEND_INTERVAL_MS);
                self.current = Some(sending);
            }
            break;
        }
        if self.current.is_none()
            && let Some((key, _, hold)) = self.queue.pop_front()
        {
            let release = match hold {
                Hold::Held => None,
                Hold::For(ms) => Some(ms),
            };
            self.start(key, press, now, release);
        }
    }

    /// When [`Self::handle_timeout`] should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.current.map(|s| s.release_at.map_or(s.next_at, |at| at.min(s.next_at)))
    }

    /// The next packet to send.
    pub fn poll_packet(&mut self) -> Option<EventPacket> {
        self.out.pop_front()
    }

    fn start(&mut self, key: Key, press: u32, now: Timestamp, hold: Option<i64>) {
        self.out.push_back(EventPacket { press, marker: true, event: event(key, false, 0) });
        self.current = Some(Sending {
            key,
            press,
            down_at: now,
            next_at: now.plus_millis(SEND_INTERVAL_MS),
            release_at: hold.map(|ms| now.plus_millis(ms)),
        });
    }

    fn end(&mut self, sending: Sending, now: Timestamp) {
        let end = event(sending.key, true, duration(sending.down_at, now).max(1));
        for _ in 0..3 {
            self.out.push_back(EventPacket { press: sending.press, marker: false, event: end });
        }
    }
}

fn event(key: Key, end: bool, duration: u16) -> TelephoneEvent {
    TelephoneEvent { key, end, volume: 10, duration }
}

fn duration(from: Timestamp, to: Timestamp) -> u16 {
    let ms = (to.0 - from.0).max(0);
    u16::try_from(ms * 8).unwrap_or(u16::MAX)
}
