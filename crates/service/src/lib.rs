//! `earshotd`, Earshot's call and recording service: accounts, company
//! settings, users, groups, numbers with call flows, contacts, call history
//! and recordings, served over a JSON API under `/api/v1` with push.
//!
//! Every right is decided by `earshot-policy`: history pages are filtered in
//! SQL from [`earshot_policy::Viewer::visibility_filter`], each call is stamped
//! with [`earshot_policy::Viewer::access`], and audio and downloads ask again
//! at request time. [`app`] builds the whole HTTP side as an axum `Router`, so
//! tests drive it without a socket; SIP will run beside it in the same binary.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let state = earshot_service::AppState::open(std::path::Path::new("/var/lib/earshot"), None).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, earshot_service::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(()) }
//! ```

pub mod api;
pub mod auth;
pub mod calls;
pub mod carrier;
pub mod company;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod events;
pub mod metrics;
pub mod migrate;
pub mod retention;
pub mod sip;
pub mod snapshot;
pub mod store;

use crate::db::Db;
use crate::events::Events;
use crate::snapshot::Snapshots;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use api::app;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The embedded database, the calls-in-progress journal and the
    /// recordings' spool (`data_dir/recordings/`) live here.
    pub data_dir: PathBuf,
    /// Where recordings are kept: the spool, and the object store behind it when configured.
    pub recordings: Arc<store::Recordings>,
    /// Company snapshots for the rules.
    pub snapshots: Arc<Snapshots>,
    /// Change notifications for connected apps.
    pub events: Events,
    /// How long a session lasts, in milliseconds.
    pub session_ttl_ms: i64,
    /// Counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Password checks running at once are bounded by this.
    pub password_checks: Arc<tokio::sync::Semaphore>,
    /// Failed log-ins with e-mails no account has: (failures, last failure time).
    pub unknown_logins: Arc<std::sync::Mutex<std::collections::HashMap<String, (i64, i64)>>>,
    /// The SIP registrar's bindings (the API revokes devices' registrations).
    pub registrations: Arc<sip::Registrations>,
    /// The calls changes name, read once for all event streams.
    pub event_calls: Arc<api::EventCalls>,
}

impl AppState {
    /// State over the database at `database_url`, or the embedded SQLite in `data_dir`.
    pub async fn open(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<Self> {
        let db = Db::open(data_dir, database_url).await?;
        let recordings = store::Recordings::local(&data_dir.join("recordings"))?;
        Ok(Self::with_recordings(db, data_dir, recordings))
    }

    /// State over an open database, recordings on the local disk.
    ///
    /// # Panics
    /// When `data_dir/recordings` cannot be created ([`Self::open`] says so as an error).
    #[must_use]
    pub fn new(db: Db, data_dir: &Path) -> Self {
        let recordings =
            store::Recordings::local(&data_dir.join("recordings")).unwrap_or_else(|error| panic!("{error}"));
        Self::with_recordings(db, data_dir, recordings)
    }

    /// State over an open database and recordings kept as `recordings` says.
    #[must_use]
    pub fn with_recordings(db: Db, data_dir: &Path, recordings: store::Recordings) -> Self {
        let metrics = metrics::Metrics::default();
        if let Some(stats) = recordings.upload_stats() {
            let _ = metrics.uploads.set(stats);
        }
        let events = Events::over(&db);
        Self {
            db,
            data_dir: data_dir.to_owned(),
            recordings: Arc::new(recordings),
            snapshots: Arc::default(),
            events,
            session_ttl_ms: 12 * 60 * 60 * 1000,
            metrics: Arc::new(metrics),
            unknown_logins: Arc::default(),
            registrations: Arc::default(),
            event_calls: Arc::default(),
            password_checks: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
            )),
        }
    }

    /// Where recordings are written while they are recorded (the spool):
    /// a recording's file name is its path under it.
    #[must_use]
    pub fn recordings_dir(&self) -> PathBuf {
        self.recordings.spool().to_owned()
    }
}

/// Milliseconds since the Unix epoch, now. The service's one clock.
#[must_use]
pub fn now_millis() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
