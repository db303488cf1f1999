//! `GET /api/v1/events`: Server-Sent Events telling a connected app what
//! changed in its company (SPEC §7), scoped to what the caller may see: a
//! call event only for a call they can see. The first event, `hello`, carries
//! the current version; after any event the app fetches `/sync` or the call.

use crate::AppState;
use crate::auth::Caller;
use crate::calls::find_call;
use crate::events::{Change, ChangeEvent, Notice};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use earshot_policy::AppContext;
use futures::Stream;
use std::convert::Infallible;
use std::time::Duration;
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
    let stream = futures::stream::unfold(
        (Some(hello), receiver, state, caller, open),
        |(mut first, mut receiver, state, caller, open)| async move {
            if let Some(hello) = first.take() {
                return Some((Ok(hello), (None, receiver, state, caller, open)));
            }
            loop {
                // A stream lives no longer than its session: it ends at log-out, expiry or
                // disabling, checked at every change and every 15 seconds.
                let received = tokio::select! {
                    received = receiver.recv() => Some(received),
                    () = tokio::time::sleep(SESSION_CHECK) => None,
                };
                if !session_is_valid(&state, &caller).await {
                    return None;
                }
                let Some(received) = received else { continue };
                let change = match received {
                    Ok(Notice::Change(change)) => change,
                    // Too slow to keep up, or changes missed while the instances'
                    // link was down: tell the app to sync everything again.
                    Ok(Notice::Resync) | Err(RecvError::Lagged(_)) => {
                        let event = Event::default().event("resync").data("{}");
                        return Some((Ok(event), (None, receiver, state, caller, open)));
                    }
                    Err(RecvError::Closed) => return None,
                };
                if change.company != caller.company() {
                    continue;
                }
                if let Some(event) = scoped(&state, &caller, &change).await {
                    return Some((Ok(event), (None, receiver, state, caller, open)));
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// How often an idle stream checks its session.
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
        let snapshot = state.snapshots.get(&state.db, caller.company()).await.ok()?;
        let user = snapshot.company.user(caller.id())?;
        let call = find_call(&state.db, caller.company(), call).await.ok()??;
        let visible = AppContext::ALL.iter().any(|app| {
            earshot_policy::Viewer::new(user, snapshot.company.settings(), snapshot.company.routing(), *app)
                .can_see(&call)
        });
        if !visible {
            return None;
        }
    }
    let data = serde_json::to_string(change).ok()?;
    Some(Event::default().event("change").data(data))
}

/// Counts an open stream in the metrics for as long as it lives.
struct StreamGuard(std::sync::Arc<crate::metrics::Metrics>);

impl StreamGuard {
    fn new(state: &AppState) -> Self {
        state.metrics.event_streams.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(std::sync::Arc::clone(&state.metrics))
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.event_streams.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
