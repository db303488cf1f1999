//! `GET /api/v1/sync`: the snapshot an app needs to decide rights locally
//! (SPEC §1, §7): company settings, the caller, the users directory, groups,
//! and numbers with their flows (routing is read from them), at a version.

use super::Json;
use crate::auth::Caller;
use crate::error::ApiResult;
use earshot_policy::Role;

pub use earshot_api::{CompanyInfo, DirectoryEntry, SyncSnapshot};

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
                available: caller.snapshot.available(user.id),
                groups: user.groups.clone(),
                settings: admin.then(|| user.settings.clone()),
            })
            .collect(),
        groups: company.groups().to_vec(),
        numbers: company.numbers().to_vec(),
    }))
}
