//! Change notifications: what changed in which company, at which version.
//! `GET /api/v1/events` forwards each one to the company's connected apps
//! that may see it.
//!
//! On SQLite (one instance) a change is handed to this instance's streams
//! once its transaction has committed. On PostgreSQL, where several
//! instances may share the database, a change is sent with `pg_notify` in
//! the transaction that writes it ([`Events::stage`]): PostgreSQL delivers
//! it on commit, and never for a transaction rolled back, to every
//! instance's listener (this one's too), one `PgListener` per instance,
//! which hands it to the instance's streams. A payload carries ids,
//! versions and the change's kind, never the data (PostgreSQL's limit is
//! 8,000 bytes; the apps fetch what changed). Notifications sent while a
//! listener is disconnected are lost, so a listener that lost its
//! connection tells every app to re-sync once it is back.
//!
//! Invariant: an app sees every committed change of its company, or a
//! `resync` that covers it.

use crate::db::{Backend, Db, Query, StoreError};
use earshot_policy::{CompanyId, UserId};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

pub use earshot_api::Change;

/// The PostgreSQL channel the instances notify each other on.
pub const CHANNEL: &str = "earshot_changes";
/// A notification's payload is at most this long (PostgreSQL's limit is 8,000 bytes).
const MOST_PAYLOAD: usize = 7_900;

/// One change of one company.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangeEvent {
    /// The company.
    #[serde(skip)]
    pub company: CompanyId,
    /// The company's version after the change.
    pub version: i64,
    /// What changed.
    #[serde(flatten)]
    pub change: Change,
}

/// What the streams are told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// One change.
    Change(ChangeEvent),
    /// Changes may have been missed (the listener lost its connection):
    /// every app syncs everything again.
    Resync,
}

/// A change as it travels between instances: ids and versions only.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    company: i64,
    version: i64,
    #[serde(flatten)]
    change: Change,
    /// The recipients of a change for some users only (not part of `Change`'s JSON).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    to: Vec<UserId>,
}

impl Wire {
    fn of(event: &ChangeEvent) -> Self {
        Self {
            company: event.company.0,
            version: event.version,
            change: event.change.clone(),
            to: event.change.recipients().map(<[UserId]>::to_vec).unwrap_or_default(),
        }
    }

    fn into_event(self) -> ChangeEvent {
        let mut change = self.change;
        if let Change::RecordingState { to, .. } | Change::RecordingRefused { to, .. } = &mut change {
            *to = self.to;
        }
        ChangeEvent { company: CompanyId(self.company), version: self.version, change }
    }
}

/// The service's change feed.
#[derive(Clone, Debug)]
pub struct Events {
    sender: broadcast::Sender<Notice>,
    /// PostgreSQL: changes go through the database, to every instance.
    shared: Option<Shared>,
}

#[derive(Clone, Debug)]
struct Shared {
    db: Db,
    /// True while this instance's listener is listening.
    listening: watch::Receiver<bool>,
}

impl Events {
    /// A feed for this instance alone, that keeps up to 4,096 changes for slow listeners.
    #[must_use]
    pub fn new() -> Self {
        Self { sender: broadcast::channel(4_096).0, shared: None }
    }

    /// The feed over `db`: on PostgreSQL it goes through the database, and
    /// its listener starts now (it needs a tokio runtime; without one the
    /// feed stays this instance's alone).
    #[must_use]
    pub fn over(db: &Db) -> Self {
        let mut events = Self::new();
        if db.backend() == Backend::Postgres
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (listening, watch) = watch::channel(false);
            runtime.spawn(listen(db.clone(), events.sender.clone(), listening));
            events.shared = Some(Shared { db: db.clone(), listening: watch });
        }
        events
    }

    /// Sends `event` with the transaction `tx` that writes it, before it
    /// commits (PostgreSQL). On SQLite nothing: call [`Self::committed`]
    /// after the commit.
    ///
    /// # Errors
    /// The database failed.
    pub async fn stage(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        event: &ChangeEvent,
    ) -> Result<(), StoreError> {
        let Some(shared) = &self.shared else { return Ok(()) };
        let query = notify(event);
        shared.db.execute(&mut **tx, &query).await?;
        Ok(())
    }

    /// `event`'s transaction has committed: on SQLite this instance's
    /// streams are told now; on PostgreSQL the notification staged in the
    /// transaction tells them.
    pub fn committed(&self, event: ChangeEvent) {
        if self.shared.is_none() {
            // No listener is not an error: nobody is connected.
            let _ = self.sender.send(Notice::Change(event));
        }
    }

    /// Tells every listener of a change that no transaction writes (a live
    /// call's recording state): on PostgreSQL through the database, so an
    /// app connected to another instance hears it too.
    pub fn publish(&self, event: ChangeEvent) {
        match &self.shared {
            None => {
                let _ = self.sender.send(Notice::Change(event));
            }
            Some(shared) => {
                let db = shared.db.clone();
                let local = self.sender.clone();
                tokio::spawn(async move {
                    if let Err(error) = db.execute(db.pool(), &notify(&event)).await {
                        // The database is down: this instance's apps hear it at least.
                        tracing::warn!(%error, "cannot notify the other instances of a change");
                        let _ = local.send(Notice::Change(event));
                    }
                });
            }
        }
    }

    /// A new listener.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.sender.subscribe()
    }

    /// Whether this instance's listener is listening (`None` on SQLite,
    /// where there is none).
    #[must_use]
    pub fn listening(&self) -> Option<bool> {
        self.shared.as_ref().map(|shared| *shared.listening.borrow())
    }

    /// Waits (up to `wait`) until changes reach this instance: at once on
    /// SQLite, once the listener is listening on PostgreSQL.
    pub async fn ready(&self, wait: Duration) {
        if let Some(shared) = &self.shared {
            let mut listening = shared.listening.clone();
            let _ = tokio::time::timeout(wait, listening.wait_for(|listening| *listening)).await;
        }
    }
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

/// `SELECT pg_notify(…)` for `event`; a change too large to send is sent
/// as a resync (none is, today: the largest carries a sentence).
fn notify(event: &ChangeEvent) -> Query {
    let mut payload = serde_json::to_string(&Wire::of(event)).unwrap_or_default();
    if payload.len() > MOST_PAYLOAD || payload.is_empty() {
        tracing::error!(bytes = payload.len(), "a change too large to notify; the apps re-sync instead");
        payload = "{\"resync\":true}".to_owned();
    }
    let mut query = Query::new("SELECT pg_notify(");
    query.bind(CHANNEL).push(", ").bind(payload).push(")");
    query
}

/// This instance's listener: hands each notification to the local streams,
/// and after a lost connection, once it is back, tells them to re-sync.
async fn listen(db: Db, sender: broadcast::Sender<Notice>, listening: watch::Sender<bool>) {
    let mut missed = false;
    loop {
        let connected = async {
            let mut listener = sqlx::postgres::PgListener::connect(db.url()).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(error) => {
                if !missed {
                    tracing::warn!(%error, "the change listener cannot reach the database; retrying");
                }
                missed = true;
                let _ = listening.send(false);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let _ = listening.send(true);
        if missed {
            tracing::info!("the change listener is back; the apps re-sync");
            let _ = sender.send(Notice::Resync);
        }
        // Until the connection is lost (what is sent meanwhile is gone).
        while let Ok(Some(notification)) = listener.try_recv().await {
            let notice = match serde_json::from_str::<Wire>(notification.payload()) {
                Ok(wire) => Notice::Change(wire.into_event()),
                Err(_) => Notice::Resync,
            };
            let _ = sender.send(notice);
        }
        tracing::warn!("the change listener lost its connection; reconnecting");
        let _ = listening.send(false);
        missed = true;
    }
}
