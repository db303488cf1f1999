//! An rsipstack endpoint on guarded transports: one UDP socket read through
//! the [`GuardedSocket`] and a TCP listener whose connections pass the
//! [`StreamDoor`], both on one address, and, when configured, a TLS
//! listener ([`TlsServer`], its connections behind the same door, its
//! certificate replaceable while it runs); transactions, retransmissions
//! and dialogs are rsipstack's, TLS is rustls's through it. Connections
//! this endpoint opens over TLS verify the server's certificate against
//! the trust anchors given ([`TlsTrust`]): never skipped. Also the one
//! dialog workaround every user of the stack needs (`confirmed`, which
//! [`Dialogs::serve`] applies).

use crate::dialog::{Dialogs, Incomings};
use crate::guard::{GuardStats, GuardedSocket, StreamDoor};
use rsipstack::EndpointBuilder;
use rsipstack::dialog::dialog::{Dialog, DialogState};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::{
    SipAddr, TcpListenerConnection, TlsConfig, TlsListenerConnection, TransportLayer, udp::UdpConnection,
};
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
    /// SIP over TLS, when it is served.
    pub tls: Option<TlsHandle>,
}

/// The TLS listener of a running endpoint: where it is, and its
/// certificate to replace.
#[derive(Clone)]
pub struct TlsHandle {
    /// Where it listens, as bound.
    pub local: SocketAddr,
    listener: TlsListenerConnection,
}

impl std::fmt::Debug for TlsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsHandle").field("local", &self.local).finish_non_exhaustive()
    }
}

/// SIP over TLS served: where, and the certificate chain and private key
/// (PEM) it shows.
#[derive(Clone)]
pub struct TlsServer {
    /// Where TLS listens (a port of its own; 5061 by convention).
    pub listen: SocketAddr,
    /// The certificate chain, PEM.
    pub cert_pem: Vec<u8>,
    /// The private key (PKCS#8 or PKCS#1), PEM.
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsServer {
    // Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer").field("listen", &self.listen).finish_non_exhaustive()
    }
}

/// How connections this endpoint opens over TLS check the server.
#[derive(Clone, Debug)]
pub struct TlsTrust {
    /// The trust anchors (PEM certificates): a CA the admin named, or the
    /// system's ([`TlsTrust::system`]).
    pub roots_pem: Vec<u8>,
    /// The name the server's certificate must carry (and SNI), when not
    /// the host of the address dialled.
    pub server_name: Option<String>,
}

impl TlsTrust {
    /// The system's trust anchors (its CA bundle, through
    /// `rustls-native-certs`).
    ///
    /// # Errors
    /// When the system has none that load.
    pub fn system(server_name: Option<String>) -> Result<Self, crate::dialog::Error> {
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() {
            let why = found.errors.first().map_or_else(|| "none found".to_owned(), ToString::to_string);
            return Err(crate::dialog::Error::other(format!(
                "the system's trust anchors do not load: {why}"
            )));
        }
        let mut roots_pem = Vec::new();
        for cert in &found.certs {
            roots_pem.extend_from_slice(pem("CERTIFICATE", cert).as_bytes());
        }
        Ok(Self { roots_pem, server_name })
    }

    /// Anchors from a PEM file an admin named (a company CA).
    ///
    /// # Errors
    /// When the file cannot be read or holds no certificate.
    pub fn from_file(
        path: &std::path::Path,
        server_name: Option<String>,
    ) -> Result<Self, crate::dialog::Error> {
        let roots_pem = std::fs::read(path).map_err(|e| {
            crate::dialog::Error::other(format!("cannot read the CA file {}: {e}", path.display()))
        })?;
        if !String::from_utf8_lossy(&roots_pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(crate::dialog::Error::other(format!("{} holds no PEM certificate", path.display())));
        }
        Ok(Self { roots_pem, server_name })
    }
}

/// DER as PEM.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Checks that `cert_pem` and `key_pem` make a certificate rustls serves:
/// a clear error at start-up (or at a reload) rather than a failed
/// handshake later.
///
/// # Errors
/// What is wrong with them.
pub fn check_certificate(cert_pem: &[u8], key_pem: &[u8]) -> Result<(), crate::dialog::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rsipstack::transport::tls::ReloadableCertResolver::new(cert_pem, key_pem, provider)
        .map(drop)
        .map_err(|e| crate::dialog::Error::other(format!("the TLS certificate or key does not load: {e}")))
}

/// Makes ring rustls's process-wide provider, once: rustls cannot pick one
/// itself when two are linked.
fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl TlsHandle {
    /// Replaces the certificate (a renewed one) for the handshakes that
    /// follow; connections up keep theirs.
    ///
    /// # Errors
    /// A certificate or key that does not load (the old one stays).
    pub async fn reload_certificate(
        &self,
        cert_pem: Vec<u8>,
        key_pem: Vec<u8>,
    ) -> Result<(), crate::dialog::Error> {
        // The resolver parses them and keeps the old pair when they fail.
        self.listener.reload_tls_config(cert_pem, key_pem).await.map_err(|e| {
            crate::dialog::Error::other(format!("the TLS certificate or key does not load: {e}"))
        })
    }
}

/// What an endpoint speaks besides UDP and TCP.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// Serve SIP over TLS.
    pub server: Option<TlsServer>,
    /// Open TLS connections checking servers against these anchors (none:
    /// this endpoint opens no TLS connection; one it tries fails).
    pub trust: Option<TlsTrust>,
}

/// Listens on `listen` (UDP and TCP, port 0 for any), introducing itself
/// as `user_agent`; stops when `cancel` is cancelled.
pub async fn listen(
    listen: SocketAddr,
    user_agent: &str,
    cancel: &CancellationToken,
) -> Result<SipEndpoint, crate::dialog::Error> {
    listen_with(listen, TlsOptions::default(), None, user_agent, cancel).await
}

/// [`listen`], with TLS as `tls` says: a listener of its own (its port 0
/// takes a free one), and the anchors connections we open check servers
/// against; with `shield`, every request on every transport passes it.
///
/// # Errors
/// A socket that cannot be bound, or a certificate that does not load.
pub async fn listen_with(
    listen: SocketAddr,
    tls: TlsOptions,
    shield: Option<Arc<crate::shield::SharedShield>>,
    user_agent: &str,
    cancel: &CancellationToken,
) -> Result<SipEndpoint, crate::dialog::Error> {
    let transport = TransportLayer::new(cancel.clone());
    let guard = Arc::new(GuardStats::default());
    let socket = GuardedSocket::bind(listen, Arc::clone(&guard), shield.clone()).await?;
    let udp = UdpConnection::from_socket(Arc::new(socket), None, Some(cancel.child_token())).await?;
    let local = udp.get_addr().get_socketaddr()?;
    transport.add_transport(udp.into());
    let door = Arc::new(StreamDoor { stats: Arc::clone(&guard), shield });
    let tcp = TcpListenerConnection::new_guarded(local, None, door.clone()).await?;
    transport.add_transport(tcp.into());
    let mut tls_handle = None;
    if tls.server.is_some() || tls.trust.is_some() {
        install_crypto();
    }
    if let Some(server) = tls.server {
        check_certificate(&server.cert_pem, &server.key_pem)?;
        let mut at = server.listen;
        if at.port() == 0 {
            // rsipstack binds when it starts serving: find a free port now.
            at = std::net::TcpListener::bind(at)?.local_addr()?;
        }
        // Bound here first, so a port in use is an error at start-up.
        drop(std::net::TcpListener::bind(at)?);
        let config =
            TlsConfig { cert: Some(server.cert_pem), key: Some(server.key_pem), ..TlsConfig::default() };
        let listener = TlsListenerConnection::new_guarded(at, None, config, door).await?;
        transport.add_transport(listener.clone().into());
        tls_handle = Some(TlsHandle { local: at, listener });
    }
    if let Some(trust) = tls.trust {
        transport.set_tls_config(TlsConfig {
            ca_certs: Some(trust.roots_pem),
            sni_hostname: trust.server_name,
            ..TlsConfig::default()
        });
    }
    let option = rsipstack::transaction::endpoint::EndpointOption {
        callid_suffix: Some(format!("earshot.{}", local.ip())),
        ..Default::default()
    };
    let endpoint = EndpointBuilder::new()
        .with_option(option)
        .with_cancel_token(cancel.clone())
        .with_transport_layer(transport)
        .with_user_agent(user_agent)
        .with_inspector(Box::new(SourceStamp))
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
    Ok(SipEndpoint { incoming, dialogs, inner, local, guard, tls: tls_handle })
}

/// The header each request we receive is stamped with: the address it came
/// from as the transport saw it (the UDP datagram's source, the TCP or TLS
/// connection's peer). A copy the sender wrote is removed first, so the
/// stamp is ours alone, unlike a Via's `received`, which a client can
/// forge. Read with [`crate::dialog::Incoming::source`].
pub const SOURCE_HEADER: &str = "X-Earshot-Source";

/// Stamps requests with [`SOURCE_HEADER`] as they arrive.
struct SourceStamp;

impl rsipstack::transaction::endpoint::MessageInspector for SourceStamp {
    fn before_send(
        &self,
        message: rsipstack::sip::SipMessage,
        _: Option<&SipAddr>,
    ) -> rsipstack::sip::SipMessage {
        message
    }

    fn after_received(
        &self,
        message: rsipstack::sip::SipMessage,
        from: Option<&SipAddr>,
    ) -> rsipstack::sip::SipMessage {
        let rsipstack::sip::SipMessage::Request(mut request) = message else { return message };
        request.headers.retain(|header| !header.name().eq_ignore_ascii_case(SOURCE_HEADER));
        if let Some(from) = from.and_then(|from| from.get_socketaddr().ok()) {
            request.headers.push(rsipstack::sip::Header::Other(SOURCE_HEADER.into(), from.to_string()));
        }
        rsipstack::sip::SipMessage::Request(request)
    }
}

/// The local address of the connection this endpoint would send to
/// `target` on (dialling it over TCP or TLS if none is open yet): for a
/// Contact that brings requests back over the same connection.
///
/// # Errors
/// When no connection can be made (for TLS: the server's certificate
/// refused, among others).
pub(crate) async fn connection_to(
    inner: &EndpointInnerRef,
    target: &SipAddr,
) -> Result<SocketAddr, crate::dialog::Error> {
    let (connection, _) = inner.transport_layer.lookup(target, None).await?;
    Ok(connection.get_addr().get_socketaddr()?)
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
