//! Requests and dialogs, as the layers above see them: a new request to
//! answer ([`Incoming`]), the INVITE dialogs of a call ([`Leg`]) and what
//! happens on them ([`LegEvent`]), placed and answered through
//! [`Dialogs`]. These wrap rsipstack's transactions and dialogs so that no
//! other crate names rsipstack: the service's registrar and back-to-back
//! user agent and the phone use these, and the SIP message types of
//! [`crate::message`].
//!
//! What every user of the stack needs is done here once: a re-INVITE that
//! overtook the ACK to our 2xx waits for it ([`crate::endpoint::confirmed`]),
//! OPTIONS and INFO within a dialog are answered `200`, and requests we
//! don't support within one (NOTIFY, REFER, MESSAGE, PUBLISH) `501`.

use crate::endpoint::confirmed;
use crate::message::{Header, Method, Request, Response, StatusCode, Uri};
use rsipstack::dialog::DialogId;
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::{
    Dialog, DialogState, DialogStateReceiver, DialogStateSender, TerminatedReason,
};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transaction::transaction::Transaction;
use std::sync::Arc;

/// An error of the SIP stack (transport, transaction or dialog).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(Box<rsipstack::Error>);

impl Error {
    /// An error told in words (a TLS set-up problem, among others).
    #[must_use]
    pub fn other(detail: String) -> Self {
        rsipstack::Error::Error(detail).into()
    }
}

impl From<rsipstack::Error> for Error {
    fn from(error: rsipstack::Error) -> Self {
        Self(Box::new(error))
    }
}

impl From<rsipstack::sip::Error> for Error {
    fn from(error: rsipstack::sip::Error) -> Self {
        rsipstack::Error::from(error).into()
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        rsipstack::Error::from(error).into()
    }
}

/// Whether requests to `uri` go over TLS (`;transport=tls`, or `sips:`).
#[must_use]
pub fn is_tls(uri: &Uri) -> bool {
    let text = uri.to_string().to_ascii_lowercase();
    text.starts_with("sips:") || text.contains(";transport=tls")
}

/// A request that starts no transaction we know of: a new REGISTER,
/// INVITE, OPTIONS… or an in-dialog request for [`Dialogs::serve`].
pub struct Incoming(Transaction);

impl Incoming {
    /// The request.
    #[must_use]
    pub fn request(&self) -> &Request {
        &self.0.original
    }

    /// Whether it came over TLS (its leg's media is then SRTP).
    #[must_use]
    pub fn over_tls(&self) -> bool {
        self.0
            .connection
            .as_ref()
            .is_some_and(|c| matches!(c.get_addr().r#type, Some(rsipstack::sip::transport::Transport::Tls)))
    }

    /// Its source, when it came over TLS: the connection requests to the
    /// sender can ride (RFC 5626's flow).
    #[must_use]
    pub fn tls_source(&self) -> Option<std::net::SocketAddr> {
        let connection = self.0.connection.as_ref().filter(|_| self.over_tls())?;
        connection.get_remote_addr()?.get_socketaddr().ok()
    }

    /// Where it came from, as the transport saw it (never what the
    /// sender wrote: see [`crate::endpoint::SOURCE_HEADER`]).
    #[must_use]
    pub fn source(&self) -> Option<std::net::SocketAddr> {
        self.0
            .original
            .headers
            .iter()
            .filter(|header| header.name().eq_ignore_ascii_case(crate::endpoint::SOURCE_HEADER))
            .last()
            .and_then(|header| header.value().trim().parse().ok())
    }

    /// Whether it belongs to a dialog (its To has a tag).
    #[must_use]
    pub fn in_dialog(&self) -> bool {
        use crate::message::prelude::HeadersExt as _;
        self.0.original.to_header().ok().and_then(|to| to.tag().ok().flatten()).is_some()
    }

    /// Answers it with `status`.
    ///
    /// # Errors
    /// When the answer cannot be sent.
    pub async fn reply(&mut self, status: StatusCode) -> Result<(), Error> {
        Ok(self.0.reply(status).await?)
    }

    /// Answers it with `status`, `headers` and `body`.
    ///
    /// # Errors
    /// When the answer cannot be sent.
    pub async fn reply_with(
        &mut self,
        status: StatusCode,
        headers: Vec<Header>,
        body: Option<Vec<u8>>,
    ) -> Result<(), Error> {
        Ok(self.0.reply_with(status, headers, body).await?)
    }
}

/// New requests, as they arrive.
pub struct Incomings(pub(crate) TransactionReceiver);

impl Incomings {
    /// The next new request; `None` once the endpoint stopped.
    pub async fn recv(&mut self) -> Option<Incoming> {
        self.0.recv().await.map(Incoming)
    }
}

/// Which dialog (stable for a dialog we answered; for one we placed, once
/// it is answered).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LegId(DialogId);

impl LegId {
    /// Its Call-ID, the same from the first provisional answer on.
    #[must_use]
    pub fn call_id(&self) -> &str {
        &self.0.call_id
    }
}

/// One INVITE dialog: a call's leg, answered or placed by us.
#[derive(Clone)]
pub struct Leg(InviteDialog);

impl Leg {
    /// Which dialog.
    #[must_use]
    pub fn id(&self) -> LegId {
        LegId(self.0.id())
    }

    /// The Request-URI of the INVITE that made it.
    #[must_use]
    pub fn target(&self) -> Uri {
        self.0.initial_request().uri
    }

    /// Whether it is over.
    #[must_use]
    pub fn is_over(&self) -> bool {
        matches!(self.0.state(), DialogState::Terminated(..))
    }

    /// Tells the caller it rings (180).
    ///
    /// # Errors
    /// When the dialog is not one we answer, or is over.
    pub fn ringing(&self) -> Result<(), Error> {
        Ok(self.0.ringing(None, None)?)
    }

    /// Answers the call (200) with an SDP `answer`.
    ///
    /// # Errors
    /// When the dialog is not one we answer, or is over.
    pub fn accept(&self, answer: Vec<u8>) -> Result<(), Error> {
        Ok(self.0.accept(Some(vec![sdp_type()]), Some(answer))?)
    }

    /// Refuses the call with `status` and, optionally, a reason phrase.
    ///
    /// # Errors
    /// When the dialog is not one we answer, or is over.
    pub fn reject(&self, status: StatusCode, reason: Option<&str>) -> Result<(), Error> {
        Ok(self.0.reject(Some(status), reason.map(str::to_owned))?)
    }

    /// Hangs up a connected call (BYE).
    ///
    /// # Errors
    /// When the BYE cannot be sent.
    pub async fn bye(&self) -> Result<(), Error> {
        Ok(self.0.bye().await?)
    }

    /// Ends the dialog whatever its state: CANCEL while it rings, BYE once
    /// answered.
    ///
    /// # Errors
    /// When the request cannot be sent.
    pub async fn hang_up(&self) -> Result<(), Error> {
        Ok(self.0.hangup().await?)
    }

    /// Gives up on a call we placed that still rings (CANCEL).
    ///
    /// # Errors
    /// When the CANCEL cannot be sent.
    pub async fn cancel(&self) -> Result<(), Error> {
        Ok(self.0.cancel().await?)
    }

    /// The dialog written down, so that a restart after a crash can end
    /// it ([`Dialogs::end_recorded`]); `None` until it is answered (our
    /// 200 sent, or theirs received).
    #[must_use]
    pub fn record(&self) -> Option<LegRecord> {
        if !matches!(self.0.state(), DialogState::Confirmed(..) | DialogState::WaitAck(..)) {
            return None;
        }
        let snapshot = self.0.snapshot();
        Some(LegRecord {
            answered_by_us: snapshot.role == rsipstack::transaction::key::TransactionRole::Server,
            call_id: snapshot.id.call_id,
            local_tag: snapshot.id.local_tag,
            remote_tag: snapshot.id.remote_tag,
            from: snapshot.from.to_string(),
            to: snapshot.to.to_string(),
            local_cseq: snapshot.local_cseq,
            remote_cseq: snapshot.remote_cseq,
            local_contact: snapshot.local_contact.map(|uri| uri.to_string()),
            remote_target: snapshot.remote_uri.to_string(),
            route_set: snapshot.route_set.iter().map(|route| route.value().to_string()).collect(),
        })
    }

    /// Re-offers within the call (hold, resume) with an SDP `offer`; the
    /// answer, or `None` when the dialog is not confirmed yet.
    ///
    /// # Errors
    /// When the re-INVITE got no answer.
    pub async fn reinvite(&self, offer: Vec<u8>) -> Result<Option<Response>, Error> {
        Ok(self.0.reinvite(Some(vec![sdp_type()]), Some(offer)).await?)
    }
}

/// A confirmed INVITE dialog written down: enough to end it with a BYE
/// that its far end recognises, after the process that held it is gone
/// (RFC 3261 §12: Call-ID, tags, CSeq, remote target, route set).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LegRecord {
    /// Whether the far end called us (we answered the INVITE).
    pub answered_by_us: bool,
    /// Its Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// Theirs.
    pub remote_tag: String,
    /// The INVITE's From, as the dialog keeps it (the caller's side).
    pub from: String,
    /// Its To (the called side), with the tag.
    pub to: String,
    /// Our last CSeq in it.
    pub local_cseq: u32,
    /// Theirs.
    pub remote_cseq: u32,
    /// Our Contact.
    pub local_contact: Option<String>,
    /// Where requests in it go (their Contact).
    pub remote_target: String,
    /// The proxies they go through.
    pub route_set: Vec<String>,
}

/// How far a restored dialog's CSeq moves on: past any request the lost
/// process sent after it last wrote the dialog down (RFC 3261 §12.2.1.1
/// only asks for a higher number).
const CSEQ_MARGIN: u32 = 1_000;

fn sdp_type() -> Header {
    Header::ContentType("application/sdp".into())
}

/// How a dialog ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The caller gave up before it was answered (CANCEL).
    Cancelled,
    /// A transaction of it timed out.
    TimedOut,
    /// A BYE, a refusal, or anything else.
    Other,
}

/// The answer still owed to a request within a dialog.
pub struct Responder(rsipstack::dialog::dialog::TransactionHandle);

impl Responder {
    /// Answers with `status`, and an SDP body when given.
    pub async fn respond(self, status: StatusCode, sdp: Option<Vec<u8>>) {
        let headers = sdp.as_ref().map(|_| vec![sdp_type()]);
        // The transaction gone means the request went away: nothing to answer.
        let _ = self.0.respond(status, headers, sdp).await;
    }
}

/// What happens on a call's legs.
pub enum LegEvent {
    /// A provisional answer to an INVITE we placed (100, 180, 183…).
    Progress {
        /// Which leg.
        leg: LegId,
        /// The status.
        status: u16,
        /// Its SDP, if any (early media).
        sdp: Option<Vec<u8>>,
    },
    /// A request within the dialog to answer: a re-INVITE (hold, resume, a
    /// new address) or an UPDATE.
    Request {
        /// Which leg.
        leg: LegId,
        /// The request.
        request: Box<Request>,
        /// Its answer, owed.
        responder: Responder,
    },
    /// The dialog is over.
    Ended {
        /// Which leg.
        leg: LegId,
        /// How.
        ending: Ending,
    },
}

/// Where a call's legs report what happens on them; one per call.
pub struct LegEvents {
    receiver: DialogStateReceiver,
    /// The layer its legs' dialogs are registered in: each is removed when
    /// it ends (rsipstack leaves that to its user; kept, every call's two
    /// dialogs stayed in memory for the life of the process, 60 KB a call
    /// in the soak).
    layer: Arc<DialogLayer>,
}

/// The sending side of [`LegEvents`], given to each leg of the call.
#[derive(Clone)]
pub struct LegEventSender(DialogStateSender);

/// A call that stops listening before its last leg has ended (it has hung
/// that leg up and is done) still has that leg's end to hear: it is heard
/// here, and the dialog let go of then.
impl Drop for LegEvents {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (_, empty) = tokio::sync::mpsc::unbounded_channel();
        let mut receiver = std::mem::replace(&mut self.receiver, empty);
        // Not keeping the layer (and its endpoint) alive: once it is gone,
        // so are its dialogs and their senders, and this task ends.
        let layer = Arc::downgrade(&self.layer);
        runtime.spawn(async move {
            // Until every leg of the call is gone (each holds a sender).
            while let Some(state) = receiver.recv().await {
                if let Some(layer) = layer.upgrade() {
                    let_go_if_ended(&layer, &state);
                }
                // Anything else is answered as a call without a listener would be.
                drop(Self::translate(state));
            }
        });
    }
}

/// Removes a dialog from `layer` once `state` says it has ended.
fn let_go_if_ended(layer: &DialogLayer, state: &DialogState) {
    if let DialogState::Terminated(id, _) = state {
        layer.remove_dialog(id);
    }
}

impl LegEvents {
    /// The next event; `None` when every leg and sender is gone.
    pub async fn recv(&mut self) -> Option<LegEvent> {
        loop {
            let state = self.receiver.recv().await?;
            let_go_if_ended(&self.layer, &state);
            if let Some(event) = Self::translate(state) {
                return Some(event);
            }
        }
    }

    fn translate(state: DialogState) -> Option<LegEvent> {
        match state {
            DialogState::Trying(id) => Some(LegEvent::Progress { leg: LegId(id), status: 100, sdp: None }),
            DialogState::Early(id, response) => Some(LegEvent::Progress {
                leg: LegId(id),
                status: response.status_code.code(),
                sdp: (!response.body.is_empty()).then_some(response.body),
            }),
            DialogState::Updated(id, request, handle) => Some(LegEvent::Request {
                leg: LegId(id),
                request: Box::new(request),
                responder: Responder(handle),
            }),
            DialogState::Options(_, _, handle) | DialogState::Info(_, _, handle) => {
                tokio::spawn(async move {
                    let _ = handle.reply(StatusCode::OK).await;
                });
                None
            }
            DialogState::Notify(_, _, handle)
            | DialogState::Refer(_, _, handle)
            | DialogState::Message(_, _, handle)
            | DialogState::Publish(_, _, handle) => {
                tokio::spawn(async move {
                    let _ = handle.reply(StatusCode::NotImplemented).await;
                });
                None
            }
            DialogState::Terminated(id, reason) => {
                let ending = match reason {
                    TerminatedReason::UacCancel => Ending::Cancelled,
                    TerminatedReason::Timeout => Ending::TimedOut,
                    _ => Ending::Other,
                };
                Some(LegEvent::Ended { leg: LegId(id), ending })
            }
            DialogState::Calling(_) | DialogState::WaitAck(..) | DialogState::Confirmed(..) => None,
        }
    }
}

/// A call to place.
pub struct Placing {
    /// Who calls (From).
    pub caller: Uri,
    /// Whom (the Request-URI and To).
    pub callee: Uri,
    /// The proxies the INVITE goes through first (`Route`, e.g. a
    /// registration's Path), as name-addr values, first hop first; empty:
    /// straight to `callee`.
    pub route: Vec<String>,
    /// Where we take requests within the dialog.
    pub contact: Uri,
    /// The SDP offer.
    pub offer: Vec<u8>,
    /// Credentials to answer a 401/407 challenge with.
    pub credential: Option<Credentials>,
    /// The TLS connection from this address to send it on (a device's
    /// flow), instead of one to `callee`'s host; the dialog's later
    /// requests ride it too.
    pub tls_flow: Option<std::net::SocketAddr>,
}

/// Digest credentials for our own requests.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The user part of our address of record.
    pub user: String,
    /// The digest user name, when not `user`.
    pub auth_user: Option<String>,
    /// The password.
    pub password: String,
}

impl Credentials {
    pub(crate) fn to_stack(&self) -> Credential {
        Credential {
            username: self.user.clone(),
            password: self.password.clone(),
            realm: None,
            auth_username: self.auth_user.clone(),
        }
    }
}

/// How an INVITE we placed ended: its final answer (`None`: none came).
pub type Outcome = Result<Option<Response>, Error>;

/// The dialogs of an endpoint.
#[derive(Clone)]
pub struct Dialogs(pub(crate) Arc<DialogLayer>);

impl std::fmt::Debug for Dialogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialogs").field("held", &self.len()).finish()
    }
}

impl Dialogs {
    /// Dialogs held now: the calls' legs that are up or being set up.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No dialog held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A new call's event channel, for all of its legs.
    #[must_use]
    pub fn events(&self) -> (LegEventSender, LegEvents) {
        let (sender, receiver) = self.0.new_dialog_state_channel();
        (LegEventSender(sender), LegEvents { receiver, layer: Arc::clone(&self.0) })
    }

    /// The dialog of a new INVITE, answered by us; its transaction runs on
    /// a task of its own from here on (CANCEL, ACK and retransmissions).
    ///
    /// # Errors
    /// When the INVITE cannot make a dialog; it has been answered `500`.
    pub fn answer(&self, incoming: Incoming, events: &LegEventSender, contact: Uri) -> Result<Leg, Error> {
        let mut tx = incoming.0;
        let dialog = match self.0.get_or_create_server_invite(&tx, events.0.clone(), None, Some(contact)) {
            Ok(dialog) => dialog,
            Err(error) => {
                tokio::spawn(async move {
                    let _ = tx.reply(StatusCode::ServerInternalError).await;
                });
                return Err(error.into());
            }
        };
        let mut driving = dialog.clone();
        tokio::spawn(async move {
            let _ = driving.handle(&mut tx).await;
        });
        Ok(Leg(dialog))
    }

    /// Places a call; returns its leg at once, and a future of its final answer.
    ///
    /// # Errors
    /// When the INVITE cannot be made.
    pub fn place(
        &self,
        placing: Placing,
        events: &LegEventSender,
    ) -> Result<(Leg, impl Future<Output = Outcome> + Send + 'static), Error> {
        let mut route_set = Vec::with_capacity(placing.route.len());
        for hop in &placing.route {
            match rsipstack::sip::typed::Route::parse(hop) {
                Ok(route) => route_set.push(route),
                Err(error) => return Err(rsipstack::Error::Error(format!("the route {hop}: {error}")).into()),
            }
        }
        let option = InviteOption {
            caller: placing.caller,
            callee: placing.callee,
            contact: placing.contact,
            content_type: Some("application/sdp".into()),
            offer: Some(placing.offer),
            credential: placing.credential.as_ref().map(Credentials::to_stack),
            route_set,
            destination: placing.tls_flow.map(|addr| rsipstack::transport::SipAddr {
                r#type: Some(rsipstack::sip::transport::Transport::Tls),
                addr: addr.into(),
            }),
            ..Default::default()
        };
        let (dialog, handle) = self.0.do_invite_async(option, events.0.clone())?;
        let outcome = async move {
            match handle.await {
                Ok(Ok((_, response))) => Ok(response),
                Ok(Err(error)) => Err(error.into()),
                Err(error) => {
                    Err(rsipstack::Error::Error(format!("the INVITE's task failed: {error}")).into())
                }
            }
        };
        Ok((Leg(dialog), outcome))
    }

    /// Ends a dialog a crashed process left up: restores it from `record`
    /// and sends its BYE, returning once it is answered (whatever the
    /// answer: a far end that gave up on the dialog says `481`) or its
    /// transaction timed out.
    ///
    /// # Errors
    /// When the record does not read back, or the BYE cannot be sent.
    pub async fn end_recorded(&self, record: &LegRecord) -> Result<(), Error> {
        use rsipstack::dialog::dialog::{DialogSnapshot, DialogSnapshotState};
        use rsipstack::sip::headers::untyped::ToTypedHeader as _;
        use rsipstack::transaction::key::TransactionRole;
        let bad = |what: &str, error: &dyn std::fmt::Display| {
            Error::from(rsipstack::Error::Error(format!("the recorded dialog's {what}: {error}")))
        };
        let from =
            rsipstack::sip::headers::From::new(record.from.clone()).typed().map_err(|e| bad("From", &e))?;
        let to = rsipstack::sip::headers::To::new(record.to.clone()).typed().map_err(|e| bad("To", &e))?;
        let remote_uri =
            Uri::try_from(record.remote_target.as_str()).map_err(|e| bad("remote target", &e))?;
        let local_contact = match &record.local_contact {
            Some(contact) => Some(Uri::try_from(contact.as_str()).map_err(|e| bad("Contact", &e))?),
            None => None,
        };
        let id = DialogId {
            call_id: record.call_id.clone(),
            local_tag: record.local_tag.clone(),
            remote_tag: record.remote_tag.clone(),
        };
        let snapshot = DialogSnapshot {
            state: DialogSnapshotState::Confirmed,
            role: if record.answered_by_us { TransactionRole::Server } else { TransactionRole::Client },
            id: id.clone(),
            from,
            to,
            local_cseq: record.local_cseq.saturating_add(CSEQ_MARGIN),
            remote_cseq: record.remote_cseq,
            local_contact,
            remote_uri,
            remote_contact: None,
            route_set: record
                .route_set
                .iter()
                .map(|route| rsipstack::sip::Route::from(route.as_str()))
                .collect(),
            supports_100rel: false,
            session_id: None,
        };
        // Its state changes go nowhere: nothing waits on this dialog but us.
        let (events, _unread) = self.0.new_dialog_state_channel();
        if !self.0.restore_from_snapshot(snapshot, events)? {
            // A live dialog of that id: not ours to end.
            return Err(rsipstack::Error::Error("a dialog with the recorded id is live".into()).into());
        }
        let Some(Dialog::Invite(dialog)) = self.0.get_dialog(&id) else {
            return Err(rsipstack::Error::Error("the recorded dialog was not restored".into()).into());
        };
        let sent = dialog.bye().await;
        self.0.remove_dialog(&id);
        Ok(sent?)
    }

    /// Serves a request within a dialog: hands it to its dialog (which
    /// reports it on the call's [`LegEvents`]), waiting for the ACK a
    /// re-INVITE may have overtaken, or answers it as RFC 3261 says when
    /// there is no such dialog.
    pub async fn serve(&self, incoming: Incoming) {
        let mut tx = incoming.0;
        let _ = match self.0.match_dialog(&tx) {
            Some(Dialog::Invite(_))
                if tx.original.method == Method::Invite && !confirmed(&tx, &self.0).await =>
            {
                // Still not confirmed: ask the caller to try again shortly (RFC 3261 §14.2).
                tx.reply_with(StatusCode::ServerInternalError, vec![retry_after(1)], None).await
            }
            Some(Dialog::Invite(mut dialog)) => dialog.handle(&mut tx).await,
            Some(_) => tx.reply(StatusCode::MethodNotAllowed).await,
            None if tx.original.method == Method::Ack => Ok(()),
            None => tx.reply(StatusCode::CallTransactionDoesNotExist).await,
        };
    }
}

/// `Retry-After: seconds` (RFC 3261 §20.33), for a failure that is ours.
#[must_use]
pub fn retry_after(seconds: u32) -> Header {
    Header::Other("Retry-After".into(), seconds.to_string())
}
