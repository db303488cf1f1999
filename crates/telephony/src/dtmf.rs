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

use earshot_policy::{DetectedCode, Key, KeypadAction, KeypadCodeDetector, Timestamp};

/// A press with no end packet is ended after this long, in ms, so a lost end
/// never leaves a key held down.
pub const MAX_PRESS_MS: i64 = 5_000;

/// How far behind the current press an event's timestamp may be and still
/// be a late packet of an earlier press, in timestamp units (5 s); further
/// behind, the stream's clock started over (a new source, a re-INVITE).
const LATE_PRESS_WINDOW: u32 = 40_000;

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
    /// The longest duration its packets gave, in timestamp units.
    duration: u16,
}

impl Press {
    /// Where the press's event lies on its stream's clock: start and end.
    fn span(self) -> (u32, u32) {
        (self.rtp, self.rtp.wrapping_add(u32::from(self.duration)))
    }
}

/// A key edge with where its press lies on the stream's clock.
#[derive(Clone, Copy, Debug)]
struct Edge {
    edge: KeyEdge,
    /// The press's event: its RTP timestamp, and that plus its duration.
    span: (u32, u32),
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
        self.edges(rtp, event, now).into_iter().map(|e| e.edge).collect()
    }

    fn edges(&mut self, rtp: u32, event: TelephoneEvent, now: Timestamp) -> Vec<Edge> {
        let mut edges = Vec::new();
        match self.current {
            Some(mut press) if press.rtp == rtp => {
                // The same press again: a repeat, a longer duration, or (one of three) ends.
                press.duration = press.duration.max(event.duration);
                if event.end && !press.ended {
                    press.ended = true;
                    edges.push(Edge { edge: KeyEdge::Up(press.key), span: press.span() });
                }
                self.current = Some(press);
            }
            // A late packet of an earlier press (a few seconds back at most;
            // further back is a new stream's clock): that press is over.
            Some(press) if press.rtp.wrapping_sub(rtp) <= LATE_PRESS_WINDOW && rtp != press.rtp => {}
            _ => {
                if let Some(press) = self.current.filter(|p| !p.ended) {
                    edges.push(Edge { edge: KeyEdge::Up(press.key), span: press.span() });
                }
                let press =
                    Press { rtp, key: event.key, down_at: now, ended: event.end, duration: event.duration };
                edges.push(Edge { edge: KeyEdge::Down(event.key), span: press.span() });
                // Its start packets were all lost: the end is all we get, so it is a whole press.
                if event.end {
                    edges.push(Edge { edge: KeyEdge::Up(event.key), span: press.span() });
                }
                self.current = Some(press);
            }
        }
        edges
    }

    /// Time has reached `now`: a press held longer than [`MAX_PRESS_MS`] is ended.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Vec<KeyEdge> {
        self.timeout_edges(now).into_iter().map(|e| e.edge).collect()
    }

    fn timeout_edges(&mut self, now: Timestamp) -> Vec<Edge> {
        match self.current {
            Some(press) if !press.ended && now.millis_since(press.down_at) >= MAX_PRESS_MS => {
                self.current = Some(Press { ended: true, ..press });
                vec![Edge { edge: KeyEdge::Up(press.key), span: press.span() }]
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

/// What a user's leg asks of the call, in order: the code detector's
/// decisions (SPEC §6.2, D9), and where on the leg's RTP clock keys that
/// may be a code begin and a code ends, so the recording can cut exactly
/// there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegAction {
    /// Relay the start of this key press to the far end now.
    PressKey(Key),
    /// Relay the end of the key press started by the last `PressKey`.
    ReleaseKey(Key),
    /// Relay a whole key press that was held back, as long as it was held.
    ReplayKey {
        /// The key.
        key: Key,
        /// How long it was down.
        duration_ms: u32,
    },
    /// Keys that may be a code begin here (the `#`'s event): keep what is
    /// said from here on in memory until it is known.
    MayBeCode {
        /// The event's RTP timestamp.
        from: u32,
    },
    /// The keys held for were no code: nothing to keep any more.
    NoCode,
    /// A code: act on it. It began where `from` says.
    Code {
        /// Which code, and when its keys arrived.
        code: DetectedCode,
        /// Its first key's event's RTP timestamp (`#12#` resumes here).
        from: u32,
    },
    /// The code last acted on ends here: its last key's event's RTP
    /// timestamp plus its duration (`#11#` pauses here).
    CodeEnds {
        /// That RTP timestamp.
        at: u32,
    },
}

/// One user's leg: telephone events in; keys to relay, keys to replay,
/// codes, and where codes lie on the leg's clock out (SPEC §6.2, D9).
#[derive(Clone, Debug, Default)]
pub struct KeypadLeg {
    receiver: DtmfReceiver,
    detector: KeypadCodeDetector,
    /// Where the keys held back now began.
    candidate: Option<u32>,
    /// A code was detected at its last key's press: its end is still to come.
    code_ending: bool,
    actions: std::collections::VecDeque<LegAction>,
}

impl KeypadLeg {
    /// A leg that has seen nothing.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A telephone-event packet arriving at `now`.
    pub fn handle_packet(&mut self, rtp: u32, event: TelephoneEvent, now: Timestamp) {
        let edges = self.receiver.edges(rtp, event, now);
        self.feed(&edges, now);
    }

    /// Time has reached `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let edges = self.receiver.timeout_edges(now);
        self.feed(&edges, now);
        let holding = self.detector.is_holding();
        self.detector.handle_timeout(now);
        self.take_decisions(None);
        if holding && !self.detector.is_holding() {
            self.no_code();
        }
    }

    /// When [`Self::handle_timeout`] should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        [self.receiver.poll_timeout(), self.detector.poll_timeout()].into_iter().flatten().min()
    }

    /// The next thing to do, in order.
    pub fn poll_action(&mut self) -> Option<LegAction> {
        self.actions.pop_front()
    }

    fn feed(&mut self, edges: &[Edge], now: Timestamp) {
        for edge in edges {
            match edge.edge {
                KeyEdge::Down(key) => {
                    let holding = self.detector.is_holding();
                    self.detector.handle_key_down(now, key);
                    let coded = self.take_decisions(Some(edge.span.0));
                    if self.detector.held_keys() == 1 {
                        // This key begins what may be a code (perhaps after
                        // keys that turned out not to be one).
                        self.candidate = Some(edge.span.0);
                        self.actions.push_back(LegAction::MayBeCode { from: edge.span.0 });
                    } else if holding && !coded && !self.detector.is_holding() {
                        self.no_code();
                    }
                }
                KeyEdge::Up(key) => {
                    self.detector.handle_key_up(now, key);
                    self.take_decisions(None);
                    if std::mem::take(&mut self.code_ending) {
                        self.actions.push_back(LegAction::CodeEnds { at: edge.span.1 });
                    }
                }
            }
        }
    }

    /// Moves the detector's decisions over; whether one was a code.
    /// `press` is the RTP timestamp of the key just pressed, if one was.
    fn take_decisions(&mut self, press: Option<u32>) -> bool {
        let mut coded = false;
        while let Some(action) = self.detector.poll_action() {
            self.actions.push_back(match action {
                KeypadAction::PressKey { key } => LegAction::PressKey(key),
                KeypadAction::ReleaseKey { key } => LegAction::ReleaseKey(key),
                KeypadAction::ReplayKey { key, duration_ms } => LegAction::ReplayKey { key, duration_ms },
                KeypadAction::Code(code) => {
                    coded = true;
                    self.code_ending = true;
                    let from = self.candidate.take().or(press).unwrap_or(0);
                    LegAction::Code { code, from }
                }
            });
        }
        coded
    }

    fn no_code(&mut self) {
        self.candidate = None;
        self.actions.push_back(LegAction::NoCode);
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
        if let Some((_, down_at, hold)) = self.queue.iter_mut().rev().find(|(_, _, hold)| *hold == Hold::Held)
        {
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
