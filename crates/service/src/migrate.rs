//! `earshotd move`: a single machine's installation (SQLite and recordings
//! on its disk) onto PostgreSQL and, when configured, S3, for growing to
//! several instances (docs/DEPLOYMENT.md).
//!
//! Every table is copied as it is, ids included, in one PostgreSQL
//! transaction (all or nothing), in the order of the migrations that made
//! them (a row's references come before it), then PostgreSQL's id
//! sequences are moved past the copied ids. The two schemas are kept in
//! step by the migrations, and hold only integers and text. Registrations
//! are not copied: phones register again within their expiry. Then each
//! recording goes to the store the way a finished call's does (uploaded,
//! checked, and only then deleted from the disk).

use crate::db::{Db, Query, Value};
use crate::store::Recordings;
use anyhow::Context as _;
use sqlx::{Column as _, Row as _, ValueRef as _};
use std::time::Duration;

/// The tables, references first (the order the migrations create them).
const TABLES: [&str; 13] = [
    "companies",
    "users",
    "groups",
    "group_members",
    "numbers",
    "contacts",
    "contact_numbers",
    "calls",
    "call_users",
    "recordings",
    "sessions",
    "audit_log",
    "device_credentials",
];

/// Rows read and written at a time.
const BATCH: i64 = 500;

/// What a move did.
#[derive(Debug, Default)]
pub struct Moved {
    /// Rows copied, per table.
    pub rows: Vec<(&'static str, u64)>,
    /// Recordings uploaded to the store (0 when they stay on disk).
    pub uploaded: u64,
}

/// Copies the database `from` into the empty database `to`, then moves the
/// recordings of `recordings`' spool to its store, if it has one.
///
/// # Errors
/// `to` is not empty or not PostgreSQL, a copy fails (nothing is kept of
/// it), or an upload does not finish within an hour.
pub async fn run(from: &Db, to: &Db, recordings: &Recordings) -> anyhow::Result<Moved> {
    anyhow::ensure!(
        to.backend() == crate::db::Backend::Postgres,
        "move to PostgreSQL: give a postgres:// URL to move to"
    );
    let existing = to.fetch_optional(to.pool(), &Query::new("SELECT id FROM companies LIMIT 1")).await?;
    anyhow::ensure!(
        existing.is_none(),
        "the database to move to already holds a company; move into an empty database only"
    );
    let mut moved = Moved::default();
    let mut tx = to.pool().begin().await?;
    for table in TABLES {
        let integers = integer_columns(to, &mut tx, table).await?;
        let mut copied = 0_u64;
        let mut offset = 0_i64;
        loop {
            let mut select = Query::new(&format!("SELECT * FROM {table} ORDER BY rowid LIMIT "));
            select.bind(BATCH).push(" OFFSET ").bind(offset);
            let rows =
                from.fetch_all(from.pool(), &select).await.with_context(|| format!("reading {table}"))?;
            for row in &rows {
                let mut insert = Query::new(&format!("INSERT INTO {table} ("));
                let columns: Vec<&str> = row.columns().iter().map(sqlx::Column::name).collect();
                insert.push(&columns.join(", ")).push(") VALUES (");
                for (i, column) in row.columns().iter().enumerate() {
                    if i > 0 {
                        insert.push(", ");
                    }
                    let integer = integers.iter().any(|name| name == column.name());
                    insert.bind(value(row, column.ordinal(), integer)?);
                }
                insert.push(")");
                to.execute(&mut *tx, &insert).await.with_context(|| format!("writing {table}"))?;
            }
            copied += rows.len() as u64;
            offset += BATCH;
            if i64::try_from(rows.len()).unwrap_or(BATCH) < BATCH {
                break;
            }
        }
        if has_id(to, &mut tx, table).await? {
            let reset = Query::new(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)"
            ));
            to.execute(&mut *tx, &reset).await.with_context(|| format!("moving {table}'s ids on"))?;
        }
        moved.rows.push((table, copied));
    }
    tx.commit().await?;
    if let Some(stats) = recordings.upload_stats() {
        let queued = recordings.upload_spooled() as u64;
        let started = std::time::Instant::now();
        while stats.uploaded.load(std::sync::atomic::Ordering::Relaxed) < queued {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(3_600),
                "the recordings did not finish uploading within an hour; what is left stays in the data \
                 directory and goes up when earshotd starts with this configuration"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        moved.uploaded = queued;
    }
    Ok(moved)
}

/// One value of an SQLite row, for a PostgreSQL column of integers or of
/// text (the only two kinds the schema has).
fn value(row: &sqlx::any::AnyRow, index: usize, integer: bool) -> anyhow::Result<Value> {
    let null = row.try_get_raw(index)?.is_null();
    Ok(match (integer, null) {
        (true, true) => Value::OptInt(None),
        (true, false) => Value::Int(row.try_get::<i64, _>(index)?),
        (false, true) => Value::OptText(None),
        (false, false) => Value::Text(row.try_get::<String, _>(index)?),
    })
}

/// The columns of `table` that hold integers, in PostgreSQL.
async fn integer_columns(
    to: &Db,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &str,
) -> anyhow::Result<Vec<String>> {
    let mut query =
        Query::new("SELECT column_name::text AS name FROM information_schema.columns WHERE table_name = ");
    query.bind(table).push(" AND data_type IN ('bigint', 'integer', 'smallint')");
    to.fetch_all(&mut **tx, &query)
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>("name").map_err(Into::into))
        .collect()
}

/// Whether `table` has an `id` column with a sequence in PostgreSQL.
async fn has_id(to: &Db, tx: &mut sqlx::Transaction<'_, sqlx::Any>, table: &str) -> anyhow::Result<bool> {
    let mut query = Query::new("SELECT pg_get_serial_sequence(");
    query.bind(table).push(", 'id')::text AS sequence FROM information_schema.columns WHERE table_name = ");
    query.bind(table).push(" AND column_name = 'id'");
    let row = to.fetch_optional(&mut **tx, &query).await?;
    Ok(match row {
        Some(row) => row.try_get::<Option<String>, _>("sequence")?.is_some(),
        None => false,
    })
}
