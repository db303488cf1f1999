//! Downloading a recording to a file the user chose: only when `policy`
//! allows it, with progress, and all or nothing. The bytes go to a hidden
//! temporary file next to the destination, are checked to be a WAV, and only
//! then take the destination's name; any failure (a full disk, the right
//! revoked mid-way, the server gone) removes the partial file. The name a
//! save dialog proposes is the service's own, [`earshot_api::download_name`].

use crate::api::Api;
use crate::error::{ClientError, Result};
use crate::history::History;
use earshot_policy::{CallId, RecordingKind};
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
