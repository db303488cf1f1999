//! A company as the rules see it (`earshot_policy::Company`), loaded from the
//! database and kept per company until its version changes.
//!
//! Every change apps must sync bumps `companies.version` in the same
//! transaction, so a request that reads the version reads a consistent
//! snapshot; several `earshotd` processes on one database stay correct.

use crate::db::{Db, Query, StoreError};
use earshot_policy::{
    Company, CompanyId, CompanySettings, Flow, Group, GroupId, Number, NumberId, User, UserId,
};
use sqlx::Row as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One company at one version.
#[derive(Clone, Debug)]
pub struct CompanySnapshot {
    /// The company's display name.
    pub name: String,
    /// Bumped on every change of settings, users, groups or numbers.
    pub version: i64,
    /// The company as the rules see it.
    pub company: Company,
    /// Users who set "Do not disturb": calls pass them by.
    pub do_not_disturb: std::collections::HashSet<UserId>,
}

impl CompanySnapshot {
    /// Whether `user` takes calls now.
    #[must_use]
    pub fn available(&self, user: UserId) -> bool {
        !self.do_not_disturb.contains(&user)
    }
}

/// Snapshots by company, refreshed when the stored version moves on.
#[derive(Debug, Default)]
pub struct Snapshots {
    cache: Mutex<HashMap<CompanyId, Arc<CompanySnapshot>>>,
}

impl Snapshots {
    /// The current snapshot of `company`.
    pub async fn get(&self, db: &Db, company: CompanyId) -> Result<Arc<CompanySnapshot>, StoreError> {
        let mut query = Query::new("SELECT version FROM companies WHERE id = ");
        query.bind(company.0);
        let row = db.fetch_optional(db.pool(), &query).await?.ok_or(StoreError::NotFound("company"))?;
        let version: i64 = row.try_get("version")?;
        if let Some(cached) = self.lock().get(&company).filter(|cached| cached.version == version) {
            return Ok(Arc::clone(cached));
        }
        let loaded = Arc::new(load(db, company).await?);
        self.lock().insert(company, Arc::clone(&loaded));
        Ok(loaded)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CompanyId, Arc<CompanySnapshot>>> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Reads `company` whole. The version is read first, in the same transaction,
/// so the snapshot is never newer than the version it carries.
pub async fn load(db: &Db, company: CompanyId) -> Result<CompanySnapshot, StoreError> {
    let mut tx = db.pool().begin().await?;
    let mut query = Query::new("SELECT name, version, settings FROM companies WHERE id = ");
    query.bind(company.0);
    let row = db.fetch_optional(&mut *tx, &query).await?.ok_or(StoreError::NotFound("company"))?;
    let name: String = row.try_get("name")?;
    let version: i64 = row.try_get("version")?;
    let settings: CompanySettings = parse_json(&row.try_get::<String, _>("settings")?)?;

    let mut query = Query::new(
        "SELECT m.user_id, m.group_id FROM group_members m JOIN groups g ON g.id = m.group_id WHERE g.company_id = ",
    );
    query.bind(company.0).push(" ORDER BY m.group_id");
    let mut memberships: HashMap<i64, Vec<GroupId>> = HashMap::new();
    for row in db.fetch_all(&mut *tx, &query).await? {
        memberships.entry(row.try_get("user_id")?).or_default().push(GroupId(row.try_get("group_id")?));
    }

    let mut query = Query::new(
        "SELECT id, name, email, role, extension, settings, do_not_disturb FROM users WHERE company_id = ",
    );
    query.bind(company.0).push(" ORDER BY id");
    let mut users = Vec::new();
    let mut do_not_disturb = std::collections::HashSet::new();
    for row in db.fetch_all(&mut *tx, &query).await? {
        let id: i64 = row.try_get("id")?;
        if row.try_get::<i64, _>("do_not_disturb")? != 0 {
            do_not_disturb.insert(UserId(id));
        }
        users.push(User {
            id: UserId(id),
            company,
            name: row.try_get("name")?,
            email: row.try_get("email")?,
            role: parse_name(&row.try_get::<String, _>("role")?)?,
            extension: row.try_get("extension")?,
            groups: memberships.remove(&id).unwrap_or_default(),
            settings: parse_json(&row.try_get::<String, _>("settings")?)?,
        });
    }

    let mut query = Query::new("SELECT id, name FROM groups WHERE company_id = ");
    query.bind(company.0).push(" ORDER BY id");
    let groups = db
        .fetch_all(&mut *tx, &query)
        .await?
        .into_iter()
        .map(|row| Ok(Group { id: GroupId(row.try_get("id")?), company, name: row.try_get("name")? }))
        .collect::<Result<Vec<_>, StoreError>>()?;

    let mut query = Query::new("SELECT id, e164, name, flow FROM numbers WHERE company_id = ");
    query.bind(company.0).push(" ORDER BY id");
    let numbers = db
        .fetch_all(&mut *tx, &query)
        .await?
        .into_iter()
        .map(|row| {
            Ok(Number {
                id: NumberId(row.try_get("id")?),
                company,
                e164: row.try_get("e164")?,
                name: row.try_get("name")?,
                flow: parse_json::<Flow>(&row.try_get::<String, _>("flow")?)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    tx.commit().await?;

    let company = Company::new(company, settings, users, groups, numbers)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(CompanySnapshot { name, version, company, do_not_disturb })
}

/// A stored JSON document; a broken one is our fault, not the caller's.
pub fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    Ok(serde_json::from_str(text)?)
}

/// A stored name of a policy enum.
pub fn parse_name<T: std::str::FromStr<Err = earshot_policy::UnknownName>>(
    text: &str,
) -> Result<T, StoreError> {
    Ok(text.parse()?)
}
