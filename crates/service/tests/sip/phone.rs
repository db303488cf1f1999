//! The shared user agent (`earshot_sip::phone`, what the app's softphone
//! runs) on real sockets: registered to a real `earshotd`, calling out
//! through the trunk with the recording paused and resumed from its keys,
//! calling and called by baresip, and holding twice against a sipp that
//! checks every description it sends.

use super::audio::{Heard, Track};
use super::interop::{baresip, wait_registered};
use super::support::{Peer, Service, Sipp};
use earshot_policy::Key;
use earshot_sip::phone::{Account, CallKey, Phone, PhoneConfig, PhoneEvent, ScriptedAudio};
use earshot_telephony::ua::{CallState, EndReason, RegistrationState};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// A phone on loopback, registering as `extension` when `service` is given.
async fn phone(service: Option<&Service>, extension: &str) -> (Phone, UnboundedReceiver<PhoneEvent>) {
    let account = service.map(|service| Account {
        registrar: SocketAddr::from(([127, 0, 0, 1], service.sip_port)),
        user: extension.to_owned(),
        auth_user: Some(format!("{extension}@acme.test")),
        password: format!("sip-secret-{extension}"),
        expires_s: 300,
    });
    let config = PhoneConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        media_ip: "127.0.0.1".parse().unwrap(),
        account,
        user_agent: "earshot-test-phone".into(),
        tls: None,
    };
    Phone::start(config).await.unwrap()
}

/// Waits for an event that `want` picks, failing after `seconds` with what came instead.
pub(super) async fn wait_for<T>(
    events: &mut UnboundedReceiver<PhoneEvent>,
    seconds: u64,
    mut want: impl FnMut(&PhoneEvent) -> Option<T>,
) -> T {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => {
                if let Some(found) = want(&event) {
                    return found;
                }
                seen.push(event);
            }
            _ => panic!("not in time; the phone said {seen:?}"),
        }
    }
}

pub(super) async fn registered(events: &mut UnboundedReceiver<PhoneEvent>) {
    wait_for(events, 10, |e| {
        matches!(e, PhoneEvent::Registration(RegistrationState::Registered { .. })).then_some(())
    })
    .await;
}

pub(super) async fn state(
    events: &mut UnboundedReceiver<PhoneEvent>,
    call: CallKey,
    want: fn(&CallState) -> bool,
) -> CallState {
    wait_for(events, 20, |e| match e {
        PhoneEvent::Call { call: c, state } if *c == call && want(state) => Some(state.clone()),
        _ => None,
    })
    .await
}

pub(super) fn connected(state: &CallState) -> bool {
    matches!(state, CallState::Connected { .. })
}

pub(super) fn ended(state: &CallState) -> bool {
    matches!(state, CallState::Ended(_))
}

fn press(phone: &Phone, call: CallKey, keys: &str) {
    for c in keys.chars() {
        phone.press(call, Key::from_char(c).unwrap(), 160);
    }
}

/// The loudest half second of `samples`, as RMS.
pub(super) fn loudest(samples: &[i16]) -> f64 {
    samples
        .chunks(4_000)
        .map(|c| (c.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / c.len() as f64).sqrt())
        .fold(0.0, f64::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_registers_calls_out_through_the_trunk_and_pauses_the_recording_with_its_keys() {
    let service = Service::start().await;
    service.settings(json!({"record_outbound": true, "agent_recording_control": true})).await;
    service.agent("Ada", "101", json!({"recording_control": true})).await;
    let mut trunk = Sipp::trunk(&service, &Peer { talk_ms: 30_000, ..Peer::default() });
    let (phone, mut events) = phone(Some(&service), "101").await;
    registered(&mut events).await;

    // Speech without a break, through the keys, from dialling to hanging up.
    let speech = Track::new().talk(0, 20_000);
    let audio = ScriptedAudio::saying(speech.samples());
    let call = phone.dial("+15550123", Box::new(audio.clone()));
    state(&mut events, call, connected).await;
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let keyed_11 = audio.said();
    press(&phone, call, "#11#");
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let keyed_12 = audio.said();
    press(&phone, call, "#12#");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let sent = phone.stats(call).expect("the call's media").sent_packets;
    phone.hang_up(call);
    let end = state(&mut events, call, ended).await;
    assert_eq!(end, CallState::Ended(EndReason::HungUp { by_us: true }));
    assert!(trunk.wait(), "trunk: {}\n{}", trunk.errors(), service.log());

    let calls = service.wait_for_calls(1).await;
    let stored = &calls[0];
    assert_eq!(stored["direction"], "outbound", "{stored}");
    assert_eq!(stored["status"], "answered", "{stored}");
    assert_eq!(stored["external_number"], "+15550123", "{stored}");
    let recording = &stored["recording"];
    let spans = recording["paused_spans"].as_array().expect("paused spans");
    assert_eq!(spans.len(), 1, "{recording}");
    let (start, end) =
        (spans[0]["start_ms"].as_u64().unwrap() as usize, spans[0]["end_ms"].as_u64().unwrap() as usize);

    // Where the keys were: line the file's left channel (the phone) up with
    // what the phone said.
    let heard = Heard::read(&service.download(recording["id"].as_i64().unwrap()).await);
    let said = speech.heard();
    let first = heard.frames.iter().position(|f| f[0] != 0).expect("the phone in the file");
    let window: Vec<i16> = heard.frames[first..first + 320].iter().map(|f| f[0]).collect();
    let at =
        said.windows(320).position(|w| w == window.as_slice()).expect("the file's start in what was said");
    let file_ms = |said_sample: usize| (first + said_sample - at) / 8;
    // #11#: four keys of 160 ms from when they were pressed; #12# from when it was.
    let (pause, resume) = (file_ms(keyed_11) + 4 * 160, file_ms(keyed_12));
    assert!(
        start.abs_diff(pause) <= 100,
        "the pause starts at {start} ms, the #11# ended about {pause} ms ({sent} packets sent)"
    );
    assert!(end.abs_diff(resume) <= 100, "the pause ends at {end} ms, the #12# started about {resume} ms");
    // Nothing of the paused span in the file; the phone's speech on both sides of it.
    assert!(heard.frames[start * 8..end * 8].iter().all(|f| *f == [0, 0]), "audio inside the paused span");
    assert!(heard.rms(0, start - 1_000, start) > 300.0, "the phone before the pause");
    assert!(heard.rms(0, end, end + 1_000) > 300.0, "the phone after the pause");
    phone.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_calls_baresip_and_hears_it() {
    let service = Service::start().await;
    service.agent("Ada", "101", json!({})).await;
    service.agent("Bo", "102", json!({})).await;
    let (_baresip, dir) = baresip(&service, "102", 20, &[]);
    wait_registered(dir.path()).await;
    let (phone, mut events) = phone(Some(&service), "101").await;
    registered(&mut events).await;
    let audio = ScriptedAudio::saying(Track::new().talk(0, 4_000).samples());
    let call = phone.dial("102", Box::new(audio.clone()));
    state(&mut events, call, connected).await;
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    phone.hang_up(call);
    state(&mut events, call, ended).await;
    let level = loudest(&audio.heard());
    assert!(level > 500.0, "baresip's greeting reached the phone (loudest RMS {level})");
    let calls = service.wait_for_calls(1).await;
    assert_eq!(calls[0]["direction"], "internal");
    assert_eq!(calls[0]["status"], "answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_answers_a_call_from_baresip() {
    let service = Service::start().await;
    service.agent("Ada", "101", json!({})).await;
    service.agent("Bo", "102", json!({})).await;
    let (phone, mut events) = phone(Some(&service), "101").await;
    registered(&mut events).await;
    // baresip dials 101 at once, and hangs up when it quits after 6 s.
    let (_baresip, dir) = baresip(&service, "102", 6, &["/dial 101"]);
    let call = wait_for(&mut events, 10, |e| match e {
        PhoneEvent::Incoming { call, from, .. } => Some((*call, from.clone())),
        _ => None,
    })
    .await;
    let (call, from) = call;
    assert_eq!(from, "102", "the caller's extension");
    let audio = ScriptedAudio::saying(Track::new().talk(0, 3_000).samples());
    phone.answer(call, Box::new(audio.clone()));
    state(&mut events, call, connected).await;
    let end = state(&mut events, call, ended).await;
    assert_eq!(end, CallState::Ended(EndReason::HungUp { by_us: false }), "baresip hung up");
    let level = loudest(&audio.heard());
    assert!(
        level > 500.0,
        "baresip's greeting reached the phone (loudest RMS {level}); baresip: {}",
        std::fs::read_to_string(dir.path().join("baresip.log")).unwrap_or_default()
    );
    let calls = service.wait_for_calls(1).await;
    assert_eq!(calls[0]["status"], "answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holding_twice_sends_one_session_with_its_version_up_each_time() {
    let (mut far, port) = Sipp::device(&Peer { scenario: "uas_hold_versions.xml", ..Peer::default() });
    let (phone, mut events) = phone(None, "101").await;
    let audio = ScriptedAudio::default();
    let call = phone.dial(&format!("sip:far@127.0.0.1:{port}"), Box::new(audio));
    state(&mut events, call, connected).await;
    for on in [true, false, true, false] {
        phone.hold(call, on);
        let hold = state(&mut events, call, |s| matches!(s, CallState::Connected { .. })).await;
        assert_eq!(
            hold,
            CallState::Connected { hold: earshot_telephony::ua::Hold { local: on, remote: false } }
        );
    }
    phone.hang_up(call);
    state(&mut events, call, ended).await;
    assert!(far.wait(), "sipp: {}", far.errors());
    // Every INVITE sipp took had the same session id.
    let mut sessions = Vec::new();
    for entry in std::fs::read_dir(far.work.path()).unwrap().flatten() {
        if entry.file_name().to_string_lossy().ends_with("messages.log") {
            let log = std::fs::read_to_string(entry.path()).unwrap();
            sessions.extend(
                log.lines()
                    .filter_map(|l| l.trim().strip_prefix("o=earshot "))
                    .map(|rest| rest.split_whitespace().take(2).map(str::to_owned).collect::<Vec<_>>()),
            );
        }
    }
    sessions.dedup();
    let versions: Vec<&str> = sessions.iter().map(|s| s[1].as_str()).collect();
    assert_eq!(versions, ["1", "2", "3", "4", "5"], "{sessions:?}");
    assert!(sessions.iter().all(|s| s[0] == sessions[0][0]), "one session: {sessions:?}");
    phone.stop();
}

/// `POST /devices` with `token`: the device's SIP credentials, or the refusal's status and body.
async fn device_credentials(
    service: &Service,
    token: &str,
) -> Result<serde_json::Value, (u16, serde_json::Value)> {
    let response = reqwest::Client::new()
        .post(format!("http://{}/api/v1/devices", service.http))
        .bearer_auth(token)
        .json(&json!({"name": "Ada's laptop"}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    if status == 200 { Ok(body) } else { Err((status, body)) }
}

/// A phone registering with credentials the service issued to a device.
async fn device_phone(
    service: &Service,
    credentials: &serde_json::Value,
) -> (Phone, UnboundedReceiver<PhoneEvent>) {
    let config = PhoneConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        media_ip: "127.0.0.1".parse().unwrap(),
        account: Some(Account {
            registrar: SocketAddr::from(([127, 0, 0, 1], credentials["sip_port"].as_u64().unwrap() as u16)),
            user: credentials["extension"].as_str().unwrap().to_owned(),
            auth_user: Some(credentials["sip_user"].as_str().unwrap().to_owned()),
            password: credentials["password"].as_str().unwrap().to_owned(),
            expires_s: 300,
        }),
        user_agent: "earshot-test-phone".into(),
        tls: None,
    };
    assert_eq!(credentials["sip_port"], service.sip_port);
    Phone::start(config).await.unwrap()
}

/// A call from Bo (102, a sipp with his SIP password) to Ada's extension
/// that must be refused with `status`.
fn call_ada_refused(service: &Service, status: u16) {
    let mut caller = Sipp::call(
        service,
        "101",
        Some("102"),
        &Peer { scenario: "call_refused.xml", final_status: status, from: "102", ..Peer::default() },
    );
    assert!(
        caller.wait(),
        "the call to 101 was not refused with {status}: {}\n{}",
        caller.errors(),
        service.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_registers_with_issued_credentials_and_log_out_drops_it_at_once() {
    let service = Service::start().await;
    service.agent("Ada", "101", json!({})).await;
    service.agent("Bo", "102", json!({})).await;
    let token = service.log_in("101@acme.test", "password-101").await;
    let credentials = device_credentials(&service, &token).await.unwrap();
    assert_eq!(credentials["extension"], "101");
    assert_eq!(credentials["realm"], "earshot");
    let sip_user = credentials["sip_user"].as_str().unwrap();
    assert!(!sip_user.contains('@') && sip_user != "101@acme.test", "a user name of its own: {sip_user}");
    let (phone, mut events) = device_phone(&service, &credentials).await;
    registered(&mut events).await;

    // Bo's call to Ada rings the app, which answers.
    let mut caller = Sipp::call(
        &service,
        "101",
        Some("102"),
        &Peer { scenario: "call.xml", talk_ms: 1_000, from: "102", ..Peer::default() },
    );
    let call = wait_for(&mut events, 10, |e| match e {
        PhoneEvent::Incoming { call, .. } => Some(*call),
        _ => None,
    })
    .await;
    phone.answer(call, Box::new(ScriptedAudio::default()));
    state(&mut events, call, ended).await;
    assert!(caller.wait(), "caller: {}", caller.errors());

    // Log-out: the registration goes at once, and the credentials with it.
    let response = reqwest::Client::new()
        .delete(format!("http://{}/api/v1/session", service.http))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    call_ada_refused(&service, 480);
    phone.register();
    let refused = wait_for(&mut events, 10, |e| match e {
        PhoneEvent::Registration(RegistrationState::Failed { status, .. }) => Some(*status),
        _ => None,
    })
    .await;
    assert_eq!(refused, 403, "revoked credentials cannot register");
    phone.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_drops_their_devices_and_a_new_credential_replaces_the_old() {
    let service = Service::start().await;
    let ada = service.agent("Ada", "101", json!({})).await;
    service.agent("Bo", "102", json!({})).await;
    let token = service.log_in("101@acme.test", "password-101").await;
    let old = device_credentials(&service, &token).await.unwrap();
    let new = device_credentials(&service, &token).await.unwrap();
    assert_ne!(old["sip_user"], new["sip_user"]);
    let (stale, mut stale_events) = device_phone(&service, &old).await;
    let refused = wait_for(&mut stale_events, 10, |e| match e {
        PhoneEvent::Registration(RegistrationState::Failed { status, .. }) => Some(*status),
        _ => None,
    })
    .await;
    assert_eq!(refused, 403, "the replaced credential is refused");
    stale.stop();
    let (phone, mut events) = device_phone(&service, &new).await;
    registered(&mut events).await;

    let user = service.api(reqwest::Method::GET, &format!("/users/{ada}"), None).await;
    let body = json!({
        "name": user["name"], "email": user["email"], "role": user["role"], "extension": user["extension"],
        "groups": user["groups"], "settings": user["settings"], "disabled": true,
    });
    service.api(reqwest::Method::PUT, &format!("/users/{ada}"), Some(body)).await;
    call_ada_refused(&service, 480);
    phone.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_user_with_an_extension_gets_device_credentials() {
    let service = Service::start().await;
    let refused = device_credentials(&service, &service.token).await.unwrap_err();
    assert_eq!(refused.0, 409, "the admin has no extension: {}", refused.1);
    assert_eq!(refused.1["code"], "conflict");
    assert!(refused.1["detail"].as_str().unwrap().contains("extension"), "{}", refused.1);
    let unauthenticated = device_credentials(&service, "not-a-token").await.unwrap_err();
    assert_eq!(unauthenticated.0, 401);
}

/// The demo's carrier as this service's trunk, in this process.
async fn carrier(service: &Service) -> earshot_service::carrier::Carrier {
    let listen = SocketAddr::from(([127, 0, 0, 1], service.trunk_port));
    earshot_service::carrier::Carrier::start(listen).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_carrier_answers_an_agents_outside_call_and_talks() {
    let service = Service::start().await;
    service.settings(json!({"record_outbound": true})).await;
    service.agent("Ada", "101", json!({})).await;
    let _carrier = carrier(&service).await;
    let (phone, mut events) = phone(Some(&service), "101").await;
    registered(&mut events).await;
    let audio = ScriptedAudio::saying(Track::new().talk(0, 3_000).samples());
    let call = phone.dial("+447700900123", Box::new(audio.clone()));
    state(&mut events, call, |s| matches!(s, CallState::Ringing)).await;
    state(&mut events, call, connected).await;
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    phone.hang_up(call);
    state(&mut events, call, ended).await;
    let level = loudest(&audio.heard());
    assert!(level > 500.0, "the demo customer talked (loudest RMS {level})");
    let calls = service.wait_for_calls(1).await;
    assert_eq!(calls[0]["direction"], "outbound");
    assert_eq!(calls[0]["external_number"], "+447700900123");
    assert!(calls[0]["recording"]["id"].is_i64(), "recorded: {}", calls[0]);
    phone.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_customer_calls_a_company_number_and_the_agents_phone_rings() {
    let service = Service::start().await;
    let ada = service.agent("Ada", "101", json!({})).await;
    service.number("+15550100", json!([{"type": "ring_user", "user": ada}])).await;
    let carrier = carrier(&service).await;
    let (phone, mut events) = phone(Some(&service), "101").await;
    registered(&mut events).await;
    carrier.call("+15550100", "+447700900123", SocketAddr::from(([127, 0, 0, 1], service.sip_port)));
    let (call, from) = wait_for(&mut events, 10, |e| match e {
        PhoneEvent::Incoming { call, from, .. } => Some((*call, from.clone())),
        _ => None,
    })
    .await;
    assert_eq!(from, "+447700900123", "the customer's number shows");
    let audio = ScriptedAudio::default();
    phone.answer(call, Box::new(audio.clone()));
    state(&mut events, call, connected).await;
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    phone.hang_up(call);
    state(&mut events, call, ended).await;
    let level = loudest(&audio.heard());
    assert!(level > 500.0, "the customer talked (loudest RMS {level})");
    let calls = service.wait_for_calls(1).await;
    assert_eq!(calls[0]["direction"], "inbound");
    assert_eq!(calls[0]["status"], "answered");
    assert_eq!(calls[0]["parties"], json!([ada]));
    phone.stop();
}

/// Sets `email`'s availability through the API, as their app does.
async fn set_available(service: &Service, email: &str, password: &str, available: bool) {
    let token = service.log_in(email, password).await;
    let response = reqwest::Client::new()
        .put(format!("http://{}/api/v1/me/availability", service.http))
        .bearer_auth(token)
        .json(&json!({"available": available}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn do_not_disturb_passes_a_user_by_and_the_directory_shows_it() {
    let service = Service::start().await;
    let ada = service.agent("Ada", "101", json!({})).await;
    service.agent("Bo", "102", json!({})).await;
    service
        .number(
            "+15550100",
            json!([{"type": "ring_user", "user": ada, "timeout_s": 5}, {"type": "voicemail"}]),
        )
        .await;
    let (phone, mut events) = phone(Some(&service), "101").await;
    registered(&mut events).await;
    set_available(&service, "101@acme.test", "password-101", false).await;
    let directory = service.api(reqwest::Method::GET, "/sync", None).await;
    let entry = directory["users"].as_array().unwrap().iter().find(|u| u["id"] == ada).unwrap().clone();
    assert_eq!(entry["available"], false, "{entry}");

    // A colleague's call is not put through; a number's flow goes on to its voicemail step without ringing her.
    call_ada_refused(&service, 480);
    let mut caller = Sipp::call(
        &service,
        "15550100",
        None,
        &Peer { scenario: "call.xml", talk_ms: 2_000, from: "+447700900123", ..Peer::default() },
    );
    assert!(caller.wait(), "caller: {}", caller.errors());
    let calls = service.wait_for_calls(2).await;
    let inbound = calls.iter().find(|c| c["direction"] == "inbound").unwrap();
    // (The caller hangs up during the voicemail greeting: a missed call.)
    assert_eq!(inbound["status"], "missed", "{inbound}");
    assert_eq!(inbound["rang"], json!([]), "nobody rang: {inbound}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                if let Some(PhoneEvent::Incoming { .. }) = events.recv().await {
                    return;
                }
            }
        })
        .await
        .is_err(),
        "Ada's phone did not ring"
    );

    // Available again: her phone rings.
    set_available(&service, "101@acme.test", "password-101", true).await;
    let mut caller = Sipp::call(
        &service,
        "101",
        Some("102"),
        &Peer { scenario: "call.xml", talk_ms: 500, from: "102", ..Peer::default() },
    );
    let call = wait_for(&mut events, 10, |e| match e {
        PhoneEvent::Incoming { call, .. } => Some(*call),
        _ => None,
    })
    .await;
    phone.answer(call, Box::new(ScriptedAudio::default()));
    assert!(caller.wait(), "caller: {}", caller.errors());
    phone.stop();
}
