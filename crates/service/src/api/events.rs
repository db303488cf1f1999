//! `GET /api/v1/events`: Server-Sent Events telling a connected app what
//! changed in its company (SPEC §7), scoped to what the caller may see: a
//! call event only for a call they can see. The first event, `hello`, carries
//! the current version; after any event the app fetches `/sync` or the call.

use crate::AppState;
use crate::auth::Caller;
use crate::calls::find_call;
use crate::db::StoreError;
use crate::events::{Change, ChangeEvent, Notice};
use crate::snapshot::CompanySnapshot;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use earshot_policy::{AppContext, Call, CallId, CompanyId};
use futures::Stream;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::sync::broadcast::error::RecvError;

/// `GET /api/v1/events`.
#[utoipa::path(get, path = "/api/v1/events", tag = "sync", security(("bearer" = [])), responses((status = 200, description = "Server-Sent Events: `hello` with the version, then `change` events ({version, kind, call?}) and `resync`", content_type = "text/event-stream")))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribe first (once changes reach this instance), then read the
    // version: a change in between is both counted and sent.
    state.events.ready(Duration::from_secs(5)).await;
    let receiver = state.events.subscribe();
    let open = StreamGuard::new(&state);
    let version = match state.snapshots.get(&state.db, caller.company()).await {
        Ok(snapshot) => snapshot.version,
        Err(_) => caller.snapshot.version,
    };
    let hello = Event::default().event("hello").data(format!("{{\"version\":{version}}}"));
    let next_check = tokio::time::Instant::now() + SESSION_CHECK;
    let stream = futures::stream::unfold(
        (Some(hello), receiver, state, caller, open, next_check),
        |(mut first, mut receiver, state, caller, open, mut next_check)| async move {
            if let Some(hello) = first.take() {
                return Some((Ok(hello), (None, receiver, state, caller, open, next_check)));
            }
            loop {
                // A stream lives no longer than its session: it ends at log-out, expiry or
                // disabling, checked before anything is sent and at least every 15 seconds,
                // however many changes for others go by. (Not at every change: most are not
                // for this stream, and with hundreds of apps connected those checks were
                // most of the service's work.)
                let received = tokio::select! {
                    received = receiver.recv() => Some(received),
                    () = tokio::time::sleep_until(next_check) => None,
                };
                let event = match received {
                    None => None,
                    Some(Ok(Notice::Change(change))) if change.company != caller.company() => None,
                    Some(Ok(Notice::Change(change))) => scoped(&state, &caller, &change).await,
                    // Too slow to keep up, or changes missed while the instances'
                    // link was down: tell the app to sync everything again.
                    Some(Ok(Notice::Resync) | Err(RecvError::Lagged(_))) => Some(resync()),
                    Some(Err(RecvError::Closed)) => return None,
                };
                if event.is_some() || tokio::time::Instant::now() >= next_check {
                    if !session_is_valid(&state, &caller).await {
                        return None;
                    }
                    next_check = tokio::time::Instant::now() + SESSION_CHECK;
                }
                if let Some(event) = event {
                    return Some((Ok(event), (None, receiver, state, caller, open, next_check)));
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Everything may have changed: the app syncs again.
fn resync() -> Event {
    Event::default().event("resync").data("{}")
}

/// How often a stream checks its session when it sends nothing.
const SESSION_CHECK: Duration = Duration::from_secs(15);

async fn session_is_valid(state: &AppState, caller: &Caller) -> bool {
    let mut query = crate::db::Query::new(
        "SELECT 1 AS ok FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.disabled = 0 AND s.token_hash = ",
    );
    query.bind(caller.token_hash.clone()).push(" AND s.expires_at > ").bind(crate::now_millis());
    matches!(state.db.fetch_optional(state.db.pool(), &query).await, Ok(Some(_)))
}

/// The event for `change` as the caller may see it, if at all.
async fn scoped(state: &AppState, caller: &Caller, change: &ChangeEvent) -> Option<Event> {
    if let Some(to) = change.change.recipients()
        && !to.contains(&caller.id())
    {
        return None;
    }
    if let Change::Call { call } = change.change {
        // Decide with the company as it is now, not as it was at connect time (§7).
        let seen = match state.event_calls.get(state, change, call).await {
            Ok(Some(seen)) => seen,
            // Gone already: the app will not find it either.
            Ok(None) => return None,
            // Not read (the database failed): rather than drop a change the
            // app may be owed, it syncs everything again.
            Err(_) => return Some(resync()),
        };
        let user = seen.snapshot.company.user(caller.id())?;
        let visible = AppContext::ALL.iter().any(|app| {
            earshot_policy::Viewer::new(
                user,
                seen.snapshot.company.settings(),
                seen.snapshot.company.routing(),
                *app,
            )
            .can_see(&seen.call)
        });
        if !visible {
            return None;
        }
    }
    let data = serde_json::to_string(change).ok()?;
    Some(Event::default().event("change").data(data))
}

/// The calls that `Call` changes name, each read once, with its company as
/// it is then, for all the streams that judge it. A change reaches every
/// connected app of the company: with 500 connected, reading the call and
/// the company's version for each stream was 1 500 queries a change, and
/// most of the service's work (the soak, docs/PERFORMANCE.md).
#[derive(Debug, Default)]
pub struct EventCalls {
    recent: std::sync::Mutex<Recent>,
}

/// The reads of recent changes, and the order they came in.
#[derive(Debug, Default)]
struct Recent {
    reads: HashMap<SeenKey, SeenCell>,
    order: VecDeque<SeenKey>,
}

/// A change of a call: its company, the company's version after it, the call.
type SeenKey = (CompanyId, i64, CallId);

/// A call's read, done or under way: `None` when it found nothing.
type SeenCell = Arc<OnceCell<Option<Arc<Seen>>>>;

/// A call as a change left it, and its company when it was read.
#[derive(Debug)]
struct Seen {
    snapshot: Arc<CompanySnapshot>,
    call: Call,
}

impl EventCalls {
    /// Changes remembered: as many as the feed keeps for a slow stream (one
    /// that lags further gets `resync` instead), so that a burst of changes
    /// (an import, a retention sweep) is still read once.
    const KEPT: usize = 4_096;

    /// The call `change` names, read by the first stream to ask; the others
    /// wait for that read. `None` when it is gone. A read that failed is
    /// not kept: the next stream to ask reads again.
    async fn get(
        &self,
        state: &AppState,
        change: &ChangeEvent,
        call: CallId,
    ) -> Result<Option<Arc<Seen>>, StoreError> {
        let key = (change.company, change.version, call);
        let cell = {
            let mut recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(cell) = recent.reads.get(&key) {
                Arc::clone(cell)
            } else {
                if recent.order.len() == Self::KEPT
                    && let Some(oldest) = recent.order.pop_front()
                {
                    recent.reads.remove(&oldest);
                }
                let cell = SeenCell::default();
                recent.reads.insert(key, Arc::clone(&cell));
                recent.order.push_back(key);
                cell
            }
        };
        cell.get_or_try_init(|| async {
            let snapshot = state.snapshots.get(&state.db, change.company).await?;
            let call = find_call(&state.db, change.company, call).await?;
            Ok(call.map(|call| Arc::new(Seen { snapshot, call })))
        })
        .await
        .cloned()
    }
}

/// Counts an open stream in the metrics for as long as it lives.
struct StreamGuard(Arc<crate::metrics::Metrics>);

impl StreamGuard {
    fn new(state: &AppState) -> Self {
        state.metrics.event_streams.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(Arc::clone(&state.metrics))
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.event_streams.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
