//! Log-in and log-out: `POST /api/v1/session`, `DELETE /api/v1/session`.

use super::Json;
use crate::AppState;
use crate::auth::{Caller, LOCK_SECONDS, MAX_FAILED_LOGINS, decoy_hash, new_token, verify_password};
use crate::db::Query;
use crate::error::{ApiError, ApiResult};
use axum::extract::State;
use axum::http::StatusCode;
use earshot_policy::{CompanyId, UserId};
use sqlx::Row as _;
use std::time::Duration;

pub use earshot_api::{LogIn, Session};

const WRONG: &str = "The e-mail address or password is wrong.";

/// Verifies on the blocking pool, at most as many at once as the machine has
/// cores: argon2id takes memory and time on purpose, and a flood of log-ins
/// must queue, not exhaust the machine.
async fn check_password(state: &AppState, password: String, hash: String) -> ApiResult<bool> {
    let _permit = state.password_checks.acquire().await.map_err(|e| ApiError::internal(&e))?;
    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::internal(&e))
}

/// Logs in. Wrong credentials answer slower each time, and lock the account
/// for a minute after five in a row; an unknown e-mail takes as long as a
/// wrong password, so answers tell nothing about who has an account.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = LogIn, responses((status = 200, description = "Logged in", body = Session), (status = 401, description = "Wrong e-mail or password, or disabled", content_type = "application/problem+json"), (status = 429, description = "Locked after failed log-ins", content_type = "application/problem+json")))]
pub async fn log_in(State(state): State<AppState>, Json(body): Json<LogIn>) -> ApiResult<Json<Session>> {
    let email = body.email.trim().to_lowercase();
    let mut query = Query::new(
        "SELECT id, company_id, password_hash, disabled, failed_logins, locked_until FROM users WHERE email = ",
    );
    query.bind(email.clone());
    let row = state.db.fetch_optional(state.db.pool(), &query).await?;
    let Some(row) = row else {
        // Unknown e-mail: the same work, the same delays and the same lock as a wrong
        // password, so no answer tells who has an account.
        let _ = check_password(&state, body.password, decoy_hash().to_owned()).await;
        let now = crate::now_millis();
        let failed = {
            let mut unknown = state.unknown_logins.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            unknown.retain(|_, (_, last)| now - *last < LOCK_SECONDS * 1000);
            let entry = unknown.entry(email).or_insert((0, now));
            if entry.0 >= MAX_FAILED_LOGINS {
                let seconds = u64::try_from((entry.1 + LOCK_SECONDS * 1000 - now + 999) / 1000).unwrap_or(1);
                return Err(ApiError::locked(seconds));
            }
            *entry = (entry.0 + 1, now);
            entry.0
        };
        tokio::time::sleep(Duration::from_millis(100 * u64::try_from(failed).unwrap_or(0))).await;
        return Err(if failed >= MAX_FAILED_LOGINS {
            ApiError::locked(u64::try_from(LOCK_SECONDS).unwrap_or(60))
        } else {
            ApiError::unauthenticated(WRONG)
        });
    };
    let id: i64 = row.try_get("id")?;
    let now = crate::now_millis();
    if let Some(locked_until) = row.try_get::<Option<i64>, _>("locked_until")?
        && locked_until > now
    {
        // As slow as a real check, so a lock tells nothing about the account either.
        let _ = check_password(&state, body.password, decoy_hash().to_owned()).await;
        let seconds = u64::try_from((locked_until - now + 999) / 1000).unwrap_or(1);
        return Err(ApiError::locked(seconds));
    }
    let hash: String = row.try_get("password_hash")?;
    let matches = check_password(&state, body.password, hash).await?;
    if !matches {
        // Counted in the database, atomically: parallel guesses each count.
        let mut query = Query::new("UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ");
        query.bind(id).push(" RETURNING failed_logins");
        let failed: i64 = state
            .db
            .fetch_optional(state.db.pool(), &query)
            .await?
            .map_or(Ok(MAX_FAILED_LOGINS), |row| row.try_get("failed_logins"))?;
        let locked_until = (failed >= MAX_FAILED_LOGINS).then_some(now + LOCK_SECONDS * 1000);
        if let Some(until) = locked_until {
            let mut query = Query::new("UPDATE users SET failed_logins = 0, locked_until = ");
            query.bind(until).push(" WHERE id = ").bind(id);
            state.db.execute(state.db.pool(), &query).await?;
        }
        // Each failure in a row answers a little later: guessing gets slow before it gets locked.
        tokio::time::sleep(Duration::from_millis(100 * u64::try_from(failed).unwrap_or(0))).await;
        return Err(match locked_until {
            Some(_) => ApiError::locked(u64::try_from(LOCK_SECONDS).unwrap_or(60)),
            None => ApiError::unauthenticated(WRONG),
        });
    }
    if row.try_get::<i64, _>("disabled")? != 0 {
        return Err(ApiError::unauthenticated("Your account has been disabled. Ask an admin."));
    }
    let (token, token_hash) = new_token();
    let expires_at = now + state.session_ttl_ms;
    let mut tx = state.db.pool().begin().await?;
    let mut query = Query::new("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ");
    query.bind(id);
    state.db.execute(&mut *tx, &query).await?;
    let mut query = Query::new("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (");
    query.bind(token_hash).push(", ").bind(id).push(", ").bind(now).push(", ").bind(expires_at).push(")");
    state.db.execute(&mut *tx, &query).await?;
    // Expired sessions of this user go when a new one comes.
    let mut query = Query::new("DELETE FROM sessions WHERE user_id = ");
    query.bind(id).push(" AND expires_at <= ").bind(now);
    state.db.execute(&mut *tx, &query).await?;
    tx.commit().await?;
    let company = CompanyId(row.try_get("company_id")?);
    let snapshot = state.snapshots.get(&state.db, company).await?;
    let user = snapshot.company.user(UserId(id)).cloned().ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Json(Session { token, user, expires_at }))
}

/// Logs out: the token stops working at once, and so do the SIP
/// credentials issued to this device (its registration is dropped).
#[utoipa::path(delete, path = "/api/v1/session", tag = "session", security(("bearer" = [])), responses((status = 204, description = "Logged out: the token stops working")))]
pub async fn log_out(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    let mut query = Query::new("DELETE FROM sessions WHERE token_hash = ");
    query.bind(caller.token_hash.clone());
    state.db.execute(state.db.pool(), &query).await?;
    crate::sip::revalidate(&state, caller.id()).await?;
    Ok(StatusCode::NO_CONTENT)
}
