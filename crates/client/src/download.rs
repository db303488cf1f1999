//! Downloading a recording to a file the user chose: only when `policy`
//! allows it, with progress, and all or nothing. The bytes go to a hidden
//! temporary file next to the destination, are checked to be a WAV, and only
//! then take the destination's name; any failure (a full disk, the right
//! revoked mid-way, the server gone) removes the partial file.

use crate::api::Api;
use crate::error::{ClientError, Result};
use crate::history::History;
use crate::history::other_party;
use earshot_api::SyncSnapshot;
use earshot_policy::{Call, CallId, RecordingKind};
use futures::StreamExt as _;
use reqwest::Method;
use std::io::Write as _;
use std::path::Path;

/// How far a download is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes written so far.
    pub written: u64,
    /// Bytes in all, when the server said.
    pub total: Option<u64>,
}

/// Downloads the `kind` recording of `call` to `destination`.
///
/// `still_allowed` is asked before each chunk is written (the app passes
/// one that looks at the current rights): when it refuses, the download
/// stops and leaves nothing behind.
pub async fn download(
    api: &Api,
    history: &History,
    call: CallId,
    kind: RecordingKind,
    destination: &Path,
    still_allowed: impl Fn() -> Result<()>,
    mut progress: impl FnMut(Progress),
) -> Result<u64> {
    if !history.may_download(call, kind) {
        return Err(ClientError::Forbidden { detail: "You may not download this recording.".into() });
    }
    let recording = history.recording(call, kind)?;
    let file_error = |source| ClientError::File { path: destination.to_owned(), source };
    let directory = match destination.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut partial = tempfile::Builder::new()
        .prefix(".earshot-")
        .suffix(".part")
        .tempfile_in(directory)
        .map_err(file_error)?;
    let response =
        api.send(api.request(Method::GET, &format!("/recordings/{}/download", recording.id))).await?;
    let total = response.content_length();
    let mut written = 0_u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        still_allowed()?;
        let chunk = chunk.map_err(|error| ClientError::Offline {
            server: api.server().to_owned(),
            reason: format!("the download broke off: {error}"),
        })?;
        partial.write_all(&chunk).map_err(file_error)?;
        written += chunk.len() as u64;
        progress(Progress { written, total });
    }
    still_allowed()?;
    if total.is_some_and(|total| total != written) {
        return Err(ClientError::Offline {
            server: api.server().to_owned(),
            reason: format!("the download stopped after {written} of {} bytes", total.unwrap_or_default()),
        });
    }
    partial.as_file_mut().sync_all().map_err(file_error)?;
    hound::WavReader::open(partial.path())
        .map_err(|error| ClientError::Protocol(format!("the recording is not a WAV file: {error}")))?;
    partial.persist(destination).map_err(|error| file_error(error.error))?;
    Ok(written)
}

/// The file name a save dialog proposes: when the call started (UTC), its
/// direction and the other party, e.g. `2026-11-24 14.05 inbound +447700900123.wav`.
#[must_use]
pub fn default_file_name(call: &Call, kind: RecordingKind, snapshot: &SyncSnapshot) -> String {
    let other = other_party(call, snapshot).unwrap_or_else(|| "unknown".into());
    let kind = match kind {
        RecordingKind::Call => "",
        RecordingKind::Voicemail => " voicemail",
    };
    let name = format!("{} {}{kind} {other}.wav", utc_minute(call.started_at.0), call.direction.as_str());
    name.chars().map(|c| if matches!(c, '/' | '\\' | ':' | '\0') { '-' } else { c }).collect()
}

/// `YYYY-MM-DD HH.MM` in UTC for ms since the epoch (civil-from-days, H. Hinnant).
fn utc_minute(millis: i64) -> String {
    let minutes = millis.div_euclid(60_000);
    let (days, minute_of_day) = (minutes.div_euclid(1_440), minutes.rem_euclid(1_440));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}.{:02}", minute_of_day / 60, minute_of_day % 60)
}

#[cfg(test)]
mod tests {
    use super::utc_minute;

    #[test]
    fn utc_minutes_read_as_calendar_dates() {
        assert_eq!(utc_minute(0), "1970-01-01 00.00");
        // 2026-11-24 14:05:59 UTC.
        assert_eq!(utc_minute(1_795_529_159_000), "2026-11-24 14.05");
        assert_eq!(utc_minute(951_782_400_000), "2000-02-29 00.00");
    }
}
