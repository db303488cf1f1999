//! SIP over TLS with SRTP (issue 17, part 3): baresip registered over TLS
//! with SRTP only, called from outside and recorded, and with best-effort
//! SRTP (offered under `RTP/AVP`) calling the app's phone; the app's user agent
//! registering and calling over TLS, a forger's packets at the relay dropped
//! and counted while the call goes on; a certificate the phone does not trust
//! refused with a sentence a person understands; a renewed certificate
//! served without a restart; a missing certificate stopping the service at
//! start-up.

use super::audio::{Heard, Track};
use super::interop::{baresip_over_tls, wait_registered};
use super::phone::{connected, ended, loudest, registered, state, wait_for};
use super::support::{Peer, Pki, Service, Sipp};
use earshot_sip::endpoint::TlsTrust;
use earshot_sip::phone::{Account, Phone, PhoneConfig, PhoneEvent, ScriptedAudio};
use earshot_telephony::ua::RegistrationState;
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// The app's phone registering over TLS as `extension`, trusting the CA in `ca`.
async fn tls_phone(service: &Service, extension: &str, ca: &Path) -> (Phone, UnboundedReceiver<PhoneEvent>) {
    let port = service.tls.as_ref().expect("a service serving TLS").port;
    let config = PhoneConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        media_ip: "127.0.0.1".parse().unwrap(),
        account: Some(Account {
            registrar: SocketAddr::from(([127, 0, 0, 1], port)),
            user: extension.to_owned(),
            auth_user: Some(format!("{extension}@acme.test")),
            password: format!("sip-secret-{extension}"),
            expires_s: 300,
        }),
        user_agent: "earshot-test-phone".into(),
        tls: Some(TlsTrust::from_file(ca, Some("127.0.0.1".into())).unwrap()),
    };
    Phone::start(config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_over_tls_with_srtp_only_is_called_from_outside_and_its_voice_is_recorded() {
    let pki = Pki::new("Acme test CA");
    let service = Service::start_with_tls(&pki).await;
    service.settings(json!({"record_inbound": true})).await;
    let ada = service.agent("Ada", "101", json!({})).await;
    service.number("+15550100", json!([{"type": "ring_user", "user": ada}])).await;
    let ca = pki.ca_file(service.dir.path());
    let (_phone, dir) = baresip_over_tls(&service, "101", 15, &[], &ca, "srtp-mand");
    wait_registered(dir.path()).await;
    let mut caller = Sipp::call(
        &service,
        "15550100",
        None,
        &Peer { scenario: "call.xml", talk_ms: 4_000, from: "+447700900123", ..Peer::default() },
    );
    let log = || std::fs::read_to_string(dir.path().join("baresip.log")).unwrap_or_default();
    assert!(caller.wait(), "caller: {}\n{}\nbaresip: {}", caller.errors(), service.log(), log());
    let calls = service.wait_for_calls(1).await;
    // baresip takes only RTP/SAVP: answered means SRTP was agreed with it.
    assert_eq!(calls[0]["status"], "answered", "{}\nbaresip: {}", calls[0], log());
    let heard = Heard::read(&service.download(calls[0]["recording"]["id"].as_i64().unwrap()).await);
    let loudest =
        (0..heard.duration_ms() / 500).map(|i| heard.rms(0, i * 500, i * 500 + 500)).fold(0.0, f64::max);
    assert!(loudest > 500.0, "baresip's voice, decrypted, is on the agent's channel (loudest RMS {loudest})");
    let metrics = service.metrics().await;
    assert!(metrics.contains("earshot_srtp_forged_packets_total 0"), "{metrics}");
    assert!(metrics.contains("earshot_srtp_replayed_packets_total 0"), "{metrics}");
    assert!(metrics.contains("earshot_srtp_unkeyed_dropped_packets_total 0"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_phone_registers_over_tls_and_calls_a_colleague_through_srtp() {
    let pki = Pki::new("Acme test CA");
    let service = Service::start_with_tls(&pki).await;
    service.settings(json!({"record_internal": true})).await;
    service.agent("Ada", "101", json!({})).await;
    service.agent("Bo", "102", json!({})).await;
    let ca = pki.ca_file(service.dir.path());
    let (ada, mut ada_events) = tls_phone(&service, "101", &ca).await;
    let (bo, mut bo_events) = tls_phone(&service, "102", &ca).await;
    registered(&mut ada_events).await;
    registered(&mut bo_events).await;

    let ada_says = ScriptedAudio::saying(Track::new().talk(0, 5_000).samples());
    let call = ada.dial("102", Box::new(ada_says.clone()));
    let incoming = wait_for(&mut bo_events, 10, |e| match e {
        PhoneEvent::Incoming { call, .. } => Some(*call),
        _ => None,
    })
    .await;
    let bo_says = ScriptedAudio::saying(Track::new().talk(0, 5_000).samples());
    bo.answer(incoming, Box::new(bo_says.clone()));
    state(&mut ada_events, call, connected).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // A forger who knows neither key sends RTP with a made-up tag to every
    // port of the relay's range (the call's two legs among them): each is
    // dropped and counted, and the call goes on.
    let (low, high) = service.rtp.split_once('-').unwrap();
    let forger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut forged = vec![0x80, 0, 0x12, 0x34, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef];
    forged.extend([0x55; 160 + 10]);
    for port in low.parse::<u16>().unwrap()..=high.parse().unwrap() {
        let _ = forger.send_to(&forged, ("127.0.0.1", port));
    }
    let heard_before = bo_says.heard().len();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let metrics = service.metrics().await;
    assert!(metrics.contains("earshot_srtp_forged_packets_total 2\n"), "one per leg: {metrics}");
    let (ada_stats, bo_stats) = (ada.stats(call).unwrap(), bo.stats(incoming).unwrap());
    assert!(loudest(&bo_says.heard()[heard_before..]) > 500.0, "Bo still hears Ada after the forgeries");
    ada.hang_up(call);
    state(&mut ada_events, call, ended).await;
    assert!(loudest(&bo_says.heard()) > 500.0, "Bo hears Ada ({} RMS)", loudest(&bo_says.heard()));
    assert!(loudest(&ada_says.heard()) > 500.0, "Ada hears Bo ({} RMS)", loudest(&ada_says.heard()));
    assert_eq!((ada_stats.srtp.forged, ada_stats.srtp.replayed), (0, 0), "{ada_stats:?}");
    assert_eq!((bo_stats.srtp.forged, bo_stats.srtp.replayed), (0, 0), "{bo_stats:?}");
    let calls = service.wait_for_calls(1).await;
    assert_eq!(calls[0]["status"], "answered");
    let heard = Heard::read(&service.download(calls[0]["recording"]["id"].as_i64().unwrap()).await);
    assert!(heard.rms(0, 0, heard.duration_ms()) > 300.0, "Ada in the recording");
    assert!(heard.rms(1, 0, heard.duration_ms()) > 300.0, "Bo in the recording");
    ada.stop();
    bo.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_over_tls_offering_best_effort_srtp_calls_the_apps_phone_and_is_heard() {
    // `mediaenc=srtp`: baresip offers SRTP under RTP/AVP; over TLS the
    // service answers it with SRTP in the same profile.
    let pki = Pki::new("Acme test CA");
    let service = Service::start_with_tls(&pki).await;
    service.agent("Ada", "101", json!({})).await;
    service.agent("Bo", "102", json!({})).await;
    let ca = pki.ca_file(service.dir.path());
    let (ada, mut events) = tls_phone(&service, "101", &ca).await;
    registered(&mut events).await;
    let (_baresip, dir) = baresip_over_tls(&service, "102", 8, &["/dial 101"], &ca, "srtp");
    let call = wait_for(&mut events, 15, |e| match e {
        PhoneEvent::Incoming { call, .. } => Some(*call),
        _ => None,
    })
    .await;
    let audio = ScriptedAudio::saying(Track::new().talk(0, 3_000).samples());
    ada.answer(call, Box::new(audio.clone()));
    state(&mut events, call, connected).await;
    state(&mut events, call, ended).await;
    let log = std::fs::read_to_string(dir.path().join("baresip.log")).unwrap_or_default();
    assert!(log.contains("SRTP is Enabled"), "baresip: {log}");
    let level = loudest(&audio.heard());
    assert!(level > 500.0, "baresip's greeting reached the phone through SRTP (RMS {level}); baresip: {log}");
    ada.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_the_phone_does_not_trust_is_refused_with_a_clear_error() {
    let pki = Pki::new("Acme test CA");
    let service = Service::start_with_tls(&pki).await;
    service.agent("Ada", "101", json!({})).await;
    let stranger = Pki::new("Someone else's CA");
    let ca = stranger.ca_file(service.dir.path());
    let (phone, mut events) = tls_phone(&service, "101", &ca).await;
    let reason = wait_for(&mut events, 10, |e| match e {
        PhoneEvent::Registration(RegistrationState::Failed { reason, .. }) => Some(reason.clone()),
        PhoneEvent::Registration(RegistrationState::Registered { .. }) => {
            panic!("registered past a certificate it does not trust")
        }
        _ => None,
    })
    .await;
    assert!(reason.contains("TLS certificate was refused"), "{reason}");
    phone.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let pki = Pki::new("Acme test CA");
    let service = Service::start_with_tls(&pki).await;
    service.agent("Ada", "101", json!({})).await;
    // The certificate renewed by another CA, written over the files.
    let renewed = Pki::new("Acme's new CA");
    let (cert, key) = renewed.server();
    let files = service.tls.clone().unwrap();
    std::fs::write(&files.key, key).unwrap();
    std::fs::write(&files.cert, cert).unwrap();
    let ca = renewed.ca_file(service.dir.path());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (phone, mut events) = tls_phone(&service, "101", &ca).await;
        let outcome = wait_for(&mut events, 10, |e| match e {
            PhoneEvent::Registration(RegistrationState::Registered { .. }) => Some(true),
            PhoneEvent::Registration(RegistrationState::Failed { .. }) => Some(false),
            _ => None,
        })
        .await;
        phone.stop();
        if outcome {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate is not served: {}",
            service.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(service.log().contains("now serving the new one"), "{}", service.log());
}

#[test]
fn sip_over_tls_without_its_certificate_stops_at_start_up_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let init = std::process::Command::new(env!("CARGO_BIN_EXE_earshotd"))
        .args(["init", "--data-dir"])
        .arg(dir.path())
        .args(["--company", "Acme", "--admin-email", "boss@acme.test", "--admin-password", "boss-password"])
        .output()
        .unwrap();
    assert!(init.status.success());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_earshotd"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--http", "127.0.0.1:0", "--sip", "127.0.0.1:0", "--sip-tls", "127.0.0.1:0"])
        .args(["--sip-tls-cert", "/nonexistent/sip.crt", "--sip-tls-key", "/nonexistent/sip.key"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read the SIP TLS certificate /nonexistent/sip.crt"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
