//! The database: SQLite embedded by default, PostgreSQL when configured.
//!
//! One [`Db`] over sqlx's `Any` driver, so every query is written once. Queries
//! use PostgreSQL's `$1` placeholders; on SQLite they become `?1`, SQLite's
//! numbered placeholders, so a parameter may appear in any order or twice.
//! Schema changes are migrations, one directory per backend, kept in step.

use anyhow::Context as _;
use earshot_policy::UnknownName;
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Arguments as _, Executor as _};
use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

/// Why the storage layer could not do what was asked. It says what went
/// wrong, not what it means for the caller: the HTTP layer turns it into a
/// status (`ApiError`), the SIP side into a SIP answer, each logging the
/// cause as what it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed: unreachable, timed out, or it refused the statement.
    #[error("the database failed: {0}")]
    Database(#[from] sqlx::Error),
    /// Something stored can't be read back (broken JSON, an unknown name).
    #[error("stored data is broken: {0}")]
    Corrupt(String),
    /// There is no such thing.
    #[error("there is no such {0}")]
    NotFound(&'static str),
}

impl From<UnknownName> for StoreError {
    fn from(error: UnknownName) -> Self {
        Self::Corrupt(error.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        Self::Corrupt(format!("a stored JSON document: {error}"))
    }
}

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (WAL), the embedded default.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A value bound to a query.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A 64-bit integer (ids, times, counts, flags).
    Int(i64),
    /// An optional integer.
    OptInt(Option<i64>),
    /// Text (names, JSON documents).
    Text(String),
    /// Optional text.
    OptText(Option<String>),
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}
impl From<Option<i64>> for Value {
    fn from(value: Option<i64>) -> Self {
        Self::OptInt(value)
    }
}
impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}
impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}
impl From<Option<String>> for Value {
    fn from(value: Option<String>) -> Self {
        Self::OptText(value)
    }
}
impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Self::Int(i64::from(value))
    }
}

/// A query being built: SQL with `$n` placeholders and the values they stand for.
#[derive(Clone, Debug, Default)]
pub struct Query {
    sql: String,
    values: Vec<Value>,
}

impl Query {
    /// A query starting with `sql`, which must not contain placeholders.
    #[must_use]
    pub fn new(sql: &str) -> Self {
        Self { sql: sql.to_owned(), values: Vec::new() }
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        self.sql.push('$');
        self.sql.push_str(&self.values.len().to_string());
        self
    }

    /// Appends `(v1, v2, …)` with a placeholder for each value; `(NULL)` when empty, which matches nothing.
    pub fn bind_list<V: Into<Value>>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Self {
        self.sql.push('(');
        let mut any = false;
        for value in values {
            if any {
                self.sql.push_str(", ");
            }
            self.bind(value);
            any = true;
        }
        if !any {
            self.sql.push_str("NULL");
        }
        self.sql.push(')');
        self
    }

    /// The SQL text as written, with `$n` placeholders.
    #[must_use]
    pub fn sql(&self) -> &str {
        &self.sql
    }
}

/// The service's database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    url: Url,
}

/// The URL the pool connects to (its `Debug` hides the password).
#[derive(Clone)]
struct Url(std::sync::Arc<str>);

impl std::fmt::Debug for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Db {
    /// Opens the database: `database_url` when given (`postgres://…` or `sqlite://…`),
    /// else `earshot.db` in `data_dir`. Runs the migrations.
    pub async fn open(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let url = match database_url {
            Some(url) => url.to_owned(),
            None => {
                std::fs::create_dir_all(data_dir)
                    .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
                format!("sqlite://{}?mode=rwc", data_dir.join("earshot.db").display())
            }
        };
        Self::connect(&url).await
    }

    /// Connects to `url` and runs the migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            anyhow::bail!("unsupported database URL {url:?}: use postgres://… or sqlite://…");
        };
        // Validate early so a typo reads as one, not as a driver error.
        sqlx::any::AnyConnectOptions::from_str(url)
            .with_context(|| format!("reading the database URL {url:?}"))?;
        let options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        connection
                            .execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                            )
                            .await?;
                    }
                    Ok(())
                })
            });
        let pool = options
            .connect(url)
            .await
            .with_context(|| format!("connecting to the database {}", redact(url)))?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await.context("running the database migrations")?;
        Ok(Self { pool, backend, url: Url(url.into()) })
    }

    /// The URL it was opened with (for a connection of its own, such as
    /// the change listener's; it may hold a password, never show it).
    #[must_use]
    pub(crate) fn url(&self) -> &str {
        &self.url.0
    }

    /// Which database this is.
    #[must_use]
    pub const fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for transactions.
    #[must_use]
    pub const fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The query's SQL in this backend's dialect.
    #[must_use]
    pub fn dialect<'q>(&self, sql: &'q str) -> Cow<'q, str> {
        match self.backend {
            Backend::Postgres => Cow::Borrowed(sql),
            Backend::Sqlite => Cow::Owned(sql.replace('$', "?")),
        }
    }

    /// Runs `query` and returns its rows.
    pub async fn fetch_all<'e, E>(&self, executor: E, query: &Query) -> sqlx::Result<Vec<AnyRow>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let sql = self.dialect(&query.sql);
        executor.fetch_all(sqlx::query_with(&sql, arguments(&query.values)?)).await
    }

    /// Runs `query` and returns its one row, if any.
    pub async fn fetch_optional<'e, E>(&self, executor: E, query: &Query) -> sqlx::Result<Option<AnyRow>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let sql = self.dialect(&query.sql);
        executor.fetch_optional(sqlx::query_with(&sql, arguments(&query.values)?)).await
    }

    /// Runs an `INSERT … RETURNING id` and returns the new row's id.
    pub async fn insert_returning_id<'e, E>(&self, executor: E, query: &Query) -> sqlx::Result<i64>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        use sqlx::Row as _;
        self.fetch_optional(executor, query).await?.ok_or(sqlx::Error::RowNotFound)?.try_get("id")
    }

    /// Runs `query` and returns how many rows it changed.
    pub async fn execute<'e, E>(&self, executor: E, query: &Query) -> sqlx::Result<u64>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let sql = self.dialect(&query.sql);
        Ok(executor.execute(sqlx::query_with(&sql, arguments(&query.values)?)).await?.rows_affected())
    }
}

fn arguments(values: &[Value]) -> sqlx::Result<AnyArguments<'static>> {
    let mut arguments = AnyArguments::default();
    for value in values {
        let added = match value {
            Value::Int(v) => arguments.add(*v),
            Value::OptInt(v) => arguments.add(*v),
            Value::Text(v) => arguments.add(v.clone()),
            Value::OptText(v) => arguments.add(v.clone()),
        };
        added.map_err(sqlx::Error::Encode)?;
    }
    Ok(arguments)
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A `$`-free check: values are always bound, never spliced, so a `$` in SQL text
/// would be mistaken for a placeholder on SQLite.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered_on_sqlite() {
        let mut query = Query::new("SELECT 1 WHERE a = ");
        query.bind(1).push(" AND b IN ").bind_list([2, 3]).push(" AND c IN ").bind_list(Vec::<i64>::new());
        assert_eq!(query.sql(), "SELECT 1 WHERE a = $1 AND b IN ($2, $3) AND c IN (NULL)");
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact("postgres://earshot:secret@localhost/earshot"),
            "postgres://earshot:***@localhost/earshot"
        );
        assert_eq!(redact("sqlite://earshot.db"), "sqlite://earshot.db");
    }
}
