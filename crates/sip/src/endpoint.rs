//! An rsipstack endpoint on guarded transports: one UDP socket read through
//! the [`GuardedSocket`] and a TCP listener whose connections pass the
//! [`StreamDoor`], both on one address; transactions, retransmissions and
//! dialogs are rsipstack's. Also the one dialog workaround every user of
//! the stack needs (`confirmed`, which [`Dialogs::serve`] applies).

use crate::dialog::{Dialogs, Incomings};
use crate::guard::{GuardStats, GuardedSocket, StreamDoor};
use rsipstack::EndpointBuilder;
use rsipstack::dialog::dialog::{Dialog, DialogState};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::{TcpListenerConnection, TransportLayer, udp::UdpConnection};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A SIP endpoint listening on UDP and TCP, served on a task of its own
/// until the token given to [`listen`] is cancelled.
pub struct SipEndpoint {
    /// New requests (that start no transaction we know of).
    pub incoming: Incomings,
    /// Dialogs, on the endpoint.
    pub dialogs: Dialogs,
    /// The endpoint itself, for registrations.
    pub(crate) inner: EndpointInnerRef,
    /// Where it listens, as bound.
    pub local: SocketAddr,
    /// What the door-keeper turned away.
    pub guard: Arc<GuardStats>,
}

/// Listens on `listen` (UDP and TCP, port 0 for any), introducing itself
/// as `user_agent`; stops when `cancel` is cancelled.
pub async fn listen(
    listen: SocketAddr,
    user_agent: &str,
    cancel: &CancellationToken,
) -> Result<SipEndpoint, crate::dialog::Error> {
    let transport = TransportLayer::new(cancel.clone());
    let guard = Arc::new(GuardStats::default());
    let socket = GuardedSocket::bind(listen, Arc::clone(&guard)).await?;
    let udp = UdpConnection::from_socket(Arc::new(socket), None, Some(cancel.child_token())).await?;
    let local = udp.get_addr().get_socketaddr()?;
    transport.add_transport(udp.into());
    let door = Arc::new(StreamDoor { stats: Arc::clone(&guard) });
    let tcp = TcpListenerConnection::new_guarded(local, None, door).await?;
    transport.add_transport(tcp.into());
    let option = rsipstack::transaction::endpoint::EndpointOption {
        callid_suffix: Some(format!("earshot.{}", local.ip())),
        ..Default::default()
    };
    let endpoint = EndpointBuilder::new()
        .with_option(option)
        .with_cancel_token(cancel.clone())
        .with_transport_layer(transport)
        .with_user_agent(user_agent)
        .build();
    let incoming = Incomings(endpoint.incoming_transactions()?);
    let inner = endpoint.inner.clone();
    let dialogs = Dialogs(Arc::new(DialogLayer::new(inner.clone())));
    let serving = cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = endpoint.serve() => {}
            () = serving.cancelled() => {}
        }
    });
    Ok(SipEndpoint { incoming, dialogs, inner, local, guard })
}

/// Whether the dialog a re-INVITE belongs to is confirmed, waiting up to 2 s
/// for it. rsipstack takes an INVITE on a dialog it has not confirmed yet for
/// the dialog's first INVITE and never answers it, and the ACK to our 2xx is
/// often a moment behind a re-INVITE sent right after it (sipp sends the two
/// a millisecond apart): the ACK is given that moment. Not confirmed by then:
/// answer `500` with `Retry-After` (RFC 3261 §14.2).
pub(crate) async fn confirmed(tx: &Transaction, dialogs: &DialogLayer) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match dialogs.match_dialog(tx) {
            Some(Dialog::Invite(dialog)) => match dialog.state() {
                DialogState::Confirmed(..) => return true,
                DialogState::Terminated(..) => return false,
                _ => {}
            },
            _ => return false,
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
