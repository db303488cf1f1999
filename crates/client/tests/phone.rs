//! The app's phone (`App::dial` and friends, the real `SoftPhone` with its
//! sound through cpal) against a real `earshotd` (HTTP and SIP on
//! loopback, the demo company), with the device's SIP credentials from the
//! service kept in the kernel keyring. `./x test` gives the run a private
//! PulseAudio whose default output is the null sink `spk` and whose default
//! input is the monitor of the null sink `micsink`: speech played into
//! `micsink` is Ada's microphone, and `spk.monitor` is her speaker.
//!
//! The far party is Bo: his own app in a process of its own (the
//! `softphone` example: the same `App` without its window) on his own null
//! sinks, `bo_mic` and `bo_spk`; or a baresip; or, where only the
//! signalling matters, the shared user agent with a script for a voice.

mod common;
use common::{best_match, envelope};
use earshot_api::{DeviceCredentials, DeviceIn};
use earshot_client::app::App;
use earshot_client::softphone::{CallStatus, PhoneStatus, PhoneView};
use earshot_client::view::AppEvent;
use earshot_client::{Api, Keyring, KeyringBackend};
use earshot_sip::phone::{Account, CallKey, Phone, PhoneConfig, PhoneEvent, ScriptedAudio};
use earshot_telephony::ua::RegistrationState;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;
use tokio::sync::broadcast;

struct Demo {
    server: String,
    sip: std::net::SocketAddr,
    _sip: earshot_service::sip::SipHandle,
    _dir: tempfile::TempDir,
}

/// The demo serving SIP over TLS too, with a certificate for loopback
/// issued by a CA of the test's own, whose certificate is in the file
/// returned; and the service's state, to look at what it stored.
async fn demo_with_tls() -> (Demo, PathBuf, earshot_service::AppState) {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "Acme demo CA");
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.self_signed(&ca_key).unwrap().pem()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut server =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    server.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = server.signed_by(&key, &rcgen::Issuer::from_params(&ca, &ca_key)).unwrap();
    let (cert_file, key_file) = (dir.path().join("sip.crt"), dir.path().join("sip.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let state = earshot_service::AppState::open(dir.path(), None).await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    earshot_service::demo::seed(&state, i64::try_from(now).unwrap()).await.unwrap();
    let rtp = 40_000 + (std::process::id() % 500) as u16 * 40;
    let config = earshot_service::sip::SipConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        rtp_ports: rtp..=rtp + 39,
        trusted_proxies: Vec::new(),
        trunk: None,
        public: None,
        tls: Some(earshot_service::sip::SipTls {
            listen: "127.0.0.1:0".parse().unwrap(),
            cert: cert_file,
            key: key_file,
        }),
    };
    let sip = earshot_service::sip::start(state.clone(), config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let app =
        earshot_service::app(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let demo = Demo { server: format!("http://{http}"), sip: sip.sip.local_addr(), _sip: sip, _dir: dir };
    (demo, ca_file, state)
}

/// `earshotd` with the demo company, HTTP and SIP on free loopback ports.
async fn demo() -> Demo {
    demo_with_trunk(None).await
}

/// Likewise, with `trunk` (`sip:host:port`) as its carrier.
async fn demo_with_trunk(trunk: Option<String>) -> Demo {
    let dir = tempfile::tempdir().unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let rtp = 40_000 + (std::process::id() % 500) as u16 * 40;
    let (sip, http) = serve(dir.path(), any, any, rtp, trunk, true).await;
    Demo { server: format!("http://{http}"), sip: sip.sip.local_addr(), _sip: sip, _dir: dir }
}

/// `earshotd` with its data in `dir` (the demo company seeded when
/// `seed`): SIP on `sip` with RTP from `rtp`, HTTP on `http` (port 0: any);
/// its SIP, and where HTTP listens.
async fn serve(
    dir: &Path,
    http: std::net::SocketAddr,
    sip: std::net::SocketAddr,
    rtp: u16,
    trunk: Option<String>,
    seed: bool,
) -> (earshot_service::sip::SipHandle, std::net::SocketAddr) {
    let state = earshot_service::AppState::open(dir, None).await.unwrap();
    if seed {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        earshot_service::demo::seed(&state, i64::try_from(now).unwrap()).await.unwrap();
    }
    let config = earshot_service::sip::SipConfig {
        listen: sip,
        rtp_ports: rtp..=rtp + 39,
        trusted_proxies: Vec::new(),
        trunk,
        public: None,
        tls: None,
    };
    let sip = earshot_service::sip::start(state.clone(), config).await.unwrap();
    let listener = tokio::net::TcpListener::bind(http).await.unwrap();
    let http = listener.local_addr().unwrap();
    let app = earshot_service::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (sip, http)
}

fn keyring() -> Keyring {
    KeyringBackend::Kernel.install();
    let suffix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let keyring = Keyring::new(format!("earshot-phone-test-{suffix}"));
    let works =
        keyring.save("http://probe", "probe", "probe").and_then(|()| keyring.load("http://probe", "probe"));
    assert!(matches!(works, Ok(Some(_))), "no kernel keyring here: run through ./x test ({works:?})");
    keyring.forget("http://probe", "probe").unwrap();
    keyring
}

fn speech(clip: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../service/assets/speech").join(format!("{clip}.wav"))
}

fn samples(clip: &str) -> Vec<i16> {
    hound::WavReader::open(speech(clip)).unwrap().samples::<i16>().map(Result::unwrap).collect()
}

/// A child process killed when dropped; a shell started by [`shell`] with
/// the children it started (its `paplay` must not go on talking into the
/// next test's microphone).
struct Process {
    child: Child,
    group: bool,
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.group {
            // The shell leads a process group of its own (`process_group(0)`).
            let _ = Command::new("kill").arg("-KILL").arg("--").arg(format!("-{}", self.child.id())).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Bo's app, as a person at another desk runs it: the app's phone without
/// its window (the `softphone` example, which `cargo test` builds), in a
/// process of its own, signed in as Bo, his microphone what is played into
/// the null sink `bo_mic` and his speaker the null sink `bo_spk`. It answers
/// a call by itself after `auto_answer_ms`. What it logs (`BO_LOG`, an
/// `EARSHOT_LOG` filter; warnings by default) goes to `earshot-bo-app.log`
/// in the temporary folder.
struct BoApp {
    _process: Process,
    stdin: std::process::ChildStdin,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl BoApp {
    async fn start(demo: &Demo, auto_answer_ms: u32) -> Self {
        Self::start_with(demo, auto_answer_ms, &[]).await
    }

    /// [`Self::start`], with `env` in the app's environment.
    async fn start_with(demo: &Demo, auto_answer_ms: u32, env: &[(&str, &Path)]) -> Self {
        use std::io::BufRead as _;
        null_sink("bo_mic");
        null_sink("bo_spk");
        let test = std::env::current_exe().unwrap();
        let binary = test.parent().unwrap().parent().unwrap().join("examples/softphone");
        assert!(binary.exists(), "{binary:?} is missing: `cargo test --workspace` builds it");
        let mut child = Command::new(binary)
            .args([&demo.server, "bo@acme.demo", "demo-bo", "--auto-answer", &auto_answer_ms.to_string()])
            .args(["--microphone", "pulseaudio:bo_mic.monitor", "--speaker", "pulseaudio:bo_spk"])
            .env("EARSHOT_LOG", std::env::var("BO_LOG").unwrap_or_else(|_| "warn".into()))
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(std::env::temp_dir().join("earshot-bo-app.log")).unwrap())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                // "<ms> event detail": the event and its detail.
                let event = line.split_once(' ').map_or(line.as_str(), |(_, event)| event).to_owned();
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        let mut bo = Self { _process: Process { child, group: false }, stdin, lines };
        bo.until("ready").await;
        bo
    }

    /// Waits for the next event that starts with `event`: the whole line.
    async fn until(&mut self, event: &str) -> String {
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(20), self.lines.recv()).await {
                Ok(Some(line)) if line.starts_with(event) => return line,
                Ok(Some(line)) => seen.push(line),
                _ => panic!("Bo's app never said {event:?}; it said {seen:?}"),
            }
        }
    }

    /// Types a command into Bo's app (`hangup`, `hold on`…).
    fn command(&mut self, command: &str) {
        use std::io::Write as _;
        writeln!(self.stdin, "{command}").unwrap();
    }
}

/// A null sink called `name` in the test's PulseAudio, loaded once.
fn null_sink(name: &str) {
    let sinks = Command::new("pactl").args(["list", "short", "sinks"]).output().unwrap();
    let listed =
        String::from_utf8_lossy(&sinks.stdout).lines().any(|line| line.split('\t').nth(1) == Some(name));
    if !listed {
        let loaded = Command::new("pactl")
            .args(["load-module", "module-null-sink", &format!("sink_name={name}")])
            .output()
            .unwrap();
        assert!(loaded.status.success(), "no null sink {name}");
    }
}

/// Bo's speaker (`bo_spk.monitor`), as raw 8 kHz samples into `path`.
fn record_bos_speaker(path: &Path) -> Process {
    record("bo_spk.monitor", path)
}

/// `sh -c script` in a process group of its own.
fn shell(script: &str) -> Process {
    use std::os::unix::process::CommandExt as _;
    let child = Command::new("sh").arg("-c").arg(script).process_group(0).spawn().unwrap();
    Process { child, group: true }
}

/// The one microphone and speaker there are: tests take turns with them.
static SOUND_CARD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn pulse_available() -> tokio::sync::MutexGuard<'static, ()> {
    let available = Command::new("pactl").arg("info").output().is_ok_and(|o| o.status.success());
    assert!(available, "no PulseAudio: run the tests through ./x test, which starts one");
    SOUND_CARD.lock().await
}

/// Waits for the app's phone to be as `want` says.
async fn phone_until(
    events: &mut broadcast::Receiver<AppEvent>,
    want: impl Fn(&PhoneView) -> bool,
) -> PhoneView {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut last = None;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(AppEvent::Phone { phone })) => {
                if want(&phone) {
                    return phone;
                }
                last = Some(phone);
            }
            Ok(Ok(_) | Err(broadcast::error::RecvError::Lagged(_))) => {}
            _ => panic!("the phone never got there; last {last:?}"),
        }
    }
}

/// Bo, as a scripted phone registered with his own device's credentials.
async fn bo(demo: &Demo) -> (Phone, tokio::sync::mpsc::UnboundedReceiver<PhoneEvent>) {
    let (api, _) = Api::log_in(&demo.server, "bo@acme.demo", "demo-bo").await.unwrap();
    let credentials: DeviceCredentials =
        api.post_json("/devices", &DeviceIn { name: "Bo's test phone".into() }).await.unwrap();
    let config = PhoneConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        media_ip: "127.0.0.1".parse().unwrap(),
        account: Some(Account {
            registrar: demo.sip,
            user: credentials.extension,
            auth_user: Some(credentials.sip_user),
            password: credentials.password,
            expires_s: 300,
        }),
        user_agent: "bo".into(),
        tls: None,
    };
    let (phone, mut events) = Phone::start(config).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(PhoneEvent::Registration(RegistrationState::Registered { .. }))) => break,
            Ok(Some(_)) => {}
            other => panic!("Bo did not register: {other:?}"),
        }
    }
    (phone, events)
}

fn to_f32(samples: &[i16]) -> Vec<f32> {
    samples.iter().map(|s| f32::from(*s) / 32_768.0).collect()
}

/// Ada signed in to the app, her phone ready, and Bo's scripted phone
/// registered; the app keeps its files in `dir`.
async fn ada_and_bo(
    demo: &Demo,
    dir: &Path,
) -> (App, broadcast::Receiver<AppEvent>, Phone, tokio::sync::mpsc::UnboundedReceiver<PhoneEvent>) {
    let (app, events) = ada(demo, dir).await;
    let (bo, bo_events) = bo(demo).await;
    (app, events, bo, bo_events)
}

/// Ada signed in to the app, her phone ready; the app keeps its files in `dir`.
async fn ada(demo: &Demo, dir: &Path) -> (App, broadcast::Receiver<AppEvent>) {
    ada_at(&demo.server, dir).await
}

/// [`ada`], signed in to the service at `server`.
async fn ada_at(server: &str, dir: &Path) -> (App, broadcast::Receiver<AppEvent>) {
    let app = App::new(dir.to_owned(), keyring());
    let mut events = app.events();
    app.log_in(server, "ada@acme.demo", "demo-ada").await.unwrap();
    let ready = phone_until(&mut events, |p| p.status == PhoneStatus::Ready).await;
    assert_eq!(ready.extension, "101");
    (app, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ada_calls_bos_app_and_each_hears_the_other_until_she_hangs_up() {
    let _sound_card = pulse_available().await;
    let demo = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let (app, mut events) = ada(&demo, dir.path()).await;
    let mut bo = BoApp::start(&demo, 300).await;

    // Ada's directory shows Bo, and whether he takes calls, as he sets it.
    let bo_in = |available: bool| {
        move |p: &PhoneView| {
            p.directory
                .iter()
                .any(|c| c.extension == "102" && c.name == "Bo Agent" && c.available == available)
        }
    };
    if !app.phone_view().is_some_and(|p| bo_in(true)(&p)) {
        phone_until(&mut events, bo_in(true)).await;
    }
    let dnd = |available: bool| serde_json::json!({ "available": available });
    send_as(&demo, "bo@acme.demo", "demo-bo", reqwest::Method::PUT, "/me/availability", &dnd(false)).await;
    phone_until(&mut events, bo_in(false)).await;
    send_as(&demo, "bo@acme.demo", "demo-bo", reqwest::Method::PUT, "/me/availability", &dnd(true)).await;
    phone_until(&mut events, bo_in(true)).await;

    // Ada's microphone: the agent's greeting, over and over; Bo's: the
    // caller's hello, likewise.
    let temp = tempfile::tempdir().unwrap();
    let (ada_heard, bo_heard) = (temp.path().join("ada-speaker.raw"), temp.path().join("bo-speaker.raw"));
    let _ada_mic = shell(&format!(
        "while true; do paplay --device=micsink {}; done",
        speech("agent-greeting").display()
    ));
    let _bo_mic = shell(&format!(
        "while true; do paplay --device=bo_mic {}; sleep 0.5; done",
        speech("caller-hello").display()
    ));
    let _ada_speaker = record_speaker(&ada_heard);
    let _bo_speaker = record_bos_speaker(&bo_heard);
    let call = app.dial("102").unwrap();
    assert_eq!(bo.until("incoming").await, "incoming 101", "Bo sees Ada's extension");
    bo.until("connected").await;
    let connected =
        phone_until(&mut events, |p| p.calls.iter().any(|c| c.status == CallStatus::Connected)).await;
    let ours = connected.calls.iter().find(|c| c.id == call).unwrap();
    assert!(!ours.incoming);
    assert_eq!(ours.number, "102");
    assert_eq!(ours.name.as_deref(), Some("Bo Agent"), "the colleague by name");
    // The call's quality, as the phone estimates it, on a clean loopback
    // (over the whole call so far). Bo's frames leave on his sound card's
    // uneven beat: now and then two at once, a frame late. The jitter
    // buffer lets up to 3 % of packets be late and conceals them (its
    // target is the 97th percentile), which `./x bench-call` rates better
    // than waiting for them (PERFORMANCE.md): up to 1.7 % measured here.
    phone_until(&mut events, |p| p.calls.iter().any(|c| c.quality.is_some())).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let quality = app.phone_view().unwrap().calls[0].quality.unwrap();
    assert!(quality.loss_percent < 3.0 && quality.mos > 4.0, "{quality:?}");
    // The round trip to the service, once its RTCP report echoed Ada's.
    let measured = phone_until(&mut events, |p| {
        p.calls.iter().any(|c| c.quality.is_some_and(|q| q.round_trip_ms.is_some()))
    })
    .await;
    let round_trip = measured.calls[0].quality.unwrap().round_trip_ms.unwrap();
    assert!((0.0..60.0).contains(&round_trip), "round trip {round_trip} ms on loopback");
    app.hang_up(call).unwrap();
    let ended = phone_until(&mut events, |p| p.calls.iter().any(|c| c.status == CallStatus::Ended)).await;
    assert_eq!(ended.calls[0].ended.as_deref(), Some("You hung up."));
    assert_eq!(bo.until("ended").await, "ended They hung up.");
    drop((_ada_speaker, _bo_speaker));

    // Each heard the other: through a microphone, the echo canceller, the
    // noise suppressor, 8 kHz, the service's relay, the jitter buffer and a
    // speaker.
    let bo_matched = heard(&bo_heard, "agent-greeting");
    let ada_matched = heard(&ada_heard, "caller-hello");
    assert!(bo_matched > 0.7, "Bo's speaker played Ada (match {bo_matched})");
    assert!(ada_matched > 0.7, "Ada's speaker played Bo (match {ada_matched})");
}

/// A recording as stereo frames, read from WAV bytes.
fn frames(wav: &[u8]) -> Vec<[i16; 2]> {
    let mut reader = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
    assert_eq!(reader.spec().channels, 2);
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    samples.chunks_exact(2).map(|c| [c[0], c[1]]).collect()
}

fn rms(frames: &[[i16; 2]], channel: usize, from_ms: usize, to_ms: usize) -> f64 {
    let slice = &frames[(from_ms * 8).min(frames.len())..(to_ms * 8).min(frames.len())];
    if slice.is_empty() {
        return 0.0;
    }
    (slice.iter().map(|f| f64::from(f[channel]).powi(2)).sum::<f64>() / slice.len() as f64).sqrt()
}

/// A bearer token for `email`.
async fn token_of(demo: &Demo, email: &str, password: &str) -> String {
    let session: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/v1/session", demo.server))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    session["token"].as_str().unwrap().to_owned()
}

/// The response to `GET path` as `email`.
async fn get_as(demo: &Demo, email: &str, password: &str, path: &str) -> reqwest::Response {
    let token = token_of(demo, email, password).await;
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1{path}", demo.server))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response
}

/// `GET path` as `email`, JSON.
async fn json_as(demo: &Demo, email: &str, password: &str, path: &str) -> serde_json::Value {
    get_as(demo, email, password, path).await.json().await.unwrap()
}

/// Waits until Ada's call is as `want` says.
async fn call_until(
    events: &mut broadcast::Receiver<AppEvent>,
    want: impl Fn(&earshot_client::softphone::CallView) -> bool,
) {
    phone_until(events, |p| p.calls.iter().any(&want)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_recording_buttons_pause_the_recording_mute_silences_ada_and_bo_hangs_up() {
    use earshot_client::softphone::CallRecording;
    let _sound_card = pulse_available().await;
    let demo = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let (app, mut events) = ada(&demo, dir.path()).await;
    let mut bo = BoApp::start(&demo, 300).await;
    let _mic =
        shell(&format!("while true; do paplay --device=micsink {}; done", speech("agent-account").display()));
    let _bo_mic =
        shell(&format!("while true; do paplay --device=bo_mic {}; done", speech("caller-problem").display()));
    let call = app.dial("102").unwrap();
    bo.until("connected").await;
    // Internal calls are not recorded in the demo: Ada starts it, pauses, resumes (SPEC §6.2).
    call_until(&mut events, |c| c.recording == Some(CallRecording::Off)).await;
    app.resume_recording(call).unwrap();
    call_until(&mut events, |c| c.recording == Some(CallRecording::Recording)).await;
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    app.pause_recording(call).unwrap();
    call_until(&mut events, |c| c.recording == Some(CallRecording::Paused)).await;
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    app.resume_recording(call).unwrap();
    call_until(&mut events, |c| c.recording == Some(CallRecording::Recording)).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    app.hold(call, true).unwrap();
    call_until(&mut events, |c| c.held).await;
    app.hold(call, false).unwrap();
    call_until(&mut events, |c| c.status == CallStatus::Connected && !c.held).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let muted_at = std::time::Instant::now();
    app.mute(call, true).unwrap();
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    app.mute(call, false).unwrap();
    let muted_for = muted_at.elapsed();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // Bo hangs up.
    bo.command("hangup");
    assert_eq!(bo.until("ended").await, "ended You hung up.");
    let ended = phone_until(&mut events, |p| p.calls.iter().any(|c| c.status == CallStatus::Ended)).await;
    assert_eq!(ended.calls[0].ended.as_deref(), Some("They hung up."));

    // The call is in both histories, with one paused span; nothing of it is in the file.
    let id = recorded_internal_call(&demo, "ada@acme.demo", "demo-ada", "/calls?app=calling")
        .await
        .expect("Ada's call in her history");
    let bos = json_as(&demo, "bo@acme.demo", "demo-bo", "/calls?app=calling&limit=1").await;
    assert_eq!(bos["calls"][0]["id"], id, "the call is in Bo's history too");
    let details =
        json_as(&demo, "admin@acme.demo", "demo-admin", &format!("/calls/{id}?app=dashboard")).await;
    let recording = &details["recording"];
    let spans = recording["paused_spans"].as_array().unwrap();
    assert_eq!(spans.len(), 1, "{recording}");
    let (start, end) =
        (spans[0]["start_ms"].as_u64().unwrap() as usize, spans[0]["end_ms"].as_u64().unwrap() as usize);
    assert!((2_000..4_500).contains(&start) && end - start > 2_000, "paused {start}–{end} ms");
    let download = format!("/recordings/{}/download?app=dashboard", recording["id"].as_i64().unwrap());
    let bytes = get_as(&demo, "admin@acme.demo", "demo-admin", &download).await.bytes().await.unwrap();
    let file = frames(&bytes);
    assert!(file[start * 8..end * 8].iter().all(|f| *f == [0, 0]), "speech inside the paused span");
    for channel in [0, 1] {
        let before = rms(&file, channel, 0, start);
        let after = rms(&file, channel, end, end + 2_000);
        assert!(
            before > 100.0 && after > 100.0,
            "channel {channel}: {before:.0} before, {after:.0} after the pause"
        );
    }
    // Mute: Ada's channel goes quiet (what the echo of the file's end tells: the mute began about 4 s after the pause ended).
    let total = file.len() / 8;
    let mute_end = total.saturating_sub(1_500);
    let mute_start = mute_end.saturating_sub(muted_for.as_millis() as usize);
    let muted = rms(&file, 0, mute_start + 500, mute_end.saturating_sub(500));
    let talking = rms(&file, 0, end, end + 2_000);
    assert!(muted < talking / 10.0, "Ada muted: {muted:.0} against {talking:.0} talking");
}

/// Bo's baresip, an ordinary SIP phone, registered with a credential for
/// his device from the service, speaking `clip` (and answering by itself);
/// quits after `seconds`, running `commands` first.
async fn baresip(demo: &Demo, clip: &str, seconds: u32, commands: &[&str]) -> (Process, tempfile::TempDir) {
    let (api, _) = Api::log_in(&demo.server, "bo@acme.demo", "demo-bo").await.unwrap();
    let credentials: DeviceCredentials =
        api.post_json("/devices", &DeviceIn { name: "Bo's baresip".into() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_sip_port();
    std::fs::write(
        dir.path().join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{port}\nmodule_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule aufile.so\nmodule_app account.so\nmodule_app menu.so\n\
             audio_source aufile,{}\n",
            speech(clip).display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("accounts"),
        format!(
            "<sip:{}@127.0.0.1:{}>;auth_user={};auth_pass={};answermode=auto;regint=300;audio_codecs=PCMU\n",
            credentials.extension, credentials.sip_port, credentials.sip_user, credentials.password
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("baresip.log")).unwrap();
    let mut command = Command::new("baresip");
    command.arg("-f").arg(dir.path()).args(["-t", &seconds.to_string()]);
    for c in commands {
        command.args(["-e", c]);
    }
    let child = command.stdin(std::process::Stdio::null()).stdout(log).stderr(std::process::Stdio::null());
    let process = Process { child: child.spawn().unwrap(), group: false };
    let log = dir.path().join("baresip.log");
    for _ in 0..100 {
        if std::fs::read_to_string(&log).unwrap_or_default().contains("200 OK") {
            return (process, dir);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("baresip did not register: {}", std::fs::read_to_string(&log).unwrap_or_default());
}

/// Ada's speaker (`spk.monitor`), as raw 8 kHz samples into `path`
/// (killing the recorder loses nothing).
fn record_speaker(path: &Path) -> Process {
    record("spk.monitor", path)
}

/// A PulseAudio source, as raw 8 kHz samples into `path` (killing the
/// recorder loses at most its last 20 ms).
fn record(source: &str, path: &Path) -> Process {
    let child = Command::new("parec")
        .args([&format!("--device={source}"), "--channels=1", "--rate=8000", "--format=s16le"])
        // Written as it comes (what the file holds is what was heard up to now).
        .arg("--latency-msec=20")
        .stdout(std::fs::File::create(path).unwrap())
        .spawn()
        .unwrap();
    Process { child, group: false }
}

/// What [`record_speaker`] wrote.
fn read_speaker(path: &Path) -> Vec<i16> {
    std::fs::read(path).unwrap().chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// How well what `path` recorded matches `clip`: the best of its 1 s
/// stretches (the call's audio may begin anywhere in the clip, and a frame
/// the jitter buffer left out shifts what follows).
fn heard(path: &Path, clip: &str) -> f32 {
    let played = read_speaker(path);
    let said = envelope(&to_f32(&samples(clip)), 160);
    let played = envelope(&to_f32(&played), 160);
    // Any second of the clip, every 0.2 s, found anywhere in what played.
    (0..said.len().saturating_sub(50))
        .step_by(10)
        .map(|at| best_match(&said[at..at + 50], &played))
        .fold(f32::MIN, f32::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_calls_a_baresip_and_hears_it() {
    let _sound_card = pulse_available().await;
    let demo = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let (app, mut events) = ada(&demo, dir.path()).await;
    // (baresip hangs up when its file has been said: 6 s, so Ada hangs up first.)
    let (_baresip, baresip_dir) = baresip(&demo, "caller-voicemail", 30, &[]).await;
    let speaker = dir.path().join("speaker.raw");
    let recorder = record_speaker(&speaker);
    let call = app.dial("102").unwrap();
    call_until(&mut events, |c| c.id == call && c.status == CallStatus::Connected).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    app.hang_up(call).unwrap();
    let ended = phone_until(&mut events, |p| p.calls.iter().any(|c| c.status == CallStatus::Ended)).await;
    assert_eq!(ended.calls[0].ended.as_deref(), Some("You hung up."));
    drop(recorder);
    let matched = heard(&speaker, "caller-voicemail");
    let log = std::fs::read_to_string(baresip_dir.path().join("baresip.log")).unwrap_or_default();
    assert!(matched > 0.7, "Ada's speaker played baresip's voice (match {matched}); baresip: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baresip_calls_the_app_which_answers_and_hears_it_until_it_hangs_up() {
    let _sound_card = pulse_available().await;
    let demo = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let (app, mut events) = ada(&demo, dir.path()).await;
    let speaker = dir.path().join("speaker.raw");
    let recorder = record_speaker(&speaker);
    // baresip dials Ada's extension at once, and hangs up once it has said its file.
    let (_baresip, _baresip_dir) = baresip(&demo, "caller-problem", 12, &["/dial 101"]).await;
    let ringing =
        phone_until(&mut events, |p| p.calls.iter().any(|c| c.status == CallStatus::Incoming)).await;
    let incoming = &ringing.calls[0];
    assert!(incoming.incoming);
    assert_eq!(incoming.number, "102");
    assert_eq!(incoming.name.as_deref(), Some("Bo Agent"), "the colleague by name");
    app.answer(incoming.id).unwrap();
    call_until(&mut events, |c| c.status == CallStatus::Connected).await;
    // The call's sound and its media run on threads of their own (a
    // thread names itself once it first runs, which a loaded machine may
    // not have let it do by now) …
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut threads = call_threads();
    while !(threads.iter().any(|t| t == "earshot-call-me") && threads.iter().any(|t| t == "earshot-call-au"))
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        threads = call_threads();
    }
    assert!(threads.contains(&"earshot-call-me".to_owned()), "the media's thread: {threads:?}");
    assert!(threads.contains(&"earshot-call-au".to_owned()), "the sound's thread: {threads:?}");
    let ended = phone_until(&mut events, |p| p.calls.iter().any(|c| c.status == CallStatus::Ended)).await;
    assert_eq!(ended.calls[0].ended.as_deref(), Some("They hung up."));
    // … which end with it (the sound server's client threads the sound's
    // thread started carry its name).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !call_threads().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(call_threads(), Vec::<String>::new(), "the call's threads ended with it");
    drop(recorder);
    let matched = heard(&speaker, "caller-problem");
    assert!(matched > 0.7, "Ada's speaker played baresip's voice (match {matched})");
}

/// The names of this process's threads that belong to a call (Linux keeps
/// 15 bytes of a name; a thread started by another carries its name).
fn call_threads() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| name.starts_with("earshot-call"))
        .collect()
}

/// `method path` with a JSON body as `email`; the response's JSON.
async fn send_as(
    demo: &Demo,
    email: &str,
    password: &str,
    method: reqwest::Method,
    path: &str,
    body: &serde_json::Value,
) -> serde_json::Value {
    let token = token_of(demo, email, password).await;
    let response = reqwest::Client::new()
        .request(method, format!("{}/api/v1{path}", demo.server))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    // 204 No Content: null.
    response.json().await.unwrap_or(serde_json::Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_recording_control_presses_pause_and_the_recording_goes_on_with_the_reason_shown() {
    use earshot_client::softphone::CallRecording;
    let _sound_card = pulse_available().await;
    let demo = demo().await;
    let admin = ("admin@acme.demo", "demo-admin");
    // Internal calls recorded; Ada may not pause or resume a recording (SPEC §6.2).
    let mut settings = json_as(&demo, admin.0, admin.1, "/settings").await;
    settings["record_internal"] = true.into();
    send_as(&demo, admin.0, admin.1, reqwest::Method::PUT, "/settings", &settings).await;
    let users = json_as(&demo, admin.0, admin.1, "/users").await;
    let ada = users.as_array().unwrap().iter().find(|u| u["email"] == "ada@acme.demo").unwrap().clone();
    let mut ada_settings = ada["settings"].clone();
    ada_settings["recording_control"] = false.into();
    let write = serde_json::json!({
        "name": ada["name"], "email": ada["email"], "role": ada["role"], "extension": ada["extension"],
        "groups": ada["groups"], "settings": ada_settings, "caller_id": ada["caller_id"],
    });
    send_as(&demo, admin.0, admin.1, reqwest::Method::PUT, &format!("/users/{}", ada["id"]), &write).await;

    let dir = tempfile::tempdir().unwrap();
    let (app, mut events, bo, mut bo_events) = ada_and_bo(&demo, dir.path()).await;
    let call = app.dial("102").unwrap();
    let bo_call = bo_rings(&mut bo_events).await;
    bo.answer(bo_call, Box::new(ScriptedAudio::default()));
    call_until(&mut events, |c| c.recording == Some(CallRecording::Recording)).await;
    // The button sends #11# like the keypad would; the service refuses it and says why.
    pause_is_refused_and_the_recording_goes_on(&app, &mut events, call, Duration::from_secs(2)).await;
    app.hang_up(call).unwrap();
    call_until(&mut events, |c| c.status == CallStatus::Ended).await;

    // The stored recording has no paused span.
    let id = recorded_internal_call(&demo, admin.0, admin.1, "/calls?app=dashboard")
        .await
        .expect("the call in the history");
    let details = json_as(&demo, admin.0, admin.1, &format!("/calls/{id}?app=dashboard")).await;
    assert_eq!(details["recording"]["paused_spans"], serde_json::json!([]), "{details}");
    bo.stop();
}

/// Ada presses Pause recording on `call`: the service refuses it, the app
/// shows why in a sentence, and the recording goes on (still so `after`).
async fn pause_is_refused_and_the_recording_goes_on(
    app: &App,
    events: &mut broadcast::Receiver<AppEvent>,
    call: u64,
    after: Duration,
) {
    use earshot_client::softphone::CallRecording;
    app.pause_recording(call).unwrap();
    let refused = phone_until(events, |p| p.calls.iter().any(|c| c.refused.is_some())).await;
    let ours = refused.calls.iter().find(|c| c.id == call).unwrap();
    assert_eq!(ours.recording, Some(CallRecording::Recording), "the recording goes on");
    let reason = ours.refused.clone().unwrap();
    assert!(!reason.is_empty() && reason.ends_with('.'), "a sentence: {reason:?}");
    tokio::time::sleep(after).await;
    let now = app.phone_view().unwrap();
    assert_eq!(now.calls.iter().find(|c| c.id == call).unwrap().recording, Some(CallRecording::Recording));
}

/// Bo's phone ringing: the call's id there.
async fn bo_rings(bo_events: &mut tokio::sync::mpsc::UnboundedReceiver<PhoneEvent>) -> CallKey {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), bo_events.recv()).await {
            Ok(Some(PhoneEvent::Incoming { call, .. })) => return call,
            Ok(Some(_)) => {}
            other => panic!("Bo's phone did not ring: {other:?}"),
        }
    }
}

/// The newest call of `calls_path`'s history as `email` sees it, once it is
/// an internal call with its recording stored (within 5 s): its id.
async fn recorded_internal_call(demo: &Demo, email: &str, password: &str, calls_path: &str) -> Option<i64> {
    for _ in 0..50 {
        let page = json_as(demo, email, password, &format!("{calls_path}&limit=1")).await;
        let newest = &page["calls"][0];
        if newest["direction"] == "internal" && newest["recording"].is_object() {
            return newest["id"].as_i64();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// A free UDP port on loopback (free a moment ago).
fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A port baresip can listen on: free for UDP and TCP, and the next one
/// too (its TLS transport takes port + 1). Asked of the kernel, not taken
/// at an offset from another port: that met a port in use now and then.
fn free_sip_port() -> u16 {
    loop {
        let port = free_port();
        let free = |p: u16| {
            std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
        };
        if port < u16::MAX && free(port) && free(port + 1) {
            return port;
        }
    }
}

/// The carrier beyond the trunk, at `port`: a sipp (tests/sipp/uas_stream.xml)
/// that rings, answers, says `clip` over and over and waits to be hung up on.
fn outside_number(port: u16, clip: &str, dir: &Path) -> Child {
    let raw = dir.join("voice.ul");
    std::fs::write(&raw, earshot_telephony::g711::G711::Pcmu.encode(&samples(clip))).unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sipp/uas_stream.xml");
    let text = std::fs::read_to_string(scenario)
        .unwrap()
        .replace("@RAW@", &raw.to_string_lossy())
        .replace("@RING_MS@", "500");
    let file = dir.join("uas_stream.xml");
    std::fs::write(&file, text).unwrap();
    Command::new("sipp")
        .args(["-sf", &file.to_string_lossy(), "-i", "127.0.0.1", "-nostdin", "-m", "1"])
        .args(["-p", &port.to_string(), "-mp", &free_port().to_string()])
        .args(["-trace_err", "-timeout", "60s", "-timeout_error"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_calls_an_outside_number_through_the_trunk_and_hears_it() {
    let _sound_card = pulse_available().await;
    let trunk = free_port();
    let demo = demo_with_trunk(Some(format!("sip:127.0.0.1:{trunk}"))).await;
    let temp = tempfile::tempdir().unwrap();
    let carrier = outside_number(trunk, "caller-hello", temp.path());
    let mut carrier = Process { child: carrier, group: false };
    let dir = tempfile::tempdir().unwrap();
    let (app, mut events) = ada(&demo, dir.path()).await;
    let heard_path = temp.path().join("ada-speaker.raw");
    let speaker = record_speaker(&heard_path);
    let call = app.dial("+44 7700 900123").unwrap();
    phone_until(&mut events, |p| p.calls.iter().any(|c| c.status == CallStatus::Ringing)).await;
    let connected =
        phone_until(&mut events, |p| p.calls.iter().any(|c| c.status == CallStatus::Connected)).await;
    assert_eq!(connected.calls[0].number, "+447700900123", "the number as dialled, without its spaces");
    tokio::time::sleep(Duration::from_secs(5)).await;
    app.hang_up(call).unwrap();
    call_until(&mut events, |c| c.status == CallStatus::Ended).await;
    drop(speaker);
    let matched = heard(&heard_path, "caller-hello");
    assert!(matched > 0.7, "Ada's speaker played the outside number (match {matched})");
    // The carrier was hung up on, as its scenario expects.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = carrier.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the carrier's call never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let errors = std::fs::read_dir(temp.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("errors.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(status.success(), "the carrier's scenario failed: {errors}");
    // An outbound call in Ada's history, to that number.
    let page = json_as(&demo, "ada@acme.demo", "demo-ada", "/calls?app=calling&limit=1").await;
    let newest = &page["calls"][0];
    assert_eq!(newest["direction"], "outbound", "{newest}");
    assert_eq!(newest["external_number"], "+447700900123", "{newest}");
}

/// How strongly `samples` (8 kHz) hold a tone of `hz`: its amplitude.
fn tone(samples: &[i16], hz: f32) -> f32 {
    let (mut re, mut im) = (0.0_f32, 0.0_f32);
    for (n, s) in samples.iter().enumerate() {
        let phase = std::f32::consts::TAU * hz * n as f32 / 8_000.0;
        let s = f32::from(*s) / 32_768.0;
        re += s * phase.cos();
        im += s * phase.sin();
    }
    2.0 * (re * re + im * im).sqrt() / samples.len().max(1) as f32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_ringing_here_rings_on_the_ringer_not_the_call_speaker_until_declined() {
    let _sound_card = pulse_available().await;
    null_sink("ring");
    let demo = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(dir.path().to_owned(), keyring());
    let mut events = app.events();
    // The ringtone on the laptop's speakers (the sink `ring`), calls in the headset (`spk`).
    let ringer = |app: &App| {
        let mut settings = app.settings();
        settings.call_audio.ringer = Some("pulseaudio:ring".into());
        app.save_settings(&settings).unwrap();
    };
    ringer(&app);
    app.log_in(&demo.server, "ada@acme.demo", "demo-ada").await.unwrap();
    ringer(&app);
    phone_until(&mut events, |p| p.status == PhoneStatus::Ready).await;
    let temp = tempfile::tempdir().unwrap();
    let (ring_path, speaker_path) = (temp.path().join("ring.raw"), temp.path().join("speaker.raw"));
    // A null sink's monitor says nothing while the sink is idle (suspended),
    // and takes most of a second to start: silence keeps it running, so
    // the recording keeps time with the test.
    let _awake = shell("pacat --device=ring --playback /dev/zero");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ring_recorder = record("ring.monitor", &ring_path);
    let speaker_recorder = record_speaker(&speaker_path);
    let (bo, _bo_events) = bo(&demo).await;
    bo.dial("101", Box::new(ScriptedAudio::default()));
    let ringing =
        phone_until(&mut events, |p| p.calls.iter().any(|c| c.status == CallStatus::Incoming)).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    app.decline(ringing.calls[0].id).unwrap();
    phone_until(&mut events, |p| p.calls.iter().all(|c| c.status != CallStatus::Incoming)).await;
    let declined_at = std::fs::metadata(&ring_path).unwrap().len() as usize / 2;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    drop((ring_recorder, speaker_recorder));

    let ring = read_speaker(&ring_path);
    // The last second before the decline rang with both tones...
    let before = &ring[declined_at.saturating_sub(8_000)..declined_at];
    assert!(
        tone(before, 440.0) > 0.01 && tone(before, 480.0) > 0.01,
        "no ring: {} {}",
        tone(before, 440.0),
        tone(before, 480.0)
    );
    // ...and from a moment after it (what the sink still held), nothing.
    let after = &ring[(declined_at + 8_000).min(ring.len())..];
    assert!(
        after.len() > 4_000 && tone(after, 440.0) < 0.001,
        "still ringing after the decline: {}",
        tone(after, 440.0)
    );
    // The call's speaker never rang.
    let speaker = read_speaker(&speaker_path);
    assert!(tone(&speaker, 440.0) < 0.001, "the ring went to the call's speaker: {}", tone(&speaker, 440.0));
    bo.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_call_whose_recording_the_flow_decided_a_pause_is_refused_with_the_reason_d5() {
    use earshot_client::softphone::CallRecording;
    let _sound_card = pulse_available().await;
    // Calls to the company's numbers come in from the carrier (the trunk's address).
    let demo = demo_with_trunk(Some(format!("sip:127.0.0.1:{}", free_port()))).await;
    let admin = ("admin@acme.demo", "demo-admin");
    // Ada joins Support, whose direct line records every call (a flow step).
    let groups = json_as(&demo, admin.0, admin.1, "/groups").await;
    let support = groups.as_array().unwrap().iter().find(|g| g["name"] == "Support").unwrap()["id"].clone();
    let users = json_as(&demo, admin.0, admin.1, "/users").await;
    let ada_user = users.as_array().unwrap().iter().find(|u| u["email"] == "ada@acme.demo").unwrap().clone();
    let mut groups = ada_user["groups"].as_array().unwrap().clone();
    groups.push(support);
    let write = serde_json::json!({
        "name": ada_user["name"], "email": ada_user["email"], "role": ada_user["role"],
        "extension": ada_user["extension"], "groups": groups, "settings": ada_user["settings"],
        "caller_id": ada_user["caller_id"],
    });
    send_as(&demo, admin.0, admin.1, reqwest::Method::PUT, &format!("/users/{}", ada_user["id"]), &write)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let (app, mut events) = ada(&demo, dir.path()).await;
    // A customer calls Support direct: announced, recorded by the flow, rung round Support.
    let config = PhoneConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        media_ip: "127.0.0.1".parse().unwrap(),
        account: None,
        user_agent: "customer".into(),
        tls: None,
    };
    let (customer, _customer_events) = Phone::start(config).await.unwrap();
    let voice = ScriptedAudio::saying(&samples("caller-problem"));
    customer.dial_from(&format!("sip:+442071230002@{}", demo.sip), "+447700900123", Box::new(voice));
    let ringing =
        phone_until(&mut events, |p| p.calls.iter().any(|c| c.status == CallStatus::Incoming)).await;
    let call = ringing.calls.iter().find(|c| c.status == CallStatus::Incoming).unwrap().id;
    app.answer(call).unwrap();
    call_until(&mut events, |c| c.recording == Some(CallRecording::Recording)).await;
    // Ada may pause recordings (recording_control), but not one a flow step decided.
    pause_is_refused_and_the_recording_goes_on(&app, &mut events, call, Duration::from_secs(1)).await;
    app.hang_up(call).unwrap();
    call_until(&mut events, |c| c.status == CallStatus::Ended).await;
    customer.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_test_sound_plays_on_the_speaker_the_test_recording_and_the_level_meter_hear_the_microphone()
{
    use earshot_client::device_test::{LevelMeter, Levels, play_test_sound, test_microphone};
    let _sound_card = pulse_available().await;
    let temp = tempfile::tempdir().unwrap();
    // The speaker (`spk`) kept running, so its recording keeps time.
    let _awake = shell("pacat --device=spk --playback /dev/zero");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let speaker_path = temp.path().join("speaker.raw");
    let speaker = record_speaker(&speaker_path);
    tokio::task::spawn_blocking(|| play_test_sound(None)).await.unwrap().unwrap();
    drop(speaker);
    let played = read_speaker(&speaker_path);
    assert!(
        tone(&played, 440.0) > 0.005 && tone(&played, 480.0) > 0.005,
        "no test sound: {}",
        tone(&played, 440.0)
    );

    // Speech into the microphone: heard, and loud enough.
    let mic = shell(&format!(
        "while true; do paplay --device=micsink {}; done",
        speech("agent-greeting").display()
    ));
    let test = tokio::task::spawn_blocking(|| test_microphone(None, None, 2.0)).await.unwrap().unwrap();
    assert!(test.heard && test.peak_dbfs > -30.0 && test.rms_dbfs < test.peak_dbfs, "{test:?}");
    drop(mic);
    // Nothing said: nothing heard.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let test = tokio::task::spawn_blocking(|| test_microphone(None, None, 1.0)).await.unwrap().unwrap();
    assert!(!test.heard, "{test:?}");

    // The live level meter: ten reports a second, speech loud, then silence.
    let _awake_mic = shell("pacat --device=micsink --playback /dev/zero");
    let mic = shell(&format!(
        "while true; do paplay --device=micsink {}; done",
        speech("agent-greeting").display()
    ));
    let (report, reports) = std::sync::mpsc::channel();
    let meter = tokio::task::spawn_blocking(move || {
        LevelMeter::start(None, move |levels| {
            let _ = report.send(levels);
        })
    })
    .await
    .unwrap()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    drop(mic);
    let speaking: Vec<Levels> = reports.try_iter().collect();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    tokio::task::spawn_blocking(move || drop(meter)).await.unwrap();
    let after: Vec<Levels> = reports.try_iter().collect();
    assert!((12..=21).contains(&speaking.len()), "{} reports in 2 s", speaking.len());
    assert!(speaking.iter().filter(|l| l.rms_dbfs > -40.0).count() >= 5, "{speaking:?}");
    assert!(after.len() >= 8, "{} reports in 1.5 s", after.len());
    assert!(after[after.len() - 5..].iter().all(|l| l.peak_dbfs < -50.0), "{after:?}");
    // Stopped: no more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(reports.try_iter().count(), 0);
}

/// `earshotd` on a runtime and thread of its own, so that stopping it
/// drops every socket and connection at once, as a crash would; started
/// again on the same ports and the same data, it is a restart.
struct RunningService {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningService {
    /// Starts it on `http` and `sip` (port 0: any) with its data in `dir`
    /// (the demo company seeded when `seed`); where it listens.
    fn start(
        dir: &Path,
        http: std::net::SocketAddr,
        sip: std::net::SocketAddr,
        seed: bool,
    ) -> (Self, std::net::SocketAddr, std::net::SocketAddr) {
        let dir = dir.to_owned();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (listening, at) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            runtime.block_on(async move {
                let rtp = 41_000 + (std::process::id() % 500) as u16 * 40;
                let (handle, http) = serve(&dir, http, sip, rtp, None, seed).await;
                listening.send((http, handle.sip.local_addr())).unwrap();
                let _ = stopped.await;
                handle.stop();
            });
            // Every task, socket and connection goes with the runtime.
            runtime.shutdown_timeout(Duration::from_secs(2));
        });
        let (http, sip) = at.recv().unwrap();
        (Self { stop: Some(stop), thread: Some(thread) }, http, sip)
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_says_it_is_offline_while_the_service_restarts_and_registers_again() {
    let data = tempfile::tempdir().unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (service, http, sip) = RunningService::start(data.path(), any, any, true);
    let dir = tempfile::tempdir().unwrap();
    let (_app, mut events) = ada_at(&format!("http://{http}"), dir.path()).await;

    // The service goes away: within seconds, not at the registration's
    // end, the phone says so.
    drop(service);
    let offline = phone_until(&mut events, |p| p.status == PhoneStatus::Offline).await;
    assert_eq!(
        offline.detail.as_deref(),
        Some("Phone offline: the service cannot be reached. Reconnecting…")
    );
    // Back on the same ports, with the same data: the phone registers
    // again by itself (the device's credentials were kept by both sides).
    let (_service, _, _) = RunningService::start(data.path(), http, sip, false);
    let back = phone_until(&mut events, |p| p.status == PhoneStatus::Ready).await;
    assert_eq!(back.detail, None);
    assert_eq!(back.extension, "101");
}

/// Ada's app two seconds into a call with Bo's (who answers after 300 ms,
/// with `bo_env` in his environment), `clip` playing on a loop into `mic`:
/// `micsink`, Ada's microphone, or `bo_mic`, Bo's.
struct InCall {
    app: App,
    bo: BoApp,
    call: u64,
    _mic: Process,
    _events: broadcast::Receiver<AppEvent>,
    _dir: tempfile::TempDir,
}

impl InCall {
    async fn start(demo: &Demo, bo_env: &[(&str, &Path)], mic: &str, clip: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (app, mut events) = ada(demo, dir.path()).await;
        let mut bo = BoApp::start_with(demo, 300, bo_env).await;
        let mic_loop =
            shell(&format!("while true; do paplay --device={mic} {}; done", speech(clip).display()));
        let call = app.dial("102").unwrap();
        bo.until("connected").await;
        call_until(&mut events, |c| c.id == call && c.status == CallStatus::Connected).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        Self { app, bo, call, _mic: mic_loop, _events: events, _dir: dir }
    }

    /// Records `source` (`spk.monitor`, Ada's speaker and the default
    /// output, or `bo_spk.monitor`) for four seconds: the call is still
    /// connected and the clip playing into the microphone is heard in it
    /// (`who` says whose ear, for the failure).
    async fn goes_on_and_is_heard_on(&self, source: &str, clip: &str, who: &str) {
        let temp = tempfile::tempdir().unwrap();
        let heard_at = temp.path().join("heard.raw");
        let recorder = record(source, &heard_at);
        tokio::time::sleep(Duration::from_secs(4)).await;
        drop(recorder);
        let view = self.app.phone_view().unwrap();
        let ours = view.calls.iter().find(|c| c.id == self.call).unwrap();
        assert_eq!(ours.status, CallStatus::Connected, "the call went on: {ours:?}");
        let matched = heard(&heard_at, clip);
        assert!(matched > 0.7, "{who} (match {matched}); Bo's log: {}", bos_log());
    }

    /// Ada hangs up; Bo's app hears it.
    async fn hang_up(mut self) {
        self.app.hang_up(self.call).unwrap();
        assert_eq!(self.bo.until("ended").await, "ended They hung up.");
    }
}

/// What Bo's app has logged so far (`BoApp`).
fn bos_log() -> String {
    std::fs::read_to_string(std::env::temp_dir().join("earshot-bo-app.log")).expect("Bo's app's log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_survives_a_short_media_outage_and_its_audio_comes_back() {
    let _sound_card = pulse_available().await;
    let demo = demo().await;
    let call = InCall::start(&demo, &[], "bo_mic", "caller-hello").await;
    // Bo's app stops dead for two seconds (a network outage, as Ada's
    // phone sees it: nothing arrives), then goes on.
    let pid = call.bo._process.child.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    // Ada's speaker from a second after the outage: Bo again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    call.goes_on_and_is_heard_on("spk.monitor", "caller-hello", "Ada hears Bo after the outage").await;
    // Bo's sound went on through the stop: a process stopped and continued
    // has its waits interrupted (EINTR), which the sound server's client
    // takes in its stride (vendor/README.md) instead of dropping the
    // connection, and with it the call's microphone and speaker.
    let log = bos_log();
    assert!(
        !log.contains("speaker failed") && !log.contains("microphone failed"),
        "Bo's devices failed on the stop: {log}"
    );
    call.hang_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bos_headset_unplugged_mid_call_gives_way_to_the_default_speaker_and_the_call_goes_on() {
    let _sound_card = pulse_available().await;
    let demo = demo().await;
    let call = InCall::start(&demo, &[], "micsink", "agent-greeting").await;
    // Bo's headset (his speaker, `bo_spk`) is unplugged: the sound server
    // drops the sink. It moves the stream that played into it to the
    // default output, as PulseAudio does; a server that kills it instead
    // has the app reopen the default (`call_audio`, a device's error).
    let modules = Command::new("pactl").args(["list", "short", "modules"]).output().unwrap();
    let module = String::from_utf8_lossy(&modules.stdout)
        .lines()
        .find(|line| line.contains("sink_name=bo_spk"))
        .and_then(|line| line.split('\t').next().map(str::to_owned))
        .expect("bo_spk is loaded");
    assert!(Command::new("pactl").args(["unload-module", &module]).status().unwrap().success());
    tokio::time::sleep(Duration::from_secs(1)).await;
    // His sound now comes out of the system's default output (`spk`,
    // which Ada's speaker shares: Bo's microphone is silent).
    call.goes_on_and_is_heard_on("spk.monitor", "agent-greeting", "Bo hears Ada on the default speaker")
        .await;
    call.hang_up().await;
    // His headset back, for the tests after this one.
    null_sink("bo_spk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_speaker_stream_the_sound_server_kills_mid_call_is_opened_again_and_the_call_goes_on() {
    let _sound_card = pulse_available().await;
    let demo = demo().await;
    // Bo's reopening is told at info.
    let filter = Path::new("warn,earshot_client::call_audio=info");
    let call = InCall::start(&demo, &[("EARSHOT_LOG", filter)], "micsink", "agent-greeting").await;
    // The server kills the stream playing into Bo's speaker (as it does
    // when a device goes with nowhere to move its streams): the app hears
    // of it (cpal's poll, within a second) and opens its devices again.
    let sinks = Command::new("pactl").args(["list", "short", "sinks"]).output().unwrap();
    let bo_spk = String::from_utf8_lossy(&sinks.stdout)
        .lines()
        .find(|line| line.split('\t').nth(1) == Some("bo_spk"))
        .and_then(|line| line.split('\t').next().map(str::to_owned))
        .expect("bo_spk is there");
    let inputs = Command::new("pactl").args(["list", "short", "sink-inputs"]).output().unwrap();
    let streams: Vec<String> = String::from_utf8_lossy(&inputs.stdout)
        .lines()
        .filter(|line| line.split('\t').nth(1) == Some(bo_spk.as_str()))
        .filter_map(|line| line.split('\t').next().map(str::to_owned))
        .collect();
    assert_eq!(streams.len(), 1, "Bo's call plays into bo_spk: {}", String::from_utf8_lossy(&inputs.stdout));
    // (`pactl` no longer kills a stream; `pacmd` does, through the
    // server's command-line module.)
    let modules = Command::new("pactl").args(["list", "short", "modules"]).output().unwrap();
    if !String::from_utf8_lossy(&modules.stdout).contains("module-cli-protocol-unix") {
        let loaded =
            Command::new("pactl").args(["load-module", "module-cli-protocol-unix"]).status().unwrap();
        assert!(loaded.success(), "the server's command-line module");
    }
    assert!(Command::new("pacmd").args(["kill-sink-input", &streams[0]]).status().unwrap().success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !bos_log().contains("audio devices were opened again") {
        assert!(
            std::time::Instant::now() < deadline,
            "Bo's app did not open its devices again: {}",
            bos_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Bo hears Ada again on his own speaker.
    call.goes_on_and_is_heard_on(
        "bo_spk.monitor",
        "agent-greeting",
        "Bo hears Ada after his speaker was opened again",
    )
    .await;
    call.hang_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bos_app_registers_over_tls_when_the_service_offers_it_and_talks_through_srtp() {
    let _sound_card = pulse_available().await;
    let (demo, ca, state) = demo_with_tls().await;
    // Bo's app, trusting the company's CA (the system's anchors do not know it).
    let mut bo = BoApp::start_with(&demo, 300, &[("EARSHOT_CA_FILE", ca.as_path())]).await;
    // His registration came over TLS: the service keeps the connection's source.
    let query = earshot_service::db::Query::new(
        "SELECT r.contact, r.flow FROM registrations r JOIN users u ON u.id = r.user_id WHERE u.email = 'bo@acme.demo'",
    );
    let rows = state.db.fetch_all(state.db.pool(), &query).await.unwrap();
    use sqlx::Row as _;
    let contact: String = rows[0].try_get("contact").unwrap();
    let flow: Option<String> = rows[0].try_get("flow").unwrap();
    assert!(contact.to_ascii_lowercase().contains("transport=tls"), "{contact}");
    assert!(flow.is_some(), "registered over TLS");

    // Ada, the shared user agent over TLS too, calls him; he answers.
    let (api, _) = Api::log_in(&demo.server, "ada@acme.demo", "demo-ada").await.unwrap();
    let credentials: DeviceCredentials =
        api.post_json("/devices", &DeviceIn { name: "Ada's test phone".into() }).await.unwrap();
    let tls_port = credentials.sip_tls_port.expect("the service offers TLS");
    let config = PhoneConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        media_ip: "127.0.0.1".parse().unwrap(),
        account: Some(Account {
            registrar: std::net::SocketAddr::from(([127, 0, 0, 1], tls_port)),
            user: credentials.extension,
            auth_user: Some(credentials.sip_user),
            password: credentials.password,
            expires_s: 300,
        }),
        user_agent: "ada".into(),
        tls: Some(earshot_sip::endpoint::TlsTrust::from_file(&ca, Some("127.0.0.1".into())).unwrap()),
    };
    let (ada, mut ada_events) = Phone::start(config).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ada_events.recv()).await {
            Ok(Some(PhoneEvent::Registration(RegistrationState::Registered { .. }))) => break,
            Ok(Some(_)) => {}
            other => panic!("Ada did not register: {other:?}"),
        }
    }
    let _bo_mic = shell(&format!(
        "while true; do paplay --device=bo_mic {}; sleep 0.5; done",
        speech("caller-hello").display()
    ));
    let ada_hears = ScriptedAudio::saying(&samples("agent-greeting"));
    let call = ada.dial("102", Box::new(ada_hears.clone()));
    assert_eq!(bo.until("incoming").await, "incoming 101");
    bo.until("connected").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stats = ada.stats(call).expect("the call's media");
    ada.hang_up(call);
    assert_eq!(bo.until("ended").await, "ended They hung up.");
    assert_eq!((stats.srtp.forged, stats.srtp.replayed), (0, 0), "{stats:?}");
    let heard = ada_hears.heard();
    let level = (heard.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / heard.len().max(1) as f64).sqrt();
    assert!(level > 200.0, "Ada hears Bo's microphone through SRTP (RMS {level})");
    ada.stop();
}

/// A speaker whose app is late with its sound (a busy machine) gets silence
/// played in its place and goes on (cpal's PulseAudio streams without
/// pre-buffering, vendor/README.md). The call's speaker keeps its time: what
/// it plays after the silence plays when it was due, the time the call's
/// echo canceller was shown it at (a stream that waited to be refilled
/// would play it later, and the canceller would hunt for its echo again).
/// The player's, the ringer's and the test sound's go on from where they
/// were instead: what follows plays after the silence, none of it lost
/// (what the late callback itself wrote may be, either way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_speaker_plays_silence_in_its_place_then_keeps_its_time_or_resumes() {
    use earshot_client::audio::WhenLate;
    let _sound_card = pulse_available().await;
    null_sink("late_spk");

    let (clicks, silence) = clicks_through_a_stall(WhenLate::KeepTime).await;
    assert!(silence >= 80, "the server played silence for the late callback ({silence} samples)");
    // Every click where the stream's own time put it: 100 ms apart, or a
    // multiple of it where a click fell in the silence (within 3 ms: a
    // click the silence ends in the middle of starts up to 2 ms late; a
    // stream that waited to be refilled moves them by 50 ms or so).
    for pair in clicks.windows(2) {
        let apart = pair[1] - pair[0];
        let off = (apart + 400) % 800;
        assert!(
            apart >= 776 && (376..=424).contains(&off),
            "clicks {} and {} are {apart} samples apart at 8 kHz, not a multiple of 100 ms: {clicks:?}",
            pair[0],
            pair[1]
        );
    }

    let (clicks, silence) = clicks_through_a_stall(WhenLate::Resume).await;
    assert!(silence >= 80, "the server played silence for the late callback ({silence} samples)");
    // The clicks 100 ms apart but where the silence came between two of
    // them, after which they go on from where they were: off the stream's
    // first time by the silence (within 3 ms, as above).
    let gaps: Vec<usize> = clicks.windows(2).map(|pair| pair[1] - pair[0]).collect();
    let moved: Vec<usize> = gaps.iter().copied().filter(|apart| !(776..=824).contains(apart)).collect();
    assert_eq!(moved.len(), 1, "one gap between the clicks: {clicks:?}");
    assert!(!(376..=424).contains(&((moved[0] + 400) % 800)), "after the silence, later by it: {clicks:?}");
}

/// A quiet tone on the null sink `late_spk` through a stream that does
/// `when_late` what a late callback calls for, and a click every 100 ms of
/// the stream's own time; once, after a second, the callback takes 60 ms
/// (the stream's buffer holds 20). Returns where the clicks were heard (at
/// 8 kHz) and the longest silence between the first and the last.
async fn clicks_through_a_stall(when_late: earshot_client::audio::WhenLate) -> (Vec<usize>, usize) {
    use cpal::traits::{DeviceTrait as _, StreamTrait as _};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.raw");
    let recorder = record("late_spk.monitor", &path);
    // (parec takes a while to start on a busy machine.)
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&path).map_or(0, |m| m.len()) == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let device = earshot_client::audio::output_device(Some("pulseaudio:late_spk")).unwrap();
    let config = device.default_output_config().unwrap();
    let (rate, channels) = (u64::from(config.sample_rate()), usize::from(config.channels()));
    let (mut frame, mut stalled) = (0_u64, false);
    let (stream, _, _) = earshot_client::audio::output_stream_paced(
        &device,
        10,
        when_late,
        std::sync::Arc::default(),
        move |out: &mut [f32]| {
            if !stalled && frame >= rate {
                stalled = true;
                std::thread::sleep(Duration::from_millis(60));
            }
            for slot in out.chunks_mut(channels) {
                let click = frame % (rate / 10) < rate / 500;
                #[allow(clippy::cast_precision_loss)]
                let tone = 0.1 * (std::f32::consts::TAU * 400.0 * frame as f32 / rate as f32).sin();
                slot.fill(if click { 0.8 } else { tone });
                frame += 1;
            }
        },
        |error| panic!("the speaker failed: {error}"),
    )
    .unwrap();
    stream.play().unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(recorder);
    let heard: Vec<f32> = read_speaker(&path).iter().map(|&s| f32::from(s) / 32_768.0).collect();
    let clicks: Vec<usize> = (1..heard.len()).filter(|&i| heard[i] > 0.4 && heard[i - 1] <= 0.4).collect();
    assert!(clicks.len() >= 15, "clicks heard: {clicks:?}");
    let silence = heard[clicks[0]..clicks[clicks.len() - 1]]
        .split(|s| s.abs() > 0.002)
        .map(<[f32]>::len)
        .max()
        .unwrap_or(0);
    (clicks, silence)
}
