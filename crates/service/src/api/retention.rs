//! Legal holds and deletion on request (admins): `PUT /api/v1/calls/{id}/legal-hold`
//! and `DELETE /api/v1/contacts/{id}/recordings`. The company's retention
//! itself is a setting (`recording_retention_days`), applied by
//! [`crate::retention`].

use super::{Json, Path};
use crate::AppState;
use crate::auth::Caller;
use crate::calls::find_call;
use crate::db::Query;
use crate::error::{ApiError, ApiResult};
use crate::events::{Change, ChangeEvent};
use axum::extract::State;
use earshot_api::{CallOut, DeletedRecordings, LegalHoldIn};
use earshot_policy::{AppContext, CallId, DeletionReason};

/// Places or lifts a legal hold on a call: while held, none of its
/// recordings is deleted, by the retention or on request. Audited.
#[utoipa::path(put, path = "/api/v1/calls/{id}/legal-hold", tag = "calls", security(("bearer" = ["admin"])), params(("id" = i64, Path, description = "Call id")), request_body = LegalHoldIn, responses((status = 200, description = "The call, with its hold", body = CallOut), (status = 404, description = "No such call in your company")))]
pub async fn set_legal_hold(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(body): Json<LegalHoldIn>,
) -> ApiResult<Json<CallOut>> {
    caller.require_admin()?;
    let company = caller.company();
    let call = find_call(&state.db, company, CallId(id)).await?.ok_or_else(|| ApiError::not_found("call"))?;
    let now = crate::now_millis();
    let mut tx = state.db.pool().begin().await?;
    let mut query = Query::new("UPDATE calls SET legal_hold_by = ");
    if body.held {
        // A hold already placed keeps who placed it and when.
        query
            .push("COALESCE(legal_hold_by, ")
            .bind(caller.id().0)
            .push("), legal_hold_at = COALESCE(legal_hold_at, ")
            .bind(now)
            .push(")");
    } else {
        query.push("NULL, legal_hold_at = NULL");
    }
    query.push(" WHERE id = ").bind(call.id.0).push(" AND company_id = ").bind(company.0);
    state.db.execute(&mut *tx, &query).await?;
    if body.held != call.legal_hold.is_some() {
        let recording = call.recording.as_ref().or(call.voicemail.as_ref()).map(|r| r.id);
        let action = if body.held { "hold" } else { "release" };
        crate::retention::audit(&state, &mut tx, company, Some(caller.id()), action, recording, call.id, now)
            .await?;
    }
    let version = crate::company::bump_version(&state.db, &mut tx, company).await?;
    let event = ChangeEvent { company, version, change: Change::Call { call: call.id } };
    state.events.stage(&mut tx, &event).await?;
    tx.commit().await?;
    state.events.committed(event);
    let call = find_call(&state.db, company, call.id).await?.ok_or_else(|| ApiError::not_found("call"))?;
    Ok(Json(CallOut::stamp(&caller.viewer(AppContext::Dashboard), call)))
}

/// Deletes the recordings and voicemails of a contact's calls, on the
/// contact's request: the calls stay, marked "recording deleted" with who
/// and when. Calls on legal hold keep theirs (listed). Audited.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}/recordings", tag = "contacts", security(("bearer" = ["admin"])), params(("id" = i64, Path, description = "Contact id")), responses((status = 200, description = "What was deleted, and what a legal hold kept", body = DeletedRecordings), (status = 404, description = "No such contact in your company")))]
pub async fn delete_contact_recordings(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<DeletedRecordings>> {
    caller.require_admin()?;
    let company = caller.company();
    let mut query = Query::new("SELECT id FROM contacts WHERE id = ");
    query.bind(id).push(" AND company_id = ").bind(company.0);
    if state.db.fetch_optional(state.db.pool(), &query).await?.is_none() {
        return Err(ApiError::not_found("contact"));
    }
    let select = |held: bool| {
        let mut query = Query::new(
            "SELECT r.id, r.call_id FROM recordings r JOIN calls c ON c.id = r.call_id \
             WHERE r.deleted_at IS NULL AND r.company_id = ",
        );
        query.bind(company.0).push(" AND c.contact_id = ").bind(id);
        query.push(if held { " AND c.legal_hold_at IS NOT NULL" } else { " AND c.legal_hold_at IS NULL" });
        query.push(" ORDER BY r.id");
        query
    };
    let found = crate::retention::ids(state.db.fetch_all(state.db.pool(), &select(false)).await?)?;
    let now = crate::now_millis();
    let mut deleted = 0;
    for batch in found.chunks(500) {
        deleted += crate::retention::mark_deleted(
            &state,
            company,
            batch,
            Some(caller.id()),
            DeletionReason::Request,
            now,
        )
        .await?;
    }
    let held = crate::retention::ids(state.db.fetch_all(state.db.pool(), &select(true)).await?)?;
    let mut held_calls: Vec<CallId> = held.into_iter().map(|(_, call)| call).collect();
    held_calls.dedup();
    // The files go now; any the store keeps for the moment, at the next sweep.
    if let Err(error) = crate::retention::remove_files(&state, Some(company)).await {
        tracing::warn!(%error, "removing deleted recordings' files failed; the next sweep retries");
    }
    Ok(Json(DeletedRecordings { deleted, held_calls }))
}
