//! Company settings, users, groups, numbers (with call flows) and contacts.
//! Everyone in the company may read groups, numbers and contacts; only admins
//! change anything. Every change bumps the company's version and is pushed.

use super::{Json, Path};
use crate::AppState;
use crate::auth::{Caller, hash_password};
use crate::company::{
    bump_version, check_e164, check_extension, check_name, check_password_field, normalize_email,
};
use crate::db::Query;
use crate::error::{ApiError, ApiResult, FieldProblem};
use crate::events::{Change, ChangeEvent};
use axum::extract::State;
use axum::http::StatusCode;
use earshot_api::rules;
use earshot_policy::{CompanyId, CompanySettings, ContactId, GroupId, Number, NumberId, Role, UserId};
use serde::Serialize;
use sqlx::Row as _;

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Bumps the version, commits, and tells connected apps.
pub(super) async fn commit_change(
    state: &AppState,
    mut tx: Tx,
    company: CompanyId,
    change: Change,
) -> ApiResult<i64> {
    let version = bump_version(&state.db, &mut tx, company).await?;
    let event = ChangeEvent { company, version, change };
    state.events.stage(&mut tx, &event).await?;
    tx.commit().await?;
    state.events.committed(event);
    Ok(version)
}

fn to_json<T: Serialize>(value: &T) -> ApiResult<String> {
    serde_json::to_string(value).map_err(|e| ApiError::internal(&e))
}

/// A name (`rules::NAME`), trimmed, or a 422.
fn checked_name(field: &str, value: &str) -> ApiResult<String> {
    check_name(field, value, rules::MAX_NAME).map_err(|p| ApiError::invalid_field(&p.field, p.problem))
}

// ---------------------------------------------------------------- settings

/// `GET /api/v1/settings`: the company settings (SPEC §3). Everyone may read them.
#[utoipa::path(get, path = "/api/v1/settings", tag = "settings", security(("bearer" = [])), responses((status = 200, description = "Company settings (SPEC §3)", body = CompanySettings)))]
pub async fn get_settings(caller: Caller) -> ApiResult<Json<CompanySettings>> {
    Ok(Json(caller.snapshot.company.settings().clone()))
}

/// `PUT /api/v1/settings`: replaces the company settings. Admins only.
#[utoipa::path(put, path = "/api/v1/settings", tag = "settings", security(("bearer" = ["admin"])), request_body(content = CompanySettings, description = "Company settings (SPEC §3); unnamed settings take their defaults"), responses((status = 200, description = "Saved", body = CompanySettings), (status = 403, description = "Not an admin"), (status = 422, description = "A value is not one of the setting's values")))]
pub async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    Json(settings): Json<CompanySettings>,
) -> ApiResult<Json<CompanySettings>> {
    caller.require_admin()?;
    let mut tx = state.db.pool().begin().await?;
    let mut query = Query::new("UPDATE companies SET settings = ");
    query.bind(to_json(&settings)?).push(" WHERE id = ").bind(caller.company().0);
    state.db.execute(&mut *tx, &query).await?;
    commit_change(&state, tx, caller.company(), Change::Settings).await?;
    // A retention set or changed applies at once, not at the next hourly sweep.
    let retention = settings.recording_retention_days;
    if retention.is_some() && retention != caller.snapshot.company.settings().recording_retention_days {
        let (state, company) = (state.clone(), caller.company());
        tokio::spawn(async move { crate::retention::sweep_logged(&state, Some(company)).await });
    }
    Ok(Json(settings))
}

// ---------------------------------------------------------------- users

async fn admin_users(
    state: &AppState,
    company: CompanyId,
    only: Option<UserId>,
) -> ApiResult<Vec<AdminUser>> {
    let snapshot = state.snapshots.get(&state.db, company).await?;
    let mut query =
        Query::new("SELECT id, disabled, sip_ha1, caller_number_id FROM users WHERE company_id = ");
    query.bind(company.0);
    if let Some(id) = only {
        query.push(" AND id = ").bind(id.0);
    }
    let mut users = Vec::new();
    for row in state.db.fetch_all(state.db.pool(), &query).await? {
        let id = UserId(row.try_get("id")?);
        if let Some(user) = snapshot.company.user(id) {
            users.push(AdminUser {
                user: user.clone(),
                disabled: row.try_get::<i64, _>("disabled")? != 0,
                has_sip_password: row.try_get::<Option<String>, _>("sip_ha1")?.is_some(),
                caller_id: row.try_get::<Option<i64>, _>("caller_number_id")?.map(NumberId),
            });
        }
    }
    users.sort_by_key(|user| user.user.id);
    Ok(users)
}

/// `GET /api/v1/users`. Admins only (everyone gets the directory from `/sync`).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = ["admin"])), responses((status = 200, description = "Every user, with settings (admins only)", body = Vec<AdminUser>)))]
pub async fn list_users(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<AdminUser>>> {
    caller.require_admin()?;
    Ok(Json(admin_users(&state, caller.company(), None).await?))
}

/// `GET /api/v1/users/{id}`. Admins only.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = ["admin"])), params(("id" = i64, Path, description = "User id")), responses((status = 200, body = AdminUser), (status = 404, description = "No such user in your company")))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<AdminUser>> {
    caller.require_admin()?;
    admin_users(&state, caller.company(), Some(UserId(id)))
        .await?
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("user"))
}

/// Checks a user write against the company; returns the normalized e-mail
/// and the trimmed name.
async fn check_user(
    state: &AppState,
    caller: &Caller,
    body: &UserWrite,
    id: Option<UserId>,
) -> ApiResult<(String, String)> {
    let mut problems = Vec::new();
    let email = normalize_email(&body.email);
    if email.is_err() {
        problems.push(FieldProblem { field: "email".into(), problem: "is not an e-mail address".into() });
    }
    let name = check_name("name", &body.name, rules::MAX_NAME);
    if let Err(problem) = &name {
        problems.push(problem.clone());
    }
    if let Some(extension) = &body.extension
        && let Err(problem) = check_extension("extension", extension)
    {
        problems.push(problem);
    }
    for group in &body.groups {
        if !caller.snapshot.company.groups().iter().any(|g| g.id == *group) {
            problems.push(FieldProblem {
                field: "groups".into(),
                problem: format!("group {group} does not exist"),
            });
        }
    }
    if let Some(number) = body.caller_id
        && !caller.snapshot.company.numbers().iter().any(|n| n.id == number)
    {
        problems.push(FieldProblem {
            field: "caller_id".into(),
            problem: format!("number {number} is not one of the company's numbers"),
        });
    }
    for (field, password) in [("password", &body.password), ("sip_password", &body.sip_password)] {
        if let Some(password) = password
            && let Err(problem) = check_password_field(field, password)
        {
            problems.push(problem);
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid("The user has problems; see `problems`.", problems));
    }
    let (email, name) = (email?, name.map_err(|p| ApiError::invalid_field(&p.field, p.problem))?);
    let mut query = Query::new("SELECT id FROM users WHERE email = ");
    query.bind(email.clone());
    if let Some(row) = state.db.fetch_optional(state.db.pool(), &query).await?
        && Some(UserId(row.try_get("id")?)) != id
    {
        return Err(ApiError::conflict("A user with this e-mail address already exists."));
    }
    if let Some(extension) = &body.extension
        && caller
            .snapshot
            .company
            .users()
            .iter()
            .any(|u| u.extension.as_ref() == Some(extension) && Some(u.id) != id)
    {
        return Err(ApiError::conflict(format!("Extension {extension} is already taken.")));
    }
    Ok((email, name))
}

async fn write_groups(state: &AppState, tx: &mut Tx, user: UserId, groups: &[GroupId]) -> ApiResult<()> {
    let mut query = Query::new("DELETE FROM group_members WHERE user_id = ");
    query.bind(user.0);
    state.db.execute(&mut **tx, &query).await?;
    let mut groups = groups.to_vec();
    groups.sort_unstable();
    groups.dedup();
    for group in groups {
        let mut query = Query::new("INSERT INTO group_members (group_id, user_id) VALUES (");
        query.bind(group.0).push(", ").bind(user.0).push(")");
        state.db.execute(&mut **tx, &query).await?;
    }
    Ok(())
}

/// `POST /api/v1/users`. Admins only.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = ["admin"])), request_body = UserWrite, responses((status = 201, body = AdminUser), (status = 409, description = "E-mail or extension taken"), (status = 422, description = "Invalid fields, each listed in `problems`")))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<UserWrite>,
) -> ApiResult<(StatusCode, Json<AdminUser>)> {
    caller.require_admin()?;
    let (email, name) = check_user(&state, &caller, &body, None).await?;
    let password =
        body.password.as_deref().ok_or_else(|| ApiError::invalid_field("password", "is required"))?;
    let hash = hash_password(password)?;
    let mut tx = state.db.pool().begin().await?;
    let mut query = Query::new(
        "INSERT INTO users (company_id, name, email, role, extension, settings, password_hash, sip_ha1, disabled, caller_number_id, created_at) VALUES (",
    );
    let sip_ha1 = body.sip_password.as_deref().map(|password| crate::sip::sip_ha1(&email, password));
    query
        .bind(caller.company().0)
        .push(", ")
        .bind(name)
        .push(", ")
        .bind(email.clone())
        .push(", ")
        .bind(body.role.as_str())
        .push(", ")
        .bind(body.extension.clone())
        .push(", ")
        .bind(to_json(&body.settings)?)
        .push(", ")
        .bind(hash)
        .push(", ")
        .bind(sip_ha1)
        .push(", ")
        .bind(body.disabled.unwrap_or(false))
        .push(", ")
        .bind(body.caller_id.map(|n| n.0))
        .push(", ")
        .bind(crate::now_millis())
        .push(") RETURNING id");
    let id = UserId(state.db.insert_returning_id(&mut *tx, &query).await?);
    write_groups(&state, &mut tx, id, &body.groups).await?;
    commit_change(&state, tx, caller.company(), Change::Users).await?;
    let user = admin_users(&state, caller.company(), Some(id))
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Fails when the change would leave the company without an active admin.
async fn keep_an_admin(state: &AppState, company: CompanyId, losing: UserId) -> ApiResult<()> {
    let mut query = Query::new("SELECT COUNT(*) AS n FROM users WHERE company_id = ");
    query.bind(company.0).push(" AND role = 'admin' AND disabled = 0 AND id <> ").bind(losing.0);
    let row = state.db.fetch_optional(state.db.pool(), &query).await?;
    let others: i64 = row.map_or(Ok(0), |row| row.try_get("n"))?;
    if others == 0 {
        Err(ApiError::conflict("The company must keep at least one active admin."))
    } else {
        Ok(())
    }
}

/// `PUT /api/v1/users/{id}`: replaces the user's editable fields. Admins only.
/// Disabling a user ends their sessions at once.
#[utoipa::path(put, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = ["admin"])), params(("id" = i64, Path, description = "User id")), request_body = UserWrite, responses((status = 200, body = AdminUser), (status = 404), (status = 409, description = "Taken, or the last active admin"), (status = 422)))]
pub async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(body): Json<UserWrite>,
) -> ApiResult<Json<AdminUser>> {
    caller.require_admin()?;
    let id = UserId(id);
    let current = caller.snapshot.company.user(id).ok_or_else(|| ApiError::not_found("user"))?;
    let (email, name) = check_user(&state, &caller, &body, Some(id)).await?;
    let disabled = match body.disabled {
        Some(disabled) => disabled,
        None => admin_users(&state, caller.company(), Some(id)).await?.pop().is_some_and(|u| u.disabled),
    };
    if current.role == Role::Admin && (body.role != Role::Admin || disabled) {
        keep_an_admin(&state, caller.company(), id).await?;
    }
    let mut tx = state.db.pool().begin().await?;
    let email_changed = email != current.email;
    let mut query = Query::new("UPDATE users SET name = ");
    query
        .bind(name)
        .push(", email = ")
        .bind(email.clone())
        .push(", role = ")
        .bind(body.role.as_str())
        .push(", extension = ")
        .bind(body.extension.clone())
        .push(", settings = ")
        .bind(to_json(&body.settings)?)
        .push(", disabled = ")
        .bind(disabled)
        .push(", caller_number_id = ")
        .bind(body.caller_id.map(|n| n.0));
    if let Some(password) = &body.password {
        query.push(", password_hash = ").bind(hash_password(password)?);
    }
    // The SIP digest is bound to the e-mail (the digest user name): a new
    // e-mail without a new SIP password leaves no SIP password.
    if let Some(sip_password) = &body.sip_password {
        query.push(", sip_ha1 = ").bind(crate::sip::sip_ha1(&email, sip_password));
    } else if email_changed {
        query.push(", sip_ha1 = NULL");
    }
    query.push(" WHERE id = ").bind(id.0).push(" AND company_id = ").bind(caller.company().0);
    state.db.execute(&mut *tx, &query).await?;
    write_groups(&state, &mut tx, id, &body.groups).await?;
    if disabled || body.password.is_some() {
        let mut query = Query::new("DELETE FROM sessions WHERE user_id = ");
        query.bind(id.0);
        if body.password.is_some() && !disabled && id == caller.id() {
            // Changing one's own password keeps this session.
            query.push(" AND token_hash <> ").bind(caller.token_hash.clone());
        }
        state.db.execute(&mut *tx, &query).await?;
    }
    commit_change(&state, tx, caller.company(), Change::Users).await?;
    // A disabled user's phones, and devices whose session just ended, stop ringing at once.
    crate::sip::revalidate(&state, id).await?;
    admin_users(&state, caller.company(), Some(id))
        .await?
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("user"))
}

/// `DELETE /api/v1/users/{id}`. Admins only. Refused while a call flow rings the user.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = ["admin"])), params(("id" = i64, Path, description = "User id")), responses((status = 204), (status = 404), (status = 409, description = "A call flow rings the user, or the last admin")))]
pub async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let id = UserId(id);
    let user = caller.snapshot.company.user(id).ok_or_else(|| ApiError::not_found("user"))?;
    if let Some(number) =
        caller.snapshot.company.numbers().iter().find(|n| n.flow.routed_users().contains(&id))
    {
        return Err(ApiError::conflict(format!(
            "{} is rung by the call flow of {} ({}). Change the flow first, or disable the user instead.",
            user.name, number.name, number.e164
        )));
    }
    if user.role == Role::Admin {
        keep_an_admin(&state, caller.company(), id).await?;
    }
    let mut tx = state.db.pool().begin().await?;
    for table in ["sessions", "group_members"] {
        let mut query = Query::new(&format!("DELETE FROM {table} WHERE user_id = "));
        query.bind(id.0);
        state.db.execute(&mut *tx, &query).await?;
    }
    let mut query = Query::new("DELETE FROM users WHERE id = ");
    query.bind(id.0).push(" AND company_id = ").bind(caller.company().0);
    state.db.execute(&mut *tx, &query).await?;
    commit_change(&state, tx, caller.company(), Change::Users).await?;
    crate::sip::revalidate(&state, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- groups

fn groups_with_members(caller: &Caller) -> Vec<GroupWithMembers> {
    let company = &caller.snapshot.company;
    company
        .groups()
        .iter()
        .map(|group| GroupWithMembers {
            group: group.clone(),
            members: company.users().iter().filter(|u| u.groups.contains(&group.id)).map(|u| u.id).collect(),
        })
        .collect()
}

/// `GET /api/v1/groups`.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", security(("bearer" = [])), responses((status = 200, body = Vec<GroupWithMembers>)))]
pub async fn list_groups(caller: Caller) -> ApiResult<Json<Vec<GroupWithMembers>>> {
    Ok(Json(groups_with_members(&caller)))
}

async fn write_group(
    state: &AppState,
    caller: &Caller,
    id: Option<GroupId>,
    body: &GroupWrite,
) -> ApiResult<GroupId> {
    let name = checked_name("name", &body.name)?;
    for member in &body.members {
        if caller.snapshot.company.user(*member).is_none() {
            return Err(ApiError::invalid_field("members", format!("user {member} does not exist")));
        }
    }
    let mut tx = state.db.pool().begin().await?;
    let id = match id {
        Some(id) => {
            let mut query = Query::new("UPDATE groups SET name = ");
            query
                .bind(name)
                .push(" WHERE id = ")
                .bind(id.0)
                .push(" AND company_id = ")
                .bind(caller.company().0);
            state.db.execute(&mut *tx, &query).await?;
            let mut query = Query::new("DELETE FROM group_members WHERE group_id = ");
            query.bind(id.0);
            state.db.execute(&mut *tx, &query).await?;
            id
        }
        None => {
            let mut query = Query::new("INSERT INTO groups (company_id, name) VALUES (");
            query.bind(caller.company().0).push(", ").bind(name).push(") RETURNING id");
            GroupId(state.db.insert_returning_id(&mut *tx, &query).await?)
        }
    };
    let mut members = body.members.clone();
    members.sort_unstable();
    members.dedup();
    for member in members {
        let mut query = Query::new("INSERT INTO group_members (group_id, user_id) VALUES (");
        query.bind(id.0).push(", ").bind(member.0).push(")");
        state.db.execute(&mut *tx, &query).await?;
    }
    commit_change(state, tx, caller.company(), Change::Groups).await?;
    Ok(id)
}

async fn group_answer(state: &AppState, caller: &Caller, id: GroupId) -> ApiResult<Json<GroupWithMembers>> {
    let snapshot = state.snapshots.get(&state.db, caller.company()).await?;
    let fresh = Caller { snapshot, ..caller.clone() };
    groups_with_members(&fresh)
        .into_iter()
        .find(|g| g.group.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("group"))
}

/// `POST /api/v1/groups`. Admins only.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", security(("bearer" = ["admin"])), request_body = GroupWrite, responses((status = 201, body = GroupWithMembers), (status = 422)))]
pub async fn create_group(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<GroupWrite>,
) -> ApiResult<(StatusCode, Json<GroupWithMembers>)> {
    caller.require_admin()?;
    let id = write_group(&state, &caller, None, &body).await?;
    Ok((StatusCode::CREATED, group_answer(&state, &caller, id).await?))
}

/// `PUT /api/v1/groups/{id}`. Admins only.
#[utoipa::path(put, path = "/api/v1/groups/{id}", tag = "groups", security(("bearer" = ["admin"])), params(("id" = i64, Path, description = "Group id")), request_body = GroupWrite, responses((status = 200, body = GroupWithMembers), (status = 404), (status = 422)))]
pub async fn update_group(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(body): Json<GroupWrite>,
) -> ApiResult<Json<GroupWithMembers>> {
    caller.require_admin()?;
    let id = GroupId(id);
    if !caller.snapshot.company.groups().iter().any(|g| g.id == id) {
        return Err(ApiError::not_found("group"));
    }
    write_group(&state, &caller, Some(id), &body).await?;
    group_answer(&state, &caller, id).await
}

/// `DELETE /api/v1/groups/{id}`. Admins only. Refused while a call flow rings the group.
#[utoipa::path(delete, path = "/api/v1/groups/{id}", tag = "groups", security(("bearer" = ["admin"])), params(("id" = i64, Path, description = "Group id")), responses((status = 204), (status = 404), (status = 409, description = "A call flow rings the group")))]
pub async fn delete_group(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let id = GroupId(id);
    let group = caller
        .snapshot
        .company
        .groups()
        .iter()
        .find(|g| g.id == id)
        .ok_or_else(|| ApiError::not_found("group"))?;
    if let Some(number) =
        caller.snapshot.company.numbers().iter().find(|n| n.flow.routed_groups().contains(&id))
    {
        return Err(ApiError::conflict(format!(
            "{} is rung by the call flow of {} ({}). Change the flow first.",
            group.name, number.name, number.e164
        )));
    }
    let mut tx = state.db.pool().begin().await?;
    let mut query = Query::new("DELETE FROM group_members WHERE group_id = ");
    query.bind(id.0);
    state.db.execute(&mut *tx, &query).await?;
    let mut query = Query::new("DELETE FROM groups WHERE id = ");
    query.bind(id.0).push(" AND company_id = ").bind(caller.company().0);
    state.db.execute(&mut *tx, &query).await?;
    commit_change(&state, tx, caller.company(), Change::Groups).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- numbers

fn check_number(caller: &Caller, body: &NumberWrite, id: Option<NumberId>) -> ApiResult<String> {
    let mut problems = Vec::new();
    if let Err(problem) = check_e164("e164", &body.e164) {
        problems.push(problem);
    }
    if let Err(problem) = check_name("name", &body.name, rules::MAX_NAME) {
        problems.push(problem);
    }
    let company = &caller.snapshot.company;
    if let Err(flow_problems) = body
        .flow
        .validate(|user| company.user(user).is_some(), |group| company.groups().iter().any(|g| g.id == group))
    {
        problems.extend(
            flow_problems.into_iter().map(|p| FieldProblem { field: "flow".into(), problem: p.to_string() }),
        );
    }
    if !problems.is_empty() {
        let detail =
            problems.iter().map(|p| format!("{}: {}", p.field, p.problem)).collect::<Vec<_>>().join("; ");
        return Err(ApiError::invalid(detail, problems));
    }
    if company.numbers().iter().any(|n| n.e164 == body.e164 && Some(n.id) != id) {
        return Err(ApiError::conflict(format!("{} is already one of the company's numbers.", body.e164)));
    }
    checked_name("name", &body.name)
}

/// `GET /api/v1/numbers`.
#[utoipa::path(get, path = "/api/v1/numbers", tag = "numbers", security(("bearer" = [])), responses((status = 200, description = "Numbers with their call flows", body = Vec<Number>)))]
pub async fn list_numbers(caller: Caller) -> ApiResult<Json<Vec<Number>>> {
    Ok(Json(caller.snapshot.company.numbers().to_vec()))
}

/// `GET /api/v1/numbers/{id}`.
#[utoipa::path(get, path = "/api/v1/numbers/{id}", tag = "numbers", security(("bearer" = [])), params(("id" = i64, Path, description = "Number id")), responses((status = 200, body = Number), (status = 404)))]
pub async fn get_number(caller: Caller, Path(id): Path<i64>) -> ApiResult<Json<Number>> {
    caller
        .snapshot
        .company
        .numbers()
        .iter()
        .find(|n| n.id == NumberId(id))
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("number"))
}

/// `POST /api/v1/numbers`. Admins only; the flow is validated (422 with each problem).
#[utoipa::path(post, path = "/api/v1/numbers", tag = "numbers", security(("bearer" = ["admin"])), request_body = NumberWrite, responses((status = 201, body = Number), (status = 409, description = "Already a number of the company"), (status = 422, description = "Bad E.164 or flow problems (unknown users or groups, empty menus, unreachable steps, nesting too deep)")))]
pub async fn create_number(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NumberWrite>,
) -> ApiResult<(StatusCode, Json<Number>)> {
    caller.require_admin()?;
    let name = check_number(&caller, &body, None)?;
    let mut tx = state.db.pool().begin().await?;
    let mut query = Query::new("INSERT INTO numbers (company_id, e164, name, flow) VALUES (");
    query
        .bind(caller.company().0)
        .push(", ")
        .bind(body.e164.clone())
        .push(", ")
        .bind(name.clone())
        .push(", ")
        .bind(to_json(&body.flow)?)
        .push(") RETURNING id");
    let id = NumberId(state.db.insert_returning_id(&mut *tx, &query).await?);
    commit_change(&state, tx, caller.company(), Change::Numbers).await?;
    Ok((
        StatusCode::CREATED,
        Json(Number { id, company: caller.company(), e164: body.e164, name, flow: body.flow }),
    ))
}

/// `PUT /api/v1/numbers/{id}`. Admins only. Routing changes apply to history at once (D7).
#[utoipa::path(put, path = "/api/v1/numbers/{id}", tag = "numbers", security(("bearer" = ["admin"])), params(("id" = i64, Path, description = "Number id")), request_body = NumberWrite, responses((status = 200, body = Number), (status = 404), (status = 409, description = "Already another number of the company"), (status = 422)))]
pub async fn update_number(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(body): Json<NumberWrite>,
) -> ApiResult<Json<Number>> {
    caller.require_admin()?;
    let id = NumberId(id);
    if !caller.snapshot.company.numbers().iter().any(|n| n.id == id) {
        return Err(ApiError::not_found("number"));
    }
    let name = check_number(&caller, &body, Some(id))?;
    let mut tx = state.db.pool().begin().await?;
    let mut query = Query::new("UPDATE numbers SET e164 = ");
    query
        .bind(body.e164.clone())
        .push(", name = ")
        .bind(name.clone())
        .push(", flow = ")
        .bind(to_json(&body.flow)?)
        .push(" WHERE id = ")
        .bind(id.0)
        .push(" AND company_id = ")
        .bind(caller.company().0);
    state.db.execute(&mut *tx, &query).await?;
    commit_change(&state, tx, caller.company(), Change::Numbers).await?;
    Ok(Json(Number { id, company: caller.company(), e164: body.e164, name, flow: body.flow }))
}

/// `DELETE /api/v1/numbers/{id}`. Admins only. Its calls stay in the history.
#[utoipa::path(delete, path = "/api/v1/numbers/{id}", tag = "numbers", security(("bearer" = ["admin"])), params(("id" = i64, Path, description = "Number id")), responses((status = 204), (status = 404)))]
pub async fn delete_number(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let id = NumberId(id);
    if !caller.snapshot.company.numbers().iter().any(|n| n.id == id) {
        return Err(ApiError::not_found("number"));
    }
    let mut tx = state.db.pool().begin().await?;
    let mut query = Query::new("DELETE FROM numbers WHERE id = ");
    query.bind(id.0).push(" AND company_id = ").bind(caller.company().0);
    state.db.execute(&mut *tx, &query).await?;
    commit_change(&state, tx, caller.company(), Change::Numbers).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- contacts

pub use earshot_api::{
    AdminUser, ContactOut, ContactWrite, GroupWithMembers, GroupWrite, NumberWrite, UserWrite,
};

async fn contacts(
    state: &AppState,
    company: CompanyId,
    only: Option<ContactId>,
) -> ApiResult<Vec<ContactOut>> {
    let mut query = Query::new(
        "SELECT c.id, c.name, n.e164 FROM contacts c LEFT JOIN contact_numbers n ON n.contact_id = c.id WHERE c.company_id = ",
    );
    query.bind(company.0);
    if let Some(id) = only {
        query.push(" AND c.id = ").bind(id.0);
    }
    query.push(" ORDER BY c.name, c.id, n.e164");
    let mut out: Vec<ContactOut> = Vec::new();
    for row in state.db.fetch_all(state.db.pool(), &query).await? {
        let id = ContactId(row.try_get("id")?);
        if out.last().is_none_or(|c| c.id != id) {
            out.push(ContactOut { id, name: row.try_get("name")?, numbers: Vec::new() });
        }
        if let (Some(contact), Some(e164)) = (out.last_mut(), row.try_get::<Option<String>, _>("e164")?) {
            contact.numbers.push(e164);
        }
    }
    Ok(out)
}

/// `GET /api/v1/contacts`.
#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts", security(("bearer" = [])), responses((status = 200, body = Vec<ContactOut>)))]
pub async fn list_contacts(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<ContactOut>>> {
    Ok(Json(contacts(&state, caller.company(), None).await?))
}

/// `GET /api/v1/contacts/{id}`.
#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts", security(("bearer" = [])), params(("id" = i64, Path, description = "Contact id")), responses((status = 200, body = ContactOut), (status = 404)))]
pub async fn get_contact(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<ContactOut>> {
    contacts(&state, caller.company(), Some(ContactId(id)))
        .await?
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("contact"))
}

async fn write_contact(
    state: &AppState,
    caller: &Caller,
    id: Option<ContactId>,
    body: &ContactWrite,
) -> ApiResult<ContactId> {
    let name = checked_name("name", &body.name)?;
    let problems: Vec<FieldProblem> =
        body.numbers.iter().filter_map(|n| check_e164("numbers", n).err()).collect();
    if !problems.is_empty() {
        return Err(ApiError::invalid("Some of the contact's numbers are not E.164 numbers.", problems));
    }
    let mut tx = state.db.pool().begin().await?;
    let id = match id {
        Some(id) => {
            let mut query = Query::new("UPDATE contacts SET name = ");
            query
                .bind(name)
                .push(" WHERE id = ")
                .bind(id.0)
                .push(" AND company_id = ")
                .bind(caller.company().0);
            if state.db.execute(&mut *tx, &query).await? == 0 {
                return Err(ApiError::not_found("contact"));
            }
            let mut query = Query::new("DELETE FROM contact_numbers WHERE contact_id = ");
            query.bind(id.0);
            state.db.execute(&mut *tx, &query).await?;
            id
        }
        None => {
            let mut query = Query::new("INSERT INTO contacts (company_id, name) VALUES (");
            query.bind(caller.company().0).push(", ").bind(name).push(") RETURNING id");
            ContactId(state.db.insert_returning_id(&mut *tx, &query).await?)
        }
    };
    let mut numbers = body.numbers.clone();
    numbers.sort();
    numbers.dedup();
    for e164 in numbers {
        let mut query = Query::new("INSERT INTO contact_numbers (contact_id, company_id, e164) VALUES (");
        query.bind(id.0).push(", ").bind(caller.company().0).push(", ").bind(e164).push(")");
        state.db.execute(&mut *tx, &query).await?;
    }
    commit_change(state, tx, caller.company(), Change::Contacts).await?;
    Ok(id)
}

/// `POST /api/v1/contacts`. Admins only.
#[utoipa::path(post, path = "/api/v1/contacts", tag = "contacts", security(("bearer" = ["admin"])), request_body = ContactWrite, responses((status = 201, body = ContactOut), (status = 422)))]
pub async fn create_contact(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<ContactWrite>,
) -> ApiResult<(StatusCode, Json<ContactOut>)> {
    caller.require_admin()?;
    let id = write_contact(&state, &caller, None, &body).await?;
    let contact = contacts(&state, caller.company(), Some(id))
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found("contact"))?;
    Ok((StatusCode::CREATED, Json(contact)))
}

/// `PUT /api/v1/contacts/{id}`. Admins only.
#[utoipa::path(put, path = "/api/v1/contacts/{id}", tag = "contacts", security(("bearer" = ["admin"])), params(("id" = i64, Path, description = "Contact id")), request_body = ContactWrite, responses((status = 200, body = ContactOut), (status = 404), (status = 422)))]
pub async fn update_contact(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(body): Json<ContactWrite>,
) -> ApiResult<Json<ContactOut>> {
    caller.require_admin()?;
    let id = write_contact(&state, &caller, Some(ContactId(id)), &body).await?;
    contacts(&state, caller.company(), Some(id))
        .await?
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("contact"))
}

/// `DELETE /api/v1/contacts/{id}`. Admins only. Its calls stay, without the contact.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}", tag = "contacts", security(("bearer" = ["admin"])), params(("id" = i64, Path, description = "Contact id")), responses((status = 204), (status = 404)))]
pub async fn delete_contact(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let mut tx = state.db.pool().begin().await?;
    let mut query = Query::new("DELETE FROM contact_numbers WHERE contact_id = ");
    query.bind(id).push(" AND company_id = ").bind(caller.company().0);
    state.db.execute(&mut *tx, &query).await?;
    let mut query = Query::new("UPDATE calls SET contact_id = NULL WHERE contact_id = ");
    query.bind(id).push(" AND company_id = ").bind(caller.company().0);
    state.db.execute(&mut *tx, &query).await?;
    let mut query = Query::new("DELETE FROM contacts WHERE id = ");
    query.bind(id).push(" AND company_id = ").bind(caller.company().0);
    if state.db.execute(&mut *tx, &query).await? == 0 {
        return Err(ApiError::not_found("contact"));
    }
    commit_change(&state, tx, caller.company(), Change::Contacts).await?;
    Ok(StatusCode::NO_CONTENT)
}
