//! `GET /api/v1/sync`: the snapshot an app needs to decide rights locally
//! (SPEC §1, §7): company settings, the caller, the users directory, groups,
//! and numbers with their flows (routing is read from them), at a version.

use super::Json;
use crate::auth::Caller;
use crate::error::ApiResult;
use earshot_policy::{CompanyId, CompanySettings, Group, GroupId, Number, Role, User, UserId};
use serde::Serialize;

/// What every app syncs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SyncSnapshot {
    /// The company's version: every change of what follows bumps it.
    pub version: i64,
    /// The company.
    pub company: CompanyInfo,
    /// Company settings (SPEC §3).
    #[schema(value_type = Object)]
    pub settings: CompanySettings,
    /// The caller, with their own settings.
    #[schema(value_type = Object)]
    pub me: User,
    /// Everyone in the company. Admins get each user's settings; others get `settings: null`.
    pub users: Vec<DirectoryEntry>,
    /// Groups.
    #[schema(value_type = Vec<Object>)]
    pub groups: Vec<Group>,
    /// Numbers with their call flows.
    #[schema(value_type = Vec<Object>)]
    pub numbers: Vec<Number>,
}

/// The company's id and name.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CompanyInfo {
    /// Id.
    #[schema(value_type = i64)]
    pub id: CompanyId,
    /// Name.
    pub name: String,
}

/// A user as others see them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DirectoryEntry {
    /// Id.
    #[schema(value_type = i64)]
    pub id: UserId,
    /// Name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Role.
    #[schema(value_type = String)]
    pub role: Role,
    /// SIP extension.
    pub extension: Option<String>,
    /// Groups.
    #[schema(value_type = Vec<i64>)]
    pub groups: Vec<GroupId>,
    /// Own settings, for admins only.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<earshot_policy::UserSettings>,
}

/// `GET /api/v1/sync`.
#[utoipa::path(get, path = "/api/v1/sync", tag = "sync", security(("bearer" = [])), responses((status = 200, description = "The snapshot an app decides rights from", body = SyncSnapshot)))]
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
