//! Recordings: `GET /api/v1/recordings/{id}/audio` (with HTTP Range, for
//! seeking), `GET /api/v1/recordings/{id}/download` (a `.wav` attachment),
//! and the audit log of both (`GET /api/v1/audit`, admins).
//!
//! The right is decided by `policy` at request time, every time (SPEC §5).
//! A recording of another company, or of a call the caller cannot see, is
//! "not found"; one they see but may not play is "forbidden".

use super::{Json, Path, Query};
use crate::AppState;
use crate::auth::Caller;
use crate::calls::{CALL_COLUMNS, RECORDING_COLUMNS, calls_from_rows, find_call, recording_from_row};
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::store::Stored;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
pub use earshot_api::AuditEntry;
use earshot_policy::{AppContext, Call, Deletion, DeletionReason, RecordingId, RecordingKind};
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use std::net::SocketAddr;

/// Query of the audio and download endpoints.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RecordingQuery {
    /// App context the right is decided in (default `dashboard`).
    #[param(value_type = Option<String>)]
    pub app: Option<AppContext>,
}

/// What was done with a recording, for the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// Played (streamed from its start).
    Play,
    /// Downloaded as a file.
    Download,
}

impl AuditAction {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Play => "play",
            Self::Download => "download",
        }
    }
}

/// The client's address, when the server knows it (not in router tests).
pub struct RemoteAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for RemoteAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0)))
    }
}

struct Allowed {
    call: Call,
    kind: RecordingKind,
    /// Its key in the spool and the store.
    file_name: String,
    recording: RecordingId,
}

impl Allowed {
    /// The recording as kept (its size, opened if sealed). A missing file
    /// is our fault: logged, and a 500; a store that does not answer, a 503.
    async fn stat(&self, state: &AppState) -> ApiResult<Stored> {
        state.recordings.stat(&self.file_name).await.map_err(|error| {
            if matches!(error, crate::store::StoreError::NotFound) {
                tracing::error!(recording = %self.recording, file = self.file_name, "a recording is missing its file");
            }
            ApiError::from(error)
        })
    }
}

async fn authorize(
    state: &AppState,
    caller: &Caller,
    id: i64,
    app: AppContext,
    action: AuditAction,
) -> ApiResult<Allowed> {
    let mut query =
        db::Query::new(&format!("SELECT {RECORDING_COLUMNS}, file_name FROM recordings WHERE id = "));
    query.bind(id).push(" AND company_id = ").bind(caller.company().0);
    let row = state
        .db
        .fetch_optional(state.db.pool(), &query)
        .await?
        .ok_or_else(|| ApiError::not_found("recording"))?;
    let recording = recording_from_row(&row)?;
    let file_name: String = row.try_get("file_name")?;
    let viewer = caller.viewer(app);
    let call = find_call(&state.db, caller.company(), recording.call)
        .await?
        .filter(|call| viewer.can_see(call))
        .ok_or_else(|| ApiError::not_found("recording"))?;
    if let Some(deletion) = &recording.deleted {
        return Err(ApiError::gone(deleted_sentence(&caller.snapshot.company, recording.kind, deletion)));
    }
    let allowed = match action {
        AuditAction::Play => viewer.may_play(&call, recording.kind),
        AuditAction::Download => viewer.may_download(&call, recording.kind),
    };
    if !allowed {
        return Err(ApiError::forbidden(match action {
            AuditAction::Play => "You may not play this recording.",
            AuditAction::Download => "You may not download this recording.",
        }));
    }
    Ok(Allowed { call, kind: recording.kind, file_name, recording: recording.id })
}

/// "This recording was deleted on 2026-03-01 by Alex Admin, on request."
fn deleted_sentence(company: &earshot_policy::Company, kind: RecordingKind, deletion: &Deletion) -> String {
    let what = if kind == RecordingKind::Voicemail { "voicemail" } else { "recording" };
    let why = match (deletion.reason, deletion.by.and_then(|id| company.user(id))) {
        (DeletionReason::Retention, _) => "as the company keeps recordings for a limited time".to_owned(),
        (DeletionReason::Request, Some(user)) => format!("by {}, on request", user.name),
        (DeletionReason::Request, None) => "on request".to_owned(),
    };
    let day = earshot_api::date(deletion.at.0);
    format!("This {what} was deleted on {day}, {why}. The call stays in the history.")
}

async fn audit(
    state: &AppState,
    caller: &Caller,
    allowed: &Allowed,
    action: AuditAction,
    remote: Option<SocketAddr>,
    headers: &HeaderMap,
) -> ApiResult<()> {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(300).collect::<String>());
    let mut query = db::Query::new(
        "INSERT INTO audit_log (company_id, user_id, action, recording_id, call_id, at, remote_addr, user_agent) VALUES (",
    );
    query
        .bind(caller.company().0)
        .push(", ")
        .bind(caller.id().0)
        .push(", ")
        .bind(action.as_str())
        .push(", ")
        .bind(allowed.recording.0)
        .push(", ")
        .bind(allowed.call.id.0)
        .push(", ")
        .bind(crate::now_millis())
        .push(", ")
        .bind(remote.map(|addr| addr.ip().to_string()))
        .push(", ")
        .bind(user_agent)
        .push(")");
    state.db.execute(state.db.pool(), &query).await?;
    Ok(())
}

/// How long one play lasts in the audit log while the player seeks.
const PLAY_WINDOW_MS: i64 = 5 * 60 * 1000;

async fn played_recently(state: &AppState, caller: &Caller, allowed: &Allowed) -> ApiResult<bool> {
    let mut query = db::Query::new("SELECT id FROM audit_log WHERE company_id = ");
    query
        .bind(caller.company().0)
        .push(" AND user_id = ")
        .bind(caller.id().0)
        .push(" AND recording_id = ")
        .bind(allowed.recording.0)
        .push(" AND action = 'play' AND at > ")
        .bind(crate::now_millis() - PLAY_WINDOW_MS)
        .push(" LIMIT 1");
    Ok(state.db.fetch_optional(state.db.pool(), &query).await?.is_some())
}

/// A single byte range, `bytes=a-b`, `bytes=a-` or `bytes=-n`, within `size`.
fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>, ApiError> {
    // A range in a unit we don't serve is ignored: the whole file (RFC 9110 §14.2).
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Err(ApiError::bad_request("Ask for one byte range at a time."));
    }
    let (start, end) =
        spec.split_once('-').ok_or_else(|| ApiError::bad_request("The Range header is malformed."))?;
    let number = |text: &str| {
        text.trim().parse::<u64>().map_err(|_| ApiError::bad_request("The Range header is malformed."))
    };
    let (first, last) = match (start.trim().is_empty(), end.trim().is_empty()) {
        (false, false) => (number(start)?, number(end)?.min(size.saturating_sub(1))),
        (false, true) => (number(start)?, size.saturating_sub(1)),
        (true, false) => {
            let suffix = number(end)?;
            if suffix == 0 {
                return Err(ApiError::range_not_satisfiable(size));
            }
            (size.saturating_sub(suffix), size.saturating_sub(1))
        }
        (true, true) => return Err(ApiError::bad_request("The Range header is malformed.")),
    };
    if size == 0 || first >= size || first > last {
        return Err(ApiError::range_not_satisfiable(size));
    }
    Ok(Some((first, last)))
}

/// `GET /api/v1/recordings/{id}/audio`: `audio/wav`, whole or one byte range.
/// Every play is in the audit log; a player's seeks within five minutes are the same play.
#[utoipa::path(get, path = "/api/v1/recordings/{id}/audio", tag = "recordings", security(("bearer" = [])), params(("id" = i64, Path, description = "Recording id"), RecordingQuery, ("Range" = Option<String>, Header, description = "bytes=START-END, one range")), responses((status = 200, description = "The WAV", content_type = "audio/wav"), (status = 206, description = "One byte range of the WAV", content_type = "audio/wav"), (status = 403, description = "Visible, but you may not play it"), (status = 410, description = "The recording was deleted (the company's retention, or on request); the detail says when and why"), (status = 404, description = "No such recording you may see"), (status = 416, description = "Range outside the file"), (status = 503, description = "The recordings store cannot be reached now (Retry-After)")))]
pub async fn audio(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<RecordingQuery>,
    RemoteAddr(remote): RemoteAddr,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let allowed =
        authorize(&state, &caller, id, query.app.unwrap_or(AppContext::Dashboard), AuditAction::Play).await?;
    let stored = allowed.stat(&state).await?;
    let size = stored.len();
    let range = match headers.get(header::RANGE).map(|v| v.to_str()) {
        Some(Ok(value)) => parse_range(value, size)?,
        Some(Err(_)) => return Err(ApiError::bad_request("The Range header is malformed.")),
        None => None,
    };
    let (status, first, last) = match range {
        Some((first, last)) => (StatusCode::PARTIAL_CONTENT, first, last),
        None => (StatusCode::OK, 0, size.saturating_sub(1)),
    };
    let length = if size == 0 { 0 } else { last - first + 1 };
    let body = Body::from_stream(state.recordings.read_stored(&stored, first..first + length).await?);
    // Every play is audited. A player asks for many ranges as it seeks; those within five
    // minutes of the user's last logged play of this recording are one play, not many.
    if !played_recently(&state, &caller, &allowed).await? {
        audit(&state, &caller, &allowed, AuditAction::Play, remote, &headers).await?;
    }
    let mut response = (status, body).into_response();
    let headers = wav_headers(&mut response, length);
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        let value = format!("bytes {first}-{last}/{size}");
        headers.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&value).map_err(|e| ApiError::internal(&e))?,
        );
    }
    Ok(response)
}

/// Buckets in a waveform, at most (a wide player is ~1,000 px).
const MAX_PEAK_BUCKETS: usize = 2_000;

/// `?buckets=` of a waveform.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PeaksQuery {
    /// App context the right is decided in (default `dashboard`).
    #[param(value_type = Option<String>)]
    pub app: Option<AppContext>,
    /// How many bars, 1 to 2,000 (default 400).
    #[param(minimum = 1, maximum = 2000)]
    pub buckets: Option<usize>,
}

/// `GET /api/v1/recordings/{id}/peaks`: the recording's loudness in `buckets`
/// equal slices of time, for a player's waveform. Asks the right to play
/// (it shows the shape of the audio), but is not a play: not audited.
#[utoipa::path(get, path = "/api/v1/recordings/{id}/peaks", tag = "recordings", security(("bearer" = [])), params(("id" = i64, Path, description = "Recording id"), PeaksQuery), responses((status = 200, body = Peaks), (status = 403), (status = 410, description = "The recording was deleted (the company's retention, or on request); the detail says when and why"), (status = 404), (status = 422, description = "buckets outside 1..=2000"), (status = 503, description = "The recordings store cannot be reached now (Retry-After)")))]
pub async fn peaks(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<PeaksQuery>,
) -> ApiResult<Json<Peaks>> {
    let buckets = query.buckets.unwrap_or(400);
    if !(1..=MAX_PEAK_BUCKETS).contains(&buckets) {
        return Err(ApiError::invalid_field("buckets", "must be 1 to 2000"));
    }
    let allowed =
        authorize(&state, &caller, id, query.app.unwrap_or(AppContext::Dashboard), AuditAction::Play).await?;
    let reader = state.recordings.reader(&allowed.file_name).await?;
    let peaks = tokio::task::spawn_blocking(move || {
        let reader = hound::WavReader::new(std::io::BufReader::with_capacity(64 * 1024, reader))?;
        let spec = reader.spec();
        let frames = u64::from(reader.duration());
        let samples = reader.into_samples::<i16>().map_while(Result::ok);
        Ok::<_, hound::Error>(Peaks {
            duration_ms: frames * 1_000 / u64::from(spec.sample_rate.max(1)),
            peaks: wav_peaks(samples, usize::from(spec.channels), frames, buckets),
        })
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
    .map_err(|e| ApiError::internal(&format!("recording {id}: {e}")))?;
    Ok(Json(peaks))
}

pub use earshot_api::Peaks;

/// The loudest sample of each of `buckets` equal slices of `frames` frames.
fn wav_peaks(samples: impl Iterator<Item = i16>, channels: usize, frames: u64, buckets: usize) -> Vec<u8> {
    let mut peaks = vec![0_u8; buckets];
    if frames == 0 {
        return peaks;
    }
    for (at, sample) in samples.enumerate() {
        let frame = (at / channels.max(1)) as u64;
        let bucket = usize::try_from(frame * buckets as u64 / frames).unwrap_or(buckets - 1).min(buckets - 1);
        let level = u8::try_from((u32::from(sample.unsigned_abs()) * 255) / 32_768).unwrap_or(u8::MAX);
        peaks[bucket] = peaks[bucket].max(level);
    }
    peaks
}

/// The headers every recording answer has: a WAV of `length` bytes, never cached by proxies.
fn wav_headers(response: &mut Response, length: u64) -> &mut HeaderMap {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    headers
}

use earshot_api::download_name;

/// `GET /api/v1/recordings/{id}/download`: the `.wav` as an attachment named after the call.
#[utoipa::path(get, path = "/api/v1/recordings/{id}/download", tag = "recordings", security(("bearer" = [])), params(("id" = i64, Path, description = "Recording id"), RecordingQuery), responses((status = 200, description = "The WAV as an attachment named after the call", content_type = "audio/wav"), (status = 403), (status = 410, description = "The recording was deleted (the company's retention, or on request); the detail says when and why"), (status = 404), (status = 503, description = "The recordings store cannot be reached now (Retry-After)")))]
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<RecordingQuery>,
    RemoteAddr(remote): RemoteAddr,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let allowed =
        authorize(&state, &caller, id, query.app.unwrap_or(AppContext::Dashboard), AuditAction::Download)
            .await?;
    let stored = allowed.stat(&state).await?;
    let size = stored.len();
    let body = Body::from_stream(state.recordings.read_stored(&stored, 0..size).await?);
    audit(&state, &caller, &allowed, AuditAction::Download, remote, &headers).await?;
    let name = download_name(&allowed.call, allowed.kind);
    let mut response = (StatusCode::OK, body).into_response();
    let headers = wav_headers(&mut response, size);
    let disposition = format!("attachment; filename=\"{name}\"");
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(|e| ApiError::internal(&e))?,
    );
    Ok(response)
}

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries older than this id (paging, newest first).
    pub before: Option<i64>,
    /// Entries per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Only this user's entries.
    pub user: Option<i64>,
    /// Only this recording's entries.
    pub recording: Option<i64>,
}

/// `GET /api/v1/audit`: who played, downloaded and deleted which recording,
/// and who held which call, newest first. Admins only.
#[utoipa::path(get, path = "/api/v1/audit", tag = "recordings", security(("bearer" = ["admin"])), params(AuditQuery), responses((status = 200, body = Vec<AuditEntry>), (status = 403)))]
pub async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    Query(filters): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    caller.require_admin()?;
    let limit = filters.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "must be 1 to 500"));
    }
    let mut query = db::Query::new(
        "SELECT id, user_id, action, recording_id, call_id, at, remote_addr, user_agent FROM audit_log WHERE company_id = ",
    );
    query.bind(caller.company().0);
    if let Some(before) = filters.before {
        query.push(" AND id < ").bind(before);
    }
    if let Some(user) = filters.user {
        query.push(" AND user_id = ").bind(user);
    }
    if let Some(recording) = filters.recording {
        query.push(" AND recording_id = ").bind(recording);
    }
    query.push(" ORDER BY id DESC LIMIT ").bind(i64::from(limit));
    let rows = state.db.fetch_all(state.db.pool(), &query).await?;
    let mut entries = rows
        .into_iter()
        .map(|row| {
            Ok(AuditEntry {
                id: row.try_get("id")?,
                user: row.try_get::<Option<i64>, _>("user_id")?,
                action: row.try_get("action")?,
                recording: row.try_get::<Option<i64>, _>("recording_id")?,
                call: row.try_get("call_id")?,
                at: row.try_get("at")?,
                remote_addr: row.try_get("remote_addr")?,
                user_agent: row.try_get("user_agent")?,
                call_summary: None,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    // Each entry names its call in brief, so a reader of the log knows which
    // call it was without opening it; a call no longer kept leaves it `None`.
    let ids: std::collections::BTreeSet<i64> = entries.iter().map(|e| e.call).collect();
    let mut query = db::Query::new(&format!("SELECT {CALL_COLUMNS} FROM calls c WHERE c.company_id = "));
    query.bind(caller.company().0).push(" AND c.id IN ").bind_list(ids);
    let rows = state.db.fetch_all(state.db.pool(), &query).await?;
    let calls: std::collections::HashMap<i64, Call> = calls_from_rows(&state.db, state.db.pool(), rows)
        .await?
        .into_iter()
        .map(|call| (call.id.0, call))
        .collect();
    for entry in &mut entries {
        entry.call_summary = calls.get(&entry.call).map(|call| earshot_api::AuditCall {
            direction: call.direction.as_str().to_owned(),
            started_at: call.started_at.0,
            external_number: call.external_number.clone(),
            parties: call.parties.iter().map(|user| user.0).collect(),
        });
    }
    Ok(Json(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000).unwrap(), Some((0, 99)));
        assert_eq!(parse_range("bytes=900-", 1000).unwrap(), Some((900, 999)));
        assert_eq!(parse_range("bytes=-100", 1000).unwrap(), Some((900, 999)));
        assert_eq!(parse_range("bytes=990-5000", 1000).unwrap(), Some((990, 999)));
        assert!(parse_range("bytes=1000-", 1000).is_err());
        assert!(parse_range("bytes=5-1", 1000).is_err());
        assert!(parse_range("bytes=0-1,5-6", 1000).is_err());
        assert_eq!(parse_range("items=0-1", 1000).unwrap(), None);
        assert!(parse_range("bytes=x-1", 1000).is_err());
        assert!(parse_range("bytes=-0", 1000).is_err());
    }
}

#[cfg(test)]
mod peak_tests {
    use super::wav_peaks;

    #[test]
    fn peaks_are_the_loudest_sample_of_each_slice() {
        // Stereo, 4 frames, 2 buckets: the louder channel of each half counts.
        let samples = [0, 100, -16_384, 0, 0, 0, 32_767, -32_768];
        assert_eq!(wav_peaks(samples.into_iter(), 2, 4, 2), vec![127, 255]);
        assert_eq!(wav_peaks(std::iter::empty(), 1, 0, 3), vec![0, 0, 0]);
        // More buckets than frames: empty slices stay silent.
        assert_eq!(wav_peaks([32_767_i16].into_iter(), 1, 1, 2), vec![254, 0]);
    }
}
