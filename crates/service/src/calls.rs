//! Calls in the database: reading them back as `earshot_policy::Call`, and
//! writing new ones (from the SIP side, imports and the demo).

use crate::db::{Db, Query, StoreError};
use crate::snapshot::{parse_json, parse_name};
use earshot_policy::{
    Call, CallId, CompanyId, ContactId, Deletion, LegalHold, NumberId, PausedSpan, Recording, RecordingId,
    RecordingKind, Timestamp, UserId,
};
use sqlx::Row as _;
use sqlx::any::AnyRow;
use std::collections::HashMap;

/// The columns of `calls` that [`calls_from_rows`] reads, prefixed `c.`.
pub const CALL_COLUMNS: &str = "c.id, c.company_id, c.direction, c.status, c.started_at, c.answered_at, c.ended_at, \
     c.number_id, c.external_number, c.contact_id, c.decided_by, c.recording_trace, c.legal_hold_by, c.legal_hold_at";

/// The columns of `recordings` that [`recording_from_row`] reads.
pub const RECORDING_COLUMNS: &str =
    "id, call_id, kind, duration_ms, size_bytes, paused_spans, deleted_at, deleted_by, deleted_reason";

/// Builds calls from rows of [`CALL_COLUMNS`], with their parties, rang lists and recordings.
pub async fn calls_from_rows<'e, E>(db: &Db, executor: E, rows: Vec<AnyRow>) -> Result<Vec<Call>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any> + Copy,
{
    let mut calls = Vec::with_capacity(rows.len());
    for row in rows {
        calls.push(Call {
            id: CallId(row.try_get("id")?),
            company: CompanyId(row.try_get("company_id")?),
            direction: parse_name(&row.try_get::<String, _>("direction")?)?,
            status: parse_name(&row.try_get::<String, _>("status")?)?,
            started_at: Timestamp(row.try_get("started_at")?),
            answered_at: row.try_get::<Option<i64>, _>("answered_at")?.map(Timestamp),
            ended_at: row.try_get::<Option<i64>, _>("ended_at")?.map(Timestamp),
            number: row.try_get::<Option<i64>, _>("number_id")?.map(NumberId),
            external_number: row.try_get("external_number")?,
            contact: row.try_get::<Option<i64>, _>("contact_id")?.map(ContactId),
            parties: Vec::new(),
            rang: Vec::new(),
            recording: None,
            voicemail: None,
            decided_by: row
                .try_get::<Option<String>, _>("decided_by")?
                .map(|name| parse_name(&name))
                .transpose()?,
            recording_trace: parse_json(&row.try_get::<String, _>("recording_trace")?)?,
            legal_hold: match (
                row.try_get::<Option<i64>, _>("legal_hold_by")?,
                row.try_get::<Option<i64>, _>("legal_hold_at")?,
            ) {
                (Some(by), Some(at)) => Some(LegalHold { by: UserId(by), at: Timestamp(at) }),
                _ => None,
            },
        });
    }
    if calls.is_empty() {
        return Ok(calls);
    }
    let index: HashMap<CallId, usize> = calls.iter().enumerate().map(|(i, call)| (call.id, i)).collect();
    let ids: Vec<i64> = calls.iter().map(|call| call.id.0).collect();

    let mut query = Query::new("SELECT call_id, user_id, relation FROM call_users WHERE call_id IN ");
    query.bind_list(ids.iter().copied()).push(" ORDER BY call_id, user_id");
    for row in db.fetch_all(executor, &query).await? {
        let call = &mut calls[index[&CallId(row.try_get("call_id")?)]];
        let user = UserId(row.try_get("user_id")?);
        match row.try_get::<String, _>("relation")?.as_str() {
            "party" => call.parties.push(user),
            _ => call.rang.push(user),
        }
    }

    let mut query = Query::new(&format!("SELECT {RECORDING_COLUMNS} FROM recordings WHERE call_id IN "));
    query.bind_list(ids);
    for row in db.fetch_all(executor, &query).await? {
        let call = &mut calls[index[&CallId(row.try_get("call_id")?)]];
        let recording = recording_from_row(&row)?;
        match recording.kind {
            RecordingKind::Call => call.recording = Some(recording),
            RecordingKind::Voicemail => call.voicemail = Some(recording),
        }
    }
    Ok(calls)
}

/// A recording from a row of `recordings`.
pub fn recording_from_row(row: &AnyRow) -> Result<Recording, StoreError> {
    Ok(Recording {
        id: RecordingId(row.try_get("id")?),
        call: CallId(row.try_get("call_id")?),
        kind: parse_name(&row.try_get::<String, _>("kind")?)?,
        duration_ms: u64::try_from(row.try_get::<i64, _>("duration_ms")?).unwrap_or(0),
        size_bytes: u64::try_from(row.try_get::<i64, _>("size_bytes")?).unwrap_or(0),
        paused_spans: parse_json::<Vec<PausedSpan>>(&row.try_get::<String, _>("paused_spans")?)?,
        deleted: match row.try_get::<Option<i64>, _>("deleted_at")? {
            Some(at) => Some(Deletion {
                at: Timestamp(at),
                by: row.try_get::<Option<i64>, _>("deleted_by")?.map(UserId),
                reason: parse_name(&row.try_get::<Option<String>, _>("deleted_reason")?.unwrap_or_default())?,
            }),
            None => None,
        },
    })
}

/// One call of `company`, if it exists.
pub async fn find_call(db: &Db, company: CompanyId, id: CallId) -> Result<Option<Call>, StoreError> {
    let mut query = Query::new(&format!("SELECT {CALL_COLUMNS} FROM calls c WHERE c.id = "));
    query.bind(id.0).push(" AND c.company_id = ").bind(company.0);
    let rows = db.fetch_all(db.pool(), &query).await?;
    Ok(calls_from_rows(db, db.pool(), rows).await?.pop())
}

/// A recording file to store with a new call.
#[derive(Clone, Debug)]
pub struct RecordingFile {
    /// What it is, with its duration, size and paused spans (`id` and `call` are assigned).
    pub recording: Recording,
    /// Its file name under the recordings directory.
    pub file_name: String,
}

/// Writes `call` (its `id` is assigned; recordings' ids too) inside `tx`; returns the new id.
pub async fn insert_call(
    db: &Db,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    call: &Call,
    files: &[RecordingFile],
) -> Result<CallId, StoreError> {
    let trace = serde_json::to_string(&call.recording_trace)?;
    let mut query = Query::new(
        "INSERT INTO calls (company_id, direction, status, started_at, answered_at, ended_at, number_id, \
         external_number, contact_id, decided_by, recording_trace) VALUES (",
    );
    query
        .bind(call.company.0)
        .push(", ")
        .bind(call.direction.as_str())
        .push(", ")
        .bind(call.status.as_str())
        .push(", ")
        .bind(call.started_at.0)
        .push(", ")
        .bind(call.answered_at.map(|t| t.0))
        .push(", ")
        .bind(call.ended_at.map(|t| t.0))
        .push(", ")
        .bind(call.number.map(|n| n.0))
        .push(", ")
        .bind(call.external_number.clone())
        .push(", ")
        .bind(call.contact.map(|c| c.0))
        .push(", ")
        .bind(call.decided_by.map(|d| d.as_str().to_owned()))
        .push(", ")
        .bind(trace)
        .push(") RETURNING id");
    let id = CallId(db.insert_returning_id(&mut **tx, &query).await?);
    let mut users: Vec<(UserId, &str)> = call.parties.iter().map(|u| (*u, "party")).collect();
    users.extend(call.rang.iter().map(|u| (*u, "rang")));
    users.sort_unstable();
    users.dedup();
    for (user, relation) in users {
        let mut query = Query::new(
            "INSERT INTO call_users (call_id, user_id, relation, company_id, started_at) VALUES (",
        );
        query
            .bind(id.0)
            .push(", ")
            .bind(user.0)
            .push(", ")
            .bind(relation)
            .push(", ")
            .bind(call.company.0)
            .push(", ")
            .bind(call.started_at.0)
            .push(")");
        db.execute(&mut **tx, &query).await?;
    }
    for file in files {
        let recording = &file.recording;
        let spans = serde_json::to_string(&recording.paused_spans)?;
        let mut query = Query::new(
            "INSERT INTO recordings (company_id, call_id, kind, duration_ms, size_bytes, paused_spans, file_name) VALUES (",
        );
        query
            .bind(call.company.0)
            .push(", ")
            .bind(id.0)
            .push(", ")
            .bind(recording.kind.as_str())
            .push(", ")
            .bind(i64::try_from(recording.duration_ms).unwrap_or(i64::MAX))
            .push(", ")
            .bind(i64::try_from(recording.size_bytes).unwrap_or(i64::MAX))
            .push(", ")
            .bind(spans)
            .push(", ")
            .bind(file.file_name.clone())
            .push(")");
        db.execute(&mut **tx, &query).await?;
    }
    Ok(id)
}

/// Appends ` AND (…)`: the SQL form of `policy`'s visibility filter over
/// `calls c` (SPEC §4.2, D8). The differential tests prove it selects exactly
/// the calls `Viewer::can_see` shows.
pub fn push_visibility(query: &mut Query, filter: &earshot_policy::VisibilityFilter) {
    use earshot_policy::{CallStatus, VisibilityScope};
    query.push(" AND c.company_id = ").bind(filter.company.0);
    match &filter.scope {
        VisibilityScope::Everything => {}
        VisibilityScope::Restricted { party, numbers_any_status, numbers_missed_or_voicemail } => {
            query
                .push(" AND (EXISTS (SELECT 1 FROM call_users cu WHERE cu.call_id = c.id AND cu.relation = 'party' AND cu.user_id = ")
                .bind(party.0)
                .push(")");
            if !numbers_any_status.is_empty() {
                query.push(" OR c.number_id IN ").bind_list(numbers_any_status.iter().map(|n| n.0));
            }
            if !numbers_missed_or_voicemail.is_empty() {
                query
                    .push(" OR (c.status IN ")
                    .bind_list(CallStatus::MISSED_OR_VOICEMAIL.iter().map(|s| s.as_str()))
                    .push(" AND c.number_id IN ")
                    .bind_list(numbers_missed_or_voicemail.iter().map(|n| n.0))
                    .push(")");
            }
            query.push(")");
        }
    }
}
