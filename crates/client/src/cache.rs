//! The local cache (SQLite, through `sqlx`): the last synced snapshot, the
//! history pages seen per app context and the company's contact names, per
//! server and user, so the app opens at once and works read-only offline.
//!
//! It holds call metadata and contact names only: never a token (those live
//! in the OS keyring) and never audio. What comes out is decided again by `policy` from the
//! cached snapshot ([`History::extend`]), and calls a rights change hides are
//! deleted from it, not only from the screen.

use crate::error::{ClientError, Result};
use crate::history::History;
use earshot_api::{CallOut, CallPage, SyncSnapshot};
use earshot_policy::{AppContext, CallId, ContactId};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{ConnectOptions as _, Row as _};
use std::path::Path;

/// Whose cache: one server, one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The server, as `Api::server` gives it.
    pub server: String,
    /// The user's e-mail, lower case.
    pub email: String,
}

/// The cache file.
#[derive(Clone, Debug)]
pub struct Cache {
    pool: SqlitePool,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS snapshots (
    server TEXT NOT NULL, email TEXT NOT NULL, snapshot TEXT NOT NULL, saved_at INTEGER NOT NULL,
    PRIMARY KEY (server, email));
CREATE TABLE IF NOT EXISTS calls (
    server TEXT NOT NULL, email TEXT NOT NULL, app TEXT NOT NULL, id INTEGER NOT NULL,
    started_at INTEGER NOT NULL, call TEXT NOT NULL,
    PRIMARY KEY (server, email, app, id));
CREATE INDEX IF NOT EXISTS calls_newest ON calls (server, email, app, started_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS contacts (
    server TEXT NOT NULL, email TEXT NOT NULL, id INTEGER NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (server, email, id));
";

fn cache_error(error: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(format!("the local cache: {error}"))
}

impl Cache {
    /// Opens (or creates) the cache at `path`, readable by its owner only.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| ClientError::File { path: parent.into(), source })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .disable_statement_logging();
        let pool =
            SqlitePoolOptions::new().max_connections(2).connect_with(options).await.map_err(cache_error)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        sqlx::raw_sql(SCHEMA).execute(&pool).await.map_err(cache_error)?;
        Ok(Self { pool })
    }

    /// Keeps the latest snapshot.
    pub async fn save_snapshot(&self, account: &Account, snapshot: &SyncSnapshot) -> Result<()> {
        let json = serde_json::to_string(snapshot).map_err(cache_error)?;
        sqlx::query(
            "INSERT OR REPLACE INTO snapshots (server, email, snapshot, saved_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&account.server)
        .bind(&account.email)
        .bind(json)
        .bind(now_millis())
        .execute(&self.pool)
        .await
        .map_err(cache_error)?;
        Ok(())
    }

    /// The snapshot kept last, if any.
    pub async fn snapshot(&self, account: &Account) -> Result<Option<SyncSnapshot>> {
        let row = sqlx::query("SELECT snapshot FROM snapshots WHERE server = ? AND email = ?")
            .bind(&account.server)
            .bind(&account.email)
            .fetch_optional(&self.pool)
            .await
            .map_err(cache_error)?;
        row.map(|row| serde_json::from_str(row.get::<&str, _>("snapshot")).map_err(cache_error)).transpose()
    }

    /// Keeps calls of `app`'s history (new ones added, known ones updated).
    pub async fn save_calls(&self, account: &Account, app: AppContext, calls: &[CallOut]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(cache_error)?;
        for call in calls {
            sqlx::query(
                "INSERT OR REPLACE INTO calls (server, email, app, id, started_at, call) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&account.server)
            .bind(&account.email)
            .bind(app.as_str())
            .bind(call.call.id.0)
            .bind(call.call.started_at.0)
            .bind(serde_json::to_string(call).map_err(cache_error)?)
            .execute(&mut *tx)
            .await
            .map_err(cache_error)?;
        }
        tx.commit().await.map_err(cache_error)
    }

    /// Deletes calls from `app`'s cached history (no longer visible).
    pub async fn remove_calls(&self, account: &Account, app: AppContext, ids: &[CallId]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(cache_error)?;
        for id in ids {
            sqlx::query("DELETE FROM calls WHERE server = ? AND email = ? AND app = ? AND id = ?")
                .bind(&account.server)
                .bind(&account.email)
                .bind(app.as_str())
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(cache_error)?;
        }
        tx.commit().await.map_err(cache_error)
    }

    /// `app`'s cached history, newest first, decided again from `snapshot`.
    pub async fn history(
        &self,
        account: &Account,
        app: AppContext,
        snapshot: &SyncSnapshot,
    ) -> Result<History> {
        let rows = sqlx::query(
            "SELECT call FROM calls WHERE server = ? AND email = ? AND app = ? ORDER BY started_at DESC, id DESC",
        )
        .bind(&account.server)
        .bind(&account.email)
        .bind(app.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(cache_error)?;
        let calls = rows
            .iter()
            .map(|row| serde_json::from_str::<CallOut>(row.get::<&str, _>("call")).map_err(cache_error))
            .collect::<Result<Vec<_>>>()?;
        let ids: Vec<CallId> = calls.iter().map(|call| call.call.id).collect();
        let mut history = History::new(snapshot, app);
        // Offline the cache is all there is: no cursor to go on from.
        history.extend(CallPage { calls, next_cursor: None });
        // What the snapshot hides leaves the file too.
        let hidden: Vec<CallId> = ids.into_iter().filter(|id| history.call(*id).is_none()).collect();
        if !hidden.is_empty() {
            self.remove_calls(account, app, &hidden).await?;
        }
        Ok(history)
    }

    /// Keeps the company's contact names as last listed, in place of the
    /// ones kept before (a contact deleted since is gone from the file too).
    pub async fn save_contacts(&self, account: &Account, contacts: &[(ContactId, String)]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(cache_error)?;
        sqlx::query("DELETE FROM contacts WHERE server = ? AND email = ?")
            .bind(&account.server)
            .bind(&account.email)
            .execute(&mut *tx)
            .await
            .map_err(cache_error)?;
        for (id, name) in contacts {
            sqlx::query("INSERT INTO contacts (server, email, id, name) VALUES (?, ?, ?, ?)")
                .bind(&account.server)
                .bind(&account.email)
                .bind(id.0)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(cache_error)?;
        }
        tx.commit().await.map_err(cache_error)
    }

    /// The contact names kept last.
    pub async fn contacts(&self, account: &Account) -> Result<Vec<(ContactId, String)>> {
        let rows = sqlx::query("SELECT id, name FROM contacts WHERE server = ? AND email = ?")
            .bind(&account.server)
            .bind(&account.email)
            .fetch_all(&self.pool)
            .await
            .map_err(cache_error)?;
        Ok(rows.iter().map(|row| (ContactId(row.get("id")), row.get("name"))).collect())
    }

    /// Forgets everything of `account` (log-out).
    pub async fn forget(&self, account: &Account) -> Result<()> {
        for table in ["snapshots", "calls", "contacts"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE server = ? AND email = ?"))
                .bind(&account.server)
                .bind(&account.email)
                .execute(&self.pool)
                .await
                .map_err(cache_error)?;
        }
        Ok(())
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or_default()
}
