//! The service's push (`GET /events`, server-sent events, framed by
//! `eventsource-stream`), kept connected: on a drop it reconnects with
//! back-off, and says so, so the app can re-sync what it may have missed.

use crate::api::Api;
use crate::error::ClientError;
use earshot_api::Pushed;
use eventsource_stream::Eventsource as _;
use futures::StreamExt as _;
use reqwest::Method;
use std::time::Duration;
use tokio::sync::mpsc;

/// What the push connection reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Connected (again): anything may have changed meanwhile, so re-sync.
    /// `version` is the company's version now.
    Connected {
        /// The company's version.
        version: i64,
    },
    /// A change.
    Change(Pushed),
    /// The service dropped changes for this app (it fell behind): re-sync.
    Resync,
    /// The connection dropped; the next try is in `retry_in`.
    Disconnected {
        /// Why.
        reason: String,
        /// When it tries again.
        retry_in: Duration,
    },
    /// The session ended: the feed stops, and the app goes back to log-in.
    SessionEnded {
        /// The service's explanation.
        detail: String,
    },
}

/// Back-off between reconnection attempts: from half a second, doubling, to 30 s.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LAST_RETRY: Duration = Duration::from_secs(30);

/// Follows the push feed until the session ends or the receiver is dropped.
pub fn follow(api: Api) -> mpsc::UnboundedReceiver<Feed> {
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut retry = FIRST_RETRY;
        loop {
            let reason = match connect(&api, &sender, &mut retry).await {
                Ok(Ended::Receiver) => return,
                Ok(Ended::Closed) => "the server closed the connection".to_owned(),
                Err(ClientError::SessionEnded { detail }) => {
                    let _ = sender.send(Feed::SessionEnded { detail });
                    return;
                }
                Err(error) => error.to_string(),
            };
            if sender.send(Feed::Disconnected { reason, retry_in: retry }).is_err() {
                return;
            }
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(LAST_RETRY);
        }
    });
    receiver
}

enum Ended {
    /// The app stopped listening.
    Receiver,
    /// The stream ended.
    Closed,
}

/// One connection: forwards its events until it ends.
async fn connect(
    api: &Api,
    sender: &mpsc::UnboundedSender<Feed>,
    retry: &mut Duration,
) -> Result<Ended, ClientError> {
    let response =
        api.send(api.request(Method::GET, "/events").header("accept", "text/event-stream")).await?;
    let mut events = response.bytes_stream().eventsource();
    while let Some(event) = events.next().await {
        let event = event.map_err(|error| ClientError::Protocol(error.to_string()))?;
        let feed = match event.event.as_str() {
            "hello" => {
                // A working connection: the next drop starts the back-off afresh.
                *retry = FIRST_RETRY;
                let version = serde_json::from_str::<serde_json::Value>(&event.data)
                    .ok()
                    .and_then(|hello| hello["version"].as_i64())
                    .unwrap_or_default();
                Feed::Connected { version }
            }
            "change" => match serde_json::from_str::<Pushed>(&event.data) {
                Ok(pushed) => Feed::Change(pushed),
                Err(error) => {
                    tracing::warn!(%error, data = %event.data, "a change this app does not know; re-syncing");
                    Feed::Resync
                }
            },
            "resync" => Feed::Resync,
            _ => continue,
        };
        if sender.send(feed).is_err() {
            return Ok(Ended::Receiver);
        }
    }
    Ok(Ended::Closed)
}
