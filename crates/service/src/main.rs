//! `earshotd`: Earshot's call and recording service.

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use clap::{Parser, Subcommand};
use earshot_service::company::{NewCompany, create_company};
use earshot_service::config::ConfigFile;
use earshot_service::{AppState, app};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "earshotd", version, about = "Earshot's call and recording service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a company and its first admin.
    Init {
        /// Where the embedded database and the recordings live.
        #[arg(long, env = "EARSHOT_DATA_DIR")]
        data_dir: PathBuf,
        /// The company's name.
        #[arg(long)]
        company: String,
        /// The first admin's e-mail address (their log-in).
        #[arg(long)]
        admin_email: String,
        /// The first admin's password.
        #[arg(long, env = "EARSHOT_ADMIN_PASSWORD")]
        admin_password: String,
        /// PostgreSQL instead of the embedded SQLite: postgres://user:password@host/db.
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
    },
    /// Seed a demo company on an empty data directory (once), print its log-ins, then serve.
    Demo {
        /// Where the embedded database and the recordings live.
        #[arg(long, env = "EARSHOT_DATA_DIR")]
        data_dir: PathBuf,
        /// Address of the HTTP API.
        #[arg(long, env = "EARSHOT_HTTP", default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        /// PostgreSQL instead of the embedded SQLite: postgres://user:password@host/db.
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
        /// A TOML file with more settings (`[recordings]`, `sip_public`…).
        #[arg(long, env = "EARSHOT_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        sip: SipArgs,
    },
    /// After a master key rotation (`[recordings] key_file` the new key, the
    /// old ones in `older_key_files`): re-wrap every sealed recording's key
    /// under the new one. The audio is not rewritten (in S3, each object is
    /// written again, as objects cannot be patched). Then the old keys can go.
    Rewrap {
        /// The data directory (its spool, and its database unless --database-url).
        #[arg(long, env = "EARSHOT_DATA_DIR")]
        data_dir: PathBuf,
        /// PostgreSQL instead of the embedded SQLite: postgres://user:password@host/db.
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
        /// The config file whose `[recordings]` names the keys (and the store).
        #[arg(long, env = "EARSHOT_CONFIG")]
        config: PathBuf,
    },
    /// A demo customer calls one of the company's numbers (through `earshotd
    /// demo`'s SIP, from its carrier's address), talks, and hangs up.
    DemoCall {
        /// The company number to call, e.g. +442071230001 (Sales direct, which rings Ada).
        number: String,
        /// The customer's number.
        #[arg(long, default_value = "+447700900123")]
        from: String,
        /// The service's SIP address.
        #[arg(long, env = "EARSHOT_SIP", default_value = "127.0.0.1:5060")]
        sip: SocketAddr,
    },
    /// Move this machine's installation (its SQLite database, and its
    /// recordings when the config file's `[recordings]` names a store) onto
    /// an empty PostgreSQL database and that store. The SQLite file stays as
    /// it was; each recording leaves the disk once the store holds it.
    Move {
        /// The data directory of the installation to move.
        #[arg(long, env = "EARSHOT_DATA_DIR")]
        data_dir: PathBuf,
        /// The empty PostgreSQL database to move to: postgres://user:password@host/db.
        #[arg(long)]
        to_database_url: String,
        /// A TOML file whose `[recordings]` names the store (S3) to move the recordings to.
        #[arg(long, env = "EARSHOT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Serve the API.
    Serve {
        /// Where the embedded database and the recordings live.
        #[arg(long, env = "EARSHOT_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Address of the HTTP API, e.g. 127.0.0.1:8080.
        #[arg(long, env = "EARSHOT_HTTP")]
        http: Option<SocketAddr>,
        /// A TOML file with any of these settings.
        #[arg(long, env = "EARSHOT_CONFIG")]
        config: Option<PathBuf>,
        /// PostgreSQL instead of the embedded SQLite: postgres://user:password@host/db.
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
        /// How long a log-in lasts, in hours (default 12).
        #[arg(long, env = "EARSHOT_SESSION_HOURS")]
        session_hours: Option<u32>,
        #[command(flatten)]
        sip: SipArgs,
    },
}

#[derive(clap::Args)]
struct SipArgs {
    /// Serve SIP (UDP and TCP) on this address, e.g. 0.0.0.0:5060.
    #[arg(long, env = "EARSHOT_SIP")]
    sip: Option<SocketAddr>,
    /// RTP ports for the media relay, LOW-HIGH (default 20000-20999).
    #[arg(long, env = "EARSHOT_RTP_PORTS")]
    rtp_ports: Option<String>,
    /// The carrier's SIP URI for outside numbers (also `[trunk] uri` in the config file).
    #[arg(long, env = "EARSHOT_TRUNK")]
    trunk: Option<String>,
    /// The SIP address phones register at, when not --sip: the edge proxy
    /// in front of several instances (also `sip_public` in the config file).
    #[arg(long, env = "EARSHOT_SIP_PUBLIC")]
    sip_public: Option<SocketAddr>,
    /// A SIP proxy in front (Kamailio), by IP: never rate-limited or
    /// blocked itself, and the client behind it the address it names in
    /// `X-Earshot-Client`; may be
    /// repeated (also `sip_trusted_proxies` in the config file).
    #[arg(long = "sip-trusted-proxy", env = "EARSHOT_SIP_TRUSTED_PROXIES", value_delimiter = ',')]
    sip_trusted_proxies: Vec<std::net::IpAddr>,
    /// Serve SIP over TLS on this address too, e.g. 0.0.0.0:5061; calls'
    /// legs over it carry SRTP (also `sip_tls` in the config file).
    #[arg(long, env = "EARSHOT_SIP_TLS", requires_all = ["sip_tls_cert", "sip_tls_key"])]
    sip_tls: Option<SocketAddr>,
    /// The TLS certificate chain (PEM); read again when it changes.
    #[arg(long, env = "EARSHOT_SIP_TLS_CERT")]
    sip_tls_cert: Option<PathBuf>,
    /// The TLS certificate's private key (PEM); read again when it changes.
    #[arg(long, env = "EARSHOT_SIP_TLS_KEY")]
    sip_tls_key: Option<PathBuf>,
}

impl SipArgs {
    /// The SIP configuration, when SIP is on.
    fn config(self, file: &ConfigFile) -> anyhow::Result<Option<earshot_service::sip::SipConfig>> {
        let Some(listen) = self.sip.or(file.sip) else { return Ok(None) };
        let ports = self.rtp_ports.or_else(|| file.rtp_ports.clone()).unwrap_or_else(|| "20000-20999".into());
        Ok(Some(earshot_service::sip::SipConfig {
            listen,
            rtp_ports: earshot_service::config::parse_port_range(&ports)?,
            trunk: self.trunk.or_else(|| file.trunk.as_ref().map(|t| t.uri.clone())),
            public: self.sip_public.or(file.sip_public),
            trusted_proxies: if self.sip_trusted_proxies.is_empty() {
                file.sip_trusted_proxies.clone().unwrap_or_default()
            } else {
                self.sip_trusted_proxies
            },
            tls: match self.sip_tls.or(file.sip_tls) {
                Some(listen) => Some(earshot_service::sip::SipTls {
                    listen,
                    cert: self.sip_tls_cert.or_else(|| file.sip_tls_cert.clone()).ok_or_else(|| {
                        anyhow::anyhow!("SIP over TLS needs a certificate: give --sip-tls-cert (or sip_tls_cert in the config file)")
                    })?,
                    key: self.sip_tls_key.or_else(|| file.sip_tls_key.clone()).ok_or_else(|| {
                        anyhow::anyhow!("SIP over TLS needs the certificate's key: give --sip-tls-key (or sip_tls_key in the config file)")
                    })?,
                }),
                None => None,
            },
        }))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EARSHOT_LOG")
                .unwrap_or_else(|_| "info,rsipstack=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal, none in a file or the journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Init { data_dir, company, admin_email, admin_password, database_url } => {
            let _lock = lock_data_dir(&data_dir, database_url.is_none())?;
            let state = AppState::open(&data_dir, database_url.as_deref()).await?;
            let new = NewCompany {
                name: company,
                admin_email: admin_email.clone(),
                admin_password,
                admin_name: "Admin".into(),
            };
            let (company, _) =
                create_company(&state.db, &new).await.map_err(|e| anyhow::anyhow!("{}", e.detail))?;
            eprintln!("Created company {company} with admin {admin_email}.");
            Ok(())
        }
        Command::Move { data_dir, to_database_url, config } => {
            let file = config.as_deref().map(ConfigFile::read).transpose()?.unwrap_or_default();
            anyhow::ensure!(
                data_dir.join("earshot.db").exists(),
                "{} holds no Earshot database (earshot.db) to move",
                data_dir.display()
            );
            let _lock = lock_data_dir(&data_dir, true)?;
            let from = earshot_service::db::Db::open(&data_dir, None).await?;
            let to = earshot_service::db::Db::connect(&to_database_url).await?;
            let store = file.recordings.clone().unwrap_or_default();
            let recordings =
                earshot_service::store::Recordings::open(&data_dir.join("recordings"), &store).await?;
            let moved = earshot_service::migrate::run(&from, &to, &recordings).await?;
            eprintln!("Moved to PostgreSQL:");
            for (table, rows) in &moved.rows {
                eprintln!("  {table:<20} {rows:>9} rows");
            }
            if recordings.upload_stats().is_some() {
                eprintln!("and {} recordings to the store.", moved.uploaded);
            } else {
                eprintln!("The recordings stay in {}.", data_dir.join("recordings").display());
            }
            eprintln!(
                "Serve it with --database-url (and the same config file); {} is left as it was.",
                data_dir.join("earshot.db").display()
            );
            Ok(())
        }
        Command::Rewrap { data_dir, database_url, config } => {
            let file = ConfigFile::read(&config)?;
            let state = open_state(&data_dir, database_url.as_deref(), &file).await?;
            anyhow::ensure!(
                state.recordings.keys().is_some(),
                "{} sets no [recordings] key_file",
                config.display()
            );
            let names: Vec<String> =
                sqlx::query_scalar("SELECT file_name FROM recordings WHERE file_gone = 0")
                    .fetch_all(state.db.pool())
                    .await?;
            let (mut rewrapped, mut failed) = (0_u64, 0_u64);
            for name in &names {
                match state.recordings.rewrap(name).await {
                    Ok(true) => rewrapped += 1,
                    Ok(false) => {}
                    Err(error) => {
                        failed += 1;
                        eprintln!("{name}: {error}");
                    }
                }
            }
            eprintln!(
                "{rewrapped} of {} recordings re-wrapped under the current key; {failed} failed.",
                names.len()
            );
            anyhow::ensure!(
                failed == 0,
                "keep the old keys in older_key_files until every recording is re-wrapped"
            );
            Ok(())
        }
        Command::DemoCall { number, from, sip } => {
            eprintln!("{from} calls {number} through {sip}…");
            let outcome = earshot_service::carrier::demo_call(sip, &number, &from).await?;
            eprintln!("The call ended: {outcome}. It is in the history of those allowed to see it.");
            Ok(())
        }
        Command::Demo { data_dir, http, database_url, config, sip } => {
            let file = config.as_deref().map(ConfigFile::read).transpose()?.unwrap_or_default();
            let mut sip = sip.config(&file)?;
            // The outside world: a demo carrier as the trunk, unless one is given.
            let mut carrier = None;
            if let Some(config) = sip.as_mut()
                && config.trunk.is_none()
            {
                let ip =
                    if config.listen.ip().is_loopback() { config.listen.ip() } else { [127, 0, 0, 1].into() };
                let started =
                    earshot_service::carrier::Carrier::start(SocketAddr::new(ip, config.listen.port() + 10))
                        .await?;
                config.trunk = Some(format!("sip:{}", started.address));
                carrier = Some(started);
            }
            let _lock = lock_data_dir(&data_dir, database_url.is_none())?;
            let state = open_state(&data_dir, database_url.as_deref(), &file).await?;
            if earshot_service::demo::is_seeded(&state).await? {
                eprintln!("{} already holds a company; serving it as it is.", data_dir.display());
            } else {
                let started = std::time::Instant::now();
                earshot_service::demo::seed(&state, earshot_service::now_millis()).await?;
                eprintln!(
                    "Seeded the demo company Acme Support in {:.1} s.",
                    started.elapsed().as_secs_f64()
                );
            }
            eprintln!("\nLog in at http://{http} with any of:\n");
            eprintln!(
                "  {:<11} {:<16} {:<18} {:<12} {:<10} SIP password",
                "role", "name", "e-mail", "password", "extension"
            );
            for login in earshot_service::demo::logins() {
                eprintln!(
                    "  {:<11} {:<16} {:<18} {:<12} {:<10} {}",
                    login.role.as_str(),
                    login.name,
                    login.email,
                    login.password,
                    login.extension,
                    earshot_service::demo::sip_password(login.password),
                );
            }
            if let Some(sip) = &sip {
                eprintln!(
                    "\nSIP on {} (UDP and TCP): register as <extension>@{} with the e-mail as the \
                     authentication user name and the SIP password.",
                    sip.listen, sip.listen
                );
            }
            if let Some(carrier) = &carrier {
                eprintln!(
                    "\nThe demo carrier is on {}: call any outside number (e.g. +447700900123) and a \
                     demo customer answers. To have one call the company, run\n  \
                     earshotd demo-call +442071230001   (Sales direct, rings Ada; +442071230000 is the main line)",
                    carrier.address
                );
            }
            eprintln!();
            serve(state, http, sip).await
        }
        Command::Serve { data_dir, http, config, database_url, session_hours, sip } => {
            let file = config.as_deref().map(ConfigFile::read).transpose()?.unwrap_or_default();
            let data_dir = data_dir
                .or_else(|| file.data_dir.clone())
                .context("give --data-dir (or data_dir in the config file)")?;
            let http = http.or(file.http).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
            let database_url = database_url.or_else(|| file.database_url.clone());
            let _lock = lock_data_dir(&data_dir, database_url.is_none())?;
            let mut state = open_state(&data_dir, database_url.as_deref(), &file).await?;
            state.session_ttl_ms = i64::from(session_hours.or(file.session_hours).unwrap_or(12)) * 3_600_000;
            let sip = sip.config(&file)?;
            serve(state, http, sip).await
        }
    }
}

/// Claims `data_dir` for this process until the returned file is dropped.
///
/// One directory serves one instance: with SQLite the database in it cannot
/// be shared, and in every case its spool of recordings waiting for upload
/// and the crash repair at start-up belong to one process. A second
/// `earshotd` pointed at the same directory stops here with a sentence that
/// says what to do, instead of corrupting the first one's work. The lock is
/// the kernel's (`flock`), so it goes with the process, even after a crash.
fn lock_data_dir(data_dir: &std::path::Path, sqlite: bool) -> anyhow::Result<std::fs::File> {
    use std::io::{Read as _, Seek as _, Write as _};
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let path = data_dir.join("earshotd.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim().parse::<u32>() {
                Ok(pid) => format!("another earshotd (process {pid})"),
                Err(_) => "another earshotd".to_owned(),
            };
            let advice = if sqlite {
                "Its SQLite database serves one instance only. To run several instances, give each its \
                 own --data-dir and all of them one PostgreSQL database (--database-url); \
                 docs/DEPLOYMENT.md shows how."
            } else {
                "Each instance needs its own --data-dir: it keeps its calls' recordings there until \
                 they are uploaded."
            };
            anyhow::bail!("{} is in use by {holder}. {advice}", data_dir.display());
        }
        Err(std::fs::TryLockError::Error(error)) => {
            return Err(error).with_context(|| format!("locking {}", path.display()));
        }
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    Ok(file)
}

/// The service's state: its database, and recordings kept as `file` says.
async fn open_state(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    file: &ConfigFile,
) -> anyhow::Result<AppState> {
    let db = earshot_service::db::Db::open(data_dir, database_url).await?;
    let store = file.recordings.clone().unwrap_or_default();
    let keys = store.key_ring()?;
    let mut recordings =
        earshot_service::store::Recordings::open(&data_dir.join("recordings"), &store).await?;
    if let Some(keys) = keys {
        tracing::info!(key = keys.current.id_hex(), "new recordings are sealed (AES-256-GCM)");
        recordings = recordings.with_keys(keys);
    }
    Ok(AppState::with_recordings(db, data_dir, recordings))
}

/// Raises the soft limit on open files to the hard one. Each call holds
/// sockets for its legs and a file for its recording, each connected app a
/// stream: the soft limit many systems start a process with (1 024) runs out
/// at a few hundred calls, while the hard one is usually far higher. Servers
/// raise it themselves, as this does (the soak's 200 calls and 500 apps
/// peak at about 1 400).
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    // Beyond what Linux allows a process by default (`fs.nr_open`), an
    // unlimited hard limit cannot be the soft one.
    const MOST: u64 = 1 << 20;
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard.min(MOST) => {
            let wanted = hard.min(MOST);
            match setrlimit(Resource::RLIMIT_NOFILE, wanted, hard) {
                Ok(()) => tracing::debug!(from = soft, to = wanted, "raised the limit on open files"),
                Err(error) => tracing::warn!(%error, soft, "could not raise the limit on open files"),
            }
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "could not read the limit on open files"),
    }
}

/// Serves the API on `http`, and SIP when configured, until Ctrl-C or SIGTERM.
async fn serve(
    state: AppState,
    http: SocketAddr,
    sip: Option<earshot_service::sip::SipConfig>,
) -> anyhow::Result<()> {
    raise_open_files_limit();
    let recovered = earshot_service::sip::recover(&state).await?;
    if recovered.calls > 0 {
        tracing::warn!(calls = recovered.calls, "stored calls left in progress by a crash");
    }
    // What a crash, a stop or an unreachable store left on this machine goes up now.
    let spooled = state.recordings.upload_spooled();
    if spooled > 0 {
        tracing::info!(recordings = spooled, "recordings on this machine queued for upload to the store");
    }
    // Recordings past their company's retention go now, then every hour.
    earshot_service::retention::start(state.clone());
    let _sip = match sip {
        Some(config) => {
            let sip = earshot_service::sip::start(state.clone(), config).await?;
            // Their far ends still think those calls are up: end them.
            sip.end_legs(recovered.legs);
            Some(sip)
        }
        None if !recovered.legs.is_empty() => {
            tracing::warn!(
                legs = recovered.legs.len(),
                "calls a crash left up cannot be ended: SIP is off (start with --sip to send their BYEs)"
            );
            None
        }
        None => None,
    };
    let listener =
        tokio::net::TcpListener::bind(http).await.with_context(|| format!("listening on {http}"))?;
    tracing::info!(address = %listener.local_addr()?, "serving the Earshot API");
    // Every write goes out at once: with Nagle's algorithm on, the last
    // piece of a streamed recording (or an event right after another) waited
    // for the client's delayed ACK, 40 ms, on most plays (the soak's).
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY on a connection");
        }
    });
    axum::serve(listener, app(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async {
            let ctrl_c = tokio::signal::ctrl_c();
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let term = async move {
                match term.as_mut() {
                    Some(term) => {
                        term.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! { _ = ctrl_c => {}, () = term => {} }
        })
        .await?;
    Ok(())
}
