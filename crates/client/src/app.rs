//! The app as the ui sees it: one [`App`] holding the signed-in session, its
//! snapshot, histories and cache, with one async method per thing the ui
//! asks for. The Tauri shell's commands call these and nothing else, so the
//! whole app is testable without a window.
//!
//! The types here cross to the ui as JSON; their TypeScript twins in
//! `ui/src/lib/generated.ts` are generated from them (ts-rs) and a test
//! fails when they drift.

use crate::cache::{Account, Cache};
use crate::error::{ClientError, Result};
use crate::history::{History, other_party};
use crate::session::{Keyring, SignedIn};
use earshot_api::{CallOut, CallsQuery, SyncSnapshot};
use earshot_policy::AppContext;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use tokio::sync::Mutex;
use ts_rs::TS;

/// Calls fetched per page.
const PAGE: u32 = 200;

/// The signed-in user, for the ui's header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct Me {
    /// The server.
    pub server: String,
    /// E-mail.
    pub email: String,
    /// Name.
    pub name: String,
    /// Role (`admin`, `supervisor`, `analyst`, `agent`).
    pub role: String,
    /// The company's name.
    pub company: String,
}

/// The server and e-mail of the last log-in (not secret: kept in a file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct LastLogin {
    /// The server.
    pub server: String,
    /// E-mail.
    pub email: String,
}

/// One line of the history list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct CallRow {
    /// The call's id.
    pub id: i64,
    /// `inbound`, `outbound` or `internal`.
    pub direction: String,
    /// `answered`, `missed`, `voicemail` or `unanswered`.
    pub status: String,
    /// When it started, ms since the epoch.
    pub started_at: i64,
    /// How long it was answered, when it was.
    pub duration_ms: Option<i64>,
    /// The external number, or the other user of an internal call.
    pub other_party: String,
    /// The company number used, E.164.
    pub number: Option<String>,
    /// It has a recording or voicemail.
    pub has_recording: bool,
    /// The user may play it (a player is shown).
    pub can_play: bool,
    /// The user may download it.
    pub can_download: bool,
}

/// What the history list shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct HistoryView {
    /// Newest first.
    pub calls: Vec<CallRow>,
    /// Every page is here.
    pub complete: bool,
}

/// An error as the ui gets it: a stable `code` to match, a `message` to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct UiError {
    /// From [`ClientError::code`].
    pub code: String,
    /// For the user.
    pub message: String,
}

impl From<ClientError> for UiError {
    fn from(error: ClientError) -> Self {
        Self { code: error.code().to_owned(), message: error.to_string() }
    }
}

struct Session {
    signed_in: SignedIn,
    snapshot: SyncSnapshot,
    account: Account,
    histories: HashMap<AppContext, History>,
}

/// The desktop app's state.
pub struct App {
    keyring: Keyring,
    data_dir: PathBuf,
    default_server: Option<String>,
    cache: Mutex<Option<Cache>>,
    session: Mutex<Option<Session>>,
}

impl App {
    /// The app keeping its files in `data_dir` and tokens in `keyring`.
    #[must_use]
    pub fn new(data_dir: PathBuf, keyring: Keyring) -> Self {
        Self { keyring, data_dir, default_server: None, cache: Mutex::new(None), session: Mutex::new(None) }
    }

    /// The server the log-in form offers before any log-in (`./x run` points
    /// it at the demo service).
    #[must_use]
    pub fn with_default_server(mut self, server: Option<String>) -> Self {
        self.default_server = server.filter(|s| !s.trim().is_empty());
        self
    }

    fn last_login_path(&self) -> PathBuf {
        self.data_dir.join("last-login.json")
    }

    /// The server and e-mail used last (or the default server, before any log-in).
    #[must_use]
    pub fn last_login(&self) -> Option<LastLogin> {
        let saved =
            std::fs::read(self.last_login_path()).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
        saved.or_else(|| self.default_server.clone().map(|server| LastLogin { server, email: String::new() }))
    }

    async fn cache(&self) -> Option<Cache> {
        let mut cache = self.cache.lock().await;
        if cache.is_none() {
            match Cache::open(&self.data_dir.join("cache.db")).await {
                Ok(opened) => *cache = Some(opened),
                Err(error) => tracing::warn!(%error, "working without the local cache"),
            }
        }
        cache.clone()
    }

    /// Signs in with the token kept at the last log-in, if any.
    pub async fn resume(&self) -> Result<Option<Me>> {
        let Some(last) = self.last_login() else { return Ok(None) };
        match SignedIn::resume(&self.keyring, &last.server, &last.email).await? {
            Some((signed_in, snapshot)) => Ok(Some(self.start(signed_in, snapshot).await)),
            None => Ok(None),
        }
    }

    /// Logs in, keeps the token in the keyring and remembers server and e-mail.
    pub async fn log_in(&self, server: &str, email: &str, password: &str) -> Result<Me> {
        let signed_in = SignedIn::log_in(&self.keyring, server, email, password).await?;
        let snapshot = signed_in.sync().await?;
        let last =
            LastLogin { server: signed_in.api().server().to_owned(), email: email.trim().to_lowercase() };
        let path = self.last_login_path();
        std::fs::create_dir_all(&self.data_dir)
            .and_then(|()| std::fs::write(&path, serde_json::to_vec(&last).unwrap_or_default()))
            .map_err(|source| ClientError::File { path, source })?;
        Ok(self.start(signed_in, snapshot).await)
    }

    async fn start(&self, signed_in: SignedIn, snapshot: SyncSnapshot) -> Me {
        let account = Account {
            server: signed_in.api().server().to_owned(),
            email: snapshot.me.email.trim().to_lowercase(),
        };
        if let Some(cache) = self.cache().await
            && let Err(error) = cache.save_snapshot(&account, &snapshot).await
        {
            tracing::warn!(%error, "the snapshot was not cached");
        }
        let me = Me {
            server: account.server.clone(),
            email: account.email.clone(),
            name: snapshot.me.name.clone(),
            role: snapshot.me.role.as_str().to_owned(),
            company: snapshot.company.name.clone(),
        };
        *self.session.lock().await =
            Some(Session { signed_in, snapshot, account, histories: HashMap::new() });
        me
    }

    /// Logs out: the session ends, the token and the cache are forgotten.
    pub async fn log_out(&self) -> Result<()> {
        let Some(session) = self.session.lock().await.take() else { return Ok(()) };
        if let Some(cache) = self.cache().await {
            cache.forget(&session.account).await?;
        }
        session.signed_in.log_out().await
    }

    /// The history of `app`: the first page, or with `more` the next one.
    pub async fn history(&self, app: AppContext, more: bool) -> Result<HistoryView> {
        let mut guard = self.session.lock().await;
        let session =
            guard.as_mut().ok_or_else(|| ClientError::SessionEnded { detail: "Please sign in.".into() })?;
        let snapshot = session.snapshot.clone();
        let history = session.histories.entry(app).or_insert_with(|| History::new(&snapshot, app));
        let first = history.calls().is_empty() && !history.is_complete();
        if first || (more && !history.is_complete()) {
            let query = CallsQuery {
                app: Some(app),
                cursor: history.next_cursor().map(str::to_owned),
                limit: Some(PAGE),
                ..CallsQuery::default()
            };
            let page = session.signed_in.forget_if_ended(session.signed_in.api().calls(&query).await)?;
            let added = page.calls.clone();
            history.extend(page);
            if let Some(cache) = self.cache().await {
                let _ = cache.save_calls(&session.account, app, &added).await;
            }
        }
        Ok(HistoryView {
            calls: history.calls().iter().map(|call| row(call, &snapshot)).collect(),
            complete: history.is_complete(),
        })
    }
}

fn row(out: &CallOut, snapshot: &SyncSnapshot) -> CallRow {
    let call = &out.call;
    let other_party = other_party(call, snapshot).unwrap_or_else(|| "Unknown".into());
    CallRow {
        id: call.id.0,
        direction: call.direction.as_str().to_owned(),
        status: call.status.as_str().to_owned(),
        started_at: call.started_at.0,
        duration_ms: call.answered_at.zip(call.ended_at).map(|(answered, ended)| ended.0 - answered.0),
        other_party,
        number: call
            .number
            .and_then(|id| snapshot.numbers.iter().find(|n| n.id == id))
            .map(|n| n.e164.clone()),
        has_recording: call.recording.is_some() || call.voicemail.is_some(),
        can_play: out.can_play,
        can_download: out.can_download,
    }
}

#[cfg(test)]
mod tests {
    use super::{CallRow, HistoryView, LastLogin, Me, UiError};
    use ts_rs::TS as _;

    /// `ui/src/lib/generated.ts` is what ts-rs makes of these types; run
    /// with `UPDATE_UI_TYPES=1` to rewrite it after changing them.
    #[test]
    fn ui_types_are_generated_from_these() {
        // Ids and times are below 2^53: plain numbers in JavaScript.
        let cfg = ts_rs::Config::new().with_large_int("number");
        let mut text = String::from(
            "// Generated from earshot-client's `app` types by ts-rs; do not edit.\n\
             // After changing them: UPDATE_UI_TYPES=1 cargo test -p earshot-client ui_types\n\n",
        );
        for decl in [
            Me::decl(&cfg),
            LastLogin::decl(&cfg),
            CallRow::decl(&cfg),
            HistoryView::decl(&cfg),
            UiError::decl(&cfg),
        ] {
            text.push_str("export ");
            text.push_str(&decl);
            text.push('\n');
        }
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/lib/generated.ts");
        if std::env::var_os("UPDATE_UI_TYPES").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "ui/src/lib/generated.ts is stale: run UPDATE_UI_TYPES=1 cargo test -p earshot-client ui_types\n{text}"
        );
    }
}
