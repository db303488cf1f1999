//! SIP in `earshotd`: a registrar and a back-to-back user agent whose media
//! relay records (SPEC §6, §9).
//!
//! SIP itself (parsing, transactions, retransmissions, dialogs, UDP and TCP)
//! is `earshot-sip`'s, the one crate that owns the stack (`rsipstack`): the
//! endpoint on guarded transports, digest checks, requests and dialogs
//! (with the re-INVITE wait) come from there; only this module and its
//! children touch them. [`media`] and `earshot-telephony` know nothing of SIP.
//!
//! Who is who: a device registers with digest authentication, user name = the
//! Earshot user's e-mail, realm [`REALM`], and the user's SIP password (kept
//! as HA1 only). Its address of record is the user's extension. Calls from
//! registered users are challenged the same way (407). Calls from the trunk
//! (its IP address, as configured) to a company number run that number's
//! call flow.

mod call;
mod journal;
pub mod media;
mod prompts;

use crate::AppState;
use crate::db::{Query, StoreError};
use crate::snapshot::CompanySnapshot;
use earshot_policy::{CompanyId, NumberId, User, UserId};
use earshot_sip::dialog::{Dialogs, Incoming, Incomings, retry_after};
use earshot_sip::digest;
use earshot_sip::guard;
use earshot_sip::message::prelude::{HeadersExt, ToTypedHeader};
use earshot_sip::message::{Header, Method, StatusCode, Uri};
use earshot_sip::shield::{Gate, SharedShield, ShieldConfig};
use sqlx::Row as _;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use journal::recover;

/// The digest realm of every SIP password.
pub const REALM: &str = "earshot";

/// The HA1 stored for a user whose digest user name is `email`.
#[must_use]
pub fn sip_ha1(email: &str, password: &str) -> String {
    digest::ha1(email, REALM, password)
}

/// Longest and shortest registration we grant, in seconds.
const MAX_EXPIRES: u64 = 3_600;
const MIN_EXPIRES: u64 = 30;

/// How `earshotd` speaks SIP.
#[derive(Clone, Debug)]
pub struct SipConfig {
    /// Where to listen, UDP and TCP.
    pub listen: SocketAddr,
    /// Ports for RTP.
    pub rtp_ports: RangeInclusive<u16>,
    /// The carrier, for calls to and from outside numbers: `sip:host:port`.
    pub trunk: Option<String>,
    /// The SIP address devices are told to register at, when it is not
    /// `listen` (an edge proxy in front of several instances).
    pub public: Option<SocketAddr>,
    /// SIP over TLS, with SRTP on the calls' legs that come or go over it.
    pub tls: Option<SipTls>,
    /// The SIP proxies in front (Kamailio): never rate-limited or blocked
    /// themselves, and the client behind them is the address they name in
    /// `X-Earshot-Client`.
    pub trusted_proxies: Vec<IpAddr>,
}

/// SIP over TLS: where, and the certificate's files (PEM). The files are
/// read again when they change (a renewed certificate), without a restart.
#[derive(Clone, Debug)]
pub struct SipTls {
    /// Where TLS listens (5061 by convention).
    pub listen: SocketAddr,
    /// The certificate chain.
    pub cert: std::path::PathBuf,
    /// Its private key.
    pub key: std::path::PathBuf,
}

/// How often the certificate's files are looked at for a change.
const CERTIFICATE_CHECK: Duration = Duration::from_secs(5);

/// The certificate and key files' contents.
fn read_certificate(tls: &SipTls) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read the SIP TLS {what} {}: {e}", path.display()))
    };
    Ok((read(&tls.cert, "certificate")?, read(&tls.key, "key")?))
}

/// When the certificate's files last changed (their modification times).
fn certificate_stamp(tls: &SipTls) -> Option<(std::time::SystemTime, std::time::SystemTime)> {
    let modified = |path: &std::path::Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    Some((modified(&tls.cert)?, modified(&tls.key)?))
}

/// Serves the certificate's files anew whenever they change, until `cancel`.
async fn watch_certificate(tls: SipTls, handle: earshot_sip::endpoint::TlsHandle, cancel: CancellationToken) {
    let mut seen = certificate_stamp(&tls);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(CERTIFICATE_CHECK) => {}
        }
        let now = certificate_stamp(&tls);
        if now.is_none() || now == seen {
            continue;
        }
        seen = now;
        let loaded = match read_certificate(&tls) {
            Ok((cert, key)) => handle.reload_certificate(cert, key).await.map_err(anyhow::Error::from),
            Err(error) => Err(error),
        };
        match loaded {
            Ok(()) => {
                tracing::info!(cert = %tls.cert.display(), "the SIP TLS certificate changed on disk: now serving the new one");
            }
            Err(error) => {
                tracing::error!(%error, "the SIP TLS certificate changed on disk but does not load: still serving the old one");
            }
        }
    }
}

/// One registered device: where it is, and the way there.
#[derive(Clone, Debug)]
pub(crate) struct Device {
    /// Its Contact.
    pub contact: Uri,
    /// The Path it registered through (RFC 3327), first hop first: the
    /// Route of a call to it.
    pub route: Vec<String>,
    /// The TLS connection it registered over (its source address), and
    /// the instance holding it: calls from that instance ride it.
    pub flow: Option<(String, SocketAddr)>,
}

/// Who is registered where: the registrar's bindings, in the database
/// (table `registrations`), so that every instance on one database reaches
/// every device, and the API revokes a device's registration at once.
#[derive(Debug, Default)]
pub struct Registrations {
    /// Where SIP listens, once it does (told to devices).
    address: std::sync::OnceLock<SocketAddr>,
    /// Where SIP over TLS listens, when it does.
    tls_address: std::sync::OnceLock<SocketAddr>,
}

impl Registrations {
    /// Where SIP listens, if it does.
    #[must_use]
    pub fn address(&self) -> Option<SocketAddr> {
        self.address.get().copied()
    }

    /// Where SIP over TLS listens, if it does.
    #[must_use]
    pub fn tls_address(&self) -> Option<SocketAddr> {
        self.tls_address.get().copied()
    }

    /// Keeps of `user`'s device registrations only those made with one of
    /// `devices` (the credentials still valid); all of them go when
    /// `enabled` is false. Registrations with the SIP password stay while
    /// the user is enabled.
    ///
    /// # Errors
    /// The database failed.
    pub async fn retain(
        &self,
        db: &crate::db::Db,
        user: UserId,
        enabled: bool,
        devices: &[String],
    ) -> Result<(), StoreError> {
        let mut query = Query::new("DELETE FROM registrations WHERE user_id = ");
        query.bind(user.0);
        if enabled {
            query.push(" AND device IS NOT NULL");
            if !devices.is_empty() {
                query.push(" AND device NOT IN ").bind_list(devices.iter().cloned());
            }
        }
        let dropped = db.execute(db.pool(), &query).await?;
        if dropped > 0 {
            tracing::info!(user = user.0, dropped, "registrations revoked");
        }
        Ok(())
    }

    /// The registered devices of `user`, now.
    async fn devices(&self, db: &crate::db::Db, user: UserId) -> Result<Vec<Device>, StoreError> {
        let mut query =
            Query::new("SELECT contact, path, instance, flow FROM registrations WHERE user_id = ");
        query.bind(user.0).push(" AND expires_at > ").bind(crate::now_millis()).push(" ORDER BY contact");
        let mut devices = Vec::new();
        for row in db.fetch_all(db.pool(), &query).await? {
            let contact: String = row.try_get("contact")?;
            let Ok(contact) = Uri::try_from(contact.as_str()) else {
                tracing::warn!(%contact, "a stored registration's contact does not parse; skipped");
                continue;
            };
            let route = serde_json::from_str(&row.try_get::<String, _>("path")?)?;
            let flow = row.try_get::<Option<String>, _>("flow")?.and_then(|flow| flow.parse().ok());
            let flow = flow
                .map(|flow| Ok::<_, StoreError>((row.try_get::<String, _>("instance")?, flow)))
                .transpose()?;
            devices.push(Device { contact, route, flow });
        }
        Ok(devices)
    }
}

/// Drops at once every registration of `user` whose device credential is
/// gone (its session ended), or all of them when the user is disabled or
/// deleted. Called after anything that ends sessions.
///
/// # Errors
/// When the store cannot be read.
pub async fn revalidate(state: &AppState, user: UserId) -> Result<(), StoreError> {
    let db = &state.db;
    let mut query = Query::new("SELECT disabled FROM users WHERE id = ");
    query.bind(user.0);
    let enabled = match db.fetch_optional(db.pool(), &query).await? {
        Some(row) => row.try_get::<i64, _>("disabled")? == 0,
        None => false,
    };
    let mut query = Query::new(
        "SELECT d.sip_user FROM device_credentials d JOIN sessions s ON s.token_hash = d.token_hash WHERE d.user_id = ",
    );
    query.bind(user.0).push(" AND s.expires_at > ").bind(crate::now_millis());
    let devices = db
        .fetch_all(db.pool(), &query)
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>("sip_user"))
        .collect::<Result<Vec<_>, _>>()?;
    state.registrations.retain(db, user, enabled, &devices).await
}

/// Counters for `/metrics` and the tests.
#[derive(Debug, Default)]
pub struct SipStats {
    /// Calls answered and bridged.
    pub calls_bridged: std::sync::atomic::AtomicU64,
    /// Calls written to the history.
    pub calls_written: std::sync::atomic::AtomicU64,
    /// Media counters.
    pub media: Arc<media::MediaStats>,
    /// Malformed SIP turned away.
    pub guard: Arc<guard::GuardStats>,
    /// Scanners, floods and guessing turned away.
    pub shield: Arc<SharedShield>,
    /// The dialogs held (a gauge: calls' legs up or being set up).
    pub dialogs: Option<Dialogs>,
}

/// The running SIP service.
pub struct Sip {
    state: AppState,
    dialogs: Dialogs,
    /// Our address as others reach it.
    local: SocketAddr,
    /// Where SIP over TLS listens, when it does.
    tls_local: Option<SocketAddr>,
    trunk: Option<(Uri, IpAddr)>,
    /// The SIP proxies in front, which name the client in `X-Earshot-Client`.
    proxies: Vec<IpAddr>,
    nonces: digest::Nonces,
    ports: media::PortPool,
    relays: media::Relays,
    /// Counters.
    pub stats: Arc<SipStats>,
    cancel: CancellationToken,
    round_robin: Mutex<HashMap<earshot_policy::GroupId, usize>>,
}

/// Handle on a running SIP service; dropping it does not stop it, [`SipHandle::stop`] does.
pub struct SipHandle {
    /// The service.
    pub sip: Arc<Sip>,
}

impl SipHandle {
    /// Stops listening.
    pub fn stop(&self) {
        self.sip.cancel.cancel();
    }

    /// Ends the legs a crash left up (see [`recover`]): a BYE on each, in
    /// the background; each outcome is logged, and a leg whose BYE got its
    /// answer (or gave up) is not kept for the next start.
    pub fn end_legs(&self, legs: Vec<(std::path::PathBuf, earshot_sip::dialog::LegRecord)>) {
        for (file, leg) in legs {
            let dialogs = self.sip.dialogs.clone();
            tokio::spawn(async move {
                let (call_id, target) = (&leg.call_id, &leg.remote_target);
                if let Err(error) = dialogs.end_recorded(&leg).await {
                    tracing::warn!(%error, %call_id, %target, "could not end a leg a crash left up");
                } else {
                    tracing::info!(%call_id, %target, "ended a leg a crash left up");
                }
                journal::ended(&file);
            });
        }
    }
}

/// Starts SIP on `config.listen` (UDP and TCP).
pub async fn start(state: AppState, config: SipConfig) -> anyhow::Result<SipHandle> {
    let cancel = CancellationToken::new();
    let server = match &config.tls {
        Some(tls) => {
            let (cert_pem, key_pem) = read_certificate(tls)?;
            Some(earshot_sip::endpoint::TlsServer { listen: tls.listen, cert_pem, key_pem })
        }
        None => None,
    };
    let trunk = match &config.trunk {
        Some(uri) => {
            let parsed: Uri = uri.as_str().try_into().map_err(|e| anyhow::anyhow!("trunk URI {uri}: {e}"))?;
            let host = parsed.host_with_port.host.to_string();
            let ip = tokio::net::lookup_host((host.as_str(), 5060))
                .await?
                .next()
                .ok_or_else(|| anyhow::anyhow!("trunk host {host} does not resolve"))?
                .ip();
            Some((parsed, ip))
        }
        None => None,
    };
    // The carrier and the proxies in front are never limited or blocked.
    let trusted = trunk.iter().map(|(_, ip)| *ip).chain(config.trusted_proxies.iter().copied()).collect();
    let shield = Arc::new(SharedShield::new(ShieldConfig { trusted, ..ShieldConfig::default() }));
    let options = earshot_sip::endpoint::TlsOptions { server, trust: None };
    let earshot_sip::endpoint::SipEndpoint { incoming, dialogs, local, guard, tls, .. } =
        earshot_sip::endpoint::listen_with(
            config.listen,
            options,
            Some(Arc::clone(&shield)),
            concat!("earshotd/", env!("CARGO_PKG_VERSION")),
            &cancel,
        )
        .await?;
    let _ = state.registrations.address.set(config.public.unwrap_or(local));
    let tls_local = tls.as_ref().map(|handle| handle.local);
    if let (Some(handle), Some(files)) = (tls, config.tls.clone()) {
        let _ = state.registrations.tls_address.set(handle.local);
        tracing::info!(address = %handle.local, "serving SIP over TLS (calls' media on it is SRTP)");
        tokio::spawn(watch_certificate(files, handle, cancel.clone()));
    }
    let stats = Arc::new(SipStats { guard, shield, dialogs: Some(dialogs.clone()), ..SipStats::default() });
    let _ = state.metrics.sip.set(Arc::clone(&stats));
    let sip = Arc::new(Sip {
        state,
        ports: media::PortPool::new(config.rtp_ports.clone()),
        relays: media::Relays::start()?,
        dialogs,
        local,
        tls_local,
        trunk,
        proxies: config.trusted_proxies.clone(),
        nonces: digest::Nonces::default(),
        stats: Arc::clone(&stats),
        cancel: cancel.clone(),
        round_robin: Mutex::default(),
    });
    let serving = Arc::clone(&sip);
    tokio::spawn(async move { serving.serve(incoming).await });
    tracing::info!(address = %local, "serving SIP (UDP and TCP)");
    Ok(SipHandle { sip })
}

/// A request's caller, authenticated.
struct Authed {
    user: User,
    snapshot: Arc<CompanySnapshot>,
    /// The company number the user's outbound calls show, when chosen.
    caller_id: Option<NumberId>,
    /// The device credential used, and when its session ends (ms since
    /// the epoch); `None` for the user's SIP password.
    device: Option<(String, i64)>,
}

impl Sip {
    /// Where we listen.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn serve(self: Arc<Self>, mut incoming: Incomings) {
        while let Some(tx) = incoming.recv().await {
            let sip = Arc::clone(&self);
            tokio::spawn(async move {
                if let Err(error) = sip.on_transaction(tx).await {
                    tracing::debug!(%error, "SIP transaction ended with an error");
                }
            });
        }
    }

    async fn on_transaction(self: Arc<Self>, mut tx: Incoming) -> Result<(), earshot_sip::dialog::Error> {
        if tx.in_dialog() {
            self.dialogs.serve(tx).await;
            return Ok(());
        }
        match tx.request().method {
            Method::Register => self.on_register(tx).await,
            Method::Invite => {
                call::on_invite(self, tx).await;
                Ok(())
            }
            Method::Options => {
                let allow = Header::Allow("INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER".into());
                tx.reply_with(StatusCode::OK, vec![allow], None).await
            }
            Method::Ack => Ok(()),
            Method::Bye | Method::Cancel => tx.reply(StatusCode::CallTransactionDoesNotExist).await,
            _ => tx.reply(StatusCode::MethodNotAllowed).await,
        }
    }

    /// Checks the request's digest answer; on failure replies (401/407
    /// challenge, 403) and returns `None`.
    async fn authenticate(
        &self,
        tx: &mut Incoming,
        proxy: bool,
    ) -> Result<Option<Authed>, earshot_sip::dialog::Error> {
        let (ask, answer_header) = if proxy {
            (StatusCode::ProxyAuthenticationRequired, "Proxy-Authorization")
        } else {
            (StatusCode::Unauthorized, "Authorization")
        };
        // A request whose source is unknown (none should be) is still
        // counted and gated, as from nowhere in particular.
        let source = client_source(tx, &self.proxies).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let answer = tx.request().header_value(answer_header).and_then(|v| digest::Credentials::parse(&v));
        let Some(credentials) =
            answer.filter(|c| c.realm() == REALM && self.nonces.is_fresh(c.nonce(), source))
        else {
            let challenge = digest::challenge(REALM, &self.nonces.issue(source));
            let header = if proxy {
                Header::ProxyAuthenticate(challenge.into())
            } else {
                Header::WwwAuthenticate(challenge.into())
            };
            tx.reply_with(ask, vec![header], None).await?;
            return Ok(None);
        };
        // The same 403 whether the account is unknown, the password wrong,
        // or the shield refuses to check: nothing tells a guesser which.
        if self.stats.shield.gate(&credentials.username, source) == Gate::Refuse {
            tx.reply(StatusCode::Forbidden).await?;
            return Ok(None);
        }
        let found = match self.credentials_of(&credentials.username).await {
            Ok(found) => found,
            Err(error) => {
                // Not the caller's fault: say so, and when to try again.
                tracing::error!(%error, user = %credentials.username, "the store failed while checking a SIP digest");
                tx.reply_with(StatusCode::ServerInternalError, vec![retry_after(5)], None).await?;
                return Ok(None);
            }
        };
        let method = tx.request().method.to_string();
        match found {
            Some((authed, ha1)) if credentials.verify(&ha1, &method) => {
                self.stats.shield.succeeded(&credentials.username, source);
                Ok(Some(authed))
            }
            _ => {
                tracing::debug!(user = %credentials.username, %source, "SIP digest refused");
                self.stats.shield.failed(&credentials.username, source);
                tx.reply(StatusCode::Forbidden).await?;
                Ok(None)
            }
        }
    }

    /// The enabled user with this digest user name (their e-mail, with the
    /// SIP password; or a device credential of a live session), and the
    /// HA1 to check against; `None` when there is none.
    async fn credentials_of(&self, username: &str) -> Result<Option<(Authed, String)>, StoreError> {
        let db = &self.state.db;
        let mut query = Query::new(
            "SELECT id, company_id, sip_ha1, disabled, caller_number_id FROM users WHERE email = ",
        );
        query.bind(username.to_ascii_lowercase());
        let mut device = None;
        let row = match db.fetch_optional(db.pool(), &query).await? {
            Some(row) => row,
            None => {
                let mut query = Query::new(
                    "SELECT u.id, u.company_id, d.ha1 AS sip_ha1, u.disabled, u.caller_number_id, s.expires_at \
                     FROM device_credentials d JOIN sessions s ON s.token_hash = d.token_hash \
                     JOIN users u ON u.id = d.user_id WHERE d.sip_user = ",
                );
                query.bind(username.to_owned());
                let Some(row) = db.fetch_optional(db.pool(), &query).await? else { return Ok(None) };
                let expires_at: i64 = row.try_get("expires_at")?;
                if expires_at <= crate::now_millis() {
                    return Ok(None);
                }
                device = Some((username.to_owned(), expires_at));
                row
            }
        };
        if row.try_get::<i64, _>("disabled")? != 0 {
            return Ok(None);
        }
        let Some(ha1) = row.try_get::<Option<String>, _>("sip_ha1")? else { return Ok(None) };
        let company = CompanyId(row.try_get("company_id")?);
        let snapshot = self.state.snapshots.get(db, company).await?;
        let Some(user) = snapshot.company.user(UserId(row.try_get("id")?)).cloned() else { return Ok(None) };
        let caller_id = row.try_get::<Option<i64>, _>("caller_number_id")?.map(NumberId);
        Ok(Some((Authed { user, snapshot, caller_id, device }, ha1)))
    }

    async fn on_register(&self, mut tx: Incoming) -> Result<(), earshot_sip::dialog::Error> {
        let Some(authed) = self.authenticate(&mut tx, false).await? else { return Ok(()) };
        let aor = tx.request().to_header()?.uri()?.auth.map(|a| a.user).unwrap_or_default();
        let own = authed.user.extension.as_deref() == Some(aor.as_str()) || authed.user.email == aor;
        if !own {
            tracing::info!(user = %authed.user.email, %aor, "REGISTER for an address that is not the user's");
            return tx.reply(StatusCode::Forbidden).await;
        }
        let expires_header = tx.request().expires_header().and_then(|e| e.value().trim().parse::<u64>().ok());
        let contacts: Vec<(String, Uri, Option<u64>)> = tx
            .request()
            .headers
            .iter()
            .filter_map(|h| match h {
                Header::Contact(c) => Some(c.value().to_string()),
                _ => None,
            })
            .flat_map(|value| split_contacts(&value))
            .filter_map(|raw| {
                if raw.trim() == "*" {
                    return Some((raw, Uri::default(), Some(0)));
                }
                let typed = earshot_sip::message::headers::Contact::new(raw.clone()).typed().ok()?;
                let expires = raw_param(&raw, "expires").and_then(|v| v.parse().ok());
                Some((raw, typed.uri, expires))
            })
            .collect();
        // The proxies it came through (RFC 3327), first hop first: calls to it go back that way.
        let path: Vec<String> = tx
            .request()
            .headers
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case("Path"))
            .flat_map(|h| split_contacts(h.value()))
            .collect();
        // Over TLS, calls come back on the connection it registered over.
        let flow = tx.tls_source();
        let headers = match self.bind(&authed, &contacts, expires_header, &path, flow).await {
            Ok(headers) => headers,
            Err(error) => {
                tracing::error!(%error, user = %authed.user.email, "the store failed while registering");
                return tx.reply_with(StatusCode::ServerInternalError, vec![retry_after(5)], None).await;
            }
        };
        tracing::info!(user = %authed.user.email, devices = headers.len(), "registered");
        tx.reply_with(StatusCode::OK, headers, None).await
    }

    /// Applies a REGISTER's contacts, in one transaction; the Contact
    /// headers of the answer. A device credential's registration ends with
    /// its session at the latest.
    async fn bind(
        &self,
        authed: &Authed,
        contacts: &[(String, Uri, Option<u64>)],
        expires_header: Option<u64>,
        path: &[String],
        flow: Option<SocketAddr>,
    ) -> Result<Vec<Header>, StoreError> {
        let now = crate::now_millis();
        let session_left = authed
            .device
            .as_ref()
            .map(|(_, until)| u64::try_from((until - now) / 1000).unwrap_or(0).max(MIN_EXPIRES));
        let device = authed.device.as_ref().map(|(name, _)| name.clone());
        let user = authed.user.id.0;
        let db = &self.state.db;
        let mut tx = db.pool().begin().await?;
        let mut query = Query::new("DELETE FROM registrations WHERE user_id = ");
        query.bind(user).push(" AND expires_at <= ").bind(now);
        db.execute(&mut *tx, &query).await?;
        for (raw, uri, expires) in contacts {
            let expires = expires.or(expires_header).unwrap_or(MAX_EXPIRES);
            let mut query = Query::new("DELETE FROM registrations WHERE user_id = ");
            query.bind(user);
            if raw.trim() != "*" {
                query.push(" AND contact = ").bind(uri.to_string());
            }
            db.execute(&mut *tx, &query).await?;
            if raw.trim() == "*" || expires == 0 {
                continue;
            }
            let expires = expires.clamp(MIN_EXPIRES, MAX_EXPIRES).min(session_left.unwrap_or(MAX_EXPIRES));
            let mut query = Query::new(
                "INSERT INTO registrations (user_id, contact, path, instance, device, flow, expires_at) VALUES (",
            );
            query
                .bind(user)
                .push(", ")
                .bind(uri.to_string())
                .push(", ")
                .bind(serde_json::to_string(path)?)
                .push(", ")
                .bind(self.local.to_string())
                .push(", ")
                .bind(device.clone())
                .push(", ")
                .bind(flow.map(|flow| flow.to_string()))
                .push(", ")
                .bind(now + i64::try_from(expires).unwrap_or(0) * 1_000)
                .push(")");
            db.execute(&mut *tx, &query).await?;
        }
        let mut query = Query::new("SELECT contact, expires_at FROM registrations WHERE user_id = ");
        query.bind(user).push(" ORDER BY contact");
        let rows = db.fetch_all(&mut *tx, &query).await?;
        tx.commit().await?;
        let mut headers = Vec::with_capacity(rows.len());
        for row in rows {
            let left = (row.try_get::<i64, _>("expires_at")? - now) / 1_000;
            let contact: String = row.try_get("contact")?;
            headers.push(Header::Contact(format!("<{contact}>;expires={left}").into()));
        }
        Ok(headers)
    }

    /// The registered devices of `user`, now; none when the store fails (logged).
    async fn devices(&self, user: UserId) -> Vec<Device> {
        match self.state.registrations.devices(&self.state.db, user).await {
            Ok(devices) => devices,
            Err(error) => {
                tracing::error!(%error, user = user.0, "the store failed while looking up a user's devices");
                Vec::new()
            }
        }
    }

    /// The company number `e164` and its company, if it is one.
    async fn number(
        &self,
        e164: &str,
    ) -> Result<Option<(Arc<CompanySnapshot>, earshot_policy::Number)>, StoreError> {
        let db = &self.state.db;
        let mut query = Query::new("SELECT company_id FROM numbers WHERE e164 = ");
        query.bind(e164.to_owned());
        let Some(row) = db.fetch_optional(db.pool(), &query).await? else { return Ok(None) };
        let company = CompanyId(row.try_get("company_id")?);
        let snapshot = self.state.snapshots.get(db, company).await?;
        let number = snapshot.company.numbers().iter().find(|n| n.e164 == e164).cloned();
        Ok(number.map(|number| (snapshot, number)))
    }

    /// Our own contact URI, with `user` as its user part.
    fn contact(&self, user: &str) -> Uri {
        format!("sip:{user}@{}", self.local).as_str().try_into().unwrap_or_default()
    }

    /// Our Contact on a leg over TLS (requests in the dialog then come
    /// over TLS too); the plain one when TLS is off.
    fn tls_contact(&self, user: &str) -> Uri {
        match self.tls_local {
            Some(tls) => format!("sip:{user}@{tls};transport=tls").as_str().try_into().unwrap_or_default(),
            None => self.contact(user),
        }
    }
}

/// The header a trusted proxy in front names the client in (Kamailio sets
/// it from `$si`, replacing any copy the client sent; see
/// `deploy/kamailio/kamailio.cfg`).
pub const CLIENT_HEADER: &str = "X-Earshot-Client";

/// The address a request's client sent it from: where the transport got it
/// from (never a Via, which the client writes); when that is a trusted
/// proxy in front, the client it names in [`CLIENT_HEADER`], else the proxy.
fn client_source(tx: &Incoming, proxies: &[IpAddr]) -> Option<IpAddr> {
    let source = tx.source()?.ip();
    if !proxies.contains(&source) {
        return Some(source);
    }
    let named = tx
        .request()
        .headers
        .iter()
        .find(|header| header.name().eq_ignore_ascii_case(CLIENT_HEADER))
        .and_then(|header| header.value().trim().trim_matches(['[', ']']).parse().ok());
    Some(named.unwrap_or(source))
}

/// Splits a Contact header value at the commas between contacts (not inside `<…>` or quotes).
fn split_contacts(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0_i32, false, 0);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(value[start..i].trim().to_owned());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim().to_owned());
    out.retain(|c| !c.is_empty());
    out
}

/// A `;name=value` parameter of a header value, outside the `<…>`.
fn raw_param(value: &str, name: &str) -> Option<String> {
    let params = value.rsplit_once('>').map_or(value, |(_, rest)| rest);
    params.split(';').find_map(|p| {
        let (key, val) = p.split_once('=')?;
        key.trim().eq_ignore_ascii_case(name).then(|| val.trim().to_owned())
    })
}
