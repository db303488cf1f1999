//! Recordings kept only as long as they should be (issue 18, part 4): the
//! company's retention (`recording_retention_days`), applied by the service
//! itself; deletion of a contact's recordings on request; legal holds that
//! stop both.
//!
//! A deleted recording keeps its row: the call stays in the history and
//! shows the recording deleted, when, by whom and why (`Recording::deleted`),
//! and `policy` gives nobody the right to play it. Each deletion is written
//! to the audit log (`delete`, by the admin, or by nobody: the service) in
//! the same transaction that marks it. Its file goes after the commit, from
//! the spool and the store; a file that cannot be removed then is removed by
//! the next sweep (`file_gone` says which are done), so a crash between the
//! two loses nothing and leaves nothing behind.
//!
//! **Invariant**: nothing of a call on legal hold is deleted: every
//! selection and the marking itself exclude held calls, in SQL, inside the
//! marking's transaction.

use crate::AppState;
use crate::db::Query;
use crate::error::ApiError;
use crate::events::{Change, ChangeEvent};
use earshot_policy::{CallId, CompanyId, CompanySettings, DeletionReason, RecordingId, UserId};
use sqlx::Row as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often the service applies its companies' retention.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Recordings marked deleted in one transaction, at most.
const BATCH: i64 = 500;

const DAY_MS: i64 = 86_400_000;

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct RetentionStats {
    /// Recordings and voicemails the service deleted, past their retention.
    pub deleted_by_retention: AtomicU64,
    /// Recordings and voicemails an admin deleted on request.
    pub deleted_on_request: AtomicU64,
    /// Files of deleted recordings removed.
    pub files_removed: AtomicU64,
    /// Sweeps and removals that failed (retried at the next sweep).
    pub failures: AtomicU64,
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Recordings and voicemails marked deleted.
    pub deleted: u64,
    /// Files removed (of those, and of earlier deletions).
    pub files_removed: u64,
}

/// Applies the retention every [`SWEEP_EVERY`], from now on, until the
/// service stops. Several instances may sweep at once: marking is
/// idempotent, and so is removing a file.
pub fn start(state: AppState) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            sweep_logged(&state, None).await;
        }
    });
}

/// [`sweep`], its outcome logged; a failure is counted and left to the next sweep.
pub async fn sweep_logged(state: &AppState, only: Option<CompanyId>) {
    match sweep(state, crate::now_millis(), only).await {
        Ok(swept) if swept.deleted > 0 || swept.files_removed > 0 => {
            tracing::info!(
                deleted = swept.deleted,
                files_removed = swept.files_removed,
                "recordings past their retention deleted"
            );
        }
        Ok(_) => {}
        Err(error) => {
            state.metrics.retention.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%error, "applying the recordings' retention failed; the next sweep retries");
        }
    }
}

/// Deletes the recordings and voicemails of every company (or of `only`)
/// older than it keeps them at `now`, except those of calls on legal hold,
/// then removes the files of deleted recordings still on disk or in the store.
///
/// # Errors
/// The database failed (what was committed before stays done).
pub async fn sweep(state: &AppState, now: i64, only: Option<CompanyId>) -> Result<Swept, ApiError> {
    let mut swept = Swept::default();
    let mut query = Query::new("SELECT id, settings FROM companies");
    if let Some(company) = only {
        query.push(" WHERE id = ").bind(company.0);
    }
    for row in state.db.fetch_all(state.db.pool(), &query).await? {
        let company = CompanyId(row.try_get("id")?);
        let settings: CompanySettings =
            serde_json::from_str(&row.try_get::<String, _>("settings")?).unwrap_or_default();
        let Some(days) = settings.recording_retention_days else { continue };
        let cutoff = now.saturating_sub(i64::from(days).saturating_mul(DAY_MS));
        loop {
            let mut query = Query::new(
                "SELECT r.id, r.call_id FROM recordings r JOIN calls c ON c.id = r.call_id \
                 WHERE r.deleted_at IS NULL AND c.legal_hold_at IS NULL AND r.company_id = ",
            );
            query.bind(company.0).push(" AND c.started_at < ").bind(cutoff);
            query.push(" ORDER BY r.id LIMIT ").bind(BATCH);
            let found = ids(state.db.fetch_all(state.db.pool(), &query).await?)?;
            if found.is_empty() {
                break;
            }
            let marked = mark_deleted(state, company, &found, None, DeletionReason::Retention, now).await?;
            swept.deleted += marked;
            if marked == 0 {
                break; // all held or deleted meanwhile: nothing left to do now
            }
        }
    }
    swept.files_removed = remove_files(state, only).await?;
    Ok(swept)
}

/// `(id, call_id)` of rows of `recordings`.
pub fn ids(rows: Vec<sqlx::any::AnyRow>) -> Result<Vec<(RecordingId, CallId)>, sqlx::Error> {
    rows.iter().map(|row| Ok((RecordingId(row.try_get("id")?), CallId(row.try_get("call_id")?)))).collect()
}

/// Marks `recordings` of `company` deleted at `now` (those not deleted yet,
/// of calls not on legal hold), writes each to the audit log, and tells the
/// apps their calls changed; all in one transaction. Returns how many.
///
/// # Errors
/// The database failed; nothing is marked.
pub async fn mark_deleted(
    state: &AppState,
    company: CompanyId,
    recordings: &[(RecordingId, CallId)],
    by: Option<UserId>,
    reason: DeletionReason,
    now: i64,
) -> Result<u64, ApiError> {
    if recordings.is_empty() {
        return Ok(0);
    }
    let mut tx = state.db.pool().begin().await?;
    let mut query = Query::new("UPDATE recordings SET deleted_at = ");
    query
        .bind(now)
        .push(", deleted_by = ")
        .bind(by.map(|user| user.0))
        .push(", deleted_reason = ")
        .bind(reason.as_str())
        .push(" WHERE deleted_at IS NULL AND company_id = ")
        .bind(company.0)
        .push(" AND id IN ")
        .bind_list(recordings.iter().map(|(id, _)| id.0))
        .push(" AND call_id NOT IN (SELECT id FROM calls WHERE legal_hold_at IS NOT NULL AND company_id = ")
        .bind(company.0)
        .push(") RETURNING id, call_id");
    let marked = ids(state.db.fetch_all(&mut *tx, &query).await?)?;
    if marked.is_empty() {
        return Ok(0);
    }
    for (recording, call) in &marked {
        audit(state, &mut tx, company, by, "delete", Some(*recording), *call, now).await?;
    }
    let mut calls: Vec<CallId> = marked.iter().map(|(_, call)| *call).collect();
    calls.sort_unstable();
    calls.dedup();
    let version = crate::company::bump_version(&state.db, &mut tx, company).await?;
    let events: Vec<ChangeEvent> = calls
        .iter()
        .map(|call| ChangeEvent { company, version, change: Change::Call { call: *call } })
        .collect();
    for event in &events {
        state.events.stage(&mut tx, event).await?;
    }
    tx.commit().await?;
    for event in events {
        state.events.committed(event);
    }
    let count = marked.len() as u64;
    let counter = match reason {
        DeletionReason::Retention => &state.metrics.retention.deleted_by_retention,
        DeletionReason::Request => &state.metrics.retention.deleted_on_request,
    };
    counter.fetch_add(count, Ordering::Relaxed);
    Ok(count)
}

/// One line of the audit log, inside `tx`.
#[allow(clippy::too_many_arguments)]
pub async fn audit(
    state: &AppState,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    company: CompanyId,
    by: Option<UserId>,
    action: &str,
    recording: Option<RecordingId>,
    call: CallId,
    now: i64,
) -> Result<(), ApiError> {
    let mut query =
        Query::new("INSERT INTO audit_log (company_id, user_id, action, recording_id, call_id, at) VALUES (");
    query
        .bind(company.0)
        .push(", ")
        .bind(by.map(|user| user.0))
        .push(", ")
        .bind(action)
        .push(", ")
        .bind(recording.map(|id| id.0))
        .push(", ")
        .bind(call.0)
        .push(", ")
        .bind(now)
        .push(")");
    state.db.execute(&mut **tx, &query).await?;
    Ok(())
}

/// Removes the files of deleted recordings (of `only`, or of every
/// company) still in the spool or the store. Returns how many.
///
/// # Errors
/// The database failed. A file the store will not remove now is counted
/// as a failure and left for the next sweep.
pub async fn remove_files(state: &AppState, only: Option<CompanyId>) -> Result<u64, ApiError> {
    let mut removed = 0;
    let mut query =
        Query::new("SELECT id, file_name FROM recordings WHERE deleted_at IS NOT NULL AND file_gone = 0");
    if let Some(company) = only {
        query.push(" AND company_id = ").bind(company.0);
    }
    query.push(" ORDER BY id LIMIT 10000");
    for row in state.db.fetch_all(state.db.pool(), &query).await? {
        let id: i64 = row.try_get("id")?;
        let file_name: String = row.try_get("file_name")?;
        if let Err(error) = state.recordings.remove(&file_name).await {
            state.metrics.retention.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(recording = id, %error, "a deleted recording's file could not be removed; retried later");
            continue;
        }
        let mut query = Query::new("UPDATE recordings SET file_gone = 1 WHERE id = ");
        query.bind(id);
        state.db.execute(state.db.pool(), &query).await?;
        state.metrics.retention.files_removed.fetch_add(1, Ordering::Relaxed);
        removed += 1;
    }
    Ok(removed)
}
