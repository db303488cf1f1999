//! The media relay: a relay per call owns the call's two RTP sockets (one
//! per leg, from the configured port range), relays audio between them, plays
//! prompts, collects menu keys, takes voicemail, and taps both directions
//! into the call's one recording (SPEC §6). Relays run on one thread per
//! core that relays each packet as it arrives (epoll, batched reads with
//! `recvmmsg`, through `nix`) and goes round its calls every
//! [`RELAY_TICK`] for their commands and paced work; see
//! docs/PERFORMANCE.md for why. What the SDP agreed,
//! latching, the outgoing streams and keys out are each leg's
//! `earshot_telephony::leg::MediaLeg`, the same the app's phone uses.
//!
//! Keys from a user's leg go through that leg's `KeypadLeg` (SPEC D9): codes
//! are acted on through `LiveRecording` and never reach the far end; other
//! keys are sent on as fresh RFC 4733 events. Keys from an outside party are
//! relayed as they came.

use earshot_policy::{
    CodeOutcome, CompanySettings, Key, LiveRecording, PausedSpan, RecordingState, Timestamp, User,
};
use earshot_telephony::dtmf::{DtmfReceiver, KeyEdge, KeypadLeg, LegAction, TelephoneEvent};
use earshot_telephony::leg::{Incoming, MediaLeg};
use earshot_telephony::rtp::RtpView;
use earshot_telephony::sdp::AudioSession;
use earshot_telephony::sealed::KeyRing;
use earshot_telephony::srtp::{Refused, SdesKey};
use earshot_telephony::wav::RecordingWriter;

/// A recording file of `channels` at `path`: sealed when there are keys.
fn create_writer(
    path: &std::path::Path,
    channels: u16,
    keys: Option<&KeyRing>,
) -> Result<RecordingWriter, earshot_telephony::wav::WavError> {
    match keys {
        Some(keys) => RecordingWriter::create_sealed(path, channels, keys),
        None => RecordingWriter::create(path, channels),
    }
}
use earshot_telephony::{Channel, Recorder};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
use std::net::UdpSocket;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Packets dropped by every relay, for `/metrics` and the tests.
#[derive(Debug, Default)]
pub struct MediaStats {
    /// From an address that is not the leg's peer.
    pub foreign_packets: AtomicU64,
    /// Not RTP, or a payload type the leg did not negotiate.
    pub garbage_packets: AtomicU64,
    /// Relayed between legs.
    pub relayed_packets: AtomicU64,
    /// SRTP packets whose authentication tag did not check (forged, or
    /// keyed otherwise), dropped.
    pub srtp_forged_packets: AtomicU64,
    /// SRTP packets replayed, dropped.
    pub srtp_replayed_packets: AtomicU64,
    /// SRTP packets that came before the peer's key and were let go
    /// unchecked, pushed out of the leg's hold by newer ones.
    pub srtp_unkeyed_dropped_packets: AtomicU64,
}

/// Hands out RTP ports from the configured range, round the range.
#[derive(Debug)]
pub struct PortPool {
    range: RangeInclusive<u16>,
    next: AtomicU16,
}

impl PortPool {
    /// A pool over `range` (even ports are used; RTCP is not bound).
    #[must_use]
    pub fn new(range: RangeInclusive<u16>) -> Self {
        Self { next: AtomicU16::new(*range.start()), range }
    }

    /// A socket on `ip` at a free port of the range.
    pub fn bind(&self, ip: IpAddr) -> std::io::Result<UdpSocket> {
        let (low, high) = (*self.range.start(), *self.range.end());
        let span = u32::from(high - low) + 1;
        for _ in 0..span.div_ceil(2) {
            let next = u32::from(self.next.fetch_add(2, Ordering::Relaxed).wrapping_sub(low));
            let port = low + u16::try_from((next % span) & !1).unwrap_or(0);
            if let Ok(socket) = UdpSocket::bind(SocketAddr::new(ip, port)) {
                socket.set_nonblocking(true)?;
                return Ok(socket);
            }
        }
        Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, "no free RTP port in the configured range"))
    }
}

/// Which leg: `A` is the caller's, `B` the callee's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leg {
    /// The calling side.
    A,
    /// The called side.
    B,
}

impl Leg {
    const fn index(self) -> usize {
        match self {
            Self::A => 0,
            Self::B => 1,
        }
    }

    const fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }
}

/// What the call task asks of the relay.
#[derive(Debug)]
pub enum MediaCommand {
    /// The leg's peer described its audio (offer or answer).
    Peer(Leg, AudioSession),
    /// The leg's media is SRTP, ours protected with this key (sent before
    /// the peer's description; a TLS leg).
    Srtp(Leg, SdesKey),
    /// Which user, if any, keys on this leg (their codes are acted on).
    User(Leg, User),
    /// Play 8 kHz mono samples to a leg, then say so.
    Play(Leg, Arc<[i16]>, oneshot::Sender<()>),
    /// Report keys pressed on leg A (a menu is listening), or stop.
    CollectKeys(bool),
    /// Relay between the legs, recording as `recording` says.
    Bridge(Box<RecordingSetup>),
    /// Record leg A alone into a voicemail (sealed under these keys, when set).
    Voicemail(PathBuf, Option<Arc<KeyRing>>),
    /// Stop and report what was written.
    Finish(oneshot::Sender<MediaOutcome>),
}

/// How a bridged call is recorded.
#[derive(Debug)]
pub struct RecordingSetup {
    /// The recording as decided at the start.
    pub live: LiveRecording,
    /// The company's settings (for codes and `paused_audio`).
    pub settings: CompanySettings,
    /// Which leg is "our user" (left channel).
    pub ours: Leg,
    /// Where the file goes.
    pub path: PathBuf,
    /// Seal it under these master keys, when recordings are sealed.
    pub keys: Option<Arc<KeyRing>>,
}

/// What the relay tells the call task.
#[derive(Debug)]
pub enum MediaEvent {
    /// A key pressed on leg A while a menu listens.
    Key(Key),
    /// The recording changed state, or where its pauses lie did.
    RecordingState {
        /// The state changed (else only a pause's place: for the journal).
        changed: bool,
        /// Now recording, paused or off.
        state: RecordingState,
        /// Why it is (or isn't) recorded, with the codes acted on so far.
        trace: Vec<earshot_policy::TraceEntry>,
        /// The pauses so far, as the file will hold them.
        spans: Vec<earshot_telephony::SpanSoFar>,
    },
    /// A user's code was refused.
    Refused {
        /// Who keyed it.
        user: earshot_policy::UserId,
        /// Why, for their app.
        reason: earshot_policy::CodeRefusal,
    },
}

/// A written WAV file.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    /// Where.
    pub path: PathBuf,
    /// How long, in ms.
    pub duration_ms: u64,
    /// Bytes on disk.
    pub size_bytes: u64,
    /// Paused spans.
    pub paused_spans: Vec<PausedSpan>,
}

/// What the relay wrote.
#[derive(Debug, Default)]
pub struct MediaOutcome {
    /// The call's recording, with its final state and trace.
    pub recording: Option<WrittenFile>,
    /// The recording's state and trace, when the call was bridged.
    pub live: Option<LiveRecording>,
    /// The voicemail.
    pub voicemail: Option<WrittenFile>,
}

/// A running relay.
#[derive(Debug)]
pub struct Media {
    /// Where each leg receives RTP (for our SDP).
    pub local: [SocketAddr; 2],
    commands: mpsc::UnboundedSender<MediaCommand>,
    /// Set with each command, so the relay looks at its queue only when
    /// there is something in it.
    pending: Arc<AtomicBool>,
}

impl Media {
    /// Sends the relay a command; it acts on it at its next tick.
    pub fn send(&self, command: MediaCommand) {
        let _ = self.commands.send(command);
        self.pending.store(true, Ordering::Release);
    }
}

struct LegState {
    socket: UdpSocket,
    /// What the SDP agreed, the latched peer, our outgoing stream, keys out.
    leg: MediaLeg,
    keypad: Option<(User, KeypadLeg)>,
    /// Keys from a menu caller.
    receiver: DtmfReceiver,
    playing: Option<(Arc<[i16]>, usize, oneshot::Sender<()>)>,
}

struct Recording {
    live: LiveRecording,
    settings: CompanySettings,
    ours: Leg,
    path: PathBuf,
    keys: Option<Arc<KeyRing>>,
    /// The recorder; without a writer, one that only keeps what is said
    /// while keys may be a `#12#` that starts the recording.
    recorder: Option<Recorder>,
    writer: Option<RecordingWriter>,
    frames: u64,
    /// A `#11#` keyed on this leg pauses at the end of its last key.
    pause_at_end: Option<Leg>,
}

struct Voicemail {
    path: PathBuf,
    writer: RecordingWriter,
    frames: u64,
}

/// How often a relay thread does each call's commands and paced work
/// (prompts, keypad events, recordings fed to disk). Audio does not wait
/// for it: a packet is relayed when it arrives ([`relay_thread`]).
pub const RELAY_TICK: Duration = Duration::from_millis(20);

/// The threads relays run on: one per core, each relaying its calls'
/// packets as they arrive (epoll), and going round all of its calls every
/// [`RELAY_TICK`] for their commands and paced work.
#[derive(Debug)]
pub struct Relays {
    threads: Vec<std::sync::mpsc::Sender<Relay>>,
    next: AtomicU64,
}

impl Relays {
    /// One relay thread per core.
    pub fn start() -> std::io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let mut threads = Vec::with_capacity(cores);
        for index in 0..cores {
            let (sender, receiver) = std::sync::mpsc::channel::<Relay>();
            let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(std::io::Error::from)?;
            std::thread::Builder::new()
                .name(format!("earshot-media-{index}"))
                .spawn(move || relay_thread(&receiver, &epoll))?;
            threads.push(sender);
        }
        Ok(Self { threads, next: AtomicU64::new(0) })
    }

    /// Starts a relay with one socket per leg on `ip`, on the next relay thread.
    pub fn start_relay(
        &self,
        ports: &PortPool,
        ip: IpAddr,
        stats: Arc<MediaStats>,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> std::io::Result<Media> {
        let a = ports.bind(ip)?;
        let b = ports.bind(ip)?;
        let local = [a.local_addr()?, b.local_addr()?];
        let (commands, rx) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicBool::new(true));
        let relay = Relay {
            legs: [leg_state(a)?, leg_state(b)?],
            commands: rx,
            pending: Arc::clone(&pending),
            stats,
            events,
            bridged: false,
            collecting: false,
            recording: None,
            voicemail: None,
            next_tick: std::time::Instant::now(),
            finished: false,
            relayed: 0,
            decoded: Vec::with_capacity(160),
        };
        let index = self.next.fetch_add(1, Ordering::Relaxed) as usize % self.threads.len();
        self.threads[index].send(relay).map_err(|_| std::io::Error::other("the relay thread is gone"))?;
        Ok(Media { local, commands, pending })
    }
}

/// Packets read from a socket per `recvmmsg` call.
const BATCH: usize = 8;

/// Packets read from one socket per wake-up at most, so one flooded
/// socket can't starve the other calls; the rest waits for the next.
const READS_PER_WAKE: usize = 256;

/// Buffers for one batched read.
struct Batch {
    bufs: Box<[[u8; 2048]; BATCH]>,
    headers: MultiHeaders<SockaddrStorage>,
    /// Length and source of each datagram of the last read (no source:
    /// cut short, as it did not fit its buffer).
    got: [(usize, Option<SocketAddr>); BATCH],
}

impl Batch {
    fn new() -> Self {
        Self {
            bufs: Box::new([[0; 2048]; BATCH]),
            headers: MultiHeaders::preallocate(BATCH, None),
            got: [(0, None); BATCH],
        }
    }

    /// One `recvmmsg` on `socket`, without waiting: how many datagrams it read.
    fn recv(&mut self, socket: &UdpSocket) -> std::io::Result<usize> {
        let mut slices = self.bufs.each_mut().map(|buf| [std::io::IoSliceMut::new(buf)]);
        let received =
            recvmmsg(socket.as_raw_fd(), &mut self.headers, slices.iter_mut(), MsgFlags::MSG_DONTWAIT, None)?;
        let mut count = 0;
        for (got, message) in self.got.iter_mut().zip(received) {
            let whole = !message.flags.contains(MsgFlags::MSG_TRUNC);
            *got = (message.bytes, message.address.as_ref().and_then(socket_addr).filter(|_| whole));
            count += 1;
        }
        Ok(count)
    }
}

fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    address.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// Wake-ups a relay thread takes in [`BUSY_WINDOW`] before it counts as
/// busy (about one per packet for 10 calls: 1 000 a second).
const BUSY_WAKES: u32 = 100;
const BUSY_WINDOW: Duration = Duration::from_millis(100);
/// A busy thread's least time between wake-ups: what arrived meanwhile is
/// read in one go. The most a packet waits in the relay for it.
const BUSY_GAP: Duration = Duration::from_millis(2);

/// One relay thread: relays each packet as it arrives, and every
/// [`RELAY_TICK`] does each call's commands and paced work.
///
/// The sockets are in an epoll set (level-triggered; each event says which
/// call and leg), and a readable socket is emptied in batches (`recvmmsg`).
/// A thread with few calls wakes for each packet: its audio waits for
/// nothing. A busy one (over [`BUSY_WAKES`] wake-ups in [`BUSY_WINDOW`])
/// waits [`BUSY_GAP`] between wake-ups and reads all that came meanwhile,
/// so its wake-ups stay near 500 a second however many calls it has.
///
/// Reading every socket on the tick instead, without epoll, cost about
/// 13 % less CPU per call, but held each packet up to a tick: measured on
/// the wire, it added a 20 ms step to the jitter of one packet in ten and
/// more as the senders' clocks slid past the tick, the largest jitter of a
/// call on loopback and the one the phones' jitter buffers most often
/// failed to wait for (docs/PERFORMANCE.md).
fn relay_thread(new: &std::sync::mpsc::Receiver<Relay>, epoll: &Epoll) {
    // Slots of calls; an epoll event's data is its slot × 2 + its leg.
    let mut relays: Vec<Option<Relay>> = Vec::new();
    let mut batch = Batch::new();
    let mut events = vec![EpollEvent::empty(); 256];
    let mut next_tick = std::time::Instant::now();
    let (mut window_start, mut wakes, mut busy) = (std::time::Instant::now(), 0_u32, false);
    let mut last_wake = std::time::Instant::now();
    loop {
        if relays.iter().all(Option::is_none) {
            match new.recv() {
                Ok(relay) => add_relay(epoll, &mut relays, relay),
                Err(_) => return,
            }
            next_tick = std::time::Instant::now();
        }
        for relay in new.try_iter() {
            add_relay(epoll, &mut relays, relay);
        }
        if busy {
            sleep_until(last_wake + BUSY_GAP);
        }
        let wait = next_tick.saturating_duration_since(std::time::Instant::now());
        let wait_ms = u16::try_from(wait.as_micros().div_ceil(1_000)).unwrap_or(u16::MAX);
        let ready = match epoll.wait(&mut events, EpollTimeout::from(wait_ms)) {
            Ok(ready) => ready,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(error) => {
                tracing::error!(%error, "waiting for RTP failed");
                std::thread::sleep(RELAY_TICK);
                0
            }
        };
        let now = std::time::Instant::now();
        last_wake = now;
        wakes += 1;
        if now.duration_since(window_start) >= BUSY_WINDOW {
            busy = wakes > BUSY_WAKES;
            (window_start, wakes) = (now, 0);
        }
        for event in &events[..ready] {
            let data = event.data();
            let leg = if data & 1 == 0 { Leg::A } else { Leg::B };
            if let Some(Some(relay)) = usize::try_from(data >> 1).ok().and_then(|slot| relays.get_mut(slot)) {
                relay.read(leg, &mut batch);
            }
        }
        if now + Duration::from_millis(1) >= next_tick {
            for slot in &mut relays {
                let Some(relay) = slot else { continue };
                relay.stats.relayed_packets.fetch_add(std::mem::take(&mut relay.relayed), Ordering::Relaxed);
                relay.round();
                if relay.finished {
                    for leg in &relay.legs {
                        let _ = epoll.delete(&leg.socket);
                    }
                    *slot = None;
                }
            }
            next_tick = (next_tick + RELAY_TICK).max(now);
        }
    }
}

/// Puts `relay` in a free slot and its sockets in the epoll set.
fn add_relay(epoll: &Epoll, relays: &mut Vec<Option<Relay>>, relay: Relay) {
    let slot = relays.iter().position(Option::is_none).unwrap_or_else(|| {
        relays.push(None);
        relays.len() - 1
    });
    for (leg, state) in relay.legs.iter().enumerate() {
        let data = (slot as u64) << 1 | leg as u64;
        if let Err(error) = epoll.add(&state.socket, EpollEvent::new(EpollFlags::EPOLLIN, data)) {
            // The call goes on without audio on that leg; it is said.
            tracing::error!(%error, "cannot watch an RTP socket");
        }
    }
    relays[slot] = Some(relay);
}

fn sleep_until(at: std::time::Instant) {
    let now = std::time::Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

fn leg_state(socket: UdpSocket) -> std::io::Result<LegState> {
    Ok(LegState {
        socket,
        leg: MediaLeg::new(rand::random(), rand::random()),
        keypad: None,
        receiver: DtmfReceiver::new(),
        playing: None,
    })
}

struct Relay {
    legs: [LegState; 2],
    commands: mpsc::UnboundedReceiver<MediaCommand>,
    /// Set when a command is queued.
    pending: Arc<AtomicBool>,
    stats: Arc<MediaStats>,
    events: mpsc::UnboundedSender<MediaEvent>,
    bridged: bool,
    collecting: bool,
    recording: Option<Recording>,
    voicemail: Option<Voicemail>,
    /// When the paced work is next due.
    next_tick: std::time::Instant,
    /// Finished: the thread drops it.
    finished: bool,
    /// Packets relayed since the thread last added them to `stats` (once a
    /// tick, not an atomic add per packet on a line both threads write).
    relayed: u64,
    /// The last packet's samples, decoded into one buffer kept for the call.
    decoded: Vec<i16>,
}

fn now() -> Timestamp {
    Timestamp(crate::now_millis())
}

impl Relay {
    /// Reads what waits on one leg's socket, in batches, up to
    /// [`READS_PER_WAKE`]; what is left waits for the next wake-up.
    fn read(&mut self, leg: Leg, batch: &mut Batch) {
        let mut read = 0;
        while read < READS_PER_WAKE {
            let count = match batch.recv(&self.legs[leg.index()].socket) {
                Ok(count) => count,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(error) => {
                    tracing::debug!(%error, "reading RTP failed");
                    return;
                }
            };
            for (buf, &(len, from)) in batch.bufs.iter_mut().zip(&batch.got).take(count) {
                read += 1;
                match from {
                    Some(from) => self.on_packet(leg, &mut buf[..len], from),
                    // Larger than any RTP packet we take: dropped and counted.
                    None => {
                        self.stats.garbage_packets.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if count < BATCH {
                return;
            }
        }
    }

    /// One round: commands, then the paced work when it is due (every 20 ms
    /// while a prompt or keys go out, else every 100 ms).
    fn round(&mut self) {
        // The queue is also looked at on each paced tick, to notice a call
        // that went away without finishing its relay.
        let now = std::time::Instant::now();
        // A plain load first: the swap takes the flag's cache line for
        // writing, which for hundreds of calls a tick showed in profiles.
        let queued = self.pending.load(Ordering::Relaxed) && self.pending.swap(false, Ordering::Acquire);
        if queued || now >= self.next_tick {
            loop {
                match self.commands.try_recv() {
                    Ok(MediaCommand::Finish(reply)) => {
                        let _ = reply.send(self.finish());
                        self.finished = true;
                        return;
                    }
                    Ok(command) => {
                        self.on_command(command);
                        self.next_tick = std::time::Instant::now();
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        self.finish();
                        self.finished = true;
                        return;
                    }
                }
            }
        }
        // Due within half a tick counts as due: work paced at one tick must
        // not slip to every other tick.
        let now = std::time::Instant::now();
        if now + RELAY_TICK / 2 >= self.next_tick {
            self.on_tick();
            let pace = if self.is_paced() { 20 } else { 100 };
            self.next_tick = (self.next_tick + Duration::from_millis(pace)).max(now);
        }
    }

    /// Whether something must go out every 20 ms: a prompt, or keypad events.
    fn is_paced(&self) -> bool {
        self.legs.iter().any(|leg| leg.playing.is_some() || leg.leg.is_sending_keys())
    }

    fn on_command(&mut self, command: MediaCommand) {
        match command {
            MediaCommand::Peer(leg, session) => {
                self.legs[leg.index()].leg.set_peer(session);
                self.take_held(leg);
            }
            MediaCommand::Srtp(leg, key) => {
                self.legs[leg.index()].leg.set_srtp_key(key);
                self.take_held(leg);
            }
            MediaCommand::User(leg, user) => self.legs[leg.index()].keypad = Some((user, KeypadLeg::new())),
            MediaCommand::Play(leg, samples, done) => {
                let state = &mut self.legs[leg.index()];
                state.playing = Some((samples, 0, done));
            }
            MediaCommand::CollectKeys(on) => self.collecting = on,
            MediaCommand::Bridge(setup) => {
                self.bridged = true;
                for leg in &mut self.legs {
                    leg.playing = None;
                    leg.leg.reanchor();
                }
                let RecordingSetup { live, settings, ours, path, keys } = *setup;
                let mut recording = Recording {
                    live,
                    settings,
                    ours,
                    path,
                    keys,
                    recorder: None,
                    writer: None,
                    frames: 0,
                    pause_at_end: None,
                };
                if recording.live.state == RecordingState::Recording {
                    recording.open();
                }
                let _ = self.events.send(recording.state_event(true));
                self.recording = Some(recording);
            }
            MediaCommand::Voicemail(path, keys) => match create_writer(&path, 1, keys.as_deref()) {
                Ok(writer) => self.voicemail = Some(Voicemail { path, writer, frames: 0 }),
                Err(error) => tracing::error!(%error, "cannot write the voicemail"),
            },
            MediaCommand::Finish(_) => {}
        }
    }

    /// What came on `leg` before the peer's key (the callee's answer),
    /// once the key is known.
    fn take_held(&mut self, leg: Leg) {
        for (from, mut held, _) in self.legs[leg.index()].leg.take_early() {
            self.on_packet_as(leg, &mut held, from, true);
        }
    }

    fn on_packet(&mut self, leg: Leg, data: &mut [u8], from: SocketAddr) {
        self.on_packet_as(leg, data, from, false);
    }

    /// A datagram on `leg` (`held`: one held for the peer's key, which
    /// latches nothing but the described address, `MediaLeg::accept_held`).
    fn on_packet_as(&mut self, leg: Leg, data: &mut [u8], from: SocketAddr, held: bool) {
        let state = &mut self.legs[leg.index()];
        // On an SRTP leg, a packet whose tag does not check or that was
        // taken before goes no further: it latches nothing and is counted.
        // One that came before the peer's key the leg holds for it.
        let dropped_before = state.leg.srtp_stats().unkeyed_dropped;
        let data = match state.leg.unprotect(from, data, now()) {
            Ok(len) => &mut data[..len],
            Err(refused) => {
                let (counter, count) = match refused {
                    Refused::Replayed => (&self.stats.srtp_replayed_packets, 1),
                    Refused::Forged | Refused::Malformed => (&self.stats.srtp_forged_packets, 1),
                    Refused::Unkeyed => (
                        &self.stats.srtp_unkeyed_dropped_packets,
                        state.leg.srtp_stats().unkeyed_dropped - dropped_before,
                    ),
                };
                counter.fetch_add(count, Ordering::Relaxed);
                return;
            }
        };
        // The leg latches its peer's source and says what the datagram is
        // (symmetric RTP; strangers and garbage are counted and dropped).
        let incoming =
            if held { state.leg.accept_held(from, data, now()) } else { state.leg.accept(from, data, now()) };
        let view = match incoming {
            Incoming::Audio(view) => view,
            Incoming::Event(view, event) => {
                let (rtp, view) = (view.timestamp, RtpView { payload: &[], ..view });
                self.on_event(leg, rtp, event, data, &view, now());
                return;
            }
            Incoming::Control => return,
            Incoming::Foreign => {
                self.stats.foreign_packets.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Incoming::Garbage => {
                self.stats.garbage_packets.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let now = now();
        let codec = state.leg.codec();
        let timestamp = view.timestamp;
        let needs_audio = self.recording.as_ref().is_some_and(|r| r.recorder.is_some())
            || (leg == Leg::A && self.voicemail.is_some());
        let mut samples = std::mem::take(&mut self.decoded);
        if needs_audio {
            codec.decode_into(view.payload, &mut samples);
        } else {
            samples.clear();
        }
        if self.bridged {
            let view = RtpView { payload: &[], ..view };
            let other = &mut self.legs[leg.other().index()];
            if let Some((to, bytes)) = other.leg.relay(data, &view) {
                let _ = other.socket.send_to(&bytes, to);
                self.relayed += 1;
            }
        }
        if let Some(recording) = &mut self.recording
            && let Some(recorder) = &mut recording.recorder
        {
            let channel = if leg == recording.ours { Channel::Ours } else { Channel::Theirs };
            recorder.push(channel, timestamp, &samples, now);
        }
        if leg == Leg::A
            && let Some(voicemail) = &mut self.voicemail
        {
            let frames: Vec<[i16; 2]> = samples.iter().map(|s| [*s, 0]).collect();
            voicemail.frames += frames.len() as u64;
            if let Err(error) = voicemail.writer.write_frames(&frames) {
                tracing::error!(%error, "voicemail write failed");
            }
        }
        self.decoded = samples;
    }

    /// A keypad event on `leg` (`view`: its packet without the payload).
    fn on_event(
        &mut self,
        leg: Leg,
        rtp: u32,
        event: TelephoneEvent,
        data: &mut [u8],
        view: &RtpView<'_>,
        now: Timestamp,
    ) {
        if self.legs[leg.index()].keypad.is_some() {
            if let Some((_, keypad)) = &mut self.legs[leg.index()].keypad {
                keypad.handle_packet(rtp, event, now);
            }
            self.drain_keypad(leg, now);
            return;
        }
        if self.collecting && leg == Leg::A {
            for edge in self.legs[0].receiver.handle(rtp, event, now) {
                if let KeyEdge::Down(key) = edge {
                    let _ = self.events.send(MediaEvent::Key(key));
                }
            }
            return;
        }
        if self.bridged {
            // An outside party's keys go on as they came.
            let other = &mut self.legs[leg.other().index()];
            if let Some((to, bytes)) = other.leg.relay_event(data, view) {
                let _ = other.socket.send_to(&bytes, to);
            }
        }
    }

    /// Acts on what a user's keypad decided: keys on to the far end, codes to the recording.
    fn drain_keypad(&mut self, leg: Leg, now: Timestamp) {
        loop {
            let Some((user, keypad)) = &mut self.legs[leg.index()].keypad else { return };
            let Some(action) = keypad.poll_action() else { return };
            let user = user.clone();
            let far = &mut self.legs[leg.other().index()];
            // After the last packet sent, so two keys with no audio between
            // them never share a timestamp (the far end would merge them).
            let press = far.leg.next_timestamp();
            // Keys go out at once, not at the next paced tick.
            self.next_tick = std::time::Instant::now();
            match action {
                LegAction::PressKey(key) => far.leg.press_key(key, press, now),
                LegAction::ReleaseKey(_) => far.leg.release_key(now),
                LegAction::ReplayKey { key, duration_ms } => {
                    far.leg.tap_key(key, i64::from(duration_ms), press, now);
                }
                LegAction::MayBeCode { from } => {
                    if let Some(recording) = &mut self.recording {
                        recording.hold(leg, from, now);
                    }
                }
                LegAction::NoCode => {
                    if let Some(recording) = &mut self.recording {
                        recording.release(leg);
                    }
                }
                LegAction::Code { code, from } => self.on_code(&user, leg, code.code, from, now),
                LegAction::CodeEnds { at } => {
                    if let Some(recording) = &mut self.recording
                        && recording.pause_at_end == Some(leg)
                    {
                        recording.pause_at_end = None;
                        let channel = recording.channel(leg);
                        if let Some(recorder) = &mut recording.recorder {
                            recorder.pause_at(channel, at, now);
                        }
                        recording.release(leg);
                        // The journal learns where the pause begins.
                        let _ = self.events.send(recording.state_event(false));
                    }
                }
            }
        }
    }

    /// A code keyed on `leg`, whose first key's event began at RTP `from`.
    /// A pause begins at the end of the code's last event (its `CodeEnds`),
    /// a resume at the start of its first (SPEC §6.2).
    fn on_code(
        &mut self,
        user: &User,
        leg: Leg,
        code: earshot_policy::KeypadCode,
        from: u32,
        now: Timestamp,
    ) {
        let Some(recording) = &mut self.recording else {
            // Not bridged yet: nothing is being recorded, the code changes nothing.
            return;
        };
        let outcome = recording.live.on_code(code, user, &recording.settings, now);
        recording.live.apply(&outcome);
        let channel = recording.channel(leg);
        match outcome {
            CodeOutcome::Changed { state, .. } => {
                match state {
                    RecordingState::Paused => recording.pause_at_end = Some(leg),
                    RecordingState::Recording => {
                        if recording.writer.is_none() {
                            // Started by the code: the file begins at its first key.
                            recording.open();
                            if let Some(recorder) = &mut recording.recorder {
                                recorder.start_at(channel, from, now);
                            }
                        } else if let Some(recorder) = &mut recording.recorder {
                            recorder.resume_at(channel, from, now);
                        }
                        recording.release(leg);
                    }
                    RecordingState::Off => recording.release(leg),
                }
                let _ = self.events.send(recording.state_event(true));
            }
            CodeOutcome::Refused { reason, .. } => {
                recording.release(leg);
                let _ = self.events.send(MediaEvent::Refused { user: user.id, reason });
            }
            CodeOutcome::Unchanged { .. } => recording.release(leg),
        }
    }

    fn on_tick(&mut self) {
        let now = now();
        for index in 0..2 {
            let leg = if index == 0 { Leg::A } else { Leg::B };
            if let Some((_, keypad)) = &mut self.legs[index].keypad
                && keypad.poll_timeout().is_some_and(|at| at <= now)
            {
                keypad.handle_timeout(now);
                self.drain_keypad(leg, now);
            }
            let state = &mut self.legs[index];
            if state.receiver.poll_timeout().is_some_and(|at| at <= now) {
                state.receiver.handle_timeout(now);
            }
            state.send_prompt();
            state.send_events(now);
        }
        if let Some(recording) = &mut self.recording {
            recording.drain(now);
        }
    }

    fn finish(&mut self) -> MediaOutcome {
        let mut outcome = MediaOutcome::default();
        if let Some(mut recording) = self.recording.take() {
            outcome.recording = recording.close();
            outcome.live = Some(recording.live);
        }
        if let Some(voicemail) = self.voicemail.take() {
            let size = voicemail.writer.finish().ok();
            outcome.voicemail = size.map(|()| WrittenFile {
                size_bytes: std::fs::metadata(&voicemail.path).map_or(0, |m| m.len()),
                path: voicemail.path,
                duration_ms: voicemail.frames / 8,
                paused_spans: Vec::new(),
            });
        }
        for leg in &mut self.legs {
            if let Some((_, done)) = leg.playing.take().map(|(_, _, done)| ((), done)) {
                let _ = done.send(());
            }
        }
        outcome
    }
}

impl LegState {
    fn send_prompt(&mut self) {
        let Some((samples, at, _)) = &mut self.playing else { return };
        let end = (*at + 160).min(samples.len());
        let timestamp = self.leg.next_timestamp();
        let packet = self.leg.audio(&samples[*at..end], timestamp, false);
        *at = end;
        let finished = end >= samples.len();
        if let Some(packet) = packet {
            let _ = self.socket.send_to(&packet.payload, packet.destination);
        }
        if finished && let Some((_, _, done)) = self.playing.take() {
            let _ = done.send(());
            self.leg.reanchor();
        }
    }

    fn send_events(&mut self, now: Timestamp) {
        let mut packets = Vec::new();
        self.leg.handle_timeout(self.leg.next_timestamp(), now, &mut packets);
        for packet in packets {
            let _ = self.socket.send_to(&packet.payload, packet.destination);
        }
    }
}

impl Recording {
    /// Tells the call task where the recording stands (`changed`: its
    /// state changed, else only where its pauses lie).
    fn state_event(&self, changed: bool) -> MediaEvent {
        MediaEvent::RecordingState {
            changed,
            state: self.live.state,
            trace: self.live.trace.clone(),
            spans: self.recorder.as_ref().map(Recorder::spans_so_far).unwrap_or_default(),
        }
    }

    fn open(&mut self) {
        match create_writer(&self.path, 2, self.keys.as_deref()) {
            Ok(writer) => {
                self.writer = Some(writer);
                if self.recorder.is_none() {
                    self.recorder = Some(Recorder::new(self.settings.paused_audio));
                }
            }
            Err(error) => tracing::error!(%error, path = %self.path.display(), "cannot write the recording"),
        }
    }

    /// The channel `leg`'s audio is recorded on.
    fn channel(&self, leg: Leg) -> Channel {
        if leg == self.ours { Channel::Ours } else { Channel::Theirs }
    }

    /// Keys keyed on `leg` from RTP `from` may be a code: what is said from
    /// there waits in memory until it is known. With no recording going,
    /// a recorder without a file keeps it, in case the keys start one.
    fn hold(&mut self, leg: Leg, from: u32, now: Timestamp) {
        let channel = self.channel(leg);
        let paused_audio = self.settings.paused_audio;
        self.recorder.get_or_insert_with(|| Recorder::new(paused_audio)).hold_from(channel, from, now);
    }

    /// Nothing more to keep for keys keyed on `leg`; a recorder without a
    /// file goes once neither leg's keys may be a code.
    fn release(&mut self, leg: Leg) {
        if self.pause_at_end == Some(leg) {
            return;
        }
        let channel = self.channel(leg);
        if let Some(recorder) = &mut self.recorder {
            recorder.release_hold(channel);
            if self.writer.is_none() && !recorder.is_holding() {
                self.recorder = None;
            }
        }
    }

    fn drain(&mut self, now: Timestamp) {
        let Some(recorder) = &mut self.recorder else { return };
        let frames = recorder.poll(now);
        // A recorder without a file keeps only what its holds need.
        let Some(writer) = &mut self.writer else { return };
        if !frames.is_empty() {
            self.frames += frames.len() as u64;
            if let Err(error) = writer.write_frames(&frames) {
                tracing::error!(%error, "recording write failed");
            }
        }
    }

    fn close(&mut self) -> Option<WrittenFile> {
        let mut recorder = self.recorder.take()?;
        let mut writer = self.writer.take()?;
        let frames = recorder.finish();
        self.frames += frames.len() as u64;
        writer.write_frames(&frames).ok()?;
        writer.finish().ok()?;
        Some(WrittenFile {
            size_bytes: std::fs::metadata(&self.path).map_or(0, |m| m.len()),
            path: self.path.clone(),
            duration_ms: self.frames / 8,
            paused_spans: recorder.paused_spans().to_vec(),
        })
    }
}
