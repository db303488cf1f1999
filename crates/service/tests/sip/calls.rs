//! Registration and calls: internal, outbound through the trunk, inbound
//! through call flows (menu, ring group, ring user), missed and voicemail.

use super::audio::{Heard, Track};
use super::support::{Peer, Service, Sipp};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_with_digest_and_refuse_a_wrong_password() {
    let service = Service::start().await;
    service.agent("Ada", "101", json!({})).await;
    assert!(service.register("101", 40_000), "{}", service.log());
    assert!(!service.register_with("101", "not-the-password", 40_000));
    assert!(!service.register_with("999", "sip-secret-999", 40_000), "an unknown user is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_call_between_two_registered_users() {
    let service = Service::start().await;
    let ada = service.agent("Ada", "101", json!({})).await;
    let bo = service.agent("Bo", "102", json!({})).await;
    service.settings(json!({"record_internal": true})).await;
    let (mut device, port) = Sipp::device(&Peer::default());
    assert!(service.register("101", port));
    let mut caller = Sipp::call(
        &service,
        "101",
        Some("102"),
        &Peer { scenario: "call.xml", talk_ms: 2_000, from: "102", ..Peer::default() },
    );
    assert!(caller.wait(), "caller: {}\n{}", caller.errors(), service.log());
    assert!(device.wait(), "device: {}", device.errors());
    let calls = service.wait_for_calls(1).await;
    let call = &calls[0];
    assert_eq!(call["direction"], "internal");
    assert_eq!(call["status"], "answered");
    let mut parties: Vec<i64> =
        call["parties"].as_array().unwrap().iter().map(|p| p.as_i64().unwrap()).collect();
    parties.sort_unstable();
    assert_eq!(parties, [ada, bo]);
    // Both legs' dialogs are let go once the call ends (the registrar's are not dialogs).
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = service.metrics().await;
        if metrics.contains("earshot_sip_dialogs 0\n") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(metrics.contains("earshot_sip_dialogs 0\n"), "{metrics}");
    assert_eq!(call["rang"], json!([ada]));
    assert_eq!(call["decided_by"], "company");
    let recording = call["recording"]["id"].as_i64().expect("recorded: record_internal is on");
    let heard = Heard::read(&service.download(recording).await);
    assert_eq!(heard.channels, 2);
    assert!(heard.duration_ms() > 1_500, "{} ms", heard.duration_ms());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_call_goes_to_the_trunk_with_the_company_number() {
    let service = Service::start().await;
    let ada = service.agent("Ada", "101", json!({})).await;
    let number = service.number("+15550100", json!([{"type": "ring_user", "user": ada}])).await;
    let mut trunk = Sipp::trunk(&service, &Peer::default());
    let mut caller = Sipp::call(
        &service,
        "+447700900123",
        Some("101"),
        &Peer { scenario: "call.xml", talk_ms: 1_500, from: "101", ..Peer::default() },
    );
    assert!(caller.wait(), "caller: {}\n{}", caller.errors(), service.log());
    assert!(trunk.wait(), "trunk: {}", trunk.errors());
    let trunk_saw = trunk.errors();
    assert!(trunk_saw.contains("INVITE sip:+447700900123@127.0.0.1"), "{trunk_saw}");
    assert!(trunk_saw.contains("From: <sip:+15550100@"), "caller ID is the company number: {trunk_saw}");
    let calls = service.wait_for_calls(1).await;
    assert_eq!(calls[0]["direction"], "outbound");
    assert_eq!(calls[0]["status"], "answered");
    assert_eq!(calls[0]["number"], json!(number));
    assert_eq!(calls[0]["external_number"], "+447700900123");
    assert_eq!(calls[0]["parties"], json!([ada]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_call_shows_the_caller_id_chosen_for_the_user() {
    let service = Service::start().await;
    let ada = service.agent("Ada", "101", json!({})).await;
    service.number("+15550100", json!([{"type": "ring_user", "user": ada}])).await;
    let sales = service.number("+15550199", json!([{"type": "ring_user", "user": ada}])).await;
    let mut user = service.api(reqwest::Method::GET, &format!("/users/{ada}"), None).await;
    let body = json!({
        "name": user["name"], "email": user["email"], "role": user["role"],
        "extension": user["extension"], "settings": user["settings"].take(), "caller_id": sales,
    });
    service.api(reqwest::Method::PUT, &format!("/users/{ada}"), Some(body)).await;
    let mut trunk = Sipp::trunk(&service, &Peer::default());
    let mut caller = Sipp::call(
        &service,
        "+447700900123",
        Some("101"),
        &Peer { scenario: "call.xml", talk_ms: 500, from: "101", ..Peer::default() },
    );
    assert!(caller.wait(), "caller: {}\n{}", caller.errors(), service.log());
    assert!(trunk.wait(), "trunk: {}", trunk.errors());
    let trunk_saw = trunk.errors();
    assert!(trunk_saw.contains("From: <sip:+15550199@"), "caller ID is the user's number: {trunk_saw}");
    let calls = service.wait_for_calls(1).await;
    assert_eq!(calls[0]["number"], json!(sales));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_call_through_a_menu_branch_to_a_ring_group() {
    let service = Service::start().await;
    let ada = service.agent("Ada", "101", json!({})).await;
    let bo = service.agent("Bo", "102", json!({})).await;
    let support = service.group("Support", &[ada, bo]).await;
    let flow = json!([
        {"type": "menu", "prompt": {"audio": "default"}, "timeout_s": 5,
         "options": {"2": [{"type": "record", "enabled": true}, {"type": "ring_group", "group": support, "timeout_s": 10}]},
         "timeout": [{"type": "voicemail"}]},
    ]);
    service.number("+15550100", flow).await;
    // Only Bo has a device: Ada is in the group but not registered, so she is not rung.
    let (mut device, port) = Sipp::device(&Peer::default());
    assert!(service.register("102", port));
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("caller.pcap");
    Track::new().keys(600, "2", 200).until(4_000).write_pcap(&keys);
    let mut caller = Sipp::call(
        &service,
        "15550100",
        None,
        &Peer {
            scenario: "call.xml",
            pcap: Some(&keys),
            talk_ms: 6_000,
            from: "+447700900123",
            ..Peer::default()
        },
    );
    assert!(caller.wait(), "caller: {}\n{}", caller.errors(), service.log());
    assert!(device.wait(), "device: {}", device.errors());
    let calls = service.wait_for_calls(1).await;
    let call = &calls[0];
    assert_eq!(call["direction"], "inbound");
    assert_eq!(call["status"], "answered");
    assert_eq!(call["parties"], json!([bo]));
    assert_eq!(call["rang"], json!([bo]));
    assert_eq!(call["external_number"], "+447700900123");
    assert_eq!(call["decided_by"], "call_flow", "the branch's record step decided");
    assert!(call["recording"]["id"].is_i64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_answers_so_the_call_is_missed_with_who_rang() {
    let service = Service::start().await;
    let ada = service.agent("Ada", "101", json!({})).await;
    service.number("+15550100", json!([{"type": "ring_user", "user": ada, "timeout_s": 2}])).await;
    // Ada's device rings for longer than the flow waits.
    let (_device, port) = Sipp::device(&Peer { ring_ms: 20_000, ..Peer::default() });
    assert!(service.register("101", port));
    let mut caller = Sipp::call(
        &service,
        "15550100",
        None,
        &Peer { scenario: "call_refused.xml", from: "+447700900123", ..Peer::default() },
    );
    assert!(caller.wait(), "caller: {}\n{}", caller.errors(), service.log());
    let calls = service.wait_for_calls(1).await;
    assert_eq!(calls[0]["status"], "missed");
    assert_eq!(calls[0]["rang"], json!([ada]));
    assert_eq!(calls[0]["parties"], json!([]));
    assert!(calls[0]["recording"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voicemail_is_left_and_holds_the_callers_speech() {
    let service = Service::start().await;
    service.voicemail_line().await;
    let dir = tempfile::tempdir().unwrap();
    let speech = dir.path().join("message.pcap");
    // The greeting and tone take about 4.5 s; the caller speaks after it.
    Track::new().speech(5_000, "caller-voicemail-short", 2_500).until(8_000).write_pcap(&speech);
    let mut caller = Sipp::call(
        &service,
        "15550100",
        None,
        &Peer {
            scenario: "call.xml",
            pcap: Some(&speech),
            talk_ms: 8_500,
            from: "+447700900123",
            ..Peer::default()
        },
    );
    assert!(caller.wait(), "caller: {}\n{}", caller.errors(), service.log());
    let calls = service.wait_for_calls(1).await;
    let call = &calls[0];
    assert_eq!(call["status"], "voicemail");
    let voicemail = call["voicemail"]["id"].as_i64().expect("a voicemail");
    let heard = Heard::read(&service.download(voicemail).await);
    assert_eq!(heard.channels, 1);
    let loudest =
        (0..heard.duration_ms() / 500).map(|i| heard.rms(0, i * 500, i * 500 + 500)).fold(0.0, f64::max);
    assert!(loudest > 500.0, "the message is in the voicemail (loudest half second RMS {loudest})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_cancels_while_it_rings_and_every_device_stops_ringing() {
    let service = Service::start().await;
    let ada = service.agent("Ada", "101", json!({})).await;
    service.number("+15550100", json!([{"type": "ring_user", "user": ada, "timeout_s": 30}])).await;
    let (mut device, port) = Sipp::device(&Peer { scenario: "uas_cancelled.xml", ..Peer::default() });
    assert!(service.register("101", port));
    let mut caller = Sipp::call(
        &service,
        "15550100",
        None,
        &Peer { scenario: "call_cancel.xml", talk_ms: 1_500, from: "+447700900123", ..Peer::default() },
    );
    assert!(caller.wait(), "caller: {}\n{}", caller.errors(), service.log());
    assert!(device.wait(), "the device was cancelled: {}", device.errors());
    let calls = service.wait_for_calls(1).await;
    assert_eq!(calls[0]["status"], "missed");
    assert_eq!(calls[0]["rang"], json!([ada]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_device_makes_an_internal_call_busy() {
    let service = Service::start().await;
    service.agent("Ada", "101", json!({})).await;
    service.agent("Bo", "102", json!({})).await;
    let (mut device, port) = Sipp::device(&Peer { scenario: "uas_busy.xml", ..Peer::default() });
    assert!(service.register("101", port));
    let mut caller = Sipp::call(
        &service,
        "101",
        Some("102"),
        &Peer { scenario: "call_refused.xml", from: "102", final_status: 486, ..Peer::default() },
    );
    assert!(caller.wait(), "caller: {}\n{}", caller.errors(), service.log());
    assert!(device.wait(), "device: {}", device.errors());
    let calls = service.wait_for_calls(1).await;
    assert_eq!(calls[0]["status"], "unanswered");
}

/// A hold re-INVITE that arrives before the ACK to the call's 200 OK is
/// answered once the ACK is in (rsipstack alone would never answer it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_invite_ahead_of_its_ack_is_answered() {
    held_call("call_hold_before_ack.xml", 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_and_resume_by_re_invite() {
    held_call("call_hold.xml", 500).await;
}

/// Bo calls Ada, whose phone answers; Bo's side runs `scenario` (hold
/// re-INVITEs); the call ends answered.
async fn held_call(scenario: &'static str, talk_ms: u64) {
    let service = Service::start().await;
    service.agent("Ada", "101", json!({})).await;
    service.agent("Bo", "102", json!({})).await;
    let (mut device, port) = Sipp::device(&Peer::default());
    assert!(service.register("101", port));
    let mut caller =
        Sipp::call(&service, "101", Some("102"), &Peer { scenario, talk_ms, from: "102", ..Peer::default() });
    assert!(caller.wait(), "caller: {}\n{}", caller.errors(), service.log());
    assert!(device.wait(), "device: {}", device.errors());
    let calls = service.wait_for_calls(1).await;
    assert_eq!(calls[0]["status"], "answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_over_tcp() {
    let service = Service::start().await;
    service.agent("Ada", "101", json!({})).await;
    assert!(service.register_over("101", "sip-secret-101", 40_000, "t1"), "{}", service.log());
}
