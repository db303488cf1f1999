//! `POST /api/v1/calls/import` (admins): calls from another system, with
//! optional WAV recordings as base64. Everything is checked first; then all
//! calls are stored in one transaction, or none are.

use super::Json;
use crate::AppState;
use crate::auth::Caller;
use crate::calls::{RecordingFile, insert_call};
use crate::company::check_e164;
use crate::error::{ApiError, ApiResult, FieldProblem};
use crate::events::{Change, ChangeEvent};
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use earshot_api::rules;
use earshot_policy::{
    Call, CallId, CallStatus, ContactId, DecidedBy, Direction, PausedSpan, Recording, RecordingId,
    RecordingKind, Timestamp, TraceEntry, UserId,
};
use serde::{Deserialize, Serialize};

/// Largest import body, in bytes.
pub const MAX_IMPORT_BODY: usize = 256 * 1024 * 1024;
/// Most calls in one import.
pub const MAX_IMPORT_CALLS: usize = 10_000;

/// The body of an import.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Import {
    /// The calls.
    #[schema(min_items = 1, max_items = 10_000)]
    pub calls: Vec<ImportCall>,
}

/// One call to import. Users are named by e-mail, numbers in E.164.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportCall {
    /// Which way it went.
    pub direction: Direction,
    /// How it ended.
    pub status: CallStatus,
    /// Start (ms since the epoch, before 2200).
    #[schema(minimum = 0, maximum = 7_258_118_399_999_i64)]
    pub started_at: i64,
    /// Answer time, for answered calls.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 7_258_118_399_999_i64)]
    pub answered_at: Option<i64>,
    /// End time.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 7_258_118_399_999_i64)]
    pub ended_at: Option<i64>,
    /// The company number (inbound: dialled; outbound: caller ID), E.164.
    #[serde(default)]
    #[schema(schema_with = rules::schema::e164_or_null)]
    pub number: Option<String>,
    /// The external party's number, E.164.
    #[serde(default)]
    #[schema(schema_with = rules::schema::e164_or_null)]
    pub external_number: Option<String>,
    /// The contact's id, if known.
    #[serde(default)]
    pub contact: Option<i64>,
    /// E-mail addresses of the users on the call.
    #[serde(default)]
    #[schema(schema_with = rules::schema::email_list)]
    pub parties: Vec<String>,
    /// E-mail addresses of the users whose phones rang.
    #[serde(default)]
    #[schema(schema_with = rules::schema::email_list)]
    pub rang: Vec<String>,
    /// How the recording was decided, if known.
    #[serde(default)]
    pub decided_by: Option<DecidedBy>,
    /// The call's recording: stereo WAV, 8 kHz, 16-bit PCM, base64.
    #[serde(default)]
    pub recording: Option<ImportAudio>,
    /// The voicemail: mono WAV, 8 kHz, 16-bit PCM, base64.
    #[serde(default)]
    pub voicemail: Option<ImportAudio>,
}

/// A WAV to import.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportAudio {
    /// The file, base64 (standard alphabet).
    pub wav_base64: String,
    /// Spans that were paused, ms.
    #[serde(default)]
    pub paused_spans: Vec<PausedSpan>,
}

/// What an import did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Imported {
    /// Ids of the new calls, in the order given.
    pub calls: Vec<CallId>,
    /// Ids of their recordings, in the same order; `null` for a call without one.
    pub recordings: Vec<Option<RecordingId>>,
    /// Ids of their voicemails, in the same order; `null` for a call without one.
    pub voicemails: Vec<Option<RecordingId>>,
}

struct Checked {
    call: Call,
    audio: Vec<(Recording, Vec<u8>)>,
}

fn check_wav(
    field: &str,
    kind: RecordingKind,
    audio: &ImportAudio,
    problems: &mut Vec<FieldProblem>,
) -> Option<(Recording, Vec<u8>)> {
    let mut problem = |text: String| problems.push(FieldProblem { field: field.to_owned(), problem: text });
    let bytes = match base64::engine::general_purpose::STANDARD.decode(audio.wav_base64.trim()) {
        Ok(bytes) => bytes,
        Err(e) => {
            problem(format!("is not base64: {e}"));
            return None;
        }
    };
    let reader = match hound::WavReader::new(std::io::Cursor::new(&bytes)) {
        Ok(reader) => reader,
        Err(e) => {
            problem(format!("is not a WAV file: {e}"));
            return None;
        }
    };
    let spec = reader.spec();
    let channels = Recording::channels(kind);
    if spec.sample_rate != Recording::SAMPLE_RATE
        || spec.bits_per_sample != Recording::BITS_PER_SAMPLE
        || spec.sample_format != hound::SampleFormat::Int
        || spec.channels != channels
    {
        problem(format!(
            "must be {channels}-channel 8 kHz 16-bit PCM, but is {}-channel {} Hz {}-bit {:?}",
            spec.channels, spec.sample_rate, spec.bits_per_sample, spec.sample_format
        ));
        return None;
    }
    let duration_ms = u64::from(reader.duration()) * 1000 / u64::from(Recording::SAMPLE_RATE);
    // Every sample must be there: a truncated file is refused, not half-imported.
    if reader.into_samples::<i16>().any(|s| s.is_err()) {
        problem("is cut short: its samples end before its header says".into());
        return None;
    }
    if audio.paused_spans.iter().any(|s| s.start_ms > s.end_ms || s.end_ms > duration_ms) {
        problem("has a paused span outside the recording".into());
        return None;
    }
    let recording = Recording {
        id: RecordingId(0),
        call: CallId(0),
        kind,
        duration_ms,
        size_bytes: bytes.len() as u64,
        paused_spans: audio.paused_spans.clone(),
        deleted: None,
    };
    Some((recording, bytes))
}

/// `POST /api/v1/calls/import`.
#[utoipa::path(post, path = "/api/v1/calls/import", tag = "calls", security(("bearer" = ["admin"])), request_body = Import, responses((status = 201, body = Imported), (status = 403), (status = 413, description = "Larger than 256 MiB"), (status = 422, description = "Nothing imported; every problem listed")))]
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<Import>,
) -> ApiResult<(StatusCode, Json<Imported>)> {
    caller.require_admin()?;
    if body.calls.is_empty() || body.calls.len() > MAX_IMPORT_CALLS {
        return Err(ApiError::invalid_field("calls", format!("must hold 1 to {MAX_IMPORT_CALLS} calls")));
    }
    let company = &caller.snapshot.company;
    let mut problems = Vec::new();
    let mut checked = Vec::with_capacity(body.calls.len());
    for (i, item) in body.calls.iter().enumerate() {
        let at = |field: &str| format!("calls[{i}].{field}");
        let mut problem =
            |field: &str, text: String| problems.push(FieldProblem { field: at(field), problem: text });
        let user = |email: &String, field: &str, problem: &mut dyn FnMut(&str, String)| -> Option<UserId> {
            let found =
                company.users().iter().find(|u| u.email.eq_ignore_ascii_case(email.trim())).map(|u| u.id);
            if found.is_none() {
                problem(field, format!("{email} is not a user of this company"));
            }
            found
        };
        let parties: Vec<UserId> =
            item.parties.iter().filter_map(|e| user(e, "parties", &mut problem)).collect();
        let rang: Vec<UserId> = item.rang.iter().filter_map(|e| user(e, "rang", &mut problem)).collect();
        let number = item.number.as_ref().and_then(|e164| {
            let found = company.numbers().iter().find(|n| &n.e164 == e164).map(|n| n.id);
            if found.is_none() {
                problem("number", format!("{e164} is not one of this company's numbers"));
            }
            found
        });
        if let Some(external) = &item.external_number
            && let Err(p) = check_e164(&at("external_number"), external)
        {
            problems.push(p);
        }
        let outside = matches!(item.direction, Direction::Inbound | Direction::Outbound);
        if !item.status.fits(item.direction) {
            problems.push(FieldProblem {
                field: at("status"),
                problem: format!("a {} call can't be {}", item.direction.as_str(), item.status.as_str()),
            });
        }
        if item.direction == Direction::Internal && (item.number.is_some() || item.external_number.is_some())
        {
            problems.push(FieldProblem {
                field: at("number"),
                problem: "internal calls have no outside numbers".into(),
            });
        }
        if outside && item.external_number.is_none() {
            problems.push(FieldProblem {
                field: at("external_number"),
                problem: "is required for calls with the outside".into(),
            });
        }
        // Times from 1970 to 2200: anything else is a unit mistake (seconds, microseconds).
        let in_range = |t: i64| (0..7_258_118_400_000).contains(&t);
        if ![Some(item.started_at), item.answered_at, item.ended_at].into_iter().flatten().all(in_range) {
            problems.push(FieldProblem {
                field: at("started_at"),
                problem: "times are milliseconds since 1970, before 2200".into(),
            });
        }
        let times_fit = item.answered_at.is_none_or(|a| a >= item.started_at)
            && item.ended_at.is_none_or(|e| e >= item.answered_at.unwrap_or(item.started_at));
        if !times_fit {
            problems.push(FieldProblem {
                field: at("ended_at"),
                problem: "times must run started ≤ answered ≤ ended".into(),
            });
        }
        if item.answered_at.is_some() != (item.status == CallStatus::Answered) {
            problems.push(FieldProblem {
                field: at("answered_at"),
                problem: "is set exactly when the call was answered".into(),
            });
        }
        if item.voicemail.is_some() && item.status != CallStatus::Voicemail {
            problems.push(FieldProblem {
                field: at("voicemail"),
                problem: "only voicemail calls have one".into(),
            });
        }
        if item.recording.is_some() && item.status != CallStatus::Answered {
            problems.push(FieldProblem {
                field: at("recording"),
                problem: "only answered calls have one".into(),
            });
        }
        let mut audio = Vec::new();
        if let Some(wav) = &item.recording {
            audio.extend(check_wav(&at("recording"), RecordingKind::Call, wav, &mut problems));
        }
        if let Some(wav) = &item.voicemail {
            audio.extend(check_wav(&at("voicemail"), RecordingKind::Voicemail, wav, &mut problems));
        }
        checked.push(Checked {
            call: Call {
                id: CallId(0),
                company: company.id(),
                direction: item.direction,
                status: item.status,
                started_at: Timestamp(item.started_at),
                answered_at: item.answered_at.map(Timestamp),
                ended_at: item.ended_at.map(Timestamp),
                number,
                external_number: item.external_number.clone(),
                contact: item.contact.map(ContactId),
                parties,
                rang,
                recording: None,
                voicemail: None,
                decided_by: item.decided_by,
                recording_trace: Vec::<TraceEntry>::new(),
                legal_hold: None,
            },
            audio,
        });
    }
    if let Some(contact_ids) = Some(checked.iter().filter_map(|c| c.call.contact).collect::<Vec<_>>())
        && !contact_ids.is_empty()
    {
        let mut query = crate::db::Query::new("SELECT id FROM contacts WHERE company_id = ");
        query.bind(company.id().0).push(" AND id IN ").bind_list(contact_ids.iter().map(|c| c.0));
        let known: Vec<i64> = state
            .db
            .fetch_all(state.db.pool(), &query)
            .await?
            .iter()
            .map(|row| sqlx::Row::try_get(row, "id"))
            .collect::<Result<_, _>>()?;
        for (i, c) in checked.iter().enumerate() {
            if let Some(contact) = c.call.contact
                && !known.contains(&contact.0)
            {
                problems.push(FieldProblem {
                    field: format!("calls[{i}].contact"),
                    problem: format!("contact {contact} does not exist"),
                });
            }
        }
    }
    if !problems.is_empty() {
        let detail = format!(
            "Nothing was imported: {} problem{} (see `problems`). The first: {}: {}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            problems[0].field,
            problems[0].problem
        );
        return Err(ApiError::invalid(detail, problems));
    }

    // Files first, under names of their own; removed again if anything fails.
    let dir = state.recordings_dir().join(company.id().0.to_string());
    tokio::fs::create_dir_all(&dir).await?;
    let batch = crate::auth::new_token().1[..16].to_owned();
    // Files written so far; removed again unless the import commits, even when the
    // request is dropped half-way (a client hanging up).
    let mut written = WrittenFiles(Vec::new());
    let result = async {
        let mut files_per_call = Vec::with_capacity(checked.len());
        for (i, c) in checked.iter().enumerate() {
            let mut files = Vec::new();
            for (recording, bytes) in &c.audio {
                let name = format!("import-{batch}-{i}-{}.wav", recording.kind.as_str());
                let path = dir.join(&name);
                match state.recordings.keys() {
                    Some(keys) => {
                        let sealed = earshot_telephony::wav::seal_wav(bytes, &keys)
                            .map_err(|error| ApiError::internal(&error))?;
                        tokio::fs::write(&path, sealed).await?;
                    }
                    None => tokio::fs::write(&path, bytes).await?,
                }
                written.0.push(path);
                files.push(RecordingFile {
                    recording: recording.clone(),
                    file_name: format!("{}/{name}", company.id()),
                });
            }
            files_per_call.push(files);
        }
        let mut tx = state.db.pool().begin().await?;
        let mut ids = Vec::with_capacity(checked.len());
        for (c, files) in checked.iter().zip(&files_per_call) {
            ids.push(insert_call(&state.db, &mut tx, &c.call, files).await?);
        }
        let mut query = crate::db::Query::new("SELECT id, call_id, kind FROM recordings WHERE company_id = ");
        query.bind(company.id().0).push(" AND call_id IN ").bind_list(ids.iter().map(|c| c.0));
        let mut recordings = vec![None; ids.len()];
        let mut voicemails = vec![None; ids.len()];
        for row in state.db.fetch_all(&mut *tx, &query).await? {
            let call = CallId(sqlx::Row::try_get(&row, "call_id")?);
            let id = RecordingId(sqlx::Row::try_get(&row, "id")?);
            let kind: String = sqlx::Row::try_get(&row, "kind")?;
            if let Some(i) = ids.iter().position(|c| *c == call) {
                let slot =
                    if kind == RecordingKind::Voicemail.as_str() { &mut voicemails } else { &mut recordings };
                slot[i] = Some(id);
            }
        }
        let version = crate::company::bump_version(&state.db, &mut tx, company.id()).await?;
        for id in &ids {
            let event = ChangeEvent { company: company.id(), version, change: Change::Call { call: *id } };
            state.events.stage(&mut tx, &event).await?;
        }
        tx.commit().await?;
        Ok::<_, ApiError>((Imported { calls: ids, recordings, voicemails }, version, files_per_call))
    }
    .await;
    match result {
        Ok((imported, version, files_per_call)) => {
            written.0.clear();
            for file in files_per_call.iter().flatten() {
                state.recordings.finished(&file.file_name);
            }
            for id in &imported.calls {
                state.events.committed(ChangeEvent {
                    company: company.id(),
                    version,
                    change: Change::Call { call: *id },
                });
            }
            Ok((StatusCode::CREATED, Json(imported)))
        }
        Err(error) => Err(error),
    }
}

/// Recording files of an import that has not committed; removed when dropped.
struct WrittenFiles(Vec<std::path::PathBuf>);

impl Drop for WrittenFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}
