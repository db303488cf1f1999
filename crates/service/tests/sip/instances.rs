//! Several `earshotd` instances on one PostgreSQL (issue 17): registrations
//! live in the database, so a call placed through one instance reaches a
//! device registered through another; the call's media and recording stay
//! on the instance that took the INVITE, and with recordings in S3 either
//! instance plays it. Needs the tests' PostgreSQL (`./x test` starts one);
//! skipped without it.

use super::audio::Heard;
use super::support::{Peer, Service, Sipp};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_one_instance_rings_a_device_registered_through_another() {
    let Some(server) = crate::postgres::server() else {
        eprintln!("EARSHOT_TEST_POSTGRES_URL is not set: the tests of several instances are skipped");
        return;
    };
    let s3 = crate::s3::S3Server::start().await;
    let a = Service::start_on_postgres(&crate::postgres::fresh_postgres(&server).await, Some(&s3)).await;
    let b = a.another_instance().await;
    let ada = a.agent("Ada", "101", json!({})).await;
    let bo = a.agent("Bo", "102", json!({})).await;
    a.settings(json!({"record_internal": true})).await;
    // Ada's phone registers through B; Bo calls her through A.
    let (mut device, port) = Sipp::device(&Peer::default());
    assert!(b.register("101", port), "{}", b.log());
    let mut caller = Sipp::call(
        &a,
        "101",
        Some("102"),
        &Peer { scenario: "call.xml", talk_ms: 2_000, from: "102", ..Peer::default() },
    );
    assert!(caller.wait(), "caller: {}\nA:\n{}\nB:\n{}", caller.errors(), a.log(), b.log());
    assert!(device.wait(), "device: {}", device.errors());
    // The call is in the history, read through B.
    let calls = b.wait_for_calls(1).await;
    let call = &calls[0];
    assert_eq!((call["direction"].as_str(), call["status"].as_str()), (Some("internal"), Some("answered")));
    assert_eq!(call["rang"], json!([ada]));
    let mut parties: Vec<i64> =
        call["parties"].as_array().unwrap().iter().map(|p| p.as_i64().unwrap()).collect();
    parties.sort_unstable();
    assert_eq!(parties, [ada, bo]);
    // Recorded by A, uploaded to the store, and played through either instance.
    let recording = call["recording"]["id"].as_i64().expect("recorded");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !a.metrics().await.contains("earshot_recording_uploads_total 1")
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let through_b = b.download(recording).await;
    let through_a = a.download(recording).await;
    assert!(through_a == through_b, "the same recording through either instance");
    let heard = Heard::read(&through_b);
    assert_eq!(heard.channels, 2);
    assert!(heard.duration_ms() > 1_500, "{} ms", heard.duration_ms());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_through_one_instance_is_revoked_through_another() {
    let Some(server) = crate::postgres::server() else { return };
    let url = crate::postgres::fresh_postgres(&server).await;
    let a = Service::start_on_postgres(&url, None).await;
    let b = a.another_instance().await;
    let ada = a.agent("Ada", "101", json!({})).await;
    let (_device, port) = Sipp::device(&Peer::default());
    assert!(b.register("101", port));
    let database = sqlx::PgPool::connect(&url).await.unwrap();
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM registrations WHERE user_id = $1")
            .bind(ada)
            .fetch_one(&database)
            .await
            .unwrap()
    };
    assert_eq!(count().await, 1, "B's registration is in the database");
    // Disabling Ada through A drops it at once, whichever instance took it.
    let user = a.api(reqwest::Method::GET, &format!("/users/{ada}"), None).await;
    let body = json!({
        "name": user["name"], "email": user["email"], "role": user["role"], "extension": user["extension"],
        "groups": user["groups"], "settings": user["settings"], "disabled": true,
    });
    a.api(reqwest::Method::PUT, &format!("/users/{ada}"), Some(body)).await;
    assert_eq!(count().await, 0, "revoked");
}
