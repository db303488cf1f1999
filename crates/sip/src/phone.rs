//! A phone: the tokio driver that runs `earshot-telephony`'s user agent on
//! real sockets. One task owns the SIP side (the [`Registration`] and every
//! [`Call`]'s state machine, rsipstack's transactions and dialogs); each
//! call's media runs apart, an [`AudioEndpoint`] between a UDP socket and
//! an [`AudioPort`] (a sound card in the app, a script in the demo's
//! carrier and the tests), ticking every 20 ms: on its own timer, as a
//! task; or on the sound card's clock when the port has one
//! ([`AudioPort::clock`]), on a thread of its own, the far end's frames
//! then handed over on the `Playout`'s schedule.
//!
//! The state machines decide; this module only carries out their commands
//! and feeds back what the network said. The app talks to a [`Phone`]
//! handle (cheap to clone, never blocks) and reads [`PhoneEvent`]s, so an
//! incoming call never waits behind anything else the app does.
//!
//! Time for the state machines is milliseconds since the phone started (a
//! monotonic clock), as [`Timestamp`]s.

use crate::dialog::{
    Credentials, Dialogs, Ending, Incoming, Incomings, Leg, LegEvent, LegEventSender, LegEvents, LegId,
    Placing, Responder,
};
use crate::endpoint::{SipEndpoint, TlsOptions, TlsTrust, connection_to, listen_with};
use crate::message::prelude::{HeadersExt, ToTypedHeader};
use crate::message::{Header, Method, Response, StatusCode, StatusCodeKind, Uri};
use earshot_policy::{Key, Timestamp};
use earshot_telephony::dtmf::KeyEdge;
use earshot_telephony::endpoint::{AudioEndpoint, EndpointStats};
use earshot_telephony::jitter::FrameKind;
use earshot_telephony::playout::Playout;
use earshot_telephony::plc::FRAME;
use earshot_telephony::sdp::{AudioSession, MediaDirection, Negotiation};
use earshot_telephony::srtp::SdesKey;
use earshot_telephony::ua::{
    Call, CallEvent, CallState, Command, Registration, RegistrationCommand, RegistrationState, Signal,
};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::SipAddr;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// An account at a registrar (`earshotd`).
#[derive(Clone, Debug)]
pub struct Account {
    /// The registrar, `host:port` (UDP).
    pub registrar: SocketAddr,
    /// Our address of record's user part: the extension.
    pub user: String,
    /// The digest user name (`earshotd`: the e-mail), when not `user`.
    pub auth_user: Option<String>,
    /// The SIP password.
    pub password: String,
    /// How long each registration asks for, in seconds.
    pub expires_s: u32,
}

/// How a phone starts.
#[derive(Clone, Debug)]
pub struct PhoneConfig {
    /// Where SIP listens (UDP and TCP; port 0 for any).
    pub listen: SocketAddr,
    /// The address RTP sockets bind to (and the SDP announces).
    pub media_ip: IpAddr,
    /// The registrar and credentials; `None` for a phone that only takes
    /// and places direct calls (the demo's carrier).
    pub account: Option<Account>,
    /// How it introduces itself.
    pub user_agent: String,
    /// SIP over TLS to the registrar (then `account.registrar` is its TLS
    /// address), checking its certificate against these anchors; calls
    /// are then SRTP. `None`: UDP, media in clear.
    pub tls: Option<TlsTrust>,
}

/// Audio in and out of a call, 20 ms at a time at 8 kHz.
pub trait AudioPort: Send + 'static {
    /// The next 20 ms of the microphone.
    fn capture(&mut self, frame: &mut [i16; FRAME]);
    /// 20 ms for the speaker.
    fn play(&mut self, frame: &[i16; FRAME]);
    /// The port's own clock (a sound card's), if it has one: notified each
    /// time a frame has been captured. The media task then sends each frame
    /// the moment it is there, instead of on a timer of its own whose phase
    /// against the sound card's would add up to a frame's wait, and hands
    /// over the far end's frames at the pace of those ticks but each as
    /// soon as the jitter buffer lets it (`earshot_telephony::playout`), not
    /// on the tick after it arrived; its timer only stands in when the
    /// port's clock is late by more than [`CLOCK_GRACE`] (a microphone that
    /// stalled), so the far end is still heard.
    fn clock(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }
    /// Whole frames captured and not taken yet (ports with a clock).
    fn ready(&self) -> usize {
        0
    }
}

/// How late a port's clock may be, beyond a frame, before the media task's
/// timer stands in for it (a sound card delivers in uneven pieces).
pub const CLOCK_GRACE: Duration = Duration::from_millis(15);
/// A frame's time.
const FRAME_TIME: Duration = Duration::from_millis(20);
/// Most frames taken on one notification (a late wake-up catches up, a
/// burst beyond this is left to the port's own limits).
const MOST_AT_ONCE: usize = 5;

/// Which call, for as long as the phone runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

/// What the phone tells the app.
#[derive(Clone, Debug, PartialEq)]
pub enum PhoneEvent {
    /// The registration moved.
    Registration(RegistrationState),
    /// A call rings here.
    Incoming {
        /// The call.
        call: CallKey,
        /// The caller's user part (number or extension).
        from: String,
        /// The caller's display name, if given.
        name: Option<String>,
    },
    /// A call moved.
    Call {
        /// The call.
        call: CallKey,
        /// Where it is.
        state: CallState,
    },
    /// The far end pressed or released a key (RFC 4733).
    Key {
        /// The call.
        call: CallKey,
        /// Down or up.
        edge: KeyEdge,
    },
}

/// Why a phone could not start.
#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    /// The SIP endpoint could not listen.
    #[error("cannot listen for SIP: {0}")]
    Listen(#[from] crate::dialog::Error),
}

/// What the app asks of the phone.
enum Order {
    Register,
    Dial { key: CallKey, target: String, from: Option<String>, audio: Box<dyn AudioPort> },
    Answer { key: CallKey, audio: Box<dyn AudioPort> },
    Decline { key: CallKey, busy: bool },
    HangUp(CallKey),
    Hold(CallKey, bool),
    Key { key: CallKey, digit: Key, duration_ms: i64 },
    Stop,
}

/// A handle on a running phone; clones share it. Dropping every handle
/// stops the phone (calls hung up, registration removed).
#[derive(Clone)]
pub struct Phone {
    orders: mpsc::UnboundedSender<Order>,
    next_key: Arc<std::sync::atomic::AtomicU64>,
    stats: Arc<Mutex<HashMap<CallKey, EndpointStats>>>,
    /// Where its SIP listens.
    pub local: SocketAddr,
}

impl Phone {
    /// Starts a phone: listens, and registers when it has an account.
    ///
    /// # Errors
    /// When SIP cannot listen on `config.listen`.
    pub async fn start(
        config: PhoneConfig,
    ) -> Result<(Self, mpsc::UnboundedReceiver<PhoneEvent>), PhoneError> {
        let cancel = CancellationToken::new();
        let tls = TlsOptions { server: None, trust: config.tls.clone() };
        let SipEndpoint { incoming, dialogs, inner, local, .. } =
            listen_with(config.listen, tls, None, &config.user_agent, &cancel).await?;
        let (orders_tx, orders) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let (legs_tx, legs) = dialogs.events();
        let (done_tx, done) = mpsc::unbounded_channel();
        let stats = Arc::new(Mutex::new(HashMap::new()));
        let registration = config.account.as_ref().map(|a| Registration::new(a.expires_s));
        let registers = registration.is_some();
        let next_key = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let driver = Driver {
            config,
            local,
            clock: Instant::now(),
            inner,
            dialogs,
            legs: legs_tx,
            events: events_tx,
            done: done_tx,
            registration,
            register_dialog: None,
            register_out: false,
            tls_local: None,
            calls: HashMap::new(),
            next_key: Arc::clone(&next_key),
            stats: Arc::clone(&stats),
        };
        tokio::spawn(driver.run(orders, incoming, legs, done, cancel));
        let phone = Self { orders: orders_tx, next_key, stats, local };
        if registers {
            phone.send(Order::Register);
        }
        Ok((phone, events))
    }

    fn send(&self, order: Order) {
        // The driver gone means the phone stopped: nothing to do.
        let _ = self.orders.send(order);
    }

    fn key(&self) -> CallKey {
        next_key(&self.next_key)
    }

    /// Registers (again): at start, after the network came back.
    pub fn register(&self) {
        self.send(Order::Register);
    }

    /// Places a call to `target`: a number or extension (through the
    /// registrar), or a `sip:` URI (straight there). Its audio is `audio`.
    pub fn dial(&self, target: &str, audio: Box<dyn AudioPort>) -> CallKey {
        let key = self.key();
        self.send(Order::Dial { key, target: target.to_owned(), from: None, audio });
        key
    }

    /// Places a call as `from` (the user part of its From: a carrier's
    /// caller, say) rather than as the account.
    pub fn dial_from(&self, target: &str, from: &str, audio: Box<dyn AudioPort>) -> CallKey {
        let key = self.key();
        self.send(Order::Dial { key, target: target.to_owned(), from: Some(from.to_owned()), audio });
        key
    }

    /// Answers a call that rings here, with `audio`.
    pub fn answer(&self, call: CallKey, audio: Box<dyn AudioPort>) {
        self.send(Order::Answer { key: call, audio });
    }

    /// Declines a call that rings here: busy (486) or not now (603).
    pub fn decline(&self, call: CallKey, busy: bool) {
        self.send(Order::Decline { key: call, busy });
    }

    /// Hangs up (or gives up on a call still ringing there).
    pub fn hang_up(&self, call: CallKey) {
        self.send(Order::HangUp(call));
    }

    /// Puts the other side on hold, or takes it off.
    pub fn hold(&self, call: CallKey, on: bool) {
        self.send(Order::Hold(call, on));
    }

    /// Sends `key` as an RFC 4733 event lasting `duration_ms`, after any key
    /// still sounding (the keypad, and the recording buttons' `#11#`/`#12#`).
    pub fn press(&self, call: CallKey, key: Key, duration_ms: i64) {
        self.send(Order::Key { key: call, digit: key, duration_ms });
    }

    /// What the call's media counted so far (sent, received, the jitter
    /// buffer's late, lost and concealed frames).
    #[must_use]
    pub fn stats(&self, call: CallKey) -> Option<EndpointStats> {
        self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&call).copied()
    }

    /// Stops the phone: hangs up every call and unregisters.
    pub fn stop(&self) {
        self.send(Order::Stop);
    }
}

/// `target` as a number or extension to dial, as typed or pasted (spaces,
/// dashes, dots, slashes and brackets dropped): digits, `*` and `#`, a `+`
/// first, at most 20; `None` when it is not one.
#[must_use]
pub fn dialable(target: &str) -> Option<String> {
    let number: String =
        target.chars().filter(|c| !c.is_whitespace() && !matches!(c, '-' | '.' | '(' | ')' | '/')).collect();
    let valid = !number.is_empty()
        && number.len() <= 20
        && number
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || c == '*' || c == '#' || (i == 0 && c == '+'));
    valid.then_some(number)
}

fn next_key(counter: &std::sync::atomic::AtomicU64) -> CallKey {
    CallKey(counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1)
}

/// What a spawned SIP exchange reports back to the driver.
enum Done {
    Registered {
        dialog: Box<rsipstack::dialog::registration::Registration>,
        result: Result<Response, String>,
        /// Our end of the TLS connection the REGISTER went on (TLS only).
        via: Option<SocketAddr>,
        /// No connection to the registrar could be made, and why.
        unconnected: Option<String>,
    },
    Invited {
        key: CallKey,
        result: crate::dialog::Outcome,
    },
    ReInvited {
        key: CallKey,
        cseq: u32,
        result: crate::dialog::Outcome,
    },
    Key {
        key: CallKey,
        edge: KeyEdge,
    },
}

/// What a call's media task is told.
enum MediaControl {
    Peer(Box<AudioSession>, MediaDirection),
    Key(Key, i64),
}

/// One call at the driver.
struct Slot {
    call: Call,
    leg: Option<Leg>,
    /// The dialog's Call-ID, which is how its leg's events find it.
    call_id: String,
    /// The far side's re-INVITEs waiting for our answer, by CSeq.
    pending: HashMap<u32, Responder>,
    /// The RTP socket of a call ringing here, until it is answered.
    socket: Option<std::net::UdpSocket>,
    media: Option<mpsc::UnboundedSender<MediaControl>>,
    media_cancel: CancellationToken,
    /// Where a call we place goes.
    target: Option<Uri>,
    /// Who a call we place is from, when not the account.
    from: Option<String>,
    /// Our SRTP key, on a call over TLS.
    srtp: Option<SdesKey>,
}

struct Driver {
    config: PhoneConfig,
    local: SocketAddr,
    clock: Instant,
    inner: EndpointInnerRef,
    dialogs: Dialogs,
    /// Where every call's legs report.
    legs: LegEventSender,
    events: mpsc::UnboundedSender<PhoneEvent>,
    done: mpsc::UnboundedSender<Done>,
    registration: Option<Registration>,
    /// rsipstack's registration (its Call-ID and CSeq kept across
    /// refreshes), when no REGISTER is out.
    register_dialog: Option<Box<rsipstack::dialog::registration::Registration>>,
    register_out: bool,
    /// Our end of the TLS connection to the registrar, once made: the
    /// Contact that brings its requests back over it.
    tls_local: Option<SocketAddr>,
    calls: HashMap<CallKey, Slot>,
    next_key: Arc<std::sync::atomic::AtomicU64>,
    stats: Arc<Mutex<HashMap<CallKey, EndpointStats>>>,
}

impl Driver {
    fn now(&self) -> Timestamp {
        Timestamp(i64::try_from(self.clock.elapsed().as_millis()).unwrap_or(i64::MAX))
    }

    async fn run(
        mut self,
        mut orders: mpsc::UnboundedReceiver<Order>,
        mut incoming: Incomings,
        mut legs: LegEvents,
        mut done: mpsc::UnboundedReceiver<Done>,
        cancel: CancellationToken,
    ) {
        loop {
            let sleep = sleep_until(self.poll_timeout(), self.now());
            tokio::select! {
                order = orders.recv() => match order {
                    Some(Order::Stop) | None => break,
                    Some(order) => self.on_order(order),
                },
                Some(request) = incoming.recv() => self.on_request(request),
                Some(event) = legs.recv() => self.on_leg_event(event),
                Some(report) = done.recv() => self.on_done(report),
                () = sleep => self.on_timeout(),
            }
            self.drain();
        }
        // Stopping: every call ends, the registration goes.
        let now = self.now();
        for slot in self.calls.values_mut() {
            slot.call.hang_up(now);
        }
        if let Some(registration) = &mut self.registration {
            registration.stop(now);
        }
        self.drain();
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        let calls = self.calls.values().filter_map(|slot| slot.call.poll_timeout());
        self.registration.as_ref().and_then(Registration::poll_timeout).into_iter().chain(calls).min()
    }

    fn on_timeout(&mut self) {
        let now = self.now();
        if let Some(registration) = &mut self.registration {
            registration.handle_timeout(now);
        }
        for slot in self.calls.values_mut() {
            slot.call.handle_timeout(now);
        }
    }

    fn on_order(&mut self, order: Order) {
        let now = self.now();
        match order {
            Order::Register => {
                if let Some(registration) = &mut self.registration {
                    registration.start(now);
                }
            }
            Order::Dial { key, target, from, audio } => self.dial(key, &target, from, audio, now),
            Order::Answer { key, audio } => {
                if let Some(slot) = self.calls.get_mut(&key)
                    && slot.call.state() == &CallState::Incoming
                {
                    if let Some(socket) = slot.socket.take() {
                        let (media, cancel) = spawn_media(
                            socket,
                            audio,
                            slot.srtp.clone(),
                            key,
                            self.done.clone(),
                            &self.stats,
                        );
                        slot.media = Some(media);
                        slot.media_cancel = cancel;
                    }
                    slot.call.answer(now);
                }
            }
            Order::Decline { key, busy } => {
                if let Some(slot) = self.calls.get_mut(&key) {
                    slot.call.decline(busy, now);
                }
            }
            Order::HangUp(key) => {
                if let Some(slot) = self.calls.get_mut(&key) {
                    slot.call.hang_up(now);
                }
            }
            Order::Hold(key, on) => {
                if let Some(slot) = self.calls.get_mut(&key) {
                    if on {
                        slot.call.hold(now);
                    } else {
                        slot.call.resume(now);
                    }
                }
            }
            Order::Key { key, digit, duration_ms } => {
                if let Some(media) = self.calls.get(&key).and_then(|slot| slot.media.as_ref()) {
                    let _ = media.send(MediaControl::Key(digit, duration_ms));
                }
            }
            Order::Stop => {}
        }
    }

    /// Sets up a call we place: its RTP socket, its state machine, its media.
    fn dial(
        &mut self,
        key: CallKey,
        target: &str,
        from: Option<String>,
        audio: Box<dyn AudioPort>,
        now: Timestamp,
    ) {
        let Some(uri) = self.target_uri(target) else {
            let reason = format!("{target:?} is neither a number nor a SIP address");
            let state = CallState::Ended(earshot_telephony::ua::EndReason::Refused { status: 484, reason });
            let _ = self.events.send(PhoneEvent::Call { call: key, state });
            return;
        };
        let socket = match bind_rtp(self.config.media_ip) {
            Ok(socket) => socket,
            Err(error) => {
                tracing::warn!(%error, "no RTP socket for a call");
                let state = CallState::Ended(earshot_telephony::ua::EndReason::Unreachable);
                let _ = self.events.send(PhoneEvent::Call { call: key, state });
                return;
            }
        };
        let Ok(local) = socket.local_addr() else { return };
        let srtp = crate::dialog::is_tls(&uri).then(SdesKey::random);
        let mut sdp = Negotiation::new(local, rand::random::<u32>().into());
        if let Some(key) = &srtp {
            sdp = sdp.with_srtp(key.clone());
        }
        let call = Call::outgoing(sdp, now);
        let (media, media_cancel) =
            spawn_media(socket, audio, srtp.clone(), key, self.done.clone(), &self.stats);
        self.calls.insert(
            key,
            Slot {
                call,
                leg: None,
                call_id: String::new(),
                pending: HashMap::new(),
                socket: None,
                media: Some(media),
                media_cancel,
                target: Some(uri),
                from,
                srtp,
            },
        );
    }

    /// `target` as a request URI: a `sip:` URI as it is, else a number or
    /// extension at the registrar.
    fn target_uri(&self, target: &str) -> Option<Uri> {
        let target = target.trim();
        if target.starts_with("sip:") {
            return Uri::try_from(target).ok();
        }
        let number = dialable(target)?;
        let registrar = self.config.account.as_ref()?.registrar;
        Uri::try_from(format!("sip:{number}@{registrar}{}", self.transport()).as_str()).ok()
    }

    /// The URI parameter of the transport to the registrar.
    fn transport(&self) -> &'static str {
        if self.config.tls.is_some() { ";transport=tls" } else { "" }
    }

    fn credentials(&self) -> Option<Credentials> {
        self.config.account.as_ref().map(|a| Credentials {
            user: a.user.clone(),
            auth_user: a.auth_user.clone(),
            password: a.password.clone(),
        })
    }

    fn our_uri(&self) -> Uri {
        let user = self.config.account.as_ref().map_or("earshot", |a| a.user.as_str());
        let host = self.config.account.as_ref().map_or(self.local, |a| a.registrar);
        Uri::try_from(format!("sip:{user}@{host}").as_str()).unwrap_or_default()
    }

    fn contact(&self) -> Uri {
        let user = self.config.account.as_ref().map_or("earshot", |a| a.user.as_str());
        if let Some(local) = self.tls_local {
            return Uri::try_from(format!("sip:{user}@{local};transport=tls").as_str()).unwrap_or_default();
        }
        Uri::try_from(format!("sip:{user}@{}", self.local).as_str()).unwrap_or_default()
    }

    fn on_request(&mut self, mut request: Incoming) {
        if request.in_dialog() {
            let dialogs = self.dialogs.clone();
            tokio::spawn(async move { dialogs.serve(request).await });
            return;
        }
        let method = request.request().method;
        if method == Method::Invite {
            self.on_invite(request);
            return;
        }
        tokio::spawn(async move {
            let _ = match method {
                Method::Options => {
                    let allow = Header::Allow("INVITE, ACK, BYE, CANCEL, OPTIONS".into());
                    request.reply_with(StatusCode::OK, vec![allow], None).await
                }
                Method::Ack => Ok(()),
                Method::Bye | Method::Cancel => request.reply(StatusCode::CallTransactionDoesNotExist).await,
                _ => request.reply(StatusCode::MethodNotAllowed).await,
            };
        });
    }

    /// A call that rings here.
    fn on_invite(&mut self, mut request: Incoming) {
        let now = self.now();
        let key = next_key(&self.next_key);
        let socket = match bind_rtp(self.config.media_ip) {
            Ok(socket) => socket,
            Err(error) => {
                tracing::warn!(%error, "no RTP socket for an incoming call");
                tokio::spawn(async move {
                    let _ = request.reply(StatusCode::ServiceUnavailable).await;
                });
                return;
            }
        };
        let Ok(local) = socket.local_addr() else { return };
        let srtp = request.over_tls().then(SdesKey::random);
        let mut sdp = Negotiation::new(local, rand::random::<u32>().into());
        if let Some(key) = &srtp {
            sdp = sdp.with_srtp(key.clone());
        }
        let call = match Call::incoming(&request.request().body, sdp, now) {
            Ok(call) => call,
            Err(error) => {
                tokio::spawn(async move {
                    let warning = Header::Other("Warning".into(), format!("399 earshot \"{error}\""));
                    let _ = request.reply_with(StatusCode::NotAcceptableHere, vec![warning], None).await;
                });
                return;
            }
        };
        let from = request.request().from_header().ok();
        let user = from.and_then(|f| f.uri().ok()).and_then(|u| u.auth).map(|a| a.user).unwrap_or_default();
        let name = from
            .and_then(|f| f.typed().ok())
            .and_then(|f| f.display_name)
            .map(|n| n.trim_matches('"').to_owned())
            .filter(|n| !n.is_empty());
        let leg = match self.dialogs.answer(request, &self.legs, self.contact()) {
            Ok(leg) => leg,
            Err(error) => {
                tracing::info!(%error, "cannot make a dialog for an INVITE");
                return;
            }
        };
        let _ = self.events.send(PhoneEvent::Incoming { call: key, from: user, name });
        self.calls.insert(
            key,
            Slot {
                call,
                call_id: leg.id().call_id().to_owned(),
                leg: Some(leg),
                pending: HashMap::new(),
                socket: Some(socket),
                media: None,
                media_cancel: CancellationToken::new(),
                target: None,
                from: None,
                srtp,
            },
        );
    }

    fn slot_of(&mut self, leg: &LegId) -> Option<&mut Slot> {
        self.calls.values_mut().find(|slot| slot.call_id == leg.call_id())
    }

    fn on_leg_event(&mut self, event: LegEvent) {
        let now = self.now();
        match event {
            LegEvent::Progress { leg, status, sdp } => {
                if let Some(slot) = self.slot_of(&leg) {
                    slot.call.handle(Signal::Progress { status, sdp }, now);
                }
            }
            LegEvent::Request { leg, request, responder } => {
                let Some(slot) = self.slot_of(&leg) else {
                    tokio::spawn(responder.respond(StatusCode::CallTransactionDoesNotExist, None));
                    return;
                };
                if request.method == Method::Invite {
                    let cseq = cseq_of(&request);
                    slot.pending.insert(cseq, responder);
                    slot.call.handle(Signal::ReInvite { cseq, sdp: request.body }, now);
                } else {
                    // An UPDATE: offers outside INVITEs are not supported (RFC 3311 §5.2 lets us refuse).
                    tokio::spawn(responder.respond(StatusCode::NotImplemented, None));
                }
            }
            LegEvent::Ended { leg, ending } => {
                if let Some(slot) = self.slot_of(&leg) {
                    let signal = match ending {
                        Ending::Cancelled => Signal::Cancel,
                        Ending::TimedOut => Signal::Unreachable,
                        Ending::Other => Signal::Bye,
                    };
                    slot.call.handle(signal, now);
                }
            }
        }
    }

    fn on_done(&mut self, report: Done) {
        let now = self.now();
        match report {
            Done::Registered { dialog, result, via, unconnected } => {
                self.register_out = false;
                let granted = dialog.granted_expires;
                self.register_dialog = Some(dialog);
                if via.is_some() {
                    self.tls_local = via;
                }
                if let Some(registration) = &mut self.registration {
                    if let Some(reason) = unconnected {
                        registration.handle_no_connection(reason, now);
                        return;
                    }
                    match result {
                        Ok(response) => {
                            let status = response.status_code.code();
                            registration.handle_response(status, &reason(&response), granted, now);
                        }
                        Err(error) => {
                            tracing::info!(%error, "REGISTER got no answer");
                            registration.handle_unreachable(now);
                        }
                    }
                }
            }
            Done::Invited { key, result } => {
                let Some(slot) = self.calls.get_mut(&key) else { return };
                let signal = match result {
                    Ok(Some(response)) if response.status_code.kind() == StatusCodeKind::Successful => {
                        Signal::Answered { sdp: response.body }
                    }
                    Ok(Some(response)) => {
                        Signal::Refused { status: response.status_code.code(), reason: reason(&response) }
                    }
                    Ok(None) | Err(_) => Signal::Unreachable,
                };
                slot.call.handle(signal, now);
            }
            Done::ReInvited { key, cseq, result } => {
                let Some(slot) = self.calls.get_mut(&key) else { return };
                let (status, sdp) = match result {
                    Ok(Some(response)) => {
                        let sdp = (!response.body.is_empty()).then_some(response.body);
                        (response.status_code.code(), sdp)
                    }
                    // Not sent (the dialog is not confirmed), or no answer.
                    Ok(None) | Err(_) => (408, None),
                };
                slot.call.handle(Signal::ReInviteAnswered { cseq, status, sdp }, now);
            }
            Done::Key { key, edge } => {
                let _ = self.events.send(PhoneEvent::Key { call: key, edge });
            }
        }
    }

    /// Carries out what the state machines want, and tells the app.
    fn drain(&mut self) {
        self.drain_registration();
        let keys: Vec<CallKey> = self.calls.keys().copied().collect();
        for key in keys {
            self.drain_call(key);
        }
    }

    fn drain_registration(&mut self) {
        let Some(registration) = &mut self.registration else { return };
        while let Some(state) = registration.poll_event() {
            let _ = self.events.send(PhoneEvent::Registration(state));
        }
        if self.register_out {
            return;
        }
        let Some(RegistrationCommand::Register { expires_s }) = registration.poll_command() else { return };
        let Some(account) = self.config.account.clone() else { return };
        let credential = self.credentials().map(|c| c.to_stack());
        let mut dialog = self.register_dialog.take().unwrap_or_else(|| {
            Box::new(rsipstack::dialog::registration::Registration::new(self.inner.clone(), credential))
        });
        let done = self.done.clone();
        self.register_out = true;
        let (tls, inner) = (self.config.tls.is_some(), self.inner.clone());
        tokio::spawn(async move {
            let transport = if tls { ";transport=tls" } else { "" };
            let server =
                Uri::try_from(format!("sip:{}{transport}", account.registrar).as_str()).unwrap_or_default();
            let mut via = None;
            if tls {
                // The connection first: its certificate checked, and our end
                // of it the Contact the registrar's requests come back on.
                let target = SipAddr {
                    r#type: Some(rsipstack::sip::transport::Transport::Tls),
                    addr: account.registrar.into(),
                };
                match connection_to(&inner, &target).await {
                    Ok(local) => {
                        let uri = format!("sip:{}@{local};transport=tls", account.user);
                        dialog.contact = Uri::try_from(uri.as_str()).ok().map(|uri| {
                            rsipstack::sip::typed::Contact { display_name: None, uri, params: Vec::new() }
                        });
                        via = Some(local);
                    }
                    Err(error) => {
                        let reason = tls_failure(&error.to_string());
                        let result = Err(reason.clone());
                        let _ =
                            done.send(Done::Registered { dialog, result, via, unconnected: Some(reason) });
                        return;
                    }
                }
            }
            let result = dialog.register(server, Some(expires_s)).await.map_err(|e| e.to_string());
            let _ = done.send(Done::Registered { dialog, result, via, unconnected: None });
        });
    }

    fn drain_call(&mut self, key: CallKey) {
        let now = self.now();
        let (caller, contact, credential) = (self.our_uri(), self.contact(), self.credentials());
        let Some(slot) = self.calls.get_mut(&key) else { return };
        while let Some(event) = slot.call.poll_event() {
            match event {
                CallEvent::State(state) => {
                    let _ = self.events.send(PhoneEvent::Call { call: key, state });
                }
                CallEvent::Media { theirs, ours } => {
                    if let Some(media) = &slot.media {
                        let _ = media.send(MediaControl::Peer(Box::new(theirs), ours));
                    }
                }
                CallEvent::UnusableDescription(error) => {
                    tracing::info!(%error, "the far end's description could not be used; the call goes on as it was");
                }
            }
        }
        while let Some(command) = slot.call.poll_command() {
            let leg = slot.leg.clone();
            match command {
                Command::Invite { sdp } => {
                    let Some(callee) = slot.target.clone() else { continue };
                    let caller = match &slot.from {
                        Some(from) => {
                            let host = caller.host_with_port.to_string();
                            Uri::try_from(format!("sip:{from}@{host}").as_str())
                                .unwrap_or_else(|_| caller.clone())
                        }
                        None => caller.clone(),
                    };
                    let placing = Placing {
                        caller,
                        callee,
                        route: Vec::new(),
                        contact: contact.clone(),
                        offer: sdp,
                        credential: credential.clone(),
                        tls_flow: None,
                    };
                    match self.dialogs.place(placing, &self.legs) {
                        Ok((leg, outcome)) => {
                            slot.call_id = leg.id().call_id().to_owned();
                            slot.leg = Some(leg);
                            let done = self.done.clone();
                            tokio::spawn(async move {
                                let result = outcome.await;
                                let _ = done.send(Done::Invited { key, result });
                            });
                        }
                        Err(error) => {
                            tracing::info!(%error, "cannot place a call");
                            slot.call.handle(Signal::Unreachable, now);
                        }
                    }
                }
                Command::Ringing => {
                    if let Some(leg) = leg {
                        let _ = leg.ringing();
                    }
                }
                Command::Answer { sdp } => {
                    if let Some(Err(error)) = leg.map(|leg| leg.accept(sdp)) {
                        tracing::info!(%error, "cannot answer a call");
                    }
                }
                Command::Reject { status } => {
                    if let Some(leg) = leg {
                        let _ = leg.reject(StatusCode::from(status), None);
                    }
                }
                Command::Cancel => {
                    if let Some(leg) = leg {
                        tokio::spawn(async move {
                            let _ = leg.cancel().await;
                        });
                    }
                }
                Command::ReInvite { cseq, sdp } => {
                    let Some(leg) = leg else { continue };
                    let done = self.done.clone();
                    tokio::spawn(async move {
                        let result = leg.reinvite(sdp).await;
                        let _ = done.send(Done::ReInvited { key, cseq, result });
                    });
                }
                Command::AnswerReInvite { cseq, status, sdp } => {
                    if let Some(responder) = slot.pending.remove(&cseq) {
                        tokio::spawn(responder.respond(StatusCode::from(status), sdp));
                    }
                }
                Command::Bye => {
                    if let Some(leg) = leg {
                        tokio::spawn(async move {
                            let _ = leg.bye().await;
                        });
                    }
                }
            }
        }
        if matches!(slot.call.state(), CallState::Ended(_)) {
            slot.media_cancel.cancel();
            self.calls.remove(&key);
            self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
        }
    }
}

/// The CSeq number of `request`.
fn cseq_of(request: &crate::message::Request) -> u32 {
    request
        .cseq_header()
        .ok()
        .and_then(|c| c.value().split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// A response's reason, in words.
fn reason(response: &Response) -> String {
    let text = response.status_code.to_string();
    let code = response.status_code.code().to_string();
    text.strip_prefix(&code).map_or_else(|| text.clone(), |rest| rest.trim().to_owned())
}

/// A failed TLS connection, told so a person understands it: above all, a
/// certificate the phone refused.
fn tls_failure(error: &str) -> String {
    let lower = error.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("notvalidforname") {
        format!("the service's TLS certificate was refused, so the phone did not connect: {error}")
    } else {
        format!("no TLS connection to the service: {error}")
    }
}

/// A UDP socket for a call's RTP, on any free port (registered with a
/// runtime by the call's media, on the runtime that runs it).
fn bind_rtp(ip: IpAddr) -> std::io::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Starts a call's media: the endpoint between `socket` and `audio`.
///
/// A port with a clock of its own (a sound card) gets a thread of its own,
/// with a single-threaded runtime, for the call's media: its clock's
/// ticks, its packets and its playout's timer wake that one thread. On the
/// app's multi-threaded runtime each such wake-up went through the
/// scheduler's shared queue and woke the other worker to look for work,
/// twice the thread switches the call itself needs (docs/PERFORMANCE.md).
/// Ports without a clock (the demo's carrier, many calls at once) stay
/// tasks on the runtime that started them.
fn spawn_media(
    socket: std::net::UdpSocket,
    audio: Box<dyn AudioPort>,
    srtp: Option<SdesKey>,
    key: CallKey,
    done: mpsc::UnboundedSender<Done>,
    stats: &Arc<Mutex<HashMap<CallKey, EndpointStats>>>,
) -> (mpsc::UnboundedSender<MediaControl>, CancellationToken) {
    let (control_tx, control) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let own_thread = audio.clock().is_some();
    let media = run_media(socket, audio, srtp, key, done, Arc::clone(stats), control, cancel.clone());
    if !own_thread {
        tokio::spawn(media);
        return (control_tx, cancel);
    }
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => {
            let spawned = std::thread::Builder::new()
                .name("earshot-call-media".into())
                .spawn(move || runtime.block_on(media));
            if let Err(error) = spawned {
                tracing::error!(%error, "no thread for the call's media: the call has no sound");
            }
        }
        Err(error) => {
            tracing::warn!(%error, "no runtime of its own for the call's media; it runs as a task");
            tokio::spawn(media);
        }
    }
    (control_tx, cancel)
}

/// A call's media until it is cancelled or its control is dropped.
#[allow(clippy::too_many_arguments)]
async fn run_media(
    socket: std::net::UdpSocket,
    mut audio: Box<dyn AudioPort>,
    srtp: Option<SdesKey>,
    key: CallKey,
    done: mpsc::UnboundedSender<Done>,
    stats: Arc<Mutex<HashMap<CallKey, EndpointStats>>>,
    mut control: mpsc::UnboundedReceiver<MediaControl>,
    stopped: CancellationToken,
) {
    let socket = match UdpSocket::from_std(socket) {
        Ok(socket) => socket,
        Err(error) => {
            tracing::error!(%error, "the call's RTP socket cannot be used: the call has no sound");
            return;
        }
    };
    let clock = Instant::now();
    let now = || Timestamp(i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX));
    let mut endpoint = AudioEndpoint::new(rand::random(), rand::random());
    if let Some(srtp) = srtp {
        endpoint.set_srtp_key(srtp);
    }
    let port_clock = audio.clock();
    // With a port clock, the far end's frames are taken on a schedule
    // of their own, as soon as the jitter buffer lets them (`Playout`);
    // without one, on the media task's timer with the port's frame.
    let mut playout = port_clock.is_some().then(Playout::new);
    // The next frame's time on the media task's own clock: each 20 ms
    // without a port clock; a frame and the grace after the port's last
    // tick with one.
    let mut next_tick = tokio::time::Instant::now();
    let mut buffer = vec![0_u8; 2_048];
    let mut frame = [0_i16; FRAME];
    let mut talking = false;
    loop {
        let key_timer = sleep_until(endpoint.poll_timeout(), now());
        let take_timer = sleep_until(playout.as_ref().and_then(Playout::poll_timeout), now());
        // The counters are copied out once a frame, not per packet.
        let mut ticked = false;
        tokio::select! {
            () = stopped.cancelled() => break,
            () = tokio::time::sleep_until(next_tick) => {
                ticked = true;
                // Behind (the task was not run): up to three missed
                // frames are caught up at once, more are skipped.
                next_tick += FRAME_TIME;
                let late = tokio::time::Instant::now();
                if next_tick + FRAME_TIME * 3 < late {
                    next_tick = late;
                }
                let at = now();
                if let Some(playout) = playout.as_mut() {
                    // The port's clock is late: its frame goes out on ours.
                    send_frame(&mut endpoint, &mut *audio, &mut frame, at, talking);
                    playout.ticked(at, 1);
                } else {
                    take_arrived(&socket, &mut endpoint, &mut buffer, at);
                    send_frame(&mut endpoint, &mut *audio, &mut frame, at, talking);
                    play_frame(&mut endpoint, &mut *audio, &mut frame, at);
                }
            }
            () = notified(port_clock.as_deref()) => {
                // None ready: the timer took it a moment ago.
                let ready = audio.ready().min(MOST_AT_ONCE);
                if ready > 0 {
                    ticked = true;
                    next_tick = tokio::time::Instant::now() + FRAME_TIME + CLOCK_GRACE;
                    let at = now();
                    for _ in 0..ready {
                        send_frame(&mut endpoint, &mut *audio, &mut frame, at, talking);
                    }
                    if let Some(playout) = playout.as_mut() {
                        playout.ticked(at, ready);
                    }
                }
            }
            () = take_timer => {}
            received = socket.recv_from(&mut buffer) => {
                if let Ok((length, from)) = received {
                    endpoint.handle_datagram(now(), from, &buffer[..length]);
                }
            }
            () = key_timer => endpoint.handle_timeout(now()),
            order = control.recv() => match order {
                Some(MediaControl::Peer(theirs, ours)) => {
                    endpoint.set_peer(*theirs);
                    endpoint.set_direction(ours);
                    talking = true;
                }
                Some(MediaControl::Key(digit, duration_ms)) => endpoint.tap_key(digit, duration_ms, now()),
                None => break,
            },
        }
        if let Some(playout) = playout.as_mut()
            && playout.due(now(), endpoint.next_frame_is_whole())
        {
            ticked = true;
            let at = now();
            take_arrived(&socket, &mut endpoint, &mut buffer, at);
            while playout.due(at, endpoint.next_frame_is_whole()) {
                let kind = play_frame(&mut endpoint, &mut *audio, &mut frame, at);
                playout.pulled(at, kind, &endpoint.stats().jitter);
            }
        }
        while let Some(transmit) = endpoint.poll_transmit() {
            let _ = socket.send_to(&transmit.payload, transmit.destination).await;
        }
        while let Some(edge) = endpoint.poll_key() {
            let _ = done.send(Done::Key { key, edge });
        }
        if ticked && !stopped.is_cancelled() {
            stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, endpoint.stats());
        }
    }
    // What the call's media went through, for whoever reads the log.
    tracing::info!(call = key.0, stats = ?endpoint.stats(), "the call's media ended");
}

/// Hands the endpoint what has arrived and not been read yet, before a
/// frame is pulled: a packet that came the moment its frame is due (two
/// sound cards in step) is played, not lost to which wake-up ran first.
fn take_arrived(socket: &UdpSocket, endpoint: &mut AudioEndpoint, buffer: &mut [u8], at: Timestamp) {
    while let Ok((length, from)) = socket.try_recv_from(buffer) {
        endpoint.handle_datagram(at, from, &buffer[..length]);
    }
}

/// The port's next frame, sent (once the call talks).
fn send_frame(
    endpoint: &mut AudioEndpoint,
    audio: &mut dyn AudioPort,
    frame: &mut [i16; FRAME],
    at: Timestamp,
    talking: bool,
) {
    audio.capture(frame);
    if talking {
        endpoint.send_audio(at, frame);
    }
}

/// The far end's next frame, to the port; what it was.
fn play_frame(
    endpoint: &mut AudioEndpoint,
    audio: &mut dyn AudioPort,
    frame: &mut [i16; FRAME],
    at: Timestamp,
) -> FrameKind {
    let kind = endpoint.pull_audio(at, frame);
    audio.play(frame);
    kind
}

/// Sleeps until `at` on the clock that says it is `now` (ms: a wake-up is
/// never before `at`), or forever.
async fn sleep_until(at: Option<Timestamp>, now: Timestamp) {
    match at {
        Some(at) => {
            tokio::time::sleep(Duration::from_millis(at.millis_since(now).max(0).unsigned_abs())).await;
        }
        None => std::future::pending().await,
    }
}

/// The port's clock ticking, or never.
async fn notified(clock: Option<&tokio::sync::Notify>) {
    match clock {
        Some(clock) => clock.notified().await,
        None => std::future::pending().await,
    }
}

/// An [`AudioPort`] that plays samples it was given (then silence) and
/// keeps what it hears: the demo's carrier and the tests talk through it.
#[derive(Clone, Default)]
pub struct ScriptedAudio {
    inner: Arc<Mutex<Script>>,
}

#[derive(Default)]
struct Script {
    to_say: std::collections::VecDeque<i16>,
    said: usize,
    heard: Vec<i16>,
}

impl ScriptedAudio {
    /// A port that will say `samples` (8 kHz) from its first frame on.
    #[must_use]
    pub fn saying(samples: &[i16]) -> Self {
        let port = Self::default();
        port.say(samples);
        port
    }

    /// Queues `samples` to be said after what is queued.
    pub fn say(&self, samples: &[i16]) {
        self.lock().to_say.extend(samples.iter().copied());
    }

    /// Everything heard so far (8 kHz), one frame per 20 ms tick.
    #[must_use]
    pub fn heard(&self) -> Vec<i16> {
        self.lock().heard.clone()
    }

    /// Samples said so far (the microphone's clock).
    #[must_use]
    pub fn said(&self) -> usize {
        self.lock().said
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl AudioPort for ScriptedAudio {
    fn capture(&mut self, frame: &mut [i16; FRAME]) {
        let mut script = self.lock();
        for sample in frame.iter_mut() {
            *sample = script.to_say.pop_front().unwrap_or(0);
        }
        script.said += FRAME;
    }

    fn play(&mut self, frame: &[i16; FRAME]) {
        self.lock().heard.extend_from_slice(frame);
    }
}
