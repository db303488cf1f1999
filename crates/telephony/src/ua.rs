//! A user agent's calls and registration as state machines, sans-IO: what
//! a phone does, in SIP's terms but without SIP's syntax. The crate that
//! owns the SIP stack carries [`Command`]s out on the wire (its
//! transactions retransmit, answer challenges and send ACKs) and turns
//! what comes back into [`Signal`]s; the app drives a [`Call`] with its
//! buttons and shows its [`CallState`]; [`CallEvent::Media`] tells the
//! call's `AudioEndpoint` what the SDP now allows.
//!
//! A [`Call`] owns its [`Negotiation`]: one `o=` session for the dialog,
//! its version up with every description we send (RFC 3264 §8), so every
//! hold and every resume is heard.
//!
//! ```
//! use earshot_policy::Timestamp;
//! use earshot_telephony::sdp::Negotiation;
//! use earshot_telephony::ua::{Call, CallState, Command, Signal};
//!
//! let now = Timestamp(0);
//! let mut ada = Call::outgoing(Negotiation::new("192.0.2.1:4000".parse().unwrap(), 1), now);
//! let Some(Command::Invite { sdp }) = ada.poll_command() else { panic!() };
//! let mut bo = Call::incoming(&sdp, Negotiation::new("192.0.2.2:6000".parse().unwrap(), 2), now).unwrap();
//! assert_eq!(bo.state(), &CallState::Incoming);
//! assert_eq!(bo.poll_command(), Some(Command::Ringing));
//! bo.answer(now);
//! let Some(Command::Answer { sdp }) = bo.poll_command() else { panic!() };
//! ada.handle(Signal::Answered { sdp }, now);
//! assert_eq!(ada.state(), &CallState::Connected { hold: Default::default() });
//! ```

use crate::sdp::{AudioSession, MediaDirection, Negotiation, SdpError};
use earshot_policy::Timestamp;
use std::collections::VecDeque;

/// How long a re-INVITE refused with 491 (both sides re-offered at once)
/// waits before it is tried again, in ms: RFC 3261 §14.1 gives the side
/// that placed the call 2.1–4 s and the other 0–2 s, so the two don't
/// collide again.
const GLARE_RETRY_CALLER_MS: i64 = 2_500;
const GLARE_RETRY_CALLEE_MS: i64 = 1_000;

/// Who holds a connected call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hold {
    /// We put the other side on hold.
    pub local: bool,
    /// The other side put us on hold.
    pub remote: bool,
}

/// Where a call is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallState {
    /// We sent the INVITE; nothing has come back yet.
    Dialing,
    /// The far side is working on it (100).
    Trying,
    /// It rings there (180).
    Ringing,
    /// It rings there and plays us something (183 with SDP).
    EarlyMedia,
    /// It rings here.
    Incoming,
    /// Talking, or on hold.
    Connected {
        /// Who holds.
        hold: Hold,
    },
    /// Over.
    Ended(EndReason),
}

/// Why a call is over.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// A connected call hung up, by us or by them.
    HungUp {
        /// We hung up.
        by_us: bool,
    },
    /// Our call was refused, with the SIP status and its reason (busy 486,
    /// not found 404, not acceptable 488, …).
    Refused {
        /// The SIP status code.
        status: u16,
        /// The reason phrase, or what the far end said.
        reason: String,
    },
    /// We declined a call that rang here (486 busy, 603 decline).
    Declined {
        /// The status we answered.
        status: u16,
    },
    /// The caller gave up before we answered (CANCEL).
    Missed,
    /// We gave up on our call before it was answered.
    Cancelled,
    /// Nothing came back, or the network failed.
    Unreachable,
}

/// What the SIP side must send for the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Place the call with this offer.
    Invite {
        /// The SDP offer.
        sdp: Vec<u8>,
    },
    /// Tell the caller it rings (180).
    Ringing,
    /// Answer (200) with this SDP answer.
    Answer {
        /// The SDP answer.
        sdp: Vec<u8>,
    },
    /// Refuse the call that rings here.
    Reject {
        /// 486, 603, 488…
        status: u16,
    },
    /// Give up on our call before it is answered.
    Cancel,
    /// Re-offer within the call (hold, resume).
    ReInvite {
        /// Which re-INVITE this is, to match its answer.
        cseq: u32,
        /// The SDP offer.
        sdp: Vec<u8>,
    },
    /// Answer the far side's re-INVITE.
    AnswerReInvite {
        /// Which re-INVITE.
        cseq: u32,
        /// 200, 488 (offer unusable) or 491 (ours is pending).
        status: u16,
        /// The SDP answer, with 200.
        sdp: Option<Vec<u8>>,
    },
    /// Hang up a connected call.
    Bye,
}

/// What came back from the far side (through the SIP stack).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// A provisional answer to our INVITE: 100, 180, 183 (with SDP when it
    /// plays early media).
    Progress {
        /// The status.
        status: u16,
        /// Its SDP, if any.
        sdp: Option<Vec<u8>>,
    },
    /// Our INVITE was answered (2xx) with this SDP.
    Answered {
        /// The SDP answer.
        sdp: Vec<u8>,
    },
    /// Our INVITE was refused (a final non-2xx).
    Refused {
        /// The status.
        status: u16,
        /// Its reason.
        reason: String,
    },
    /// The far side re-offers (hold, resume, a new address).
    ReInvite {
        /// Its CSeq.
        cseq: u32,
        /// Its offer.
        sdp: Vec<u8>,
    },
    /// The answer to our re-INVITE.
    ReInviteAnswered {
        /// Which one.
        cseq: u32,
        /// Its status.
        status: u16,
        /// Its SDP answer, with 2xx.
        sdp: Option<Vec<u8>>,
    },
    /// The ACK to our 2xx of the far side's re-INVITE, with its SDP (the
    /// answer, when that re-INVITE had no offer and our 2xx made one).
    Ack {
        /// Its body.
        sdp: Option<Vec<u8>>,
    },
    /// The far side hung up (BYE).
    Bye,
    /// The caller gave up (CANCEL) before we answered.
    Cancel,
    /// The transaction timed out, or the transport failed.
    Unreachable,
}

/// What the app and the call's media hear of the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallEvent {
    /// The call moved to this state.
    State(CallState),
    /// The media now goes to `theirs`, our direction is `ours`.
    Media {
        /// The peer's description.
        theirs: AudioSession,
        /// Which way we may send and receive.
        ours: MediaDirection,
    },
    /// A re-offer or re-answer of the far side could not be used; the call
    /// goes on as it was.
    UnusableDescription(SdpError),
}

/// A re-INVITE of ours in flight, or waiting to be tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reoffer {
    cseq: u32,
    /// Hold (true) or resume.
    hold: bool,
    /// Waiting for a retry after 491, until then.
    retry_at: Option<Timestamp>,
}

/// One call of a user agent.
#[derive(Clone, Debug)]
pub struct Call {
    state: CallState,
    sdp: Negotiation,
    /// We placed the call.
    outgoing: bool,
    /// The offer of a call ringing here, until answered.
    offer: Option<Vec<u8>>,
    /// Our CSeq for re-INVITEs, and the far side's last seen.
    cseq: u32,
    their_cseq: u32,
    reoffer: Option<Reoffer>,
    /// A hold or resume asked for while another re-offer was in flight.
    wanted_hold: Option<bool>,
    /// We asked to hang up while the INVITE was out (CANCEL sent).
    cancelling: bool,
    /// Our 2xx to an offerless re-INVITE carried an offer: its answer
    /// comes in the ACK.
    answer_in_ack: bool,
    commands: VecDeque<Command>,
    events: VecDeque<CallEvent>,
}

impl Call {
    /// A call we place: its INVITE is the first command.
    #[must_use]
    pub fn outgoing(mut sdp: Negotiation, _now: Timestamp) -> Self {
        let offer = sdp.offer(MediaDirection::SendRecv).into_bytes();
        let mut call = Self::new(CallState::Dialing, sdp, true);
        call.commands.push_back(Command::Invite { sdp: offer });
        call
    }

    /// A call that rings here, with its INVITE's `offer`: ringing (its 180
    /// is the first command). An offer we can't take is an error; answer
    /// it 488.
    pub fn incoming(offer: &[u8], sdp: Negotiation, _now: Timestamp) -> Result<Self, SdpError> {
        // Check now that we could answer it, without answering yet.
        sdp.clone().handle_offer(offer)?;
        let mut call = Self::new(CallState::Incoming, sdp, false);
        call.offer = Some(offer.to_vec());
        call.commands.push_back(Command::Ringing);
        Ok(call)
    }

    fn new(state: CallState, sdp: Negotiation, outgoing: bool) -> Self {
        Self {
            state,
            sdp,
            outgoing,
            offer: None,
            cseq: 1,
            their_cseq: 0,
            reoffer: None,
            wanted_hold: None,
            cancelling: false,
            answer_in_ack: false,
            commands: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Where the call is.
    #[must_use]
    pub fn state(&self) -> &CallState {
        &self.state
    }

    /// The negotiation (what each side described last).
    #[must_use]
    pub fn negotiation(&self) -> &Negotiation {
        &self.sdp
    }

    /// Answers a call that rings here.
    pub fn answer(&mut self, _now: Timestamp) {
        if self.state != CallState::Incoming {
            return;
        }
        let Some(offer) = self.offer.take() else { return };
        match self.sdp.handle_offer(&offer) {
            Ok(answer) => {
                self.commands.push_back(Command::Answer { sdp: answer.into_bytes() });
                self.set_state(CallState::Connected { hold: Hold::default() });
                self.media_changed();
            }
            Err(_) => self.decline_with(488),
        }
    }

    /// Declines a call that rings here: busy (486) or not now (603).
    pub fn decline(&mut self, busy: bool, _now: Timestamp) {
        if self.state == CallState::Incoming {
            self.decline_with(if busy { 486 } else { 603 });
        }
    }

    fn decline_with(&mut self, status: u16) {
        self.offer = None;
        self.commands.push_back(Command::Reject { status });
        self.set_state(CallState::Ended(EndReason::Declined { status }));
    }

    /// Hangs up: cancels a call still ringing there, declines one ringing
    /// here, ends a connected one.
    pub fn hang_up(&mut self, now: Timestamp) {
        match self.state {
            CallState::Dialing | CallState::Trying | CallState::Ringing | CallState::EarlyMedia => {
                if !self.cancelling {
                    self.cancelling = true;
                    self.commands.push_back(Command::Cancel);
                }
            }
            CallState::Incoming => self.decline(false, now),
            CallState::Connected { .. } => {
                self.commands.push_back(Command::Bye);
                self.set_state(CallState::Ended(EndReason::HungUp { by_us: true }));
            }
            CallState::Ended(_) => {}
        }
    }

    /// Puts the other side on hold (a re-offer, `sendonly`).
    pub fn hold(&mut self, now: Timestamp) {
        self.want_hold(true, now);
    }

    /// Takes the other side off hold (a re-offer, `sendrecv`).
    pub fn resume(&mut self, now: Timestamp) {
        self.want_hold(false, now);
    }

    fn want_hold(&mut self, hold: bool, now: Timestamp) {
        let CallState::Connected { hold: current } = self.state else { return };
        if self.reoffer.is_some() {
            self.wanted_hold = Some(hold);
            return;
        }
        if current.local != hold {
            self.reoffer(hold, now);
        }
    }

    fn reoffer(&mut self, hold: bool, _now: Timestamp) {
        self.cseq += 1;
        let direction = if hold { MediaDirection::SendOnly } else { MediaDirection::SendRecv };
        let sdp = self.sdp.offer(direction).into_bytes();
        self.reoffer = Some(Reoffer { cseq: self.cseq, hold, retry_at: None });
        self.commands.push_back(Command::ReInvite { cseq: self.cseq, sdp });
    }

    /// Something came back from the far side at `now`.
    pub fn handle(&mut self, signal: Signal, now: Timestamp) {
        match signal {
            Signal::Progress { status, sdp } => self.on_progress(status, sdp.as_deref()),
            Signal::Answered { sdp } => self.on_answered(&sdp),
            Signal::Refused { status, reason } => {
                if self.is_placing() {
                    let reason = if self.cancelling && status == 487 {
                        EndReason::Cancelled
                    } else {
                        EndReason::Refused { status, reason }
                    };
                    self.set_state(CallState::Ended(reason));
                }
            }
            Signal::ReInvite { cseq, sdp } => self.on_reinvite(cseq, &sdp),
            Signal::Ack { sdp } => {
                if std::mem::take(&mut self.answer_in_ack) {
                    match sdp.map(|sdp| self.sdp.handle_answer(&sdp).map(|_| ())) {
                        Some(Ok(())) => self.media_changed(),
                        Some(Err(error)) => self.events.push_back(CallEvent::UnusableDescription(error)),
                        None => self.sdp.offer_refused(),
                    }
                }
            }
            Signal::ReInviteAnswered { cseq, status, sdp } => {
                self.on_reinvite_answered(cseq, status, sdp.as_deref(), now);
            }
            Signal::Bye => {
                if matches!(self.state, CallState::Connected { .. }) {
                    self.set_state(CallState::Ended(EndReason::HungUp { by_us: false }));
                } else if self.is_placing() {
                    // A BYE for an early dialog: the far end gave up.
                    self.set_state(CallState::Ended(EndReason::Unreachable));
                }
            }
            Signal::Cancel => {
                if self.state == CallState::Incoming {
                    self.offer = None;
                    self.set_state(CallState::Ended(EndReason::Missed));
                }
            }
            Signal::Unreachable => {
                if self.cancelling && self.is_placing() {
                    // We were giving up anyway.
                    self.set_state(CallState::Ended(EndReason::Cancelled));
                } else if !matches!(self.state, CallState::Ended(_)) {
                    self.set_state(CallState::Ended(EndReason::Unreachable));
                }
            }
        }
    }

    fn is_placing(&self) -> bool {
        matches!(
            self.state,
            CallState::Dialing | CallState::Trying | CallState::Ringing | CallState::EarlyMedia
        )
    }

    fn on_progress(&mut self, status: u16, sdp: Option<&[u8]>) {
        if !self.is_placing() {
            return;
        }
        if let Some(sdp) = sdp.filter(|s| !s.is_empty())
            && self.sdp.handle_answer(sdp).is_ok()
        {
            self.media_changed();
            self.set_state(CallState::EarlyMedia);
            return;
        }
        let state = match status {
            180 | 182 => CallState::Ringing,
            183 if self.state == CallState::EarlyMedia => CallState::EarlyMedia,
            _ if self.state == CallState::Dialing => CallState::Trying,
            _ => return,
        };
        if state != self.state {
            self.set_state(state);
        }
    }

    fn on_answered(&mut self, sdp: &[u8]) {
        if !self.is_placing() {
            // A 200 retransmitted, or one that crossed our CANCEL after we ended.
            return;
        }
        if self.cancelling {
            // The answer crossed our CANCEL: the call exists; end it at once.
            self.commands.push_back(Command::Bye);
            self.set_state(CallState::Ended(EndReason::Cancelled));
            return;
        }
        match self.sdp.handle_answer(sdp) {
            Ok(_) => {
                self.set_state(CallState::Connected { hold: Hold::default() });
                self.media_changed();
            }
            Err(error) => {
                // Answered with nothing we can use: say why, and end it.
                self.events.push_back(CallEvent::UnusableDescription(error));
                self.commands.push_back(Command::Bye);
                self.set_state(CallState::Ended(EndReason::Refused {
                    status: 488,
                    reason: "no usable audio in the answer".into(),
                }));
            }
        }
    }

    fn on_reinvite(&mut self, cseq: u32, sdp: &[u8]) {
        let CallState::Connected { hold } = self.state else {
            // Not a confirmed call (yet, or any more): not now.
            self.commands.push_back(Command::AnswerReInvite { cseq, status: 491, sdp: None });
            return;
        };
        if cseq <= self.their_cseq {
            // Behind one already taken (RFC 3261 §14.2).
            self.commands.push_back(Command::AnswerReInvite { cseq, status: 500, sdp: None });
            return;
        }
        self.their_cseq = cseq;
        if self.reoffer.is_some_and(|r| r.retry_at.is_none()) || self.answer_in_ack {
            // Both re-offered at once: theirs waits (RFC 3264 §4, glare).
            self.commands.push_back(Command::AnswerReInvite { cseq, status: 491, sdp: None });
            return;
        }
        if sdp.is_empty() {
            // No offer (a session refresh): ours goes in the 2xx, their
            // answer comes in the ACK (RFC 3261 §14.1).
            let direction = if hold.local { MediaDirection::SendOnly } else { MediaDirection::SendRecv };
            let offer = self.sdp.offer(direction).into_bytes();
            self.answer_in_ack = true;
            self.commands.push_back(Command::AnswerReInvite { cseq, status: 200, sdp: Some(offer) });
            return;
        }
        match self.sdp.handle_offer(sdp) {
            Ok(answer) => {
                self.commands.push_back(Command::AnswerReInvite {
                    cseq,
                    status: 200,
                    sdp: Some(answer.into_bytes()),
                });
                let remote = self.sdp.theirs().is_some_and(|t| t.direction.is_hold());
                self.set_state(CallState::Connected { hold: Hold { remote, ..hold } });
                self.media_changed();
            }
            Err(error) => {
                self.commands.push_back(Command::AnswerReInvite { cseq, status: 488, sdp: None });
                self.events.push_back(CallEvent::UnusableDescription(error));
            }
        }
    }

    fn on_reinvite_answered(&mut self, cseq: u32, status: u16, sdp: Option<&[u8]>, now: Timestamp) {
        let Some(reoffer) = self.reoffer.filter(|r| r.cseq == cseq && r.retry_at.is_none()) else { return };
        let CallState::Connected { hold } = self.state else { return };
        match status {
            200..=299 => {
                self.reoffer = None;
                match sdp.map(|sdp| self.sdp.handle_answer(sdp)) {
                    Some(Ok(_)) | None => {
                        self.set_state(CallState::Connected { hold: Hold { local: reoffer.hold, ..hold } });
                        self.media_changed();
                    }
                    Some(Err(error)) => self.events.push_back(CallEvent::UnusableDescription(error)),
                }
                self.next_wanted(now);
            }
            491 => {
                self.sdp.offer_refused();
                let wait = if self.outgoing { GLARE_RETRY_CALLER_MS } else { GLARE_RETRY_CALLEE_MS };
                self.reoffer = Some(Reoffer { retry_at: Some(now.plus_millis(wait)), ..reoffer });
            }
            _ => {
                // Refused: the call goes on as it was.
                self.sdp.offer_refused();
                self.reoffer = None;
                self.next_wanted(now);
            }
        }
    }

    /// A hold or resume asked for meanwhile, now that the last re-offer is done.
    fn next_wanted(&mut self, now: Timestamp) {
        if let Some(hold) = self.wanted_hold.take() {
            self.want_hold(hold, now);
        }
    }

    /// When [`Self::handle_timeout`] is due, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.reoffer.and_then(|r| r.retry_at)
    }

    /// Time has reached `now`: a re-offer refused for glare is tried again.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if let Some(reoffer) = self.reoffer.filter(|r| r.retry_at.is_some_and(|at| at <= now)) {
            self.reoffer = None;
            if matches!(self.state, CallState::Connected { .. }) {
                let hold = self.wanted_hold.take().unwrap_or(reoffer.hold);
                self.reoffer(hold, now);
            }
        }
    }

    /// The next command for the SIP side.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// The next event for the app and the media.
    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    fn set_state(&mut self, state: CallState) {
        self.state = state.clone();
        self.events.push_back(CallEvent::State(state));
    }

    fn media_changed(&mut self) {
        let Some(theirs) = self.sdp.theirs().cloned() else { return };
        let mut ours = theirs.direction.answer();
        if let CallState::Connected { hold } = self.state
            && hold.local
        {
            ours = ours.and(MediaDirection::SendOnly);
        }
        self.events.push_back(CallEvent::Media { theirs, ours });
    }
}

/// Where a registration is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrationState {
    /// Not registered, not trying.
    Unregistered,
    /// A REGISTER is out.
    Registering,
    /// Registered until then (refreshed before).
    Registered {
        /// When the registrar forgets us unless refreshed.
        until: Timestamp,
    },
    /// The last try failed; the next is at `retry_at`.
    Failed {
        /// The SIP status (0: no answer at all).
        status: u16,
        /// Why, in words.
        reason: String,
        /// When the next try goes out.
        retry_at: Timestamp,
    },
}

/// What the SIP side must send for the registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationCommand {
    /// REGISTER asking for this many seconds (0: unregister).
    Register {
        /// Seconds asked for.
        expires_s: u32,
    },
}

/// Registration with refresh, and re-registration after a failure with a
/// back-off from 1 s doubling to a minute (five minutes after a refusal of
/// the credentials, which retrying soon won't change).
#[derive(Clone, Debug)]
pub struct Registration {
    state: RegistrationState,
    expires_s: u32,
    failures: u32,
    /// A REGISTER is out: whether it unregisters.
    in_flight: Option<bool>,
    /// Registering again was asked for while an unregister was out.
    start_after: bool,
    /// When the registration is refreshed.
    refresh_at: Option<Timestamp>,
    commands: VecDeque<RegistrationCommand>,
    events: VecDeque<RegistrationState>,
}

impl Registration {
    /// A registration that asks for `expires_s` seconds each time.
    #[must_use]
    pub fn new(expires_s: u32) -> Self {
        Self {
            state: RegistrationState::Unregistered,
            expires_s,
            failures: 0,
            in_flight: None,
            start_after: false,
            refresh_at: None,
            commands: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Where it is.
    #[must_use]
    pub fn state(&self) -> &RegistrationState {
        &self.state
    }

    /// Registers now (at start, or when the network came back).
    pub fn start(&mut self, _now: Timestamp) {
        if self.in_flight == Some(true) {
            self.start_after = true;
            self.set_state(RegistrationState::Registering);
            return;
        }
        if self.in_flight.is_none() {
            self.send(false);
            if !matches!(self.state, RegistrationState::Registered { .. }) {
                self.set_state(RegistrationState::Registering);
            }
        }
    }

    /// Unregisters (log-out): the binding is removed, nothing is retried.
    pub fn stop(&mut self, _now: Timestamp) {
        self.refresh_at = None;
        self.start_after = false;
        self.send(true);
        self.set_state(RegistrationState::Unregistered);
    }

    /// The answer to the REGISTER out: its status, its reason and the
    /// expiry the registrar granted (its Contact's `expires`).
    pub fn handle_response(&mut self, status: u16, reason: &str, granted_s: Option<u32>, now: Timestamp) {
        let Some(unregistering) = self.in_flight.take() else { return };
        if unregistering {
            if std::mem::take(&mut self.start_after) {
                self.send(false);
            }
            return;
        }
        if (200..300).contains(&status) {
            self.failures = 0;
            let granted = i64::from(granted_s.unwrap_or(self.expires_s).max(1));
            // Refresh half-way, or a minute before it runs out, whichever is later.
            let refresh = (granted * 1_000 / 2).max(granted * 1_000 - 60_000);
            self.refresh_at = Some(now.plus_millis(refresh));
            self.set_state(RegistrationState::Registered { until: now.plus_millis(granted * 1_000) });
        } else {
            self.fail(status, reason.to_owned(), now);
        }
    }

    /// The REGISTER got no answer, or the transport failed.
    pub fn handle_unreachable(&mut self, now: Timestamp) {
        match self.in_flight.take() {
            Some(false) => self.fail(0, "the service did not answer".into(), now),
            Some(true) if std::mem::take(&mut self.start_after) => self.send(false),
            _ => {}
        }
    }

    /// The REGISTER could not go out: no connection to the registrar
    /// (`reason`: why, in words, such as its TLS certificate refused).
    pub fn handle_no_connection(&mut self, reason: String, now: Timestamp) {
        match self.in_flight.take() {
            Some(false) => self.fail(0, reason, now),
            Some(true) if std::mem::take(&mut self.start_after) => self.send(false),
            _ => {}
        }
    }

    fn fail(&mut self, status: u16, reason: String, now: Timestamp) {
        self.failures += 1;
        let base = if matches!(status, 401 | 403 | 407) { 300_000 } else { 60_000 };
        let wait = (1_000_i64 << self.failures.saturating_sub(1).min(16)).min(base);
        let retry_at = now.plus_millis(wait);
        self.refresh_at = Some(retry_at);
        self.set_state(RegistrationState::Failed { status, reason, retry_at });
    }

    /// When [`Self::handle_timeout`] is due, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.refresh_at.filter(|_| self.in_flight.is_none())
    }

    /// Time has reached `now`: refresh, or try again.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.in_flight.is_none() && self.refresh_at.is_some_and(|at| at <= now) {
            self.refresh_at = None;
            self.send(false);
            if matches!(self.state, RegistrationState::Failed { .. }) {
                self.set_state(RegistrationState::Registering);
            }
        }
    }

    /// The next command for the SIP side.
    pub fn poll_command(&mut self) -> Option<RegistrationCommand> {
        self.commands.pop_front()
    }

    /// The next change of state.
    pub fn poll_event(&mut self) -> Option<RegistrationState> {
        self.events.pop_front()
    }

    fn send(&mut self, unregister: bool) {
        self.in_flight = Some(unregister);
        let expires_s = if unregister { 0 } else { self.expires_s };
        self.commands.push_back(RegistrationCommand::Register { expires_s });
    }

    fn set_state(&mut self, state: RegistrationState) {
        if self.state != state {
            self.state = state.clone();
            self.events.push_back(state);
        }
    }
}
