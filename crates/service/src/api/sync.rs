//! `GET /api/v1/sync`: the snapshot an app needs to decide rights locally
//! (SPEC §1, §7): company settings, the caller, the users directory, groups,
//! and numbers with their flows (routing is read from them), at a version.

use super::Json;
use crate::auth::Caller;
use crate::error::ApiResult;
use earshot_policy::{CompanyId, CompanySettings, Group, GroupId, Number, Role, User, UserId};
use serde::Serialize;

/// What every app syncs.
#[derive(Debug, Serialize)]
pub struct SyncSnapshot {
    /// The company's version: every change of what follows bumps it.
    pub version: i64,
    /// The company.
    pub company: CompanyInfo,
    /// Company settings (SPEC §3).
    pub settings: CompanySettings,
    /// The caller, with their own settings.
    pub me: User,
    /// Everyone in the company. Admins get each user's settings; others get `settings: null`.
    pub users: Vec<DirectoryEntry>,
    /// Groups.
    pub groups: Vec<Group>,
    /// Numbers with their call flows.
    pub numbers: Vec<Number>,
}

/// The company's id and name.
#[derive(Debug, Serialize)]
pub struct CompanyInfo {
    /// Id.
    pub id: CompanyId,
    /// Name.
    pub name: String,
}

/// A user as others see them.
#[derive(Debug, Serialize)]
pub struct DirectoryEntry {
    /// Id.
    pub id: UserId,
    /// Name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Role.
    pub role: Role,
    /// SIP extension.
    pub extension: Option<String>,
    /// Groups.
    pub groups: Vec<GroupId>,
    /// Own settings, for admins only.
    pub settings: Option<earshot_policy::UserSettings>,
}

/// `GET /api/v1/sync`.
pub async fn sync(caller: Caller) -> ApiResult<Json<SyncSnapshot>> {
    let snapshot = &caller.snapshot;
    let company = &snapshot.company;
    let admin = caller.user.role == Role::Admin;
    Ok(Json(SyncSnapshot {
        version: snapshot.version,
        company: CompanyInfo { id: company.id(), name: snapshot.name.clone() },
        settings: company.settings().clone(),
        me: caller.user.clone(),
        users: company
            .users()
            .iter()
            .map(|user| DirectoryEntry {
                id: user.id,
                name: user.name.clone(),
                email: user.email.clone(),
                role: user.role,
                extension: user.extension.clone(),
                groups: user.groups.clone(),
                settings: admin.then(|| user.settings.clone()),
            })
            .collect(),
        groups: company.groups().to_vec(),
        numbers: company.numbers().to_vec(),
    }))
}
