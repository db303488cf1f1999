//! The caller's phone: `POST /api/v1/devices` gives the signed-in device SIP
//! credentials, so the desktop app registers as the user's phone without a
//! second password (SPEC §9; one credential per session: asking again
//! replaces it); `PUT /api/v1/me/availability` sets "Do not disturb".

use super::Json;
use crate::AppState;
use crate::auth::Caller;
use crate::db::Query;
use crate::error::{ApiError, ApiResult};
use axum::extract::State;

pub use earshot_api::{Availability, DeviceCredentials, DeviceIn};

/// Issues this session's device its SIP credentials (replacing any it had,
/// whose registration is dropped). The password is in this answer only.
#[utoipa::path(post, path = "/api/v1/devices", tag = "session", security(("bearer" = [])), request_body = DeviceIn, responses((status = 200, description = "The device's SIP credentials, shown once", body = DeviceCredentials), (status = 409, description = "The user has no extension, or the service takes no calls (SIP is off)", content_type = "application/problem+json"), (status = 422, description = "No device name", content_type = "application/problem+json")))]
pub async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<DeviceIn>,
) -> ApiResult<Json<DeviceCredentials>> {
    let name = crate::company::check_name("name", &body.name, earshot_api::rules::MAX_DEVICE_NAME)
        .map_err(|p| ApiError::invalid_field(&p.field, p.problem))?;
    let Some(extension) = caller.user.extension.clone() else {
        return Err(ApiError::conflict(
            "You have no extension, so this computer cannot be your phone. Ask an admin to give you one.",
        ));
    };
    let Some(address) = state.registrations.address() else {
        return Err(ApiError::conflict(
            "This service takes no calls (its SIP side is off), so this computer cannot be a phone here.",
        ));
    };
    let sip_user = format!("d{:016x}{:08x}", rand::random::<u64>(), rand::random::<u32>());
    let (password, _) = crate::auth::new_token();
    let ha1 = crate::sip::sip_ha1(&sip_user, &password);
    let mut tx = state.db.pool().begin().await?;
    let mut query = Query::new("DELETE FROM device_credentials WHERE token_hash = ");
    query.bind(caller.token_hash.clone());
    state.db.execute(&mut *tx, &query).await?;
    let mut query = Query::new(
        "INSERT INTO device_credentials (sip_user, user_id, token_hash, name, ha1, created_at) VALUES (",
    );
    query
        .bind(sip_user.clone())
        .push(", ")
        .bind(caller.id().0)
        .push(", ")
        .bind(caller.token_hash.clone())
        .push(", ")
        .bind(name.clone())
        .push(", ")
        .bind(ha1)
        .push(", ")
        .bind(crate::now_millis())
        .push(")");
    state.db.execute(&mut *tx, &query).await?;
    tx.commit().await?;
    // The credential replaced, if any, stops registering at once.
    crate::sip::revalidate(&state, caller.id()).await?;
    let sip_host = (!address.ip().is_unspecified()).then(|| address.ip().to_string());
    Ok(Json(DeviceCredentials {
        sip_user,
        password,
        realm: crate::sip::REALM.to_owned(),
        extension,
        sip_host,
        sip_port: address.port(),
        sip_tls_port: state.registrations.tls_address().map(|tls| tls.port()),
    }))
}

/// Sets whether the caller takes calls: with "Do not disturb" ring steps
/// pass them by and a direct call to them is not put through. Every app
/// learns it (the directory shows it) through a `users` change.
#[utoipa::path(put, path = "/api/v1/me/availability", tag = "session", security(("bearer" = [])), request_body = Availability, responses((status = 204, description = "Set")))]
pub async fn set_availability(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<Availability>,
) -> ApiResult<axum::http::StatusCode> {
    let mut tx = state.db.pool().begin().await?;
    let mut query = Query::new("UPDATE users SET do_not_disturb = ");
    query
        .bind(i64::from(!body.available))
        .push(" WHERE id = ")
        .bind(caller.id().0)
        .push(" AND company_id = ")
        .bind(caller.company().0);
    state.db.execute(&mut *tx, &query).await?;
    super::admin::commit_change(&state, tx, caller.company(), earshot_api::Change::Users).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
