//! Several `earshotd` instances on one PostgreSQL (issue 17): registrations
//! live in the database, so a call placed through one instance reaches a
//! device registered through another; the call's media and recording stay
//! on the instance that took the INVITE, and with recordings in S3 either
//! instance plays it. Needs the tests' PostgreSQL (`./x test` starts one);
//! skipped without it.

use super::audio::Heard;
use super::interop::{baresip, wait_registered};
use super::support::{Edge, Peer, Service, Sipp};
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

/// Which instance (its SIP address) took `user`'s latest registration.
async fn registered_at(database: &sqlx::PgPool, user: i64) -> Option<String> {
    sqlx::query_scalar(
        "SELECT instance FROM registrations WHERE user_id = $1 ORDER BY expires_at DESC LIMIT 1",
    )
    .bind(user)
    .fetch_optional(database)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_kamailio_a_call_crosses_instances_and_moves_to_the_survivor_when_one_stops() {
    let Some(server) = crate::postgres::server() else { return };
    let s3 = crate::s3::S3Server::start().await;
    let url = crate::postgres::fresh_postgres(&server).await;
    let mut a = Service::start_on_postgres(&url, Some(&s3)).await;
    let mut b = a.another_instance().await;
    let ada = a.agent("Ada", "101", json!({})).await;
    a.settings(json!({"record_internal": true})).await;
    let edge = Edge::start(&[&a, &b]).await;
    let database = sqlx::PgPool::connect(&url).await.unwrap();
    let (a_sip, b_sip) = (format!("127.0.0.1:{}", a.sip_port), format!("127.0.0.1:{}", b.sip_port));
    // From here on the phones reach the installation through the edge.
    let front = a.front(edge.port);

    // Ada's phone, a baresip, registers through the edge.
    let (ada_phone, dir) = baresip(&front, "101", 40, &[]);
    wait_registered(dir.path()).await;
    let ada_at = registered_at(&database, ada).await.expect("Ada's registration is stored");
    let path: String = sqlx::query_scalar("SELECT path FROM registrations WHERE user_id = $1")
        .bind(ada)
        .fetch_one(&database)
        .await
        .unwrap();
    assert!(
        path.contains(&format!("127.0.0.1:{};lr", edge.port)),
        "the edge is on the registration's Path: {path}"
    );
    let path: String = sqlx::query_scalar("SELECT path FROM registrations WHERE user_id = $1")
        .bind(ada)
        .fetch_one(&database)
        .await
        .unwrap();
    eprintln!("PATH {path}");
    assert!(ada_at == a_sip || ada_at == b_sip, "{ada_at}");
    // A caller whose requests the edge sends to the other instance (each user is hashed to one).
    let mut caller = None;
    for extension in 102..130_u16 {
        let extension = extension.to_string();
        let id = front.agent(&format!("Caller {extension}"), &extension, json!({})).await;
        assert!(front.register(&extension, 9), "{}", edge.log());
        if registered_at(&database, id).await.is_some_and(|at| at != ada_at) {
            caller = Some((extension, id));
            break;
        }
    }
    let (caller, caller_id) = caller.expect("a user hashed to the other instance");
    let mut call = Sipp::call(
        &front,
        "101",
        Some(&caller),
        &Peer { scenario: "call.xml", talk_ms: 3_000, from: &caller, ..Peer::default() },
    );
    assert!(
        call.wait(),
        "caller: {}\nedge:\n{}\nA:\n{}\nB:\n{}",
        call.errors(),
        edge.log(),
        a.log(),
        b.log()
    );
    let calls = front.wait_for_calls(1).await;
    let first = &calls[0];
    assert_eq!(first["status"], "answered", "{first}");
    let mut parties: Vec<i64> =
        first["parties"].as_array().unwrap().iter().map(|p| p.as_i64().unwrap()).collect();
    parties.sort_unstable();
    assert_eq!(
        parties,
        [ada, caller_id],
        "baresip, registered through one instance, answered a call through the other"
    );

    // The instance that took the call recorded it; it uploads it, then stops.
    let (recorder, survivor) = if ada_at == a_sip { (&mut b, &mut a) } else { (&mut a, &mut b) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !recorder.metrics().await.contains("earshot_recording_uploads_total 1") {
        assert!(std::time::Instant::now() < deadline, "not uploaded: {}", recorder.log());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(ada_phone);
    recorder.kill();
    let stopped = std::time::Instant::now();
    // Nothing it recorded is lost: the survivor plays it.
    let heard = Heard::read(&survivor.download(first["recording"]["id"].as_i64().unwrap()).await);
    assert!(heard.duration_ms() > 2_000, "{} ms", heard.duration_ms());

    // New registrations and calls go to the survivor within a few seconds
    // (Ada's phone registers again, from the socket it takes calls on, as
    // phones do: the edge sends calls to where the REGISTER came from).
    let (_ada_phone, dir) = baresip(&front, "101", 30, &[]);
    wait_registered(dir.path()).await;
    let moved = stopped.elapsed();
    let survivor_sip = format!("127.0.0.1:{}", survivor.sip_port);
    assert_eq!(registered_at(&database, ada).await.as_deref(), Some(survivor_sip.as_str()));
    let mut call = Sipp::call(
        &front,
        "101",
        Some(&caller),
        &Peer { scenario: "call.xml", talk_ms: 1_000, from: &caller, ..Peer::default() },
    );
    assert!(
        call.wait(),
        "caller after the failover: {}\nedge:\n{}\n{}",
        call.errors(),
        edge.log(),
        survivor.log()
    );
    let called = stopped.elapsed();
    let calls = survivor.wait_for_calls(2).await;
    assert_eq!(calls[0]["status"], "answered");
    eprintln!(
        "after one instance stopped: registered through the survivor in {:.1} s, a call answered through it by {:.1} s",
        moved.as_secs_f64(),
        called.as_secs_f64()
    );
}
