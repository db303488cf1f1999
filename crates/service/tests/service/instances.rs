//! Several `earshotd` instances on one PostgreSQL (issue 17): what is
//! written through one reaches the apps connected to another within a
//! second, through `pg_notify` and each instance's listener; a listener
//! that lost its connection has its apps re-sync. Needs the tests'
//! PostgreSQL (`./x test` starts one); skipped without it.

use super::events::{Listener, serve, unanswered_call};
use super::support::TestService;
use earshot_policy::RecordingState;
use earshot_service::events::{Change, ChangeEvent};
use serde_json::json;
use std::time::{Duration, Instant};

fn postgres() -> Option<String> {
    let url = crate::postgres::server();
    if url.is_none() {
        eprintln!("EARSHOT_TEST_POSTGRES_URL is not set: the tests of several instances are skipped");
    }
    url
}

/// The next event that is not `hello`.
async fn next_change(listener: &mut Listener, wait: Duration) -> Option<(String, serde_json::Value)> {
    loop {
        let (event, data) = listener.next(wait).await?;
        if event != "hello" {
            return Some((event, data));
        }
    }
}

#[tokio::test]
async fn what_is_written_through_one_instance_reaches_the_apps_of_another_within_a_second() {
    let Some(server) = postgres() else { return };
    let (a, b) = TestService::pair_on_postgres(&server).await;
    let acme = a.acme().await;
    let base_b = serve(&b).await;
    let mut ada_on_b = Listener::connect(&base_b, &acme.ada).await;
    let mut admin_on_b = Listener::connect(&base_b, &acme.admin).await;
    for listener in [&mut ada_on_b, &mut admin_on_b] {
        assert_eq!(listener.next(Duration::from_secs(5)).await.unwrap().0, "hello");
    }

    // A settings change through A.
    let (_, mut settings) = a.get("/api/v1/settings", &acme.admin).await;
    settings["agent_call_visibility"] = json!("all");
    let sent = Instant::now();
    let (status, _) = a.put("/api/v1/settings", &acme.admin, settings).await;
    assert_eq!(status, 200);
    for listener in [&mut ada_on_b, &mut admin_on_b] {
        let (event, change) = next_change(listener, Duration::from_secs(1)).await.expect("within a second");
        assert_eq!((event.as_str(), change["kind"].as_str()), ("change", Some("settings")), "{change}");
    }
    assert!(sent.elapsed() < Duration::from_secs(1), "{:?}", sent.elapsed());
    // And B's requests obey it at once (the company's version is in the database).
    let (_, page) = b.get("/api/v1/calls?app=calling", &acme.ada).await;
    assert!(page["calls"].as_array().unwrap().len() >= 5, "Ada now sees every call: {page}");

    // A finished call written through A.
    let (status, body) = a
        .post("/api/v1/calls/import", &acme.admin, json!({"calls": [unanswered_call("ada@acme.test")]}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (event, change) = next_change(&mut ada_on_b, Duration::from_secs(1)).await.expect("the call");
    assert_eq!((event.as_str(), change["kind"].as_str()), ("change", Some("call")), "{change}");
    assert_eq!(change["call"], body["calls"][0]);
    let _ = next_change(&mut admin_on_b, Duration::from_secs(1)).await.expect("the admin hears of it too");

    // A live call's recording state, published by A for Ada only: her app on B hears it, the admin's does not.
    a.state.events.publish(ChangeEvent {
        company: acme.company,
        version: change["version"].as_i64().unwrap(),
        change: Change::RecordingState {
            to: vec![acme.ada_id],
            call: "live-1".into(),
            state: RecordingState::Paused,
        },
    });
    let (event, change) = next_change(&mut ada_on_b, Duration::from_secs(1)).await.expect("the state");
    assert_eq!(event, "change");
    assert_eq!(
        (change["kind"].as_str(), change["state"].as_str()),
        (Some("recording_state"), Some("paused"))
    );
    assert!(next_change(&mut admin_on_b, Duration::from_millis(300)).await.is_none(), "for Ada only");

    // A rolled-back write notifies nobody: a user with a taken e-mail is refused through A.
    let (status, _) = a
        .post(
            "/api/v1/users",
            &acme.admin,
            json!({"name": "Ada Again", "email": "ada@acme.test", "password": "ada-password-2", "role": "agent",
                   "extension": "109", "groups": [], "settings": {}}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(next_change(&mut ada_on_b, Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn an_instance_whose_listener_lost_the_database_has_its_apps_resync_then_hears_again() {
    let Some(server) = postgres() else { return };
    let (a, b) = TestService::pair_on_postgres(&server).await;
    let acme = a.acme().await;
    let base_b = serve(&b).await;
    let mut ada_on_b = Listener::connect(&base_b, &acme.ada).await;
    assert_eq!(ada_on_b.next(Duration::from_secs(5)).await.unwrap().0, "hello");
    // Cut every listener's connection, as a database restart or a network fault would.
    let cut: Vec<i64> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid)::int::int8 FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(a.state.db.pool())
    .await
    .unwrap_or_default();
    assert!(!cut.is_empty(), "the listeners' connections were found");
    let (event, _) = next_change(&mut ada_on_b, Duration::from_secs(10)).await.expect("a resync");
    assert_eq!(event, "resync", "changes sent meanwhile are gone: the app syncs again");
    // And it hears changes again.
    let (_, settings) = a.get("/api/v1/settings", &acme.admin).await;
    let (status, _) = a.put("/api/v1/settings", &acme.admin, settings).await;
    assert_eq!(status, 200);
    let (event, change) = next_change(&mut ada_on_b, Duration::from_secs(2)).await.expect("heard again");
    assert_eq!((event.as_str(), change["kind"].as_str()), ("change", Some("settings")));
}
