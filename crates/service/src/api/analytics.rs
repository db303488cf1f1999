//! `GET /api/v1/analytics/summary`: aggregates of the calls visible in the
//! analytics context (SPEC §4.3, D2), computed in SQL under `policy`'s filter.
//! Days are UTC days.

use super::{Json, Query};
use crate::AppState;
use crate::auth::Caller;
use crate::calls::push_visibility;
use crate::db;
use crate::error::ApiResult;
use axum::extract::State;
pub use earshot_api::{Day, Row, Summary, Totals};
use earshot_policy::{AppContext, Viewer};
use serde::Deserialize;
use sqlx::Row as _;
use std::collections::BTreeMap;

const DAY_MS: i64 = 86_400_000;

/// Query of the summary.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    /// Calls started at or after (ms since the epoch); default 30 days before `to`.
    pub from: Option<i64>,
    /// Calls started before; default now.
    pub to: Option<i64>,
}

const TOTALS: &str = "COUNT(DISTINCT c.id) AS calls, \
     COUNT(DISTINCT CASE WHEN c.status = 'answered' THEN c.id END) AS answered, \
     CAST(COALESCE(SUM(CASE WHEN c.status = 'answered' AND c.answered_at IS NOT NULL AND c.ended_at IS NOT NULL \
                  THEN c.ended_at - c.answered_at ELSE 0 END), 0) AS BIGINT) AS talk_ms, \
     COUNT(DISTINCT CASE WHEN c.status = 'answered' AND EXISTS (SELECT 1 FROM recordings r WHERE r.call_id = c.id AND r.kind = 'call') THEN c.id END) AS recorded";

fn totals(row: &sqlx::any::AnyRow) -> Result<Totals, sqlx::Error> {
    Ok(Totals {
        calls: row.try_get("calls")?,
        answered: row.try_get("answered")?,
        talk_ms: row.try_get("talk_ms")?,
        recorded: row.try_get("recorded")?,
    })
}

/// `GET /api/v1/analytics/summary`.
#[utoipa::path(get, path = "/api/v1/analytics/summary", tag = "analytics", security(("bearer" = [])), params(SummaryQuery), responses((status = 200, description = "The summary; a range that ends before it starts holds no calls", body = Summary)))]
pub async fn summary(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<SummaryQuery>,
) -> ApiResult<Json<Summary>> {
    let to = query.to.unwrap_or_else(crate::now_millis);
    let from = query.from.unwrap_or_else(|| to.saturating_sub(30 * DAY_MS));
    Ok(Json(summarize(&state, &caller.viewer(AppContext::Analytics), from, to).await?))
}

/// The summary of the calls `viewer` sees that started in `from..to`.
pub async fn summarize(state: &AppState, viewer: &Viewer, from: i64, to: i64) -> ApiResult<Summary> {
    let filter = viewer.visibility_filter();
    let base = |select: &str, join: &str, group: &str| {
        let mut q = db::Query::new(&format!("SELECT {select} FROM calls c {join} WHERE c.started_at >= "));
        q.bind(from).push(" AND c.started_at < ").bind(to);
        push_visibility(&mut q, &filter);
        q.push(group);
        q
    };
    let db = &state.db;
    let pool = db.pool();
    let row = db.fetch_optional(pool, &base(TOTALS, "", "")).await?;
    // SUM is NULL over no rows, and NUMERIC on PostgreSQL: hence COALESCE and CAST.
    let totals_all = row.as_ref().map(totals).transpose()?.unwrap_or_default();

    let mut by_direction = BTreeMap::new();
    let mut by_status = BTreeMap::new();
    let mut days: BTreeMap<i64, Day> = BTreeMap::new();
    let grouped = base(
        "c.started_at / 86400000 AS day, c.direction, c.status, COUNT(*) AS n",
        "",
        " GROUP BY c.started_at / 86400000, c.direction, c.status",
    );
    for row in db.fetch_all(pool, &grouped).await? {
        let day: i64 = row.try_get("day")?;
        let direction: String = row.try_get("direction")?;
        let status: String = row.try_get("status")?;
        let n: i64 = row.try_get("n")?;
        *by_direction.entry(direction.clone()).or_insert(0) += n;
        *by_status.entry(status.clone()).or_insert(0) += n;
        let entry = days.entry(day).or_insert_with(|| Day {
            day: day_name(day),
            by_direction: BTreeMap::new(),
            by_status: BTreeMap::new(),
        });
        *entry.by_direction.entry(direction).or_insert(0) += n;
        *entry.by_status.entry(status).or_insert(0) += n;
    }

    let per_user_query = base(
        &format!("cu.user_id AS key, {TOTALS}"),
        "JOIN call_users cu ON cu.call_id = c.id AND cu.relation = 'party'",
        " GROUP BY cu.user_id ORDER BY cu.user_id",
    );
    let per_user = db
        .fetch_all(pool, &per_user_query)
        .await?
        .iter()
        .map(|row| Ok(Row { key: row.try_get("key")?, totals: totals(row)? }))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    // One row per (call, group), however many of the group's members were on the call,
    // so talk time is counted once per group.
    let per_group_query = base(
        &format!("g.group_id AS key, {TOTALS}"),
        "JOIN (SELECT DISTINCT cu.call_id, gm.group_id FROM call_users cu \
         JOIN group_members gm ON gm.user_id = cu.user_id WHERE cu.relation = 'party') g ON g.call_id = c.id",
        " GROUP BY g.group_id ORDER BY g.group_id",
    );
    let per_group = db
        .fetch_all(pool, &per_group_query)
        .await?
        .iter()
        .map(|row| Ok(Row { key: row.try_get("key")?, totals: totals(row)? }))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;

    let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
    Ok(Summary {
        from,
        to,
        answered_rate: ratio(totals_all.answered, totals_all.calls),
        average_talk_ms: (totals_all.answered > 0).then(|| totals_all.talk_ms / totals_all.answered),
        recorded_share: ratio(totals_all.recorded, totals_all.answered),
        totals: totals_all,
        by_direction,
        by_status,
        per_day: days.into_values().collect(),
        per_user,
        per_group,
    })
}

fn day_name(day: i64) -> String {
    earshot_api::date(day * DAY_MS)
}
