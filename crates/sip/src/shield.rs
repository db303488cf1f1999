//! The shield on the SIP port: what a SIP server open to the internet needs
//! against the scanners and password guessers that find it within hours
//! (SIPVicious's `svwar` and `svcrack` are the usual ones).
//!
//! - **Scanners that announce themselves** (`User-Agent: friendly-scanner`
//!   and the like) are dropped without an answer: an answer tells them a
//!   SIP server is there.
//! - **Floods**: out-of-dialog requests (new INVITEs, REGISTERs, OPTIONS…)
//!   from one source beyond a rate (a token bucket: a burst, then so many a
//!   second) are dropped; UDP clients retransmit, so a real phone caught
//!   in it only waits.
//! - **Guessing**: failed digest answers are counted per source and per
//!   account. After a few, that source (or that account, from sources it
//!   was never used from) is refused with `403`, without its answer being
//!   checked, for a period that doubles with each block (up to an hour).
//!   A source an account has signed in from before keeps its way in (until
//!   it fails as often as would block a stranger), so an attack on an
//!   account does not lock its owner out, and one broken phone behind an
//!   office's NAT does not lock out its colleagues. An IPv6 source counts
//!   by its /64, one subscriber's network.
//!
//! The service answers an unknown account exactly as a wrong password
//! (`403`), so none of this tells an attacker which accounts exist. The
//! addresses given to the shield must be the transport's: the endpoint's
//! `SOURCE_HEADER`, never a Via, which the sender writes.
//!
//! [`Shield`] is the sans-IO core: it takes what arrived and `now`, keeps
//! its memory bounded, and says what to do; [`SharedShield`] is the one the
//! socket and the service share, which counts and logs (once per source
//! and episode, never per packet). Hand-written: rate limiters exist as
//! crates (`governor`), but the lockout with known-good sources is the
//! point here, and the bucket is ten lines.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the shield allows.
#[derive(Clone, Debug, PartialEq)]
pub struct ShieldConfig {
    /// Failed digest answers from one source before it is blocked.
    pub source_failures: u32,
    /// Failed digest answers for one account (from sources it was never
    /// used from) before it is locked.
    pub account_failures: u32,
    /// The first block's length; each next one doubles…
    pub first_block: Duration,
    /// …up to this.
    pub longest_block: Duration,
    /// Failures, blocks and what was said about a source are forgotten
    /// after this long without a new failure.
    pub forget_after: Duration,
    /// How long a source an account signed in from stays known-good.
    pub known_good_for: Duration,
    /// Out-of-dialog requests a source may send a second, sustained…
    pub new_requests_per_second: f64,
    /// …and at once.
    pub new_requests_burst: f64,
    /// Sources never rate-limited or blocked: the trunk, the SIP proxies
    /// in front (accounts behind them are still locked, and the clients
    /// behind them are judged by the address they name).
    pub trusted: Vec<IpAddr>,
}

impl Default for ShieldConfig {
    fn default() -> Self {
        Self {
            source_failures: 5,
            account_failures: 10,
            first_block: Duration::from_secs(60),
            longest_block: Duration::from_secs(3_600),
            forget_after: Duration::from_secs(15 * 60),
            known_good_for: Duration::from_secs(30 * 24 * 3_600),
            new_requests_per_second: 20.0,
            new_requests_burst: 60.0,
            trusted: Vec::new(),
        }
    }
}

/// What the door does with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    /// Let it in.
    Pass,
    /// A scanner that said so: drop it; `first` when this source is new to
    /// the shield as a scanner (log it).
    Scanner {
        /// The first time for this source.
        first: bool,
    },
    /// Over the source's rate: drop it; `first` as above.
    Flood {
        /// The first time for this source.
        first: bool,
    },
}

/// Whether a digest answer is checked at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Check it.
    Check,
    /// Refuse it (`403`) unchecked: its source or its account is blocked.
    Refuse,
}

/// A block that started: said once, when it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// This source's digest answers are refused for so long.
    SourceBlocked {
        /// The source.
        source: IpAddr,
        /// For how long.
        period: Duration,
    },
    /// This account's digest answers from new sources are refused for so long.
    AccountLocked {
        /// The digest user name.
        account: String,
        /// For how long.
        period: Duration,
    },
}

/// The most sources and accounts remembered; past it, what is not blocked
/// is forgotten first (a flood from very many addresses then passes the
/// rate limit, but never the blocks).
const MAX_TRACKED: usize = 50_000;
/// Known-good sources kept per account.
const MAX_GOOD: usize = 8;
/// Longest account name kept (a digest user name is the attacker's choice).
const MAX_ACCOUNT: usize = 128;
/// How often the memory is swept.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Source {
    tokens: f64,
    filled_at: Instant,
    last_seen: Instant,
    failures: u32,
    last_failure: Option<Instant>,
    blocks: u32,
    blocked_until: Option<Instant>,
    told_scanner: bool,
    told_flood: bool,
}

#[derive(Debug, Default)]
struct Account {
    failures: u32,
    last_failure: Option<Instant>,
    blocks: u32,
    locked_until: Option<Instant>,
    good: Vec<Good>,
}

/// A source an account signed in from, and the failures from it since.
#[derive(Debug)]
struct Good {
    source: IpAddr,
    at: Instant,
    failures: u32,
}

/// The key an account is remembered by: its digest user name, cut to
/// [`MAX_ACCOUNT`] characters (the attacker chooses it).
fn account_key(name: &str) -> String {
    name.chars().take(MAX_ACCOUNT).collect()
}

/// The key a source is remembered by: its address, an IPv6 one by its /64
/// (one subscriber's network: blocking a single address of it is nothing).
#[must_use]
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            IpAddr::V6(std::net::Ipv6Addr::from(v6.to_bits() & !((1_u128 << 64) - 1)))
        }
        IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED)),
        v4 => v4,
    }
}

/// Failures counted towards a block, forgotten (with the blocks so far)
/// after a quiet spell since the last failure or the end of the last block.
fn count_failure(
    failures: &mut u32,
    last_failure: &mut Option<Instant>,
    blocks: &mut u32,
    blocked_until: Option<Instant>,
    now: Instant,
    forget: Duration,
) {
    let quiet_since = match (*last_failure, blocked_until) {
        (Some(failed), Some(until)) => Some(failed.max(until)),
        (failed, until) => failed.or(until),
    };
    if quiet_since.is_some_and(|at| now.saturating_duration_since(at) > forget) {
        *failures = 0;
        *blocks = 0;
    }
    *failures += 1;
    *last_failure = Some(now);
}

/// The length of block number `blocks` (1-based).
fn period(config: &ShieldConfig, blocks: u32) -> Duration {
    let doubled = config.first_block.saturating_mul(1_u32 << blocks.saturating_sub(1).min(20));
    doubled.min(config.longest_block)
}

/// The shield's memory and judgement (sans-IO).
#[derive(Debug)]
pub struct Shield {
    config: ShieldConfig,
    sources: HashMap<IpAddr, Source>,
    accounts: HashMap<String, Account>,
    swept_at: Option<Instant>,
}

impl Shield {
    /// A shield with nothing remembered.
    #[must_use]
    pub fn new(config: ShieldConfig) -> Self {
        Self { config, sources: HashMap::new(), accounts: HashMap::new(), swept_at: None }
    }

    fn source(&mut self, ip: IpAddr, now: Instant) -> &mut Source {
        if !self.sources.contains_key(&ip) && self.sources.len() >= MAX_TRACKED {
            // Full: forget first who never failed, then who is not blocked.
            self.sources.retain(|_, s| s.failures > 0 || s.blocked_until.is_some_and(|u| now < u));
            if self.sources.len() >= MAX_TRACKED {
                self.sources.retain(|_, s| s.blocked_until.is_some_and(|u| now < u));
            }
        }
        let burst = self.config.new_requests_burst;
        let source = self.sources.entry(ip).or_insert_with(|| Source {
            tokens: burst,
            filled_at: now,
            last_seen: now,
            failures: 0,
            last_failure: None,
            blocks: 0,
            blocked_until: None,
            told_scanner: false,
            told_flood: false,
        });
        source.last_seen = now;
        source
    }

    fn account(&mut self, name: &str, now: Instant) -> &mut Account {
        let name = account_key(name);
        if !self.accounts.contains_key(&name) && self.accounts.len() >= MAX_TRACKED {
            let locked = |a: &Account| a.locked_until.is_some_and(|u| now < u);
            self.accounts.retain(|_, a| a.failures > 0 || locked(a) || !a.good.is_empty());
            if self.accounts.len() >= MAX_TRACKED {
                self.accounts.retain(|_, a| locked(a) || !a.good.is_empty());
            }
        }
        self.accounts.entry(name).or_default()
    }

    /// The known-good entry of `source` for `account`, if it is one.
    fn good(&mut self, account: &str, source: IpAddr, now: Instant) -> Option<&mut Good> {
        let known_for = self.config.known_good_for;
        let account = self.accounts.get_mut(&account_key(account))?;
        account
            .good
            .iter_mut()
            .find(|g| g.source == source && now.saturating_duration_since(g.at) < known_for)
    }

    /// What to do with `request`, just arrived from `source`.
    pub fn door(&mut self, source: IpAddr, request: &Knock<'_>, now: Instant) -> Door {
        self.sweep(now);
        let source = source_key(source);
        if request.user_agent.is_some_and(is_scanner) {
            let source = self.source(source, now);
            let first = !source.told_scanner;
            source.told_scanner = true;
            return Door::Scanner { first };
        }
        if !request.new || self.config.trusted.contains(&source) {
            return Door::Pass;
        }
        let (rate, burst) = (self.config.new_requests_per_second, self.config.new_requests_burst);
        let source = self.source(source, now);
        let elapsed = now.saturating_duration_since(source.filled_at).as_secs_f64();
        source.tokens = (source.tokens + elapsed * rate).min(burst);
        source.filled_at = now;
        if source.tokens >= 1.0 {
            source.tokens -= 1.0;
            return Door::Pass;
        }
        let first = !source.told_flood;
        source.told_flood = true;
        Door::Flood { first }
    }

    /// Whether a digest answer for `account` from `source` is checked.
    pub fn gate(&mut self, account: &str, source: IpAddr, now: Instant) -> Gate {
        let source = source_key(source);
        if self.good(account, source, now).is_some() {
            return Gate::Check;
        }
        let trusted = self.config.trusted.contains(&source);
        let source_blocked = !trusted
            && self.sources.get(&source).and_then(|s| s.blocked_until).is_some_and(|until| now < until);
        let account = self.accounts.get(&account_key(account));
        let account_locked = account.and_then(|a| a.locked_until).is_some_and(|until| now < until);
        if source_blocked || account_locked { Gate::Refuse } else { Gate::Check }
    }

    /// A checked digest answer for `account` from `source` was wrong (or
    /// the account does not exist): the blocks that start now.
    ///
    /// From a source the account signed in from, a few failures are its
    /// owner's typos or a phone with an old password: they count towards
    /// nothing but that source's good standing, which they end after as
    /// many as would block a stranger (so a neighbour behind the same NAT
    /// gets no more guesses than anyone).
    pub fn failed(&mut self, account: &str, source: IpAddr, now: Instant) -> Vec<Notice> {
        self.sweep(now);
        let source = source_key(source);
        let limit = self.config.source_failures;
        if let Some(good) = self.good(account, source, now) {
            good.failures += 1;
            if good.failures >= limit {
                let name = account_key(account);
                if let Some(entry) = self.accounts.get_mut(&name) {
                    entry.good.retain(|g| g.source != source);
                }
            }
            return Vec::new();
        }
        let mut notices = Vec::new();
        let (forget, config) = (self.config.forget_after, self.config.clone());
        if !config.trusted.contains(&source) {
            let entry = self.source(source, now);
            let until = entry.blocked_until;
            count_failure(
                &mut entry.failures,
                &mut entry.last_failure,
                &mut entry.blocks,
                until,
                now,
                forget,
            );
            if entry.failures >= config.source_failures {
                entry.failures = 0;
                entry.blocks += 1;
                let period = period(&config, entry.blocks);
                entry.blocked_until = Some(now + period);
                notices.push(Notice::SourceBlocked { source, period });
            }
        }
        let entry = self.account(account, now);
        let until = entry.locked_until;
        count_failure(&mut entry.failures, &mut entry.last_failure, &mut entry.blocks, until, now, forget);
        if entry.failures >= config.account_failures {
            entry.failures = 0;
            entry.blocks += 1;
            let period = period(&config, entry.blocks);
            entry.locked_until = Some(now + period);
            notices.push(Notice::AccountLocked { account: account_key(account), period });
        }
        notices
    }

    /// A digest answer for `account` from `source` was right: `source` is
    /// known-good for it from now on. Failures are not wiped: an attacker
    /// with an account of their own must not reset their count with it.
    pub fn succeeded(&mut self, account: &str, source: IpAddr, now: Instant) {
        let source = source_key(source);
        let entry = self.account(account, now);
        entry.good.retain(|g| g.source != source);
        entry.good.push(Good { source, at: now, failures: 0 });
        if entry.good.len() > MAX_GOOD {
            entry.good.remove(0);
        }
    }

    /// Sources and accounts remembered (for tests and metrics).
    #[must_use]
    pub fn tracked(&self) -> (usize, usize) {
        (self.sources.len(), self.accounts.len())
    }

    /// Forgets what no longer matters: what has been quiet for
    /// `forget_after` since its last failure or the end of its last block.
    fn sweep(&mut self, now: Instant) {
        if self.swept_at.is_some_and(|at| now.saturating_duration_since(at) < SWEEP_EVERY) {
            return;
        }
        self.swept_at = Some(now);
        let (forget, known_for) = (self.config.forget_after, self.config.known_good_for);
        // Within `forget` of a block's end, a next block is still longer.
        let recent = |at: Option<Instant>| at.is_some_and(|at| now.saturating_duration_since(at) <= forget);
        self.sources.retain(|_, s| recent(Some(s.last_seen)) || recent(s.blocked_until));
        self.accounts.retain(|_, a| {
            a.good.retain(|g| now.saturating_duration_since(g.at) < known_for);
            recent(a.last_failure) || recent(a.locked_until) || !a.good.is_empty()
        });
    }
}

/// The User-Agents of SIP scanners and war-dialers, by the first word of
/// the header (lower case). They say who they are by default; one that
/// hides meets the rate limit and the blocks instead.
const SCANNERS: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sipscan",
    "vaxsipuseragent",
    "iwar",
    "sundayddr",
    "sivus",
    "smap",
    "pplsip",
];

/// Whether `user_agent` names a scanner: its first word (up to a space or
/// a `/`) is one of [`SCANNERS`], or it mentions SIPVicious's own names.
#[must_use]
pub fn is_scanner(user_agent: &str) -> bool {
    let user_agent = user_agent.trim().to_ascii_lowercase();
    let first = user_agent.split([' ', '/', '\t']).next().unwrap_or_default();
    SCANNERS.contains(&first) || user_agent.contains("friendly-scanner") || user_agent.contains("sipvicious")
}

/// What the door reads of a request, without parsing all of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Knock<'a> {
    /// Out of any dialog (no To tag) and not an ACK or CANCEL.
    pub new: bool,
    /// Its User-Agent.
    pub user_agent: Option<&'a str>,
}

impl<'a> Knock<'a> {
    /// Reads a request's head; `None` for a response or what is not SIP.
    #[must_use]
    pub fn read(message: &'a [u8]) -> Option<Self> {
        let head = message.split(|b| *b == b'\n').map(|line| line.strip_suffix(b"\r").unwrap_or(line));
        let mut lines = head.take_while(|line| !line.is_empty());
        let first = std::str::from_utf8(lines.next()?).ok()?.trim();
        let method = first.split(' ').next()?;
        let upper = first.to_ascii_uppercase();
        if upper.starts_with("SIP/") || !upper.ends_with("SIP/2.0") || method.is_empty() {
            return None;
        }
        let (mut user_agent, mut tagged, mut seen_to) = (None, false, false);
        for line in lines {
            let Ok(line) = std::str::from_utf8(line) else { continue };
            let Some((name, value)) = line.split_once(':') else { continue };
            let name = name.trim();
            if name.eq_ignore_ascii_case("user-agent") {
                user_agent = Some(value.trim());
            } else if (name.eq_ignore_ascii_case("to") || name.eq_ignore_ascii_case("t")) && !seen_to {
                // The first To is the one the stack reads.
                seen_to = true;
                let params = value.rsplit_once('>').map_or(value, |(_, rest)| rest);
                tagged = params.split(';').any(|p| p.trim().to_ascii_lowercase().starts_with("tag="));
            }
        }
        let new = !tagged && !method.eq_ignore_ascii_case("ACK") && !method.eq_ignore_ascii_case("CANCEL");
        Some(Self { new, user_agent })
    }
}

/// What becomes of a message at the shield.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// On to the SIP stack.
    Pass,
    /// Dropped, unanswered (a scanner).
    Drop,
    /// Over its source's rate: dropped over UDP (the sender retransmits),
    /// answered `503` with `Retry-After` over TCP and TLS (which do not).
    Busy,
}

/// What the shield turned away, for `/metrics`.
#[derive(Debug, Default)]
pub struct ShieldStats {
    /// Requests from announced scanners, dropped.
    pub scanner_dropped: AtomicU64,
    /// Out-of-dialog requests over their source's rate, dropped.
    pub flood_dropped: AtomicU64,
    /// Digest answers checked and found wrong (or for no such account).
    pub auth_failures: AtomicU64,
    /// Digest answers refused unchecked, their source or account blocked.
    pub auth_refused: AtomicU64,
    /// Blocks of a source that started.
    pub sources_blocked: AtomicU64,
    /// Locks of an account that started.
    pub accounts_locked: AtomicU64,
}

/// The shield the SIP socket and the service share: [`Shield`] on the
/// clock, counted and logged.
#[derive(Debug)]
pub struct SharedShield {
    core: Mutex<Shield>,
    /// What it turned away.
    pub stats: ShieldStats,
}

impl Default for SharedShield {
    fn default() -> Self {
        Self::new(ShieldConfig::default())
    }
}

impl SharedShield {
    /// A shared shield configured so.
    #[must_use]
    pub fn new(config: ShieldConfig) -> Self {
        Self { core: Mutex::new(Shield::new(config)), stats: ShieldStats::default() }
    }

    fn core(&self) -> std::sync::MutexGuard<'_, Shield> {
        self.core.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What becomes of `message`, just arrived from `source`; what does not
    /// pass is counted, and logged once per source.
    pub fn admit(&self, source: IpAddr, message: &[u8]) -> Admission {
        let Some(knock) = Knock::read(message) else { return Admission::Pass };
        let door = self.core().door(source, &knock, Instant::now());
        match door {
            Door::Pass => Admission::Pass,
            Door::Scanner { first } => {
                self.stats.scanner_dropped.fetch_add(1, Ordering::Relaxed);
                if first {
                    tracing::warn!(
                        %source,
                        user_agent = knock.user_agent.unwrap_or_default(),
                        "a SIP scanner announced itself: its requests are dropped unanswered"
                    );
                }
                Admission::Drop
            }
            Door::Flood { first } => {
                self.stats.flood_dropped.fetch_add(1, Ordering::Relaxed);
                if first {
                    tracing::warn!(%source, "too many new SIP requests from one source: the excess is turned away");
                }
                Admission::Busy
            }
        }
    }

    /// Whether a digest answer for `account` from `source` is checked;
    /// refusals counted.
    pub fn gate(&self, account: &str, source: IpAddr) -> Gate {
        let gate = self.core().gate(account, source, Instant::now());
        if gate == Gate::Refuse {
            self.stats.auth_refused.fetch_add(1, Ordering::Relaxed);
        }
        gate
    }

    /// A checked digest answer was wrong: counted, and a block that starts
    /// is logged.
    pub fn failed(&self, account: &str, source: IpAddr) {
        self.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
        let notices = self.core().failed(account, source, Instant::now());
        for notice in notices {
            match notice {
                Notice::SourceBlocked { source, period } => {
                    self.stats.sources_blocked.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        %source,
                        seconds = period.as_secs(),
                        "repeated failed SIP sign-ins: this source is refused for a while"
                    );
                }
                Notice::AccountLocked { account, period } => {
                    self.stats.accounts_locked.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        %account,
                        seconds = period.as_secs(),
                        "repeated failed SIP sign-ins: this account is refused from new sources for a while"
                    );
                }
            }
        }
    }

    /// A checked digest answer was right.
    pub fn succeeded(&self, account: &str, source: IpAddr) {
        self.core().succeeded(account, source, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    const REGISTER: &str = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\n\
        From: <sip:101@example.com>;tag=a\r\nTo: <sip:101@example.com>\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\n\
        User-Agent: Linphone/5.2\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn a_knock_reads_whether_a_request_is_new_and_who_sends_it() {
        let knock = Knock::read(REGISTER.as_bytes()).unwrap();
        assert_eq!(knock, Knock { new: true, user_agent: Some("Linphone/5.2") });
        let in_dialog = REGISTER
            .replace("REGISTER sip", "BYE sip")
            .replace("To: <sip:101@example.com>", "t: <sip:101@example.com>;tag=b");
        assert!(!Knock::read(in_dialog.as_bytes()).unwrap().new);
        let ack = REGISTER.replace("REGISTER sip", "ACK sip");
        assert!(!Knock::read(ack.as_bytes()).unwrap().new);
        // A tag inside the URI is not the header's.
        let uri_tag = REGISTER.replace("To: <sip:101@example.com>", "To: <sip:101@example.com;tag=z>");
        assert!(Knock::read(uri_tag.as_bytes()).unwrap().new);
        assert_eq!(Knock::read(b"SIP/2.0 200 OK\r\n\r\n"), None);
        assert_eq!(Knock::read(b"\x00\x01"), None);
    }

    #[test]
    fn a_scanner_that_says_so_is_dropped_and_noticed_once() {
        let mut shield = Shield::new(ShieldConfig::default());
        let now = Instant::now();
        let scan = REGISTER.replace("Linphone/5.2", "friendly-scanner");
        let knock = Knock::read(scan.as_bytes()).unwrap();
        assert_eq!(shield.door(ip(1), &knock, now), Door::Scanner { first: true });
        assert_eq!(shield.door(ip(1), &knock, now), Door::Scanner { first: false });
        assert_eq!(shield.door(ip(2), &knock, now), Door::Scanner { first: true });
        assert!(is_scanner("SIPVicious/0.3.8") && !is_scanner("baresip v1.0.0 (x86_64/linux)"));
    }

    #[test]
    fn new_requests_beyond_the_rate_are_dropped_and_the_rate_comes_back() {
        let config = ShieldConfig {
            new_requests_per_second: 10.0,
            new_requests_burst: 20.0,
            ..ShieldConfig::default()
        };
        let mut shield = Shield::new(config);
        let knock = Knock::read(REGISTER.as_bytes()).unwrap();
        let now = Instant::now();
        for _ in 0..20 {
            assert_eq!(shield.door(ip(1), &knock, now), Door::Pass);
        }
        assert_eq!(shield.door(ip(1), &knock, now), Door::Flood { first: true });
        assert_eq!(shield.door(ip(1), &knock, now), Door::Flood { first: false });
        // Another source has its own bucket; in-dialog requests are not limited.
        assert_eq!(shield.door(ip(2), &knock, now), Door::Pass);
        let in_dialog = Knock { new: false, user_agent: None };
        assert_eq!(shield.door(ip(1), &in_dialog, now), Door::Pass);
        // A tenth of a second later, one more.
        let later = now + Duration::from_millis(100);
        assert_eq!(shield.door(ip(1), &knock, later), Door::Pass);
        assert_eq!(shield.door(ip(1), &knock, later), Door::Flood { first: false });
    }

    #[test]
    fn a_trusted_source_is_never_limited_or_blocked() {
        let config = ShieldConfig {
            new_requests_burst: 1.0,
            source_failures: 1,
            trusted: vec![ip(9)],
            ..ShieldConfig::default()
        };
        let mut shield = Shield::new(config);
        let knock = Knock::read(REGISTER.as_bytes()).unwrap();
        let now = Instant::now();
        for i in 0..100 {
            assert_eq!(shield.door(ip(9), &knock, now), Door::Pass);
            assert!(shield.failed(&format!("user{i}"), ip(9), now).is_empty());
        }
        assert_eq!(shield.gate("anyone", ip(9), now), Gate::Check);
    }

    #[test]
    fn guessing_blocks_the_source_for_a_period_that_doubles() {
        let mut shield = Shield::new(ShieldConfig::default());
        let start = Instant::now();
        for attempt in 0..4 {
            assert_eq!(shield.gate("ada@acme.test", ip(1), start), Gate::Check, "attempt {attempt}");
            assert!(shield.failed("ada@acme.test", ip(1), start).is_empty());
        }
        assert_eq!(shield.gate("ada@acme.test", ip(1), start), Gate::Check);
        let notices = shield.failed("ada@acme.test", ip(1), start);
        assert_eq!(notices, vec![Notice::SourceBlocked { source: ip(1), period: Duration::from_secs(60) }]);
        // Blocked for every account, unknown ones included.
        assert_eq!(shield.gate("ada@acme.test", ip(1), start), Gate::Refuse);
        assert_eq!(shield.gate("nobody@acme.test", ip(1), start + Duration::from_secs(59)), Gate::Refuse);
        // Others are not.
        assert_eq!(shield.gate("bo@acme.test", ip(2), start), Gate::Check);
        // After the block, five more failures block it twice as long.
        let after = start + Duration::from_secs(61);
        assert_eq!(shield.gate("ada@acme.test", ip(1), after), Gate::Check);
        let mut notices = Vec::new();
        for _ in 0..5 {
            notices.extend(shield.failed("x", ip(1), after));
        }
        assert!(notices.contains(&Notice::SourceBlocked { source: ip(1), period: Duration::from_secs(120) }));
        // Quiet for longer than forget_after: a fresh start.
        let quiet = after + Duration::from_secs(120 + 16 * 60);
        assert_eq!(shield.gate("x", ip(1), quiet), Gate::Check);
        let mut notices = Vec::new();
        for _ in 0..5 {
            notices.extend(shield.failed("y", ip(1), quiet));
        }
        assert!(notices.contains(&Notice::SourceBlocked { source: ip(1), period: Duration::from_secs(60) }));
    }

    #[test]
    fn the_block_grows_to_an_hour_at_most() {
        let config = ShieldConfig { source_failures: 1, ..ShieldConfig::default() };
        let mut shield = Shield::new(config);
        let mut now = Instant::now();
        let mut last = Duration::ZERO;
        for _ in 0..12 {
            let notices = shield.failed("a", ip(1), now);
            let Some(Notice::SourceBlocked { period, .. }) = notices.first() else { panic!("{notices:?}") };
            assert!(*period >= last);
            last = *period;
            now += *period + Duration::from_secs(1);
        }
        assert_eq!(last, Duration::from_secs(3_600));
    }

    #[test]
    fn an_attacked_account_is_locked_for_new_sources_but_its_owner_keeps_their_way_in() {
        let mut shield = Shield::new(ShieldConfig::default());
        let now = Instant::now();
        // Ada signed in from her desk before the attack.
        shield.succeeded("ada@acme.test", ip(100), now);
        // Attackers spread over sources, four tries each (under the source limit).
        let mut locked = Vec::new();
        for source in 1..=3 {
            for _ in 0..4 {
                locked.extend(shield.failed("ada@acme.test", ip(source), now));
            }
        }
        assert_eq!(
            locked,
            vec![Notice::AccountLocked { account: "ada@acme.test".into(), period: Duration::from_secs(60) }]
        );
        assert_eq!(shield.gate("ada@acme.test", ip(4), now), Gate::Refuse, "a new source");
        assert_eq!(shield.gate("ada@acme.test", ip(100), now), Gate::Check, "her desk");
        assert_eq!(shield.gate("bo@acme.test", ip(4), now), Gate::Check, "another account");
        // Her desk stays good even when a colleague's broken phone gets the shared address blocked.
        for _ in 0..5 {
            shield.failed("cy@acme.test", ip(100), now);
        }
        assert_eq!(shield.gate("cy@acme.test", ip(100), now), Gate::Refuse);
        assert_eq!(shield.gate("ada@acme.test", ip(100), now), Gate::Check);
    }

    #[test]
    fn a_success_does_not_wipe_the_failures_of_its_source() {
        let mut shield = Shield::new(ShieldConfig::default());
        let now = Instant::now();
        let mut notices = Vec::new();
        for _ in 0..5 {
            notices.extend(shield.failed("ada@acme.test", ip(1), now));
            shield.succeeded("mallory@acme.test", ip(1), now);
        }
        assert!(notices.iter().any(|n| matches!(n, Notice::SourceBlocked { .. })));
        assert_eq!(shield.gate("ada@acme.test", ip(1), now), Gate::Refuse);
    }

    #[test]
    fn memory_stays_bounded_and_what_is_quiet_is_forgotten() {
        let mut shield = Shield::new(ShieldConfig::default());
        let now = Instant::now();
        let knock = Knock::read(REGISTER.as_bytes()).unwrap();
        for i in 0..1_000_u32 {
            let source = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            shield.door(source, &knock, now);
            shield.failed(&format!("guess{i}"), source, now);
        }
        let later = now + Duration::from_secs(16 * 60);
        shield.door(ip(1), &knock, later);
        assert_eq!(shield.tracked(), (1, 0), "everything quiet for 16 minutes is gone");
    }

    #[test]
    fn a_flood_of_new_addresses_neither_grows_memory_nor_wipes_a_guessers_count() {
        let mut shield = Shield::new(ShieldConfig::default());
        let now = Instant::now();
        let knock = Knock::read(REGISTER.as_bytes()).unwrap();
        for _ in 0..4 {
            shield.failed("ada@acme.test", ip(1), now);
        }
        for i in 0..(MAX_TRACKED as u32 + 1_000) {
            let source = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            shield.door(source, &knock, now);
        }
        assert!(shield.tracked().0 <= MAX_TRACKED, "{:?}", shield.tracked());
        let notices = shield.failed("ada@acme.test", ip(1), now);
        assert!(notices.iter().any(|n| matches!(n, Notice::SourceBlocked { .. })), "the count survived");
    }

    #[test]
    fn an_ipv6_network_is_one_source() {
        let mut shield = Shield::new(ShieldConfig::default());
        let now = Instant::now();
        for host in 1..=5_u16 {
            let source: IpAddr = format!("2001:db8:1:2::{host:x}").parse().unwrap();
            shield.failed("ada@acme.test", source, now);
        }
        let neighbour: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(shield.gate("bo@acme.test", neighbour, now), Gate::Refuse, "the same /64");
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(shield.gate("bo@acme.test", elsewhere, now), Gate::Check);
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(source_key(mapped), ip(1), "an IPv4 address in IPv6 clothing is itself");
    }

    #[test]
    fn a_known_source_gets_no_more_guesses_than_a_stranger() {
        let mut shield = Shield::new(ShieldConfig::default());
        let now = Instant::now();
        shield.succeeded("ada@acme.test", ip(100), now);
        // A neighbour behind the office's NAT guesses at Ada's password.
        for _ in 0..4 {
            assert_eq!(shield.gate("ada@acme.test", ip(100), now), Gate::Check);
            assert!(shield.failed("ada@acme.test", ip(100), now).is_empty(), "nothing blocked for typos");
        }
        assert_eq!(shield.gate("ada@acme.test", ip(100), now), Gate::Check);
        shield.failed("ada@acme.test", ip(100), now);
        // Five failures: the address is a stranger to Ada's account again.
        let mut notices = Vec::new();
        for _ in 0..5 {
            notices.extend(shield.failed("ada@acme.test", ip(100), now));
        }
        assert!(notices.iter().any(|n| matches!(n, Notice::SourceBlocked { .. })), "{notices:?}");
        assert_eq!(shield.gate("ada@acme.test", ip(100), now), Gate::Refuse);
        // Signing in again (once the block is over) makes it good again.
        let later = now + Duration::from_secs(61);
        assert_eq!(shield.gate("ada@acme.test", ip(100), later), Gate::Check);
        shield.succeeded("ada@acme.test", ip(100), later);
        assert!(shield.failed("ada@acme.test", ip(100), later).is_empty());
    }

    #[test]
    fn a_knock_reads_requests_as_the_stack_does() {
        let spaced = REGISTER.replace("SIP/2.0\r\nVia", "SIP/2.0 \r\nVia");
        assert_eq!(Knock::read(spaced.as_bytes()).map(|k| k.new), Some(true), "a trailing space");
        let second_to = REGISTER.replace("Call-ID: x", "To: <sip:x@example.com>;tag=9\r\nCall-ID: x");
        assert_eq!(Knock::read(second_to.as_bytes()).map(|k| k.new), Some(true), "the first To counts");
        assert!(is_scanner("friendly-scanner") && is_scanner("sipcli/v1.8") && is_scanner("iWar"));
        assert!(!is_scanner("Smapper Phone 2.0") && !is_scanner("Kiwari SIP/1.2"), "words, not letters");
    }
}
