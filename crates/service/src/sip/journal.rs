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
    /// Their legs, still up at their far ends until we end them.
    pub legs: Vec<LegRecord>,
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
        let Ok(journal) = serde_json::from_slice::<Entry>(&std::fs::read(&path)?) else {
            tracing::error!(path = %path.display(), "unreadable call journal left as it is");
            continue;
        };
        let mut call = journal.call;
        let legs = journal.legs;
        let mut files = Vec::new();
        let mut ended = call.answered_at.unwrap_or(call.started_at);
        let kinds = [
            (RecordingKind::Call, &journal.recording_file),
            (RecordingKind::Voicemail, &journal.voicemail_file),
        ];
        for (kind, name) in kinds {
            let Some(name) = name else { continue };
            let wav = state.recordings_dir().join(name);
            match repaired(&wav) {
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
        let mut tx = state.db.pool().begin().await?;
        insert_call(&state.db, &mut tx, &call, &files)
            .await
            .map_err(|e| anyhow::anyhow!("storing a recovered call: {e}"))?;
        tx.commit().await?;
        std::fs::remove_file(&path)?;
        recovered.calls += 1;
        recovered.legs.extend(legs);
    }
    Ok(recovered)
}

/// Repairs the WAV at `path`: its length in ms, its size, when it was last written.
fn repaired(path: &Path) -> Option<(u64, u64, Timestamp)> {
    earshot_telephony::wav::repair(path).ok()?;
    let reader = hound::WavReader::open(path).ok()?;
    let spec = reader.spec();
    let duration_ms = u64::from(reader.duration()) * 1_000 / u64::from(spec.sample_rate.max(1));
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
