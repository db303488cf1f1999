//! One call through the back-to-back user agent: the caller's leg (A) is
//! answered by us, the callee's leg (B) is placed by us, and the media relay
//! sits between them. Internal, outbound and inbound calls differ only in how
//! B is found: a user's devices, the trunk, or the number's call flow.

use super::journal;
use super::media::{self, Leg as Side, MediaCommand, MediaEvent, MediaOutcome, RecordingSetup};
use super::prompts::Prompts;
use super::{Authed, Sip};
use crate::calls::{RecordingFile, insert_call};
use crate::events::{Change, ChangeEvent};
use crate::snapshot::CompanySnapshot;
use earshot_policy::{
    Call, CallId, CallStart, CallStatus, CompanyId, Direction, Flow, FlowWalk, LiveRecording, MenuChoice,
    Number, Recording, RecordingId, RecordingKind, RingStrategy, Step, Timestamp, User, decide_recording,
};
use earshot_sip::dialog::{Incoming, Leg, LegEvent, LegEventSender, LegEvents, LegId, Placing, Responder};
use earshot_sip::message::prelude::HeadersExt;
use earshot_sip::message::{Header, Request, StatusCode, StatusCodeKind, Uri};
use earshot_telephony::sdp::{AudioSession, MediaDirection, Negotiation};
use earshot_telephony::srtp::SdesKey;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Longest voicemail, in seconds.
const VOICEMAIL_MAX_S: u64 = 120;
/// How long an internal or outbound call rings before we give up.
const DIAL_TIMEOUT_S: u64 = 60;

/// Who is calling whom.
enum Route {
    /// A user calls another user's extension.
    Internal { caller: Authed, callee: User },
    /// A user calls an outside number through the trunk.
    Outbound { caller: Authed, number: String },
    /// The trunk brings a call to a company number.
    Inbound { snapshot: Arc<CompanySnapshot>, number: Number, from: String },
}

pub(super) async fn on_invite(sip: Arc<Sip>, mut tx: Incoming) {
    let route = match classify(&sip, &mut tx).await {
        Ok(Some(route)) => route,
        Ok(None) => return,
        Err(error) => {
            tracing::debug!(%error, "INVITE refused");
            return;
        }
    };
    // A caller over TLS has its media as SRTP, keyed in its SDP (SDES).
    let a_tls = tx.over_tls();
    let offer = match AudioSession::parse(&tx.request().body)
        .and_then(|offer| earshot_telephony::sdp::check_keys(a_tls, &offer).map(|()| offer))
    {
        Ok(offer) => offer,
        Err(error) => {
            tracing::info!(%error, "INVITE without a usable offer");
            let warning = Header::Other("Warning".into(), format!("399 earshotd \"{error}\""));
            let _ = tx.reply_with(StatusCode::NotAcceptableHere, vec![warning], None).await;
            return;
        }
    };
    let (states_tx, states) = sip.dialogs.events();
    let contact = if a_tls { sip.tls_contact("earshot") } else { sip.contact("earshot") };
    let offer_body = tx.request().body.clone();
    let a = match sip.dialogs.answer(tx, &states_tx, contact) {
        Ok(leg) => leg,
        Err(error) => {
            tracing::info!(%error, "cannot make a dialog for the INVITE");
            return;
        }
    };
    let (media_events_tx, media_events) = mpsc::unbounded_channel();
    let ip = sip.local.ip();
    let media = match sip.relays.start_relay(&sip.ports, ip, Arc::clone(&sip.stats.media), media_events_tx) {
        Ok(media) => media,
        Err(error) => {
            tracing::error!(%error, "no RTP ports for a call");
            let _ = a.reject(StatusCode::ServiceUnavailable, None);
            return;
        }
    };
    let mut a_sdp = Negotiation::new(media.local[0], rand::random::<u32>().into());
    if a_tls {
        let key = SdesKey::random();
        media.send(MediaCommand::Srtp(Side::A, key.clone()));
        a_sdp = a_sdp.with_srtp(key);
    }
    media.send(MediaCommand::Peer(Side::A, offer.clone()));
    // One negotiation per leg: one `o=` session for the dialog, its version
    // up with every description we send (RFC 3264 §8). B is offered what A offered.
    let sdp =
        [a_sdp, Negotiation::with_codecs(media.local[1], rand::random::<u32>().into(), offer.codecs.clone())];
    let started_at = now();
    let (company, direction) = match &route {
        Route::Internal { caller, .. } => (caller.snapshot.company.id(), Direction::Internal),
        Route::Outbound { caller, .. } => (caller.snapshot.company.id(), Direction::Outbound),
        Route::Inbound { snapshot, .. } => (snapshot.company.id(), Direction::Inbound),
    };
    let run = CallRun {
        sip: Arc::clone(&sip),
        a,
        a_id: None,
        offer_body,
        sdp,
        media,
        media_events,
        states,
        states_tx,
        answered: false,
        b: None,
        key: format!("{}-{:08x}", started_at.0, rand::random::<u32>()),
        journal: None,
        voicemail_journal: None,
        journalled: false,
        call: Call {
            id: CallId(0),
            company,
            direction,
            status: CallStatus::Unanswered,
            started_at,
            answered_at: None,
            ended_at: None,
            number: None,
            external_number: None,
            contact: None,
            parties: Vec::new(),
            rang: Vec::new(),
            recording: None,
            voicemail: None,
            decided_by: None,
            recording_trace: Vec::new(),
            legal_hold: None,
        },
    };
    run.run(route).await;
}

/// Finds out who calls whom; replies itself when the call can't go on.
async fn classify(sip: &Sip, tx: &mut Incoming) -> Result<Option<Route>, earshot_sip::dialog::Error> {
    let target = tx.request().uri.auth.as_ref().map(|a| a.user.clone()).unwrap_or_default();
    // Where it came from as the transport (or a trusted proxy) saw it: a
    // Via says whatever the sender likes.
    let from_trunk =
        sip.trunk.as_ref().is_some_and(|(_, ip)| super::client_source(tx, &sip.proxies) == Some(*ip));
    // The trunk's calls to company numbers run the number's flow; anything
    // else, from anywhere, must come from an authenticated user.
    if from_trunk {
        let e164 = if target.starts_with('+') { target.clone() } else { format!("+{target}") };
        let found = match sip.number(&e164).await {
            Ok(found) => found,
            Err(error) => {
                tracing::error!(%error, number = %e164, "the store failed while routing a call from the trunk");
                let retry = super::retry_after(5);
                return tx
                    .reply_with(StatusCode::ServerInternalError, vec![retry], None)
                    .await
                    .map(|()| None);
            }
        };
        if let Some((snapshot, number)) = found {
            let from = tx.request().from_header()?.uri()?.auth.map(|a| a.user).unwrap_or_default();
            return Ok(Some(Route::Inbound { snapshot, number, from }));
        }
    }
    let Some(caller) = sip.authenticate(tx, true).await? else { return Ok(None) };
    let callee =
        caller.snapshot.company.users().iter().find(|u| u.extension.as_deref() == Some(target.as_str()));
    if let Some(callee) = callee {
        if callee.id == caller.user.id {
            return tx.reply(StatusCode::BusyHere).await.map(|()| None);
        }
        let callee = callee.clone();
        return Ok(Some(Route::Internal { caller, callee }));
    }
    // An outside number is E.164 with its +, or at least 7 digits; shorter is an extension nobody has.
    let digits = target.strip_prefix('+').unwrap_or(&target);
    let external = (target.starts_with('+') || digits.len() >= 7)
        && digits.len() <= 15
        && digits.bytes().all(|b| b.is_ascii_digit());
    if external && sip.trunk.is_some() {
        let number = format!("+{digits}");
        return Ok(Some(Route::Outbound { caller, number }));
    }
    tx.reply(StatusCode::NotFound).await.map(|()| None)
}

fn now() -> Timestamp {
    Timestamp(crate::now_millis())
}

struct CallRun {
    sip: Arc<Sip>,
    a: Leg,
    a_id: Option<LegId>,
    /// Leg A's INVITE body: the offer we answer.
    offer_body: Vec<u8>,
    /// Our side of each leg's offer/answer (A, B).
    sdp: [Negotiation; 2],
    media: media::Media,
    media_events: mpsc::UnboundedReceiver<MediaEvent>,
    states: LegEvents,
    states_tx: LegEventSender,
    answered: bool,
    /// The answered B leg.
    b: Option<Leg>,
    /// This call's key for live events and its recording's file name.
    key: String,
    /// The recording file named in this call's journal, once journalled.
    journal: Option<String>,
    /// The voicemail file named in this call's journal, once journalled.
    voicemail_journal: Option<String>,
    /// Whether the call has a journal (from when we answered its caller).
    journalled: bool,
    call: Call,
}

/// How ringing ended.
enum Ring {
    Answered,
    NoAnswer,
    Busy,
    CallerGone,
}

impl CallRun {
    async fn run(mut self, route: Route) {
        self.a_id = Some(self.a.id());
        match route {
            Route::Internal { caller, callee } => self.internal(caller, callee).await,
            Route::Outbound { caller, number } => self.outbound(caller, number).await,
            Route::Inbound { snapshot, number, from } => self.inbound(snapshot, number, from).await,
        }
    }

    async fn internal(mut self, caller: Authed, callee: User) {
        self.call.parties = vec![caller.user.id];
        self.media.send(MediaCommand::User(Side::A, caller.user.clone()));
        if !caller.snapshot.available(callee.id) {
            // "Do not disturb": the call is not put through (and not rung).
            let _ = self.a.reject(StatusCode::TemporarilyUnavailable, Some("do not disturb"));
            self.finish(&caller.snapshot).await;
            return;
        }
        let devices = self.sip.devices(callee.id).await;
        if devices.is_empty() {
            let _ = self.a.reject(StatusCode::TemporarilyUnavailable, Some("not registered"));
            self.finish(&caller.snapshot).await;
            return;
        }
        self.call.rang.push(callee.id);
        let from = caller.user.extension.clone().unwrap_or_else(|| caller.user.email.clone());
        self.dial(&caller.snapshot, &devices, &from, CallStart::Internal, Some(callee)).await;
    }

    async fn outbound(mut self, caller: Authed, number: String) {
        self.call.parties = vec![caller.user.id];
        self.call.external_number = Some(number.clone());
        self.media.send(MediaCommand::User(Side::A, caller.user.clone()));
        // Caller ID: the number chosen for the user, else the company's first.
        let numbers = caller.snapshot.company.numbers();
        let chosen = caller.caller_id.and_then(|id| numbers.iter().find(|n| n.id == id));
        let caller_id = chosen.or_else(|| numbers.first()).map(|n| (n.id, n.e164.clone()));
        self.call.number = caller_id.as_ref().map(|(id, _)| *id);
        let from =
            caller_id.map_or_else(|| caller.user.extension.clone().unwrap_or_default(), |(_, e164)| e164);
        let Some((trunk, _)) = self.sip.trunk.clone() else { return };
        let mut target = trunk;
        target.auth = Some(earshot_sip::message::Auth { user: number, password: None });
        let trunk = super::Device { contact: target, route: Vec::new(), flow: None };
        self.dial(&caller.snapshot, &[trunk], &from, CallStart::Outbound, None).await;
    }

    /// Rings `targets` for a user's call; bridges on answer (recording as
    /// `start` decides), else refuses leg A as SIP says; then stores the call.
    /// `callee` is the user whose devices ring, for an internal call.
    async fn dial(
        mut self,
        snapshot: &Arc<CompanySnapshot>,
        targets: &[super::Device],
        from: &str,
        start: CallStart<'_>,
        callee: Option<User>,
    ) {
        match self.ring(targets, from, Duration::from_secs(DIAL_TIMEOUT_S)).await {
            Ring::Answered => {
                if let Some(user) = callee {
                    self.call.parties.push(user.id);
                    self.media.send(MediaCommand::User(Side::B, user));
                }
                if let Ok(decision) = decide_recording(start, snapshot.company.settings(), now()) {
                    self.bridge(snapshot, LiveRecording::start(decision), Side::A).await;
                }
            }
            Ring::Busy => {
                let _ = self.a.reject(StatusCode::BusyHere, None);
            }
            Ring::NoAnswer => {
                let _ = self.a.reject(StatusCode::TemporarilyUnavailable, Some("no answer"));
            }
            Ring::CallerGone => {}
        }
        self.finish(snapshot).await;
    }

    async fn inbound(mut self, snapshot: Arc<CompanySnapshot>, number: Number, from: String) {
        self.call.status = CallStatus::Missed;
        self.call.number = Some(number.id);
        let external = if from.starts_with('+') { from.clone() } else { format!("+{from}") };
        self.call.external_number = Some(external);
        let flow: Flow = number.flow.clone();
        let prompts = Prompts::new(self.sip.state.data_dir.join("prompts"));
        let mut walk = FlowWalk::new();
        let _ = self.a.ringing();
        loop {
            let step = match walk.next_step(&flow) {
                Ok(Some((_, step))) => step.clone(),
                Ok(None) => break,
                Err(error) => {
                    tracing::error!(%error, "call flow walk failed");
                    break;
                }
            };
            match step {
                Step::Record { .. } => {}
                Step::Announce { prompt } => {
                    if !self.answer_a().await {
                        break;
                    }
                    let samples = prompts.get(&prompt).await;
                    if !self.play(samples).await {
                        break;
                    }
                }
                Step::Menu { prompt, options, timeout_s, .. } => {
                    if !self.answer_a().await {
                        break;
                    }
                    let samples = prompts.get(&prompt).await;
                    let Some(choice) = self.menu(samples, Duration::from_secs(u64::from(timeout_s))).await
                    else {
                        break;
                    };
                    let choice = match choice {
                        MenuChoice::Key(key) if options.contains_key(&key) => MenuChoice::Key(key),
                        _ => MenuChoice::Timeout,
                    };
                    if walk.choose(&flow, choice).is_err() {
                        break;
                    }
                }
                Step::RingUser { user, timeout_s } => {
                    let users: Vec<User> = snapshot.company.user(user).cloned().into_iter().collect();
                    if self.ring_users(&snapshot, &number, &walk, &users, timeout_s).await {
                        break;
                    }
                }
                Step::RingGroup { group, strategy, timeout_s } => {
                    let mut members: Vec<User> = snapshot
                        .company
                        .users()
                        .iter()
                        .filter(|u| u.groups.contains(&group))
                        .cloned()
                        .collect();
                    let done = match strategy {
                        RingStrategy::Simultaneous => {
                            self.ring_users(&snapshot, &number, &walk, &members, timeout_s).await
                        }
                        RingStrategy::RoundRobin if !members.is_empty() => {
                            let start = {
                                let mut next = self
                                    .sip
                                    .round_robin
                                    .lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                                let at = next.entry(group).or_default();
                                let start = *at % members.len();
                                *at = at.wrapping_add(1);
                                start
                            };
                            members.rotate_left(start);
                            let each = (timeout_s / members.len() as u32).max(5);
                            let mut done = false;
                            for member in members {
                                if self.ring_users(&snapshot, &number, &walk, &[member], each).await {
                                    done = true;
                                    break;
                                }
                            }
                            done
                        }
                        RingStrategy::RoundRobin => false,
                    };
                    if done {
                        break;
                    }
                }
                Step::Voicemail {} => {
                    if self.answer_a().await {
                        self.voicemail().await;
                    }
                    break;
                }
            }
            if self.caller_gone() {
                break;
            }
        }
        if !self.answered && !self.caller_gone() {
            let _ = self.a.reject(StatusCode::TemporarilyUnavailable, Some("nobody answered"));
        } else if self.call.status != CallStatus::Answered && !self.caller_gone() {
            let _ = self.a.bye().await;
        }
        self.finish(&snapshot).await;
    }

    /// Rings `users`' devices; true when the call was answered (and has now ended) or the caller left.
    async fn ring_users(
        &mut self,
        snapshot: &Arc<CompanySnapshot>,
        number: &Number,
        walk: &FlowWalk,
        users: &[User],
        timeout_s: u32,
    ) -> bool {
        let mut devices = Vec::new();
        let mut owners = Vec::new();
        // Users on "Do not disturb" are passed by: the flow goes on as if they had no phone.
        for user in users.iter().filter(|user| snapshot.available(user.id)) {
            let found = self.sip.devices(user.id).await;
            if !found.is_empty() {
                for device in found {
                    owners.push((device.contact.to_string(), user.clone()));
                    devices.push(device);
                }
                if !self.call.rang.contains(&user.id) {
                    self.call.rang.push(user.id);
                }
            }
        }
        if devices.is_empty() {
            return false;
        }
        let from = self.call.external_number.clone().unwrap_or_default();
        match self.ring(&devices, &from, Duration::from_secs(u64::from(timeout_s))).await {
            Ring::Answered => {
                let answered_by = self
                    .b
                    .as_ref()
                    .map(|b| b.target().to_string())
                    .and_then(|uri| owners.iter().find(|(d, _)| *d == uri).map(|(_, u)| u.clone()));
                let Some(agent) = answered_by.or_else(|| users.first().cloned()) else { return true };
                self.call.parties = vec![agent.id];
                self.media.send(MediaCommand::User(Side::B, agent));
                let path = walk.path().clone();
                let start = CallStart::Inbound { number, path: &path };
                match decide_recording(start, snapshot.company.settings(), now()) {
                    Ok(decision) => self.bridge(snapshot, LiveRecording::start(decision), Side::B).await,
                    Err(error) => tracing::error!(%error, "recording decision failed"),
                }
                true
            }
            Ring::CallerGone => true,
            Ring::NoAnswer | Ring::Busy => false,
        }
    }

    fn caller_gone(&self) -> bool {
        self.a.is_over()
    }

    /// Answers the caller (once), so prompts can be played.
    async fn answer_a(&mut self) -> bool {
        if self.caller_gone() {
            return false;
        }
        if self.answered {
            return true;
        }
        let Ok(answer) = self.sdp[0].handle_offer(&self.offer_body) else { return false };
        if self.a.accept(answer.into_bytes()).is_err() {
            return false;
        }
        self.answered = true;
        // From here a crash leaves the caller's leg up: journal it.
        self.write_journal(Vec::new());
        true
    }

    /// Plays `samples` to the caller; false when the caller hung up meanwhile.
    async fn play(&mut self, samples: Arc<[i16]>) -> bool {
        let (done_tx, done) = tokio::sync::oneshot::channel();
        self.media.send(MediaCommand::Play(Side::A, samples, done_tx));
        tokio::pin!(done);
        loop {
            tokio::select! {
                _ = &mut done => return !self.caller_gone(),
                state = self.states.recv() => if self.on_state_before_bridge(state) { return false },
            }
        }
    }

    /// Plays a menu and waits for a key; `None` when the caller left.
    async fn menu(&mut self, samples: Arc<[i16]>, timeout: Duration) -> Option<MenuChoice> {
        self.media.send(MediaCommand::CollectKeys(true));
        let (done_tx, done) = tokio::sync::oneshot::channel();
        self.media.send(MediaCommand::Play(Side::A, samples, done_tx));
        tokio::pin!(done);
        let mut deadline: Option<tokio::time::Instant> = None;
        let choice = loop {
            let wait = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut done, if deadline.is_none() => {
                    deadline = Some(tokio::time::Instant::now() + timeout);
                }
                () = wait => break Some(MenuChoice::Timeout),
                event = self.media_events.recv() => match event {
                    Some(MediaEvent::Key(key)) => break Some(MenuChoice::Key(key)),
                    Some(_) => {}
                    None => break None,
                },
                state = self.states.recv() => if self.on_state_before_bridge(state) { break None },
            }
        };
        self.media.send(MediaCommand::CollectKeys(false));
        choice
    }

    /// True when the state means the caller has gone.
    fn on_state_before_bridge(&self, event: Option<LegEvent>) -> bool {
        match event {
            None => true,
            Some(LegEvent::Ended { leg, .. }) => Some(&leg) == self.a_id.as_ref() || self.caller_gone(),
            Some(_) => false,
        }
    }

    async fn voicemail(&mut self) {
        if !self.play(Prompts::voicemail_greeting()).await {
            return;
        }
        let path = self.recording_path("voicemail");
        // A crash from here on keeps the message, and ends the caller's leg.
        self.voicemail_journal = Some(file_name(self.call.company, &path));
        self.write_journal(Vec::new());
        self.media.send(MediaCommand::Voicemail(path, self.sip.state.recordings.keys()));
        let limit = tokio::time::sleep(Duration::from_secs(VOICEMAIL_MAX_S));
        tokio::pin!(limit);
        loop {
            tokio::select! {
                () = &mut limit => {
                    let _ = self.a.bye().await;
                    break;
                }
                state = self.states.recv() => if self.on_state_before_bridge(state) { break },
            }
        }
    }

    /// Places B legs to every target at once; the first to answer wins, the rest are cancelled.
    async fn ring(&mut self, targets: &[super::Device], from: &str, timeout: Duration) -> Ring {
        // Each ring is a new session of its own (a flow may ring several
        // times). Devices over TLS are offered SRTP with a key of ours,
        // the others plain RTP: one negotiation each way, the answering
        // device's kept.
        let codecs = self.sdp[1].codecs().to_vec();
        let session = rand::random::<u32>().into();
        let mut plain = Negotiation::with_codecs(self.media.local[1], session, codecs.clone());
        let key = SdesKey::random();
        let mut secure =
            Negotiation::with_codecs(self.media.local[1], session, codecs).with_srtp(key.clone());
        let plain_offer = plain.offer(MediaDirection::SendRecv).into_bytes();
        let secure_offer = secure.offer(MediaDirection::SendRecv).into_bytes();
        let mut pending = Vec::new();
        let mut over_tls = Vec::new();
        let instance = self.sip.local.to_string();
        for target in targets {
            let caller: Uri =
                format!("sip:{from}@{}", self.sip.local).as_str().try_into().unwrap_or_default();
            let tls = earshot_sip::dialog::is_tls(&target.contact) || target.flow.is_some();
            let placing = Placing {
                caller,
                callee: target.contact.clone(),
                route: target.route.clone(),
                contact: if tls { self.sip.tls_contact("earshot") } else { self.sip.contact("earshot") },
                offer: if tls { secure_offer.clone() } else { plain_offer.clone() },
                credential: None,
                tls_flow: target
                    .flow
                    .as_ref()
                    .filter(|(held_by, _)| *held_by == instance)
                    .map(|(_, flow)| *flow),
            };
            match self.sip.dialogs.place(placing, &self.states_tx) {
                Ok((leg, outcome)) => {
                    pending.push((leg, outcome));
                    over_tls.push(tls);
                }
                Err(error) => tracing::info!(%error, target = %target.contact, "cannot place a leg"),
            }
        }
        let negotiations = (plain, secure);
        if pending.is_empty() {
            return Ring::NoAnswer;
        }
        if !self.answered {
            let _ = self.a.ringing();
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut busy = 0;
        let total = pending.len();
        let mut results = futures::stream::FuturesUnordered::new();
        let mut dialogs = Vec::new();
        for (index, (leg, outcome)) in pending.into_iter().enumerate() {
            dialogs.push(leg);
            results.push(async move { (index, outcome.await) });
        }
        use futures::StreamExt as _;
        let outcome = loop {
            tokio::select! {
                () = &mut deadline => break Ring::NoAnswer,
                state = self.states.recv() => {
                    if let Some(LegEvent::Ended { leg, .. }) = &state
                        && Some(leg) == self.a_id.as_ref()
                    {
                        break Ring::CallerGone;
                    }
                    if state.is_none() {
                        break Ring::CallerGone;
                    }
                }
                finished = results.next() => match finished {
                    None => break if busy == total { Ring::Busy } else { Ring::NoAnswer },
                    Some((index, Ok(Some(response))))
                        if response.status_code.kind() == StatusCodeKind::Successful =>
                    {
                        self.sdp[1] = if over_tls[index] { negotiations.1.clone() } else { negotiations.0.clone() };
                        match self.sdp[1].handle_answer(&response.body) {
                            Ok(answer) => {
                                if over_tls[index] {
                                    self.media.send(MediaCommand::Srtp(Side::B, key.clone()));
                                }
                                self.media.send(MediaCommand::Peer(Side::B, answer.clone()));
                                self.b = Some(dialogs[index].clone());
                                break Ring::Answered;
                            }
                            Err(error) => {
                                tracing::info!(%error, "answer without usable SDP");
                                let _ = dialogs[index].bye().await;
                            }
                        }
                    }
                    Some((index, Ok(Some(response)))) => {
                        tracing::debug!(status = %response.status_code, target = %dialogs[index].target(), "a leg was refused");
                        if matches!(response.status_code, StatusCode::BusyHere | StatusCode::BusyEverywhere | StatusCode::Decline) {
                            busy += 1;
                        }
                    }
                    Some((index, Ok(None))) => {
                        tracing::debug!(target = %dialogs[index].target(), "a leg ended without an answer");
                    }
                    Some((index, Err(error))) => {
                        tracing::info!(%error, target = %dialogs[index].target(), "a leg failed");
                    }
                },
            }
        };
        // Every other leg stops ringing.
        for dialog in &dialogs {
            let winner =
                matches!(outcome, Ring::Answered) && self.b.as_ref().is_some_and(|b| b.id() == dialog.id());
            if !winner {
                let _ = dialog.hang_up().await;
            }
        }
        outcome
    }

    /// Bridges A and B, recording as `live` says, until either side hangs up.
    async fn bridge(&mut self, snapshot: &Arc<CompanySnapshot>, live: LiveRecording, ours: Side) {
        if !self.answer_a().await {
            if let Some(b) = &self.b {
                let _ = b.bye().await;
            }
            return;
        }
        self.call.status = CallStatus::Answered;
        self.call.answered_at = Some(now());
        self.sip.stats.calls_bridged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self.recording_path("call");
        self.call.decided_by = Some(live.decided_by);
        self.call.recording_trace.clone_from(&live.trace);
        self.journal = Some(file_name(self.call.company, &path));
        self.write_journal(Vec::new());
        let keys = self.sip.state.recordings.keys();
        let setup = RecordingSetup { live, settings: snapshot.company.settings().clone(), ours, path, keys };
        self.media.send(MediaCommand::Bridge(Box::new(setup)));
        let b_id = self.b.as_ref().map(Leg::id);
        loop {
            tokio::select! {
                state = self.states.recv() => match state {
                    None => break,
                    Some(LegEvent::Ended { leg, ending }) => {
                        let from_a = Some(&leg) == self.a_id.as_ref();
                        let from_b = b_id.as_ref() == Some(&leg);
                        if from_a || from_b {
                            tracing::debug!(?ending, from_a, "call ended");
                            let other = if from_a { self.b.clone() } else { Some(self.a.clone()) };
                            if let Some(other) = other {
                                let _ = other.bye().await;
                            }
                            break;
                        }
                    }
                    Some(LegEvent::Request { leg, request, responder }) => {
                        let side = if Some(&leg) == self.a_id.as_ref() { Side::A } else { Side::B };
                        self.reoffer(side, &request, responder).await;
                    }
                    Some(LegEvent::Progress { .. }) => {}
                },
                event = self.media_events.recv() => if let Some(event) = event {
                    self.publish(snapshot, event);
                },
            }
        }
    }

    /// A re-INVITE on `leg` (hold, resume, new address): answer it for that leg.
    async fn reoffer(&mut self, side: Side, request: &Request, responder: Responder) {
        let index = match side {
            Side::A => 0,
            Side::B => 1,
        };
        match self.sdp[index].handle_offer(&request.body) {
            Ok(answer) => {
                if let Some(offer) = self.sdp[index].theirs() {
                    self.media.send(MediaCommand::Peer(side, offer.clone()));
                }
                responder.respond(StatusCode::OK, Some(answer.into_bytes())).await;
            }
            Err(_) if request.body.is_empty() => responder.respond(StatusCode::OK, None).await,
            Err(_) => responder.respond(StatusCode::NotAcceptableHere, None).await,
        }
    }

    /// Writes the call so far to its journal, with the pauses so far.
    fn write_journal(&mut self, spans: Vec<earshot_telephony::SpanSoFar>) {
        self.journalled = true;
        let legs = [Some(&self.a), self.b.as_ref()].into_iter().flatten().filter_map(Leg::record).collect();
        let entry = journal::Entry {
            call: self.call.clone(),
            recording_file: self.journal.clone(),
            voicemail_file: self.voicemail_journal.clone(),
            paused: spans,
            legs,
        };
        journal::write(&self.sip.state, &self.key, &entry);
    }

    fn publish(&mut self, snapshot: &Arc<CompanySnapshot>, event: MediaEvent) {
        let change = match event {
            MediaEvent::RecordingState { changed, state, trace, spans } => {
                // A crash from here on keeps the codes acted on and the pauses.
                self.call.recording_trace = trace;
                if self.journal.is_some() {
                    self.write_journal(spans);
                }
                if !changed {
                    return;
                }
                Change::RecordingState { to: self.call.parties.clone(), call: self.key.clone(), state }
            }
            MediaEvent::Refused { user, reason } => Change::RecordingRefused {
                to: vec![user],
                call: self.key.clone(),
                reason,
                detail: reason.message(),
            },
            MediaEvent::Key(_) => return,
        };
        self.sip.state.events.publish(ChangeEvent {
            company: snapshot.company.id(),
            version: snapshot.version,
            change,
        });
    }

    fn recording_path(&self, kind: &str) -> std::path::PathBuf {
        let dir = self.sip.state.recordings_dir().join(self.call.company.0.to_string());
        let _ = std::fs::create_dir_all(&dir);
        dir.join(format!("{}-{kind}.wav", self.key))
    }

    /// Hangs everything up, stores the call and its files, and tells the apps.
    async fn finish(mut self, snapshot: &Arc<CompanySnapshot>) {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        self.media.send(MediaCommand::Finish(reply));
        let outcome: MediaOutcome = outcome.await.unwrap_or_default();
        while let Ok(event) = self.media_events.try_recv() {
            self.publish(snapshot, event);
        }
        self.call.ended_at = Some(now());
        if let Some(live) = outcome.live {
            self.call.decided_by = Some(live.decided_by);
            self.call.recording_trace = live.trace;
        }
        let company = self.call.company;
        let mut files = Vec::new();
        if let Some(file) = outcome.recording {
            let recording = to_recording(&file, RecordingKind::Call);
            self.call.recording = Some(recording.clone());
            files.push(RecordingFile { recording, file_name: file_name(company, &file.path) });
        }
        if let Some(file) = outcome.voicemail.filter(|f| f.duration_ms > 0) {
            let recording = to_recording(&file, RecordingKind::Voicemail);
            self.call.voicemail = Some(recording.clone());
            self.call.status = CallStatus::Voicemail;
            files.push(RecordingFile { recording, file_name: file_name(company, &file.path) });
        }
        // SPEC §2: an outbound or internal call nobody picked up is `unanswered`, not `missed`.
        if !self.call.status.fits(self.call.direction) {
            self.call.status = CallStatus::Unanswered;
        }
        match store(&self.sip, snapshot.version, &self.call, &files).await {
            Ok(()) => {
                if self.journalled {
                    journal::remove(&self.sip.state, &self.key);
                }
                // Only now: until the call is stored, its journal needs the file in the spool.
                for file in &files {
                    self.sip.state.recordings.finished(&file.file_name);
                }
            }
            Err(error) => tracing::error!(%error, "cannot store a finished call"),
        }
    }
}

fn to_recording(file: &media::WrittenFile, kind: RecordingKind) -> Recording {
    Recording {
        id: RecordingId(0),
        call: CallId(0),
        kind,
        duration_ms: file.duration_ms,
        size_bytes: file.size_bytes,
        paused_spans: file.paused_spans.clone(),
        deleted: None,
    }
}

fn file_name(company: CompanyId, path: &std::path::Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{company}/{name}")
}

/// Writes the finished call. Calls are not settings: the company's version
/// stays, and apps learn of the call from the event.
async fn store(
    sip: &Sip,
    version: i64,
    call: &Call,
    files: &[RecordingFile],
) -> Result<(), crate::db::StoreError> {
    let db = &sip.state.db;
    let mut tx = db.pool().begin().await?;
    let id = insert_call(db, &mut tx, call, files).await?;
    let event = ChangeEvent { company: call.company, version, change: Change::Call { call: id } };
    sip.state.events.stage(&mut tx, &event).await?;
    tx.commit().await?;
    sip.stats.calls_written.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    sip.state.events.committed(event);
    Ok(())
}
