//! `GET /metrics` in the Prometheus text format: requests by method and
//! status, their total time, and connected event streams. Counts only, no
//! names or ids; still, expose it to your monitoring network only.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use earshot_sip::dialog::Dialogs;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

/// The service's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    request_micros: AtomicU64,
    request_count: AtomicU64,
    /// Event streams open now.
    pub event_streams: AtomicI64,
    /// SIP's counters, once SIP is serving.
    pub sip: std::sync::OnceLock<std::sync::Arc<crate::sip::SipStats>>,
    /// The recordings' uploads, when they go to an object store.
    pub uploads: std::sync::OnceLock<std::sync::Arc<crate::store::UploadStats>>,
    /// Recordings deleted (retention, on request) and their files removed.
    pub retention: crate::retention::RetentionStats,
}

impl Metrics {
    fn record(&self, method: &str, status: u16, micros: u64) {
        let mut requests = self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *requests.entry((method.to_owned(), status)).or_insert(0) += 1;
        drop(requests);
        self.request_micros.fetch_add(micros, Ordering::Relaxed);
        self.request_count.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ =
            writeln!(out, "# HELP earshot_build_info Version of earshotd.\n# TYPE earshot_build_info gauge");
        let _ = writeln!(out, "earshot_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(
            out,
            "# HELP earshot_http_requests_total HTTP requests answered.\n# TYPE earshot_http_requests_total counter"
        );
        let requests = self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for ((method, status), count) in requests.iter() {
            let _ = writeln!(
                out,
                "earshot_http_requests_total{{method=\"{method}\",status=\"{status}\"}} {count}"
            );
        }
        drop(requests);
        let _ = writeln!(
            out,
            "# HELP earshot_http_request_duration_seconds Time to answer requests (to the first byte).\n# TYPE earshot_http_request_duration_seconds summary"
        );
        let seconds = self.request_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "earshot_http_request_duration_seconds_sum {seconds}");
        let _ = writeln!(
            out,
            "earshot_http_request_duration_seconds_count {}",
            self.request_count.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP earshot_event_streams Event streams open now.\n# TYPE earshot_event_streams gauge"
        );
        let _ = writeln!(out, "earshot_event_streams {}", self.event_streams.load(Ordering::Relaxed));
        if let Some(sip) = self.sip.get() {
            let counters = [
                ("earshot_sip_calls_bridged_total", "Calls answered and bridged.", &sip.calls_bridged),
                ("earshot_sip_calls_written_total", "Calls stored in the history.", &sip.calls_written),
                (
                    "earshot_sip_bad_requests_total",
                    "Malformed SIP requests answered 400.",
                    &sip.guard.bad_requests,
                ),
                (
                    "earshot_sip_dropped_messages_total",
                    "Messages on the SIP port (UDP or TCP) that were not SIP, or broken responses, dropped.",
                    &sip.guard.dropped,
                ),
                (
                    "earshot_sip_scanner_dropped_total",
                    "Requests from SIP scanners that announced themselves, dropped unanswered.",
                    &sip.shield.stats.scanner_dropped,
                ),
                (
                    "earshot_sip_flood_dropped_total",
                    "New SIP requests over their source's rate, dropped.",
                    &sip.shield.stats.flood_dropped,
                ),
                (
                    "earshot_sip_auth_failures_total",
                    "SIP digest answers checked and refused (wrong password or no such account).",
                    &sip.shield.stats.auth_failures,
                ),
                (
                    "earshot_sip_auth_refused_total",
                    "SIP digest answers refused unchecked, their source or account blocked.",
                    &sip.shield.stats.auth_refused,
                ),
                (
                    "earshot_sip_sources_blocked_total",
                    "Blocks of a source after repeated failed SIP sign-ins.",
                    &sip.shield.stats.sources_blocked,
                ),
                (
                    "earshot_sip_accounts_locked_total",
                    "Locks of an account (for new sources) after repeated failed SIP sign-ins.",
                    &sip.shield.stats.accounts_locked,
                ),
                (
                    "earshot_rtp_relayed_packets_total",
                    "RTP packets relayed between legs.",
                    &sip.media.relayed_packets,
                ),
                (
                    "earshot_rtp_foreign_packets_total",
                    "RTP packets from an address that is not the leg's peer, dropped.",
                    &sip.media.foreign_packets,
                ),
                (
                    "earshot_rtp_garbage_packets_total",
                    "Datagrams on RTP ports that were not RTP we negotiated, dropped.",
                    &sip.media.garbage_packets,
                ),
                (
                    "earshot_srtp_forged_packets_total",
                    "SRTP packets whose authentication tag did not check, dropped.",
                    &sip.media.srtp_forged_packets,
                ),
                (
                    "earshot_srtp_replayed_packets_total",
                    "SRTP packets that replayed one already received, dropped.",
                    &sip.media.srtp_replayed_packets,
                ),
                (
                    "earshot_srtp_unkeyed_dropped_packets_total",
                    "SRTP packets that came before the peer's key, more than the leg holds for it, dropped unchecked.",
                    &sip.media.srtp_unkeyed_dropped_packets,
                ),
            ];
            write_counters(&mut out, &counters);
            let _ = writeln!(
                out,
                "# HELP earshot_sip_dialogs SIP dialogs held: calls' legs up or being set up.\n# TYPE earshot_sip_dialogs gauge"
            );
            let _ = writeln!(out, "earshot_sip_dialogs {}", sip.dialogs.as_ref().map_or(0, Dialogs::len));
        }
        let retention = [
            (
                "earshot_recordings_deleted_retention_total",
                "Recordings and voicemails deleted by the service, older than their company keeps them.",
                &self.retention.deleted_by_retention,
            ),
            (
                "earshot_recordings_deleted_request_total",
                "Recordings and voicemails an admin deleted on request.",
                &self.retention.deleted_on_request,
            ),
            (
                "earshot_recording_files_removed_total",
                "Files of deleted recordings removed from the spool and the store.",
                &self.retention.files_removed,
            ),
            (
                "earshot_retention_failures_total",
                "Retention sweeps or file removals that failed (each is retried at the next sweep).",
                &self.retention.failures,
            ),
        ];
        write_counters(&mut out, &retention);
        if let Some(uploads) = self.uploads.get() {
            let _ = writeln!(
                out,
                "# HELP earshot_recording_uploads_pending Recordings on this machine waiting for their upload to the store.\n# TYPE earshot_recording_uploads_pending gauge"
            );
            let _ = writeln!(
                out,
                "earshot_recording_uploads_pending {}",
                uploads.pending.load(Ordering::Relaxed)
            );
            let counters = [
                ("earshot_recording_uploads_total", "Recordings uploaded to the store.", &uploads.uploaded),
                ("earshot_recording_upload_bytes_total", "Bytes of recordings uploaded.", &uploads.bytes),
                (
                    "earshot_recording_upload_failures_total",
                    "Upload attempts that failed (each is retried; the recording stays on this machine).",
                    &uploads.failures,
                ),
            ];
            write_counters(&mut out, &counters);
        }
        out
    }
}

/// Writes each counter `(name, help, value)` in the text exposition.
fn write_counters(out: &mut String, counters: &[(&str, &str, &AtomicU64)]) {
    for (name, help, counter) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        let _ = writeln!(out, "{name} {}", counter.load(Ordering::Relaxed));
    }
}

/// Middleware: counts each request.
pub async fn count(State(state): State<crate::AppState>, request: Request, next: Next) -> Response {
    let method = match request.method().as_str() {
        known @ ("GET" | "POST" | "PUT" | "DELETE" | "HEAD" | "OPTIONS" | "PATCH") => known.to_owned(),
        _ => "OTHER".to_owned(),
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    state.metrics.record(&method, response.status().as_u16(), micros);
    response
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<crate::AppState>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
