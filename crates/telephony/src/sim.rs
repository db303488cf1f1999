//! A simulated network for tests and benchmarks, on a simulated clock: a
//! one-way link that delays each datagram by a base delay plus a random
//! jitter (so datagrams overtake each other when the jitter is larger than
//! their spacing), loses some, and duplicates some; deterministic for a
//! seed. The model is quinn-proto's test `Pair`: two sans-IO endpoints
//! joined by links, time moved on by the test.
//!
//! ```
//! use earshot_policy::Timestamp;
//! use earshot_telephony::sim::{Conditions, Link};
//!
//! let mut link = Link::new(Conditions { delay_ms: 30, ..Conditions::default() }, 1);
//! link.send(Timestamp(0), "hello");
//! assert_eq!(link.poll(Timestamp(29)), None);
//! assert_eq!(link.poll(Timestamp(30)), Some("hello"));
//! ```

use earshot_policy::Timestamp;

/// What a link does to what it carries.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Conditions {
    /// Every datagram takes at least this long, in ms.
    pub delay_ms: i64,
    /// And up to this much more, uniformly at random, in ms.
    pub jitter_ms: i64,
    /// The share of datagrams lost (0–1).
    pub loss: f64,
    /// The share of datagrams delivered twice (0–1).
    pub duplicate: f64,
}

/// A small deterministic random generator (xorshift64*): enough to make
/// network weather, and no dependency for the sans-IO core.
#[derive(Clone, Debug)]
pub struct Weather(u64);

impl Weather {
    /// A generator for `seed` (any value; 0 is moved off the fixed point).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// A number in `0..1`.
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// A whole number in `0..=max`.
    pub fn upto(&mut self, max: i64) -> i64 {
        if max <= 0 { 0 } else { ((self.unit() * (max + 1) as f64) as i64).min(max) }
    }
}

/// One direction of a simulated network.
#[derive(Clone, Debug)]
pub struct Link<T> {
    conditions: Conditions,
    weather: Weather,
    /// In flight: when each arrives, the order it was sent in, and it.
    in_flight: Vec<(Timestamp, u64, T)>,
    sent: u64,
}

impl<T: Clone> Link<T> {
    /// A link with these conditions, its randomness from `seed`.
    #[must_use]
    pub fn new(conditions: Conditions, seed: u64) -> Self {
        Self { conditions, weather: Weather::new(seed), in_flight: Vec::new(), sent: 0 }
    }

    /// Changes the conditions for what is sent from now on.
    pub fn set_conditions(&mut self, conditions: Conditions) {
        self.conditions = conditions;
    }

    /// Sends `item` at `now`.
    pub fn send(&mut self, now: Timestamp, item: T) {
        if self.weather.unit() < self.conditions.loss {
            return;
        }
        let copies = if self.weather.unit() < self.conditions.duplicate { 2 } else { 1 };
        for _ in 0..copies {
            let delay = self.conditions.delay_ms + self.weather.upto(self.conditions.jitter_ms);
            self.in_flight.push((now.plus_millis(delay), self.sent, item.clone()));
            self.sent += 1;
        }
    }

    /// The next item that has arrived by `now`, earliest first.
    pub fn poll(&mut self, now: Timestamp) -> Option<T> {
        let (index, _) = self
            .in_flight
            .iter()
            .enumerate()
            .filter(|(_, (at, _, _))| *at <= now)
            .min_by_key(|(_, (at, order, _))| (*at, *order))?;
        Some(self.in_flight.swap_remove(index).2)
    }

    /// When the next item arrives, if one is in flight.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.in_flight.iter().map(|(at, _, _)| *at).min()
    }
}
