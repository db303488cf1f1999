//! Calls in progress, journalled so a crash loses none of them.
//!
//! When a call is bridged, or its caller starts leaving a voicemail, its
//! record so far (parties, times, recording decision and trace, the
//! recording's or the voicemail's file) is written to
//! `<data dir>/calls-in-progress/<key>.json`, and rewritten on each change of
//! the recording (its trace and paused spans so far). A finished call removes its journal. On start-up,
//! [`recover`] repairs the WAV of each journal left behind (the file holds
//! everything written up to the crash, see `earshot_telephony::wav`) and
//! stores the call, ended when its file stopped growing. The journal also
//! holds each answered leg's dialog ([`LegRecord`]), so that once SIP is up
//! again both far ends get a BYE: a carrier stops billing, and the agent's
//! phone hangs up instead of meeting `481` when its user does.

use crate::AppState;
use crate::calls::{RecordingFile, insert_call};
use earshot_policy::{
    Call, CallId, CallStatus, PausedSpan, Recording, RecordingId, RecordingKind, Timestamp,
};
use earshot_sip::dialog::LegRecord;
use earshot_telephony::SpanSoFar;
use earshot_telephony::sealed::{self, KeyRing};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One journalled call.
#[derive(Debug, Serialize, Deserialize)]
pub struct Entry {
    /// The call so far.
    pub call: Call,
    /// The recording's file name under the recordings directory, if recording started.
    pub recording_file: Option<String>,
    /// The voicemail's file name, once the caller is leaving one.
    #[serde(default)]
    pub voicemail_file: Option<String>,
    /// The recording's pauses so far, as the file holds them.
    #[serde(default)]
    pub paused: Vec<SpanSoFar>,
    /// The call's answered legs, so a restart can end them with a BYE.
    #[serde(default)]
    pub legs: Vec<LegRecord>,
}

/// What a crash left behind, recovered.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Calls stored.
    pub calls: usize,
    /// Legs still up at their far ends until we end them, each with the
    /// file that keeps it until its BYE is sent ([`ended`]).
    pub legs: Vec<(PathBuf, LegRecord)>,
}

/// Where legs wait for their BYE: written before their call's journal goes,
/// removed once the BYE got its answer (or gave up), so a start that dies
/// before it sends them leaves them to the next.
fn pending_dir(state: &AppState) -> PathBuf {
    state.data_dir.join("legs-to-end")
}

/// The BYE of the leg kept at `file` got its answer, or gave up: it is not
/// sent again.
pub fn ended(file: &Path) {
    let _ = std::fs::remove_file(file);
}

/// Keeps `legs` of call `key` until their BYEs are sent.
fn keep_pending(state: &AppState, key: &str, legs: &[LegRecord]) -> std::io::Result<()> {
    let dir = pending_dir(state);
    std::fs::create_dir_all(&dir)?;
    for (index, leg) in legs.iter().enumerate() {
        let temporary = dir.join(format!("{key}-{index}.json.tmp"));
        std::fs::write(&temporary, serde_json::to_vec(leg).map_err(std::io::Error::other)?)?;
        std::fs::rename(&temporary, dir.join(format!("{key}-{index}.json")))?;
    }
    Ok(())
}

/// Sets a journal that cannot be recovered aside (`.failed`), so it neither
/// stops the service from starting nor is tried at every start.
fn set_aside(path: &Path, why: &str) {
    tracing::error!(path = %path.display(), %why, "a call journal could not be recovered: set aside as .failed");
    let _ = std::fs::rename(path, path.with_extension("json.failed"));
}

/// The spans a recovered file of `duration_ms` holds: an open span lasts to
/// the end of what was written, and nothing past the end is kept.
fn recovered_spans(spans: &[SpanSoFar], duration_ms: u64) -> Vec<PausedSpan> {
    spans
        .iter()
        .filter(|span| span.start_ms <= duration_ms)
        .map(|span| PausedSpan {
            start_ms: span.start_ms,
            end_ms: span.end_ms.unwrap_or(duration_ms).clamp(span.start_ms, duration_ms),
            cut_ms: span.cut_ms,
        })
        .collect()
}

fn dir(state: &AppState) -> PathBuf {
    state.data_dir.join("calls-in-progress")
}

/// Writes (or rewrites) the journal of call `key`.
pub fn write(state: &AppState, key: &str, entry: &Entry) {
    let dir = dir(state);
    let result = std::fs::create_dir_all(&dir).and_then(|()| {
        let path = dir.join(format!("{key}.json"));
        let temporary = dir.join(format!("{key}.json.tmp"));
        std::fs::write(&temporary, serde_json::to_vec(entry).unwrap_or_default())?;
        std::fs::rename(&temporary, &path)
    });
    if let Err(error) = result {
        tracing::error!(%error, "cannot journal a call in progress");
    }
}

/// Removes the journal of call `key`.
pub fn remove(state: &AppState, key: &str) {
    let _ = std::fs::remove_file(dir(state).join(format!("{key}.json")));
}

/// Stores every call a crash left in progress; returns how many, and the
/// legs to end.
pub async fn recover(state: &AppState) -> anyhow::Result<Recovered> {
    let Ok(entries) = std::fs::read_dir(dir(state)) else { return Ok(Recovered::default()) };
    let mut recovered = Recovered::default();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Some(journal) =
            std::fs::read(&path).ok().and_then(|bytes| serde_json::from_slice::<Entry>(&bytes).ok())
        else {
            set_aside(&path, "unreadable");
            continue;
        };
        let key = path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
        // Its far ends get their BYE whatever becomes of the call's record.
        if let Err(error) = keep_pending(state, &key, &journal.legs) {
            tracing::error!(%error, "cannot keep a crashed call's legs to end");
        }
        let mut call = journal.call;
        let mut files = Vec::new();
        // Up at least until its journal was last written.
        let written = std::fs::metadata(&path).and_then(|m| m.modified()).ok().and_then(|at| {
            at.duration_since(std::time::UNIX_EPOCH).ok().and_then(|d| i64::try_from(d.as_millis()).ok())
        });
        let mut ended = call.answered_at.unwrap_or(call.started_at).max(Timestamp(written.unwrap_or(0)));
        let kinds = [
            (RecordingKind::Call, &journal.recording_file),
            (RecordingKind::Voicemail, &journal.voicemail_file),
        ];
        for (kind, name) in kinds {
            let Some(name) = name else { continue };
            let wav = state.recordings_dir().join(name);
            match repaired(&wav, state.recordings.keys().as_deref()) {
                _ if !wav.exists() => {}
                Some((duration_ms, size_bytes, modified)) => {
                    ended = ended.max(modified);
                    let paused_spans = match kind {
                        RecordingKind::Call => recovered_spans(&journal.paused, duration_ms),
                        RecordingKind::Voicemail => Vec::new(),
                    };
                    let recording = Recording {
                        id: RecordingId(0),
                        call: CallId(0),
                        kind,
                        duration_ms,
                        size_bytes,
                        paused_spans,
                        deleted: None,
                    };
                    match kind {
                        RecordingKind::Call => call.recording = Some(recording.clone()),
                        RecordingKind::Voicemail => {
                            call.voicemail = Some(recording.clone());
                            call.status = CallStatus::Voicemail;
                        }
                    }
                    files.push(RecordingFile { recording, file_name: name.clone() });
                }
                None => {
                    tracing::error!(path = %wav.display(), "a crashed call's recording could not be repaired");
                }
            }
        }
        call.ended_at = Some(ended);
        if call.answered_at.is_some() {
            call.status = CallStatus::Answered;
        }
        // The database out of reach stops the start (a sentence, not a
        // loop); a call it refuses is set aside and the others go on.
        let mut tx = state.db.pool().begin().await?;
        match insert_call(&state.db, &mut tx, &call, &files).await {
            Ok(_) => {
                tx.commit().await?;
                if let Err(error) = std::fs::remove_file(&path) {
                    set_aside(&path, &format!("stored, but the journal stays: {error}"));
                }
                recovered.calls += 1;
            }
            Err(error) => set_aside(&path, &format!("not stored: {error}")),
        }
    }
    // This start's legs, and any a previous start did not get to end.
    if let Ok(pending) = std::fs::read_dir(pending_dir(state)) {
        for file in pending.flatten().map(|entry| entry.path()) {
            if file.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match std::fs::read(&file).ok().and_then(|bytes| serde_json::from_slice::<LegRecord>(&bytes).ok())
            {
                Some(leg) => recovered.legs.push((file, leg)),
                None => ended(&file),
            }
        }
    }
    Ok(recovered)
}

/// Repairs the recording at `path` (a WAV, or sealed under `keys`): its
/// length in ms, its size, when it was last written.
fn repaired(path: &Path, keys: Option<&KeyRing>) -> Option<(u64, u64, Timestamp)> {
    let mut start = [0u8; sealed::HEADER_LEN];
    let read =
        std::fs::File::open(path).and_then(|mut file| std::io::Read::read(&mut file, &mut start)).ok()?;
    let duration_ms = if sealed::is_sealed(&start[..read]) {
        let Some(keys) = keys else {
            tracing::error!(path = %path.display(), "a sealed recording, and no [recordings] keys to open it");
            return None;
        };
        earshot_telephony::wav::repair_sealed(path, keys).ok()?;
        let opened = sealed::open(&start, std::fs::metadata(path).ok()?.len(), keys).ok()?;
        let frame =
            u64::from(opened.format.channels.max(1)) * u64::from(opened.format.bits_per_sample / 8).max(1);
        opened.pcm_len / frame * 1_000 / u64::from(opened.format.sample_rate.max(1))
    } else {
        earshot_telephony::wav::repair(path).ok()?;
        let reader = hound::WavReader::open(path).ok()?;
        let spec = reader.spec();
        u64::from(reader.duration()) * 1_000 / u64::from(spec.sample_rate.max(1))
    };
    let metadata = std::fs::metadata(path).ok()?;
    let modified = metadata
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())?;
    Some((duration_ms, metadata.len(), Timestamp(modified)))
}

#[cfg(test)]
mod tests {
    use super::recovered_spans;
    use earshot_policy::PausedSpan;
    use earshot_telephony::SpanSoFar as Span;

    #[test]
    fn an_open_span_lasts_to_the_end_of_the_recovered_file_and_later_ones_go() {
        let spans = [
            Span { start_ms: 1_000, end_ms: Some(2_000), cut_ms: 0 },
            Span { start_ms: 3_000, end_ms: None, cut_ms: 0 },
            Span { start_ms: 9_000, end_ms: Some(9_500), cut_ms: 0 },
        ];
        assert_eq!(
            recovered_spans(&spans, 5_000),
            [
                PausedSpan { start_ms: 1_000, end_ms: 2_000, cut_ms: 0 },
                PausedSpan { start_ms: 3_000, end_ms: 5_000, cut_ms: 0 }
            ]
        );
        // The file stopped inside a closed span: the span ends with the file.
        assert_eq!(
            recovered_spans(&spans[..1], 1_500),
            [PausedSpan { start_ms: 1_000, end_ms: 1_500, cut_ms: 0 }]
        );
    }
}
