//! baresip, an ordinary SIP phone, registered to `earshotd`: it receives a
//! call and places one (interop beyond sipp).

use super::audio::Heard;
use super::support::{Peer, Process, Service, Sipp};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A port baresip can listen on: free for UDP and TCP, and the next one
/// too (its TLS transport takes port + 1). Asked of the kernel, not taken
/// at an offset from another port: that met a port in use now and then.
fn free_sip_port() -> u16 {
    loop {
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let free = |p: u16| {
            std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
        };
        if port < u16::MAX && free(port) && free(port + 1) {
            return port;
        }
    }
}

/// baresip registered as `extension`, speaking the demo's agent greeting,
/// answering automatically; quits after `seconds`, running `commands`.
pub(super) fn baresip(
    service: &Service,
    extension: &str,
    seconds: u32,
    commands: &[&str],
) -> (Process, tempfile::TempDir) {
    baresip_with(service, extension, seconds, commands, None)
}

/// [`baresip`] registered over TLS (trusting the CA in `ca`), its media
/// encrypted as `mediaenc` says: `srtp-mand` (SRTP only, `RTP/SAVP` with
/// SDES keys) or `srtp` (SRTP offered under `RTP/AVP`, best effort).
pub(super) fn baresip_over_tls(
    service: &Service,
    extension: &str,
    seconds: u32,
    commands: &[&str],
    ca: &Path,
    mediaenc: &str,
) -> (Process, tempfile::TempDir) {
    baresip_with(service, extension, seconds, commands, Some((ca, mediaenc)))
}

fn baresip_with(
    service: &Service,
    extension: &str,
    seconds: u32,
    commands: &[&str],
    tls: Option<(&Path, &str)>,
) -> (Process, tempfile::TempDir) {
    let tls_ca = tls.map(|(ca, _)| ca);
    let dir = tempfile::tempdir().unwrap();
    let port = free_sip_port();
    let speech = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/speech/agent-greeting.wav");
    let tls_config =
        tls_ca.map_or_else(String::new, |ca| format!("sip_cafile {}\nmodule srtp.so\n", ca.display()));
    std::fs::write(
        dir.path().join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{port}\nmodule_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule aufile.so\nmodule_app account.so\nmodule_app menu.so\n\
             audio_source aufile,{}\n{tls_config}",
            speech.display()
        ),
    )
    .unwrap();
    let registrar = match (tls_ca, &service.tls) {
        (Some(_), Some(tls)) => format!("127.0.0.1:{};transport=tls", tls.port),
        (Some(_), None) => panic!("baresip over TLS needs a service that serves TLS"),
        (None, _) => format!("127.0.0.1:{}", service.sip_port),
    };
    let media = tls.map_or_else(String::new, |(_, mediaenc)| format!("mediaenc={mediaenc};"));
    std::fs::write(
        dir.path().join("accounts"),
        format!(
            "<sip:{extension}@{registrar}>;auth_user={extension}@acme.test;auth_pass=sip-secret-{extension};\
             answermode=auto;regint=60;audio_codecs=PCMU;{media}\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("baresip.log")).unwrap();
    let mut command = Command::new("baresip");
    command.arg("-f").arg(dir.path()).args(["-t", &seconds.to_string()]);
    for c in commands {
        command.args(["-e", c]);
    }
    let child = command.stdin(Stdio::null()).stdout(log).stderr(Stdio::null()).spawn().unwrap();
    (Process(child), dir)
}

fn registered(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("baresip.log")).unwrap_or_default().contains("200 OK")
}

pub(super) async fn wait_registered(dir: &Path) {
    for _ in 0..100 {
        if registered(dir) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "baresip did not register: {}",
        std::fs::read_to_string(dir.join("baresip.log")).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_receives_a_call_and_its_voice_is_recorded() {
    let service = Service::start().await;
    service.settings(json!({"record_inbound": true})).await;
    let ada = service.agent("Ada", "101", json!({})).await;
    service.number("+15550100", json!([{"type": "ring_user", "user": ada}])).await;
    let (_phone, dir) = baresip(&service, "101", 15, &[]);
    wait_registered(dir.path()).await;
    let mut caller = Sipp::call(
        &service,
        "15550100",
        None,
        &Peer { scenario: "call.xml", talk_ms: 4_000, from: "+447700900123", ..Peer::default() },
    );
    assert!(caller.wait(), "caller: {}\n{}", caller.errors(), service.log());
    let calls = service.wait_for_calls(1).await;
    assert_eq!(calls[0]["status"], "answered");
    assert_eq!(calls[0]["parties"], json!([ada]));
    let heard = Heard::read(&service.download(calls[0]["recording"]["id"].as_i64().unwrap()).await);
    let loudest =
        (0..heard.duration_ms() / 500).map(|i| heard.rms(0, i * 500, i * 500 + 500)).fold(0.0, f64::max);
    assert!(loudest > 500.0, "baresip's voice is on the agent's channel (loudest RMS {loudest})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_places_a_call_to_another_user() {
    let service = Service::start().await;
    let ada = service.agent("Ada", "101", json!({})).await;
    let bo = service.agent("Bo", "102", json!({})).await;
    let (mut device, port) = Sipp::device(&Peer::default());
    assert!(service.register("102", port));
    // baresip dials 102 at once (answering our 407 itself) and hangs up when it quits.
    let (mut phone, dir) = baresip(&service, "101", 6, &["/dial 102"]);
    assert!(
        device.wait(),
        "device: {}\nbaresip: {}",
        device.errors(),
        std::fs::read_to_string(dir.path().join("baresip.log")).unwrap_or_default()
    );
    let _ = phone.0.wait();
    let calls = service.wait_for_calls(1).await;
    assert_eq!(calls[0]["direction"], "internal");
    assert_eq!(calls[0]["status"], "answered");
    let mut parties: Vec<i64> =
        calls[0]["parties"].as_array().unwrap().iter().map(|p| p.as_i64().unwrap()).collect();
    parties.sort_unstable();
    assert_eq!(parties, [ada, bo]);
}
