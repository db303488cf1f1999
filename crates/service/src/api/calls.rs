//! Call history: `GET /api/v1/calls`, `GET /api/v1/calls/{id}`,
//! `GET /api/v1/contacts/{id}/calls`. Pages are filtered in SQL from
//! `policy`'s visibility filter and each call is stamped by `policy`.

use super::{Json, Path, Query};
use crate::AppState;
use crate::auth::Caller;
use crate::calls::{CALL_COLUMNS, calls_from_rows, find_call};
use crate::db;
use crate::error::{ApiError, ApiResult};
use base64::Engine as _;
use earshot_policy::{AppContext, Call, CallId, CallStatus, Viewer, VisibilityScope};

/// Most calls in one page.
pub const MAX_PAGE: u32 = 200;

pub use earshot_api::{AppQuery, CallOut, CallPage, CallsQuery};

fn encode_cursor(call: &Call) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}.{}", call.started_at.0, call.id.0))
}

fn decode_cursor(cursor: &str) -> ApiResult<(i64, i64)> {
    let bad =
        || ApiError::bad_request("The cursor is not one this service gave out. Start again without it.");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (started, id) = text.split_once('.').ok_or_else(bad)?;
    Ok((started.parse().map_err(|_| bad())?, id.parse().map_err(|_| bad())?))
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// One page of the calls `viewer` may see, filtered by `filters`.
pub async fn page(state: &AppState, viewer: &Viewer, filters: &CallsQuery) -> ApiResult<CallPage> {
    let limit = filters.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid_field("limit", format!("must be 1 to {MAX_PAGE}")));
    }
    let cursor = filters.cursor.as_deref().map(decode_cursor).transpose()?;
    let search = filters.q.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(like_pattern);
    // The user's filters and the cursor, over `calls c`; `time` and `id` name the
    // columns the cursor compares (an index's own columns, where a branch has one).
    let push_filters = |query: &mut db::Query, time: &str, id: &str| {
        if let Some(direction) = filters.direction {
            query.push(" AND c.direction = ").bind(direction.as_str());
        }
        if let Some(status) = filters.status {
            query.push(" AND c.status = ").bind(status.as_str());
        }
        if let Some(from) = filters.from {
            query.push(&format!(" AND {time} >= ")).bind(from);
        }
        if let Some(to) = filters.to {
            query.push(&format!(" AND {time} < ")).bind(to);
        }
        if let Some(user) = filters.user {
            query
                .push(" AND EXISTS (SELECT 1 FROM call_users fu WHERE fu.call_id = c.id AND fu.relation = 'party' AND fu.user_id = ")
                .bind(user)
                .push(")");
        }
        if let Some(number) = filters.number {
            query.push(" AND c.number_id = ").bind(number);
        }
        if let Some(group) = filters.group {
            query
                .push(
                    " AND EXISTS (SELECT 1 FROM call_users fg JOIN group_members gm ON gm.user_id = fg.user_id \
                     WHERE fg.call_id = c.id AND fg.relation = 'party' AND gm.group_id = ",
                )
                .bind(group)
                .push(")");
        }
        if let Some(contact) = filters.contact {
            query.push(" AND c.contact_id = ").bind(contact);
        }
        match filters.has_recording {
            Some(true) => query.push(
                " AND EXISTS (SELECT 1 FROM recordings r WHERE r.call_id = c.id AND r.deleted_at IS NULL)",
            ),
            Some(false) => query.push(
                " AND NOT EXISTS (SELECT 1 FROM recordings r WHERE r.call_id = c.id AND r.deleted_at IS NULL)",
            ),
            None => query,
        };
        if let Some(pattern) = &search {
            query
                .push(" AND (LOWER(COALESCE(c.external_number, '')) LIKE ")
                .bind(pattern.clone())
                .push(" ESCAPE '\\' OR EXISTS (SELECT 1 FROM contacts ct WHERE ct.id = c.contact_id AND LOWER(ct.name) LIKE ")
                .bind(pattern.clone())
                .push(" ESCAPE '\\'))");
        }
        if let Some((started_at, last_id)) = cursor {
            query
                .push(&format!(" AND ({time} < "))
                .bind(started_at)
                .push(&format!(" OR ({time} = "))
                .bind(started_at)
                .push(&format!(" AND {id} < "))
                .bind(last_id)
                .push("))");
        }
    };
    let fetch = i64::from(limit) + 1;
    let visibility = viewer.visibility_filter();
    let mut query = db::Query::new(&format!("SELECT {CALL_COLUMNS} FROM calls c WHERE c.company_id = "));
    query.bind(visibility.company.0);
    match &visibility.scope {
        VisibilityScope::Everything => push_filters(&mut query, "c.started_at", "c.id"),
        VisibilityScope::Restricted { party, numbers_any_status, numbers_missed_or_voicemail } => {
            // SPEC §4.2 as a union of branches, each walking an index in time order and
            // stopping at one page: the calls the user is a party of, then each routed
            // number (all statuses, or missed and voicemail only). The page is the newest
            // of the branches' pages. Scanning the whole history instead costs seconds for
            // a user who sees almost nothing.
            query
                .push(" AND c.id IN (SELECT id FROM (SELECT c.id FROM call_users cu JOIN calls c ON c.id = cu.call_id WHERE cu.user_id = ")
                .bind(party.0)
                .push(" AND cu.relation = 'party' AND c.company_id = ")
                .bind(visibility.company.0);
            push_filters(&mut query, "cu.started_at", "cu.call_id");
            query
                .push(" ORDER BY cu.started_at DESC, cu.call_id DESC LIMIT ")
                .bind(fetch)
                .push(") AS party_calls");
            let branches = numbers_any_status
                .iter()
                .map(|number| (number, false))
                .chain(numbers_missed_or_voicemail.iter().map(|number| (number, true)));
            for (i, (number, missed_only)) in branches.enumerate() {
                query
                    .push(" UNION ALL SELECT id FROM (SELECT c.id FROM calls c WHERE c.company_id = ")
                    .bind(visibility.company.0)
                    .push(" AND c.number_id = ")
                    .bind(number.0);
                if missed_only {
                    query
                        .push(" AND c.status IN ")
                        .bind_list(CallStatus::MISSED_OR_VOICEMAIL.iter().map(|s| s.as_str()));
                }
                push_filters(&mut query, "c.started_at", "c.id");
                query
                    .push(" ORDER BY c.started_at DESC, c.id DESC LIMIT ")
                    .bind(fetch)
                    .push(&format!(") AS number_calls_{i}"));
            }
            query.push(")");
        }
    }
    query.push(" ORDER BY c.started_at DESC, c.id DESC LIMIT ").bind(fetch);
    let rows = state.db.fetch_all(state.db.pool(), &query).await?;
    let mut calls = calls_from_rows(&state.db, state.db.pool(), rows).await?;
    let next_cursor = if calls.len() > limit as usize {
        calls.truncate(limit as usize);
        calls.last().map(encode_cursor)
    } else {
        None
    };
    let mut out = Vec::with_capacity(calls.len());
    for call in calls {
        // The SQL filter is policy's own description; this re-check costs nanoseconds and
        // turns any drift between the two into a log line instead of a leak.
        if viewer.can_see(&call) {
            out.push(CallOut::stamp(viewer, call));
        } else {
            tracing::error!(call = %call.id, user = %viewer.user(), "SQL visibility filter returned a call policy hides");
        }
    }
    Ok(CallPage { calls: out, next_cursor })
}

/// `GET /api/v1/calls`.
#[utoipa::path(get, path = "/api/v1/calls", tag = "calls", security(("bearer" = [])), params(CallsQuery), responses((status = 200, description = "A page of the calls you may see, newest first, each with can_play and can_download", body = CallPage), (status = 400, description = "Bad cursor or query"), (status = 422, description = "Bad limit")))]
pub async fn list_calls(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    Query(filters): Query<CallsQuery>,
) -> ApiResult<Json<CallPage>> {
    let viewer = caller.viewer(filters.app.unwrap_or(AppContext::Dashboard));
    Ok(Json(page(&state, &viewer, &filters).await?))
}

/// `GET /api/v1/calls/{id}`: 404 unless the call is the caller's company's and visible to them.
#[utoipa::path(get, path = "/api/v1/calls/{id}", tag = "calls", security(("bearer" = [])), params(("id" = i64, Path, description = "Call id"), AppQuery), responses((status = 200, body = CallOut), (status = 404, description = "No such call you may see")))]
pub async fn get_call(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<AppQuery>,
) -> ApiResult<Json<CallOut>> {
    let viewer = caller.viewer(query.app.unwrap_or(AppContext::Dashboard));
    let call = find_call(&state.db, caller.company(), CallId(id))
        .await?
        .filter(|call| viewer.can_see(call))
        .ok_or_else(|| ApiError::not_found("call"))?;
    Ok(Json(CallOut::stamp(&viewer, call)))
}

/// `GET /api/v1/contacts/{id}/calls`: the contact's calls the caller may see, filtered the same way.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/calls", tag = "contacts", security(("bearer" = [])), params(("id" = i64, Path, description = "Contact id"), CallsQuery), responses((status = 200, body = CallPage), (status = 404)))]
pub async fn contact_calls(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(mut filters): Query<CallsQuery>,
) -> ApiResult<Json<CallPage>> {
    let mut query = db::Query::new("SELECT id FROM contacts WHERE id = ");
    query.bind(id).push(" AND company_id = ").bind(caller.company().0);
    if state.db.fetch_optional(state.db.pool(), &query).await?.is_none() {
        return Err(ApiError::not_found("contact"));
    }
    filters.contact = Some(id);
    let viewer = caller.viewer(filters.app.unwrap_or(AppContext::Dashboard));
    Ok(Json(page(&state, &viewer, &filters).await?))
}
