//! Push (SPEC §7): a change reaches connected apps within a second, scoped to what each may see.

use super::support::{TestService, backends};
use earshot_service::app;
use futures::StreamExt as _;
use serde_json::json;
use std::time::{Duration, Instant};

/// Serves `service` on a loopback port; returns its base URL.
pub(super) async fn serve(service: &TestService) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = app(service.state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

/// An outbound call on the Support line that `party` placed and nobody answered, to import.
pub(super) fn unanswered_call(party: &str) -> serde_json::Value {
    json!({"direction": "outbound", "status": "unanswered", "started_at": 1763960000000i64,
           "ended_at": 1763960030000i64, "number": "+442070000011", "external_number": "+15550111",
           "parties": [party]})
}

/// The events of one connection, as (event, data) pairs.
pub(super) struct Listener {
    stream: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Listener {
    pub(super) async fn connect(base: &str, token: &str) -> Self {
        let response = reqwest::Client::new()
            .get(format!("{base}/api/v1/events"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { stream: Box::pin(response.bytes_stream()), buffer: String::new() }
    }

    /// The next event other than keep-alives, or None after `wait`.
    pub(super) async fn next(&mut self, wait: Duration) -> Option<(String, serde_json::Value)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().into();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if event.is_empty() {
                    continue;
                }
                return Some((event, serde_json::from_str(&data).unwrap()));
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()??.unwrap();
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test]
async fn a_settings_change_reaches_every_app_within_a_second() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let base = serve(&service).await;
        let mut listeners = Vec::new();
        for token in [&a.admin, &a.ada, &a.bo, &a.supervisor, &a.analyst] {
            let mut listener = Listener::connect(&base, token).await;
            let (event, hello) = listener.next(Duration::from_secs(2)).await.unwrap();
            assert_eq!(event, "hello");
            assert!(hello["version"].as_i64().unwrap() > 0);
            listeners.push(listener);
        }
        let (_, mut settings) = service.get("/api/v1/settings", &a.admin).await;
        settings["agent_call_visibility"] = json!("all");
        let sent = Instant::now();
        service.put("/api/v1/settings", &a.admin, settings).await;
        for listener in &mut listeners {
            let (event, change) =
                listener.next(Duration::from_secs(1)).await.expect("the change within a second");
            assert_eq!(event, "change");
            assert_eq!(change["kind"], "settings");
        }
        assert!(sent.elapsed() < Duration::from_secs(1));
    }
}

#[tokio::test]
async fn call_events_go_only_to_those_who_may_see_the_call() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let base = serve(&service).await;
        let mut ada = Listener::connect(&base, &a.ada).await;
        let mut bo = Listener::connect(&base, &a.bo).await;
        let mut other = {
            service.company("Initech").await;
            let token = service.log_in("admin@initech.test", "admin-password").await;
            Listener::connect(&base, &token).await
        };
        for listener in [&mut ada, &mut bo, &mut other] {
            assert_eq!(listener.next(Duration::from_secs(2)).await.unwrap().0, "hello");
        }
        // A call only Bo is on.
        let (status, body) = service
            .post("/api/v1/calls/import", &a.admin, json!({"calls": [unanswered_call("bo@acme.test")]}))
            .await;
        assert_eq!(status, 201, "{body}");
        let (event, change) = bo.next(Duration::from_secs(1)).await.expect("Bo hears of his call");
        assert_eq!((event.as_str(), change["kind"].as_str()), ("change", Some("call")));
        assert_eq!(change["call"], body["calls"][0]);
        assert!(ada.next(Duration::from_millis(300)).await.is_none(), "Ada may not see it");
        assert!(other.next(Duration::from_millis(100)).await.is_none(), "another company hears nothing");
    }
}

/// SPEC §7 end to end: an admin widens agents' visibility; Ada's app hears of it, and her
/// next request obeys it. Then an override narrows her again; she hears, and it obeys.
#[tokio::test]
async fn a_pushed_change_is_obeyed_by_the_next_request() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let base = serve(&service).await;
        let mut ada = Listener::connect(&base, &a.ada).await;
        assert_eq!(ada.next(Duration::from_secs(2)).await.unwrap().0, "hello");
        assert_eq!(service.visible(&a.ada, "calling").await.len(), 2);

        let (_, mut settings) = service.get("/api/v1/settings", &a.admin).await;
        settings["agent_call_visibility"] = json!("all");
        service.put("/api/v1/settings", &a.admin, settings).await;
        let (_, change) = ada.next(Duration::from_secs(1)).await.expect("pushed");
        assert_eq!(change["kind"], "settings");
        assert_eq!(service.visible(&a.ada, "calling").await.len(), 5);

        let (status, _) = service
            .put(
                &format!("/api/v1/users/{}", a.ada_id),
                &a.admin,
                json!({"name": "Ada", "email": "ada@acme.test", "role": "agent", "extension": "101",
                       "settings": {"call_visibility": "own_and_missed"}}),
            )
            .await;
        assert_eq!(status, 200);
        let (_, change) = ada.next(Duration::from_secs(1)).await.expect("pushed");
        assert_eq!(change["kind"], "users");
        assert_eq!(
            service.visible(&a.ada, "calling").await.len(),
            2,
            "her override wins over the company (§3)"
        );
    }
}

/// A disabled user's open stream ends: their tokens stop working at once, streams included.
#[tokio::test]
async fn disabling_a_user_ends_their_event_stream() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let base = serve(&service).await;
        let mut bo = Listener::connect(&base, &a.bo).await;
        assert_eq!(bo.next(Duration::from_secs(2)).await.unwrap().0, "hello");
        // `disabled` alone; other fields as they were, and omitting it later keeps it.
        let (status, body) = service
            .put(
                &format!("/api/v1/users/{}", a.bo_id),
                &a.admin,
                json!({"name": "Bo", "email": "bo@acme.test", "role": "agent", "extension": "102", "disabled": true}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        // The change that disabled him is the last thing the stream carries, if anything.
        let mut ended = false;
        for _ in 0..3 {
            match bo.next(Duration::from_secs(2)).await {
                None => {
                    ended = true;
                    break;
                }
                Some((event, change)) => {
                    assert_eq!((event.as_str(), change["kind"].as_str()), ("change", Some("users")));
                }
            }
        }
        assert!(ended || bo.next(Duration::from_millis(500)).await.is_none());
        let (_, user) = service
            .put(
                &format!("/api/v1/users/{}", a.bo_id),
                &a.admin,
                json!({"name": "Bo Renamed", "email": "bo@acme.test", "role": "agent", "extension": "102"}),
            )
            .await;
        assert_eq!(user["disabled"], true, "omitting `disabled` keeps it");
    }
}
