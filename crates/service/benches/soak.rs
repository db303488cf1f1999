//! Soak (issue 18, docs/PERFORMANCE.md): `earshotd` held for a long time
//! under a call centre's busy hour, and everything it was given checked
//! afterwards. Not a timed test: it reports figures, and fails only on
//! something lost or wrong.
//!
//! The load, all on loopback against a release `earshotd` (SQLite, the
//! recordings on disk):
//! - calls: `calls` agents (extensions 1000…) place recorded calls to an
//!   outside number through a sipp UAC (`tests/sipp/uac_pcap.xml`, digest
//!   sign-in, the agents taken in turn from an injection file), each
//!   playing the same track: speech over a faint hum from start to end,
//!   `#11#` keyed a quarter of the way in and `#12#` at three quarters
//!   (RFC 4733 events), so every recording is paused and resumed. The trunk
//!   is `sipp -sn uas -rtp_echo`. `calls` are up at once for the whole run
//!   (`-l`), each lasting `call`; the company cuts paused audio out
//!   (`paused_audio = skip`);
//! - apps: `apps` event streams (`GET /api/v1/events`), each a session of
//!   its own, signed in as the agents in turn, connected before the first
//!   call and counted: every stream must stay up, and every agent's stream
//!   must see each of the agent's calls pause and resume;
//! - players: `players` clients (half agents, half the admin) paging the
//!   history 50 calls at a time, three pages deep, playing one recording
//!   in three as they go (the whole file, or its first 32 KiB as a
//!   player's first range), a second apart.
//!
//! Sampled every `sample` (10 s): the service's resident memory, its open
//! files and its CPU; the slope of memory and open files over the run's
//! second half is reported (per hour). At the end, every answered call's
//! recording is downloaded through the API and compared with the track,
//! sample by sample: its left channel (the agent) must be the track with
//! the span from the end of `#11#` to the start of `#12#` cut out, the cut
//! where the call's `paused_spans` says; a recording missing or shorter
//! than the call is lost or truncated. Also: 5xx answers (the service's
//! `/metrics`, and what the clients got), failed calls (sipp's count) and
//! the history's p50 and p99 latency under all that.
//!
//! `cargo bench -p earshot-service --bench soak` (or `./x soak`) runs 200
//! calls, 500 apps and 50 players for 30 minutes (`SOAK_MINUTES`,
//! `SOAK_CALLS`, `SOAK_APPS`, `SOAK_PLAYERS` change that); `-- --test`
//! (as `./x test` runs it) a short version, 20 calls for about a minute,
//! as a check of correctness; `SOAK_KEEP=1` leaves the data dir and sipp's
//! files behind to look at. The long run writes about 30 MB of
//! recordings a minute per ten calls: it checks the disk has room first.

#![allow(clippy::print_stdout)]

#[allow(dead_code)]
#[path = "../tests/sip/audio.rs"]
mod audio;

use audio::Track;
use futures::StreamExt as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Samples a millisecond (8 kHz).
const PER_MS: usize = 8;
/// A 20 ms packet's samples.
const FRAME: usize = 160;
/// Ports of its own, below Linux's ephemeral range and above the tests' blocks
/// (which end at 30 000): the API, SIP, the trunk's sipp, the agents' sipp
/// (signalling and media), and the RTP ports `earshotd` takes calls' legs from.
const HTTP_PORT: u16 = 31_000;
const SIP_PORT: u16 = 31_001;
const TRUNK_PORT: u16 = 31_002;
const TRUNK_MEDIA_PORT: u16 = 31_010;
const AGENTS_PORT: u16 = 31_020;
const AGENTS_MEDIA_PORT: u16 = 31_030;
const RTP_PORTS: &str = "31100-32699";
const ADMIN: (&str, &str) = ("admin@soak.test", "soak-admin-password");

/// How big and how long.
#[derive(Clone, Debug)]
struct Plan {
    /// Calls up at once.
    calls: usize,
    /// Each call's length.
    call: Duration,
    /// How long the calls keep coming.
    run: Duration,
    /// Event streams.
    apps: usize,
    /// History clients.
    players: usize,
    /// Between samples of the service's memory and open files.
    sample: Duration,
    /// Calls set up a second at most (the SIP shield lets a source send 20
    /// new requests a second, and each call takes two INVITEs: the first is
    /// challenged).
    rate: usize,
}

impl Plan {
    fn quick() -> Self {
        Self {
            calls: 20,
            call: Duration::from_secs(12),
            run: Duration::from_secs(45),
            apps: 100,
            players: 10,
            sample: Duration::from_secs(1),
            rate: 5,
        }
    }

    fn long() -> Self {
        let number = |name: &str, default: usize| {
            std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
        };
        Self {
            calls: number("SOAK_CALLS", 200),
            call: Duration::from_secs(60),
            run: Duration::from_secs(60 * number("SOAK_MINUTES", 30) as u64),
            apps: number("SOAK_APPS", 500),
            players: number("SOAK_PLAYERS", 50),
            sample: Duration::from_secs(10),
            rate: 5,
        }
    }

    /// Calls in all: `calls` at a time, one after another, for `run`.
    fn total(&self) -> usize {
        let each = self.call.as_secs_f64() + 0.5;
        ((self.calls as f64) * self.run.as_secs_f64() / each).ceil() as usize
    }

    /// Bytes of recordings the run leaves: two channels of 16-bit samples,
    /// for the half of each call that is not paused.
    fn recorded_bytes(&self) -> u64 {
        (self.total() as f64 * self.call.as_secs_f64() / 2.0 * 32_000.0) as u64
    }
}

/// What every call's agent plays, and where its pause begins and ends.
struct Script {
    track: Track,
    /// The track as the service hears it (µ-law decoded; silence where keys were sent).
    sent: Vec<i16>,
    /// The end of `#11#`'s last event and the start of `#12#`'s first, in the track's samples.
    pause: usize,
    resume: usize,
}

impl Script {
    fn new(call: Duration) -> Self {
        let end = call.as_millis() as usize;
        let track = Track::new()
            .talk(0, end)
            .keys_held(end / 4, "#11#", 300, 180)
            .keys_held(end * 3 / 4, "#12#", 300, 180)
            .until(end);
        let spans = track.key_spans();
        assert_eq!(spans.len(), 8, "eight keys in the track");
        let sent = track.heard();
        Self { pause: spans[3].1, resume: spans[4].0, track, sent }
    }
}

fn main() {
    let test = std::env::args().any(|arg| arg == "--test");
    let plan = if test { Plan::quick() } else { Plan::long() };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let failures = runtime.block_on(soak(&plan, test));
    let checks = 8;
    if test {
        println!(
            "soak: {} passed, {} failed",
            checks - failures.len().min(checks),
            failures.len().min(checks)
        );
    }
    if !failures.is_empty() {
        eprintln!("soak failed:");
        for failure in &failures {
            eprintln!("  - {failure}");
        }
        std::process::exit(1);
    }
}

/// `earshotd` on a data dir of its own; killed when dropped.
struct Earshotd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Earshotd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Earshotd {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("a data dir");
        let binary = env!("CARGO_BIN_EXE_earshotd");
        let status = Command::new(binary)
            .args(["init", "--data-dir"])
            .arg(dir.path())
            .args(["--company", "Soak", "--admin-email", ADMIN.0, "--admin-password", ADMIN.1])
            .stderr(Stdio::null())
            .status()
            .expect("earshotd init");
        assert!(status.success(), "earshotd init failed");
        let log = std::fs::File::create(dir.path().join("earshotd.log")).expect("a log file");
        let child = Command::new(binary)
            .args(["serve", "--data-dir"])
            .arg(dir.path())
            .args(["--http", &format!("127.0.0.1:{HTTP_PORT}"), "--sip", &format!("127.0.0.1:{SIP_PORT}")])
            .args(["--rtp-ports", RTP_PORTS, "--trunk", &format!("sip:127.0.0.1:{TRUNK_PORT}")])
            .env("EARSHOT_LOG", "warn")
            .stderr(log)
            .spawn()
            .expect("earshotd serve");
        Self { child, dir }
    }

    /// Leaves its data dir behind (for `SOAK_KEEP`), and returns it.
    fn keep(&mut self) -> &Path {
        self.dir.disable_cleanup(true);
        self.dir.path()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("earshotd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// A sipp process, killed when dropped.
struct Sipp(Child);

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The API, as a signed-in client.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn anonymous(client: &reqwest::Client) -> Self {
        Self { client: client.clone(), base: format!("http://127.0.0.1:{HTTP_PORT}"), token: String::new() }
    }

    async fn log_in(&self, email: &str, password: &str) -> Result<Self, String> {
        let answer = self
            .client
            .post(format!("{}/api/v1/session", self.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .map_err(|e| format!("signing in as {email}: {e}"))?;
        let status = answer.status();
        let body: Value = answer.json().await.map_err(|e| format!("signing in as {email}: {e}"))?;
        let token =
            body["token"].as_str().ok_or_else(|| format!("signing in as {email}: {status} {body}"))?;
        Ok(Self { token: token.to_owned(), ..self.clone() })
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}/api/v1{path}", self.base)).bearer_auth(&self.token)
    }

    /// A JSON request that must succeed.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.request(method.clone(), path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

async fn soak(plan: &Plan, test: bool) -> Vec<String> {
    let script = Arc::new(Script::new(plan.call));
    let work = tempfile::tempdir().expect("a work dir");
    if !test {
        check_room(plan);
    }
    let mut service = Earshotd::start();
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("an HTTP client");
    let anonymous = Api::anonymous(&client);
    wait_healthy(&client, &anonymous.base, &service).await;
    let admin = anonymous.log_in(ADMIN.0, ADMIN.1).await.expect("the admin signs in");
    let agents = set_up(&admin, plan).await;
    println!(
        "soak: {} calls at once for {} s ({} calls of {} s), {} apps on the event stream, {} history players",
        plan.calls,
        plan.run.as_secs(),
        plan.total(),
        plan.call.as_secs(),
        plan.apps,
        plan.players,
    );

    // Everyone signs in (a few at a time: each is an argon2id check).
    let started = Instant::now();
    let logins: Vec<(usize, String)> = (0..plan.apps + plan.players)
        .map(|i| {
            if i >= plan.apps && (i - plan.apps) % 2 == 1 {
                (usize::MAX, ADMIN.0.to_owned())
            } else {
                let agent = i % plan.calls;
                (agent, agents[agent].email.clone())
            }
        })
        .collect();
    let sessions: Vec<(usize, Api)> = futures::stream::iter(logins)
        .map(|(agent, email)| {
            let anonymous = anonymous.clone();
            async move {
                let password = if agent == usize::MAX { ADMIN.1.to_owned() } else { password_of(&email) };
                (agent, anonymous.log_in(&email, &password).await.expect("signing in"))
            }
        })
        .buffered(4)
        .collect()
        .await;
    println!("soak: {} sessions signed in in {:.1} s", sessions.len(), started.elapsed().as_secs_f64());

    let (stop, stopped) = watch::channel(false);
    let baseline = Sample::take(service.pid(), Duration::ZERO);
    let sampling = Instant::now();
    let sampler = tokio::spawn(sample(service.pid(), plan.sample, stopped.clone()));
    let mut apps = Vec::new();
    for (agent, api) in sessions.iter().take(plan.apps).cloned() {
        apps.push(tokio::spawn(app(api, agent, stopped.clone())));
    }
    let opened = Instant::now();
    while open_streams(&client).await < plan.apps as i64 {
        assert!(opened.elapsed() < Duration::from_secs(60), "the event streams did not all open");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut players = Vec::new();
    for (_, api) in sessions.iter().skip(plan.apps).cloned() {
        players.push(tokio::spawn(player(api, stopped.clone())));
    }

    // The calls.
    let trunk = trunk_sipp(work.path());
    let pcap = work.path().join("agent.pcap");
    script.track.write_pcap(&pcap);
    let calls_started = Instant::now();
    let calls_from = calls_started - sampling;
    let agents_sipp = agents_sipp(work.path(), plan, &pcap, &agents);
    let sipp = wait_sipp(agents_sipp, work.path(), plan, calls_started).await;
    let calls_took = calls_started.elapsed();
    drop(trunk);

    // Every call in the history, its recording finished.
    let settle = Instant::now();
    let calls = loop {
        let calls = all_calls(&admin).await;
        let done = calls.len() >= sipp.created
            && calls.iter().all(|c| c["status"] != "answered" || !c["recording"].is_null());
        if done || settle.elapsed() > Duration::from_secs(60) {
            break calls;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    stop.send(true).expect("the clients listen");
    let mut app_tallies = Vec::new();
    for app in apps {
        app_tallies.push(app.await.expect("an app"));
    }
    let mut player_tallies = Vec::new();
    for player in players {
        player_tallies.push(player.await.expect("a player"));
    }
    let samples = sampler.await.expect("the sampler");
    // Streams closed, calls ended, and the clients' idle connections closed
    // with their pools: what is still open is what leaked.
    drop((client, anonymous, admin, sessions));
    let closing = Instant::now();
    let after = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = Sample::take(service.pid(), Duration::ZERO);
        if after.open_files <= baseline.open_files + 16 || closing.elapsed() > Duration::from_secs(15) {
            break after;
        }
    };
    let client = reqwest::Client::new();
    let metrics = metrics(&client).await;
    let admin = Api::anonymous(&client).log_in(ADMIN.0, ADMIN.1).await.expect("the admin signs in");

    // Every recording, against the track.
    let checked_at = Instant::now();
    let verdicts: Vec<(i64, Verdict)> =
        futures::stream::iter(calls.iter().filter(|c| c["status"] == "answered"))
            .map(|call| {
                let admin = admin.clone();
                let script = Arc::clone(&script);
                async move {
                    (call["id"].as_i64().unwrap_or_default(), check_recording(&admin, call, &script).await)
                }
            })
            .buffer_unordered(2)
            .collect()
            .await;
    let check_took = checked_at.elapsed();

    let report = Report {
        plan,
        sipp: &sipp,
        calls: &calls,
        verdicts: &verdicts,
        apps: &app_tallies,
        agents: &agents,
        players: &player_tallies,
        samples: &samples,
        baseline: &baseline,
        after: &after,
        metrics: &metrics,
        calls_took,
        calls_from,
    };
    report.print(check_took);
    let failures = report.failures();
    if !failures.is_empty() {
        eprintln!("earshotd's log, last lines:\n{}", service.log_tail());
    }
    if std::env::var_os("SOAK_KEEP").is_some() {
        println!("kept: {} (sipp) and {} (earshotd)", work.keep().display(), service.keep().display());
    }
    failures
}

/// The long run's recordings must fit on the disk, with room to spare.
fn check_room(plan: &Plan) {
    let needed = plan.recorded_bytes();
    let output = Command::new("df").args(["--output=avail", "-B1"]).arg(std::env::temp_dir()).output();
    let free = output
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|text| text.lines().nth(1).and_then(|line| line.trim().parse::<u64>().ok()));
    if let Some(free) = free {
        assert!(
            free > needed + needed / 2,
            "the soak writes about {} GB of recordings to {}, which has {} GB free; shorten it (SOAK_MINUTES) \
             or free some room",
            needed / 1_000_000_000,
            std::env::temp_dir().display(),
            free / 1_000_000_000
        );
    }
}

async fn wait_healthy(client: &reqwest::Client, base: &str, service: &Earshotd) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(answer) = client.get(format!("{base}/healthz")).send().await
            && answer.status().is_success()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "earshotd did not answer on {base} (is another process on port {HTTP_PORT}?):\n{}",
            service.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One of the agents placing the calls.
#[derive(Clone, Debug)]
struct Agent {
    id: i64,
    extension: String,
    email: String,
}

fn password_of(email: &str) -> String {
    format!("password-{email}")
}

/// The company: outbound calls recorded, paused audio cut out, agents who
/// may pause their recordings.
async fn set_up(admin: &Api, plan: &Plan) -> Vec<Agent> {
    let mut settings = admin.call(Method::GET, "/settings", None).await;
    settings["record_outbound"] = json!(true);
    settings["agent_recording_control"] = json!(true);
    settings["paused_audio"] = json!("skip");
    admin.call(Method::PUT, "/settings", Some(settings)).await;
    admin
        .call(
            Method::POST,
            "/numbers",
            Some(json!({"e164": "+15550100", "name": "Main", "flow": [{"type": "voicemail"}]})),
        )
        .await;
    futures::stream::iter(0..plan.calls)
        .map(|i| async move {
            let extension = format!("{}", 1_000 + i);
            let email = format!("agent{extension}@soak.test");
            let body = json!({
                "name": format!("Agent {extension}"),
                "email": email,
                "role": "agent",
                "extension": extension,
                "settings": {"recording_control": true},
                "password": password_of(&email),
                "sip_password": format!("sip-secret-{extension}"),
            });
            let id = admin.call(Method::POST, "/users", Some(body)).await["id"].as_i64().expect("a user id");
            Agent { id, extension, email }
        })
        .buffered(4)
        .collect()
        .await
}

fn trunk_sipp(work: &Path) -> Sipp {
    let child = Command::new("sipp")
        .args(["-sn", "uas", "-rtp_echo", "-i", "127.0.0.1", "-nostdin"])
        .args(["-p", &TRUNK_PORT.to_string(), "-mp", &TRUNK_MEDIA_PORT.to_string()])
        .current_dir(work)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp (./x test installs it)");
    std::thread::sleep(Duration::from_millis(300));
    Sipp(child)
}

fn agents_sipp(work: &Path, plan: &Plan, pcap: &Path, agents: &[Agent]) -> Sipp {
    let scenario =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sipp/uac_pcap.xml"))
            .expect("the scenario")
            .replace("@PCAP@", &pcap.to_string_lossy())
            .replace("@TALK_MS@", &(plan.call.as_millis() + 300).to_string());
    std::fs::write(work.join("uac_pcap.xml"), scenario).expect("the scenario written");
    let mut injection = String::from("SEQUENTIAL\n");
    for agent in agents {
        injection.push_str(&format!(
            "{};[authentication username={} password=sip-secret-{}]\n",
            agent.extension, agent.email, agent.extension
        ));
    }
    std::fs::write(work.join("agents.csv"), injection).expect("the agents written");
    let child = Command::new("sipp")
        .arg(format!("127.0.0.1:{SIP_PORT}"))
        .args(["-sf", "uac_pcap.xml", "-inf", "agents.csv", "-s", "+447700900123", "-i", "127.0.0.1"])
        .args(["-p", &AGENTS_PORT.to_string(), "-mp", &AGENTS_MEDIA_PORT.to_string()])
        .args(["-l", &plan.calls.to_string(), "-r", &plan.rate.to_string(), "-m", &plan.total().to_string()])
        .args(["-nostdin", "-trace_stat", "-fd", "5", "-trace_err", "-timeout", "0"])
        .current_dir(work)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp (./x test installs it)");
    Sipp(child)
}

/// What sipp counted.
#[derive(Debug, Default)]
struct SippCounts {
    created: usize,
    succeeded: usize,
    failed: usize,
    /// Its exit status: 0 when every call passed.
    status: Option<i32>,
    /// Its error log's last lines.
    errors: String,
}

async fn wait_sipp(mut sipp: Sipp, work: &Path, plan: &Plan, started: Instant) -> SippCounts {
    let limit = plan.run + plan.call * 4 + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = sipp.0.try_wait().expect("sipp's status") {
            break status.code();
        }
        if started.elapsed() > limit {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    drop(sipp);
    let mut counts = SippCounts { status, ..SippCounts::default() };
    // Its statistics file (`-trace_stat`): a header, then a line per period, the last at its end.
    for entry in std::fs::read_dir(work).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        if name.starts_with("uac_pcap_") && name.ends_with("_.csv") {
            let mut lines = text.lines();
            let header: Vec<&str> = lines.next().unwrap_or_default().split(';').collect();
            let last: Vec<&str> = lines.last().unwrap_or_default().split(';').collect();
            let field = |wanted: &str| {
                header.iter().position(|h| *h == wanted).and_then(|i| last.get(i)?.parse().ok()).unwrap_or(0)
            };
            counts.created = field("TotalCallCreated");
            counts.succeeded = field("SuccessfulCall(C)");
            counts.failed = field("FailedCall(C)");
        } else if name.ends_with("_errors.log") {
            let lines: Vec<&str> = text.lines().collect();
            counts.errors = lines[lines.len().saturating_sub(10)..].join("\n");
        }
    }
    counts
}

/// The service's state at a moment.
#[derive(Clone, Debug)]
struct Sample {
    at: Duration,
    rss_kb: u64,
    open_files: usize,
    /// CPU seconds used so far (user and system).
    cpu: f64,
}

impl Sample {
    fn take(pid: u32, at: Duration) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss_kb = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .unwrap_or(0);
        let open_files = std::fs::read_dir(format!("/proc/{pid}/fd")).map(Iterator::count).unwrap_or(0);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
        let ticks: f64 = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace().skip(11).take(2).filter_map(|f| f.parse::<f64>().ok()).sum()
            })
            .unwrap_or(0.0);
        Self { at, rss_kb, open_files, cpu: ticks / 100.0 }
    }
}

async fn sample(pid: u32, every: Duration, mut stopped: watch::Receiver<bool>) -> Vec<Sample> {
    let started = Instant::now();
    let mut samples = Vec::new();
    loop {
        samples.push(Sample::take(pid, started.elapsed()));
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stopped.changed() => return samples,
        }
    }
}

async fn open_streams(client: &reqwest::Client) -> i64 {
    let text = metrics(client).await;
    text.lines()
        .find_map(|line| line.strip_prefix("earshot_event_streams "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

async fn metrics(client: &reqwest::Client) -> String {
    match client.get(format!("http://127.0.0.1:{HTTP_PORT}/metrics")).send().await {
        Ok(answer) => answer.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// What one connected app saw.
#[derive(Debug, Default)]
struct AppTally {
    agent: usize,
    hello: bool,
    changes: usize,
    paused: usize,
    resumed: usize,
    /// `call` changes: a call of the agent's stored or changed.
    calls: usize,
    resyncs: usize,
    /// The stream ended or broke before the run did.
    broken: Option<String>,
}

/// An app on the event stream until told to stop.
async fn app(api: Api, agent: usize, mut stopped: watch::Receiver<bool>) -> AppTally {
    let mut tally = AppTally { agent, ..AppTally::default() };
    let answer = match api.request(Method::GET, "/events").send().await {
        Ok(answer) if answer.status() == StatusCode::OK => answer,
        Ok(answer) => {
            tally.broken = Some(format!("connecting: {}", answer.status()));
            return tally;
        }
        Err(e) => {
            tally.broken = Some(format!("connecting: {e}"));
            return tally;
        }
    };
    let mut body = answer.bytes_stream();
    let mut buffer = String::new();
    loop {
        let chunk = tokio::select! {
            chunk = body.next() => chunk,
            _ = stopped.changed() => return tally,
        };
        match chunk {
            Some(Ok(bytes)) => buffer.push_str(&String::from_utf8_lossy(&bytes)),
            Some(Err(e)) => {
                tally.broken = Some(format!("reading: {e}"));
                return tally;
            }
            None => {
                tally.broken = Some("the service ended the stream".into());
                return tally;
            }
        }
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let mut kind = "";
            let mut data = "";
            for line in event.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    kind = value.trim();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data = value.trim();
                }
            }
            match kind {
                "hello" => tally.hello = true,
                "resync" => tally.resyncs += 1,
                "change" => {
                    tally.changes += 1;
                    let change: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                    if change["kind"] == "call" {
                        tally.calls += 1;
                    }
                    if change["kind"] == "recording_state" {
                        match change["state"].as_str() {
                            Some("paused") => tally.paused += 1,
                            Some("recording") => tally.resumed += 1,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// What one history client did.
#[derive(Debug, Default)]
struct PlayerTally {
    pages: Vec<Duration>,
    plays: Vec<Duration>,
    bytes: u64,
    statuses: BTreeMap<u16, usize>,
    errors: Vec<String>,
}

/// Pages the history and plays recordings until told to stop.
async fn player(api: Api, mut stopped: watch::Receiver<bool>) -> PlayerTally {
    let mut tally = PlayerTally::default();
    let mut cursor: Option<String> = None;
    let mut depth = 0;
    let mut turn = 0_usize;
    while !*stopped.borrow() {
        turn += 1;
        let path = match &cursor {
            Some(cursor) => format!("/calls?limit=50&cursor={cursor}"),
            None => "/calls?limit=50".to_owned(),
        };
        let started = Instant::now();
        let page = match api.request(Method::GET, &path).send().await {
            Ok(answer) => {
                let status = answer.status();
                *tally.statuses.entry(status.as_u16()).or_default() += 1;
                let page: Value = answer.json().await.unwrap_or(Value::Null);
                tally.pages.push(started.elapsed());
                if status != StatusCode::OK {
                    tally.errors.push(format!("GET {path}: {status}"));
                }
                page
            }
            Err(e) => {
                tally.errors.push(format!("GET {path}: {e}"));
                Value::Null
            }
        };
        depth += 1;
        cursor = page["next_cursor"].as_str().map(str::to_owned).filter(|_| depth < 3);
        if cursor.is_none() {
            depth = 0;
        }
        let playable: Vec<&Value> = page["calls"]
            .as_array()
            .map(|calls| {
                calls
                    .iter()
                    .filter(|c| c["can_play"] == true && c["recording"]["deleted"].is_null())
                    .collect()
            })
            .unwrap_or_default();
        if turn.is_multiple_of(3)
            && let Some(call) = playable.get(turn % playable.len().max(1))
            && let Some(recording) = call["recording"]["id"].as_i64()
        {
            let whole = turn.is_multiple_of(2);
            let mut request = api.request(Method::GET, &format!("/recordings/{recording}/audio"));
            if !whole {
                request = request.header("range", "bytes=0-32767");
            }
            let started = Instant::now();
            match request.send().await {
                Ok(answer) => {
                    let status = answer.status();
                    *tally.statuses.entry(status.as_u16()).or_default() += 1;
                    let expected = if whole { StatusCode::OK } else { StatusCode::PARTIAL_CONTENT };
                    match answer.bytes().await {
                        Ok(bytes) if status == expected && bytes.starts_with(b"RIFF") => {
                            tally.bytes += bytes.len() as u64;
                            tally.plays.push(started.elapsed());
                        }
                        Ok(bytes) => tally
                            .errors
                            .push(format!("playing recording {recording}: {status}, {} bytes", bytes.len())),
                        Err(e) => tally.errors.push(format!("playing recording {recording}: {e}")),
                    }
                }
                Err(e) => tally.errors.push(format!("playing recording {recording}: {e}")),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stopped.changed() => {}
        }
    }
    tally
}

/// Every call in the history, newest first, as the admin sees it.
async fn all_calls(admin: &Api) -> Vec<Value> {
    let mut calls = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/calls?limit=200&cursor={cursor}"),
            None => "/calls?limit=200".to_owned(),
        };
        let page = admin.call(Method::GET, &path, None).await;
        calls.extend(page["calls"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return calls,
        }
    }
}

/// A recording against the track.
#[derive(Debug)]
enum Verdict {
    /// The track, cut where it should be; `matched` of `frames` 20 ms
    /// frames exactly as sent.
    Whole { frames: usize, matched: usize },
    /// No recording, or none that plays.
    Lost(String),
    /// Shorter than the call: `missing_ms` of the track's end not in it.
    Truncated { missing_ms: usize },
    /// The pause is not where the keys put it.
    Misplaced(String),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Whole { frames, matched } => write!(f, "whole, {matched} of {frames} frames as sent"),
            Self::Lost(why) => write!(f, "lost: {why}"),
            Self::Truncated { missing_ms } => {
                write!(f, "truncated: the track's last {missing_ms} ms missing")
            }
            Self::Misplaced(why) => write!(f, "pause misplaced: {why}"),
        }
    }
}

async fn check_recording(admin: &Api, call: &Value, script: &Script) -> Verdict {
    let Some(id) = call["recording"]["id"].as_i64() else {
        return Verdict::Lost("no recording".into());
    };
    let bytes = match admin.request(Method::GET, &format!("/recordings/{id}/audio")).send().await {
        Ok(answer) if answer.status() == StatusCode::OK => match answer.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => return Verdict::Lost(format!("reading recording {id}: {e}")),
        },
        Ok(answer) => return Verdict::Lost(format!("recording {id}: {}", answer.status())),
        Err(e) => return Verdict::Lost(format!("recording {id}: {e}")),
    };
    let left = match left_channel(&bytes) {
        Ok(left) => left,
        Err(e) => return Verdict::Lost(format!("recording {id}: {e}")),
    };
    compare(&left, &call["recording"]["paused_spans"], script)
}

/// The first channel of a WAV: 8 kHz, 16 bit, two channels.
fn left_channel(bytes: &[u8]) -> Result<Vec<i16>, String> {
    let mut reader = hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let spec = reader.spec();
    if spec.sample_rate != 8_000 || spec.bits_per_sample != 16 || spec.channels != 2 {
        return Err(format!("not 8 kHz 16-bit stereo: {spec:?}"));
    }
    let samples: Result<Vec<i16>, _> = reader.samples::<i16>().collect();
    Ok(samples.map_err(|e| e.to_string())?.chunks_exact(2).map(|frame| frame[0]).collect())
}

/// The file's left channel against the track: lined up on its first sound,
/// then the track up to the pause, then from the resume on.
fn compare(left: &[i16], spans: &Value, script: &Script) -> Verdict {
    let Script { sent, pause, resume, .. } = script;
    let (pause, resume) = (*pause, *resume);
    let Some(first) = left.iter().position(|s| *s != 0) else {
        return Verdict::Lost("silent".into());
    };
    // Where the file's first sound is in the track: near its start (the
    // recording starts when the call is bridged).
    let window = &left[first..(first + 320).min(left.len())];
    let Some(track) = (0..sent.len().saturating_sub(window.len()).min(16_000))
        .find(|&i| sent[i] == window[0] && sent[i..i + window.len()] == *window)
    else {
        return Verdict::Lost("its first sound is not the track's start".into());
    };
    if track >= pause {
        return Verdict::Lost("it starts after the pause".into());
    }
    let expected: Vec<i16> = sent[track..pause].iter().chain(&sent[resume..]).copied().collect();
    let got = &left[first..];
    let spans = spans.as_array().cloned().unwrap_or_default();
    let cut_at = (first + pause - track) / PER_MS;
    let cut_ms = (resume - pause) / PER_MS;
    if spans.len() != 1
        || spans[0]["start_ms"].as_u64() != Some(cut_at as u64)
        || spans[0]["cut_ms"].as_u64() != Some(cut_ms as u64)
    {
        return Verdict::Misplaced(format!(
            "paused spans {spans:?}, expected one at {cut_at} ms cutting {cut_ms} ms"
        ));
    }
    // The last frame may be cut by the hang-up.
    if got.len() + 2 * FRAME < expected.len() {
        return Verdict::Truncated { missing_ms: (expected.len() - got.len()) / PER_MS };
    }
    let frames = expected.len().min(got.len()) / FRAME;
    let matched = (0..frames)
        .filter(|&f| expected[f * FRAME..(f + 1) * FRAME] == got[f * FRAME..(f + 1) * FRAME])
        .count();
    Verdict::Whole { frames, matched }
}

/// Everything measured, and what it says.
struct Report<'a> {
    plan: &'a Plan,
    sipp: &'a SippCounts,
    calls: &'a [Value],
    verdicts: &'a [(i64, Verdict)],
    apps: &'a [AppTally],
    agents: &'a [Agent],
    players: &'a [PlayerTally],
    samples: &'a [Sample],
    baseline: &'a Sample,
    after: &'a Sample,
    metrics: &'a str,
    calls_took: Duration,
    /// When the calls started, on the samples' clock.
    calls_from: Duration,
}

impl Report<'_> {
    fn server_errors(&self) -> u64 {
        self.metrics
            .lines()
            .filter(|line| line.starts_with("earshot_http_requests_total{") && line.contains("status=\"5"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// SIP dialogs `earshotd` still holds (all calls have ended).
    fn dialogs_held(&self) -> u64 {
        self.metrics
            .lines()
            .find_map(|line| line.strip_prefix("earshot_sip_dialogs "))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(u64::MAX)
    }

    fn answered(&self) -> usize {
        self.calls.iter().filter(|c| c["status"] == "answered").count()
    }

    /// Calls each agent placed that were answered, by agent index.
    fn calls_of(&self, agent: usize) -> usize {
        let id = self.agents[agent].id;
        self.calls
            .iter()
            .filter(|c| {
                c["status"] == "answered" && c["parties"].as_array().is_some_and(|p| p.contains(&json!(id)))
            })
            .count()
    }

    fn print(&self, check_took: Duration) {
        let (whole, frames, matched) =
            self.verdicts.iter().fold((0, 0, 0), |(whole, frames, matched), (_, verdict)| match verdict {
                Verdict::Whole { frames: f, matched: m } => (whole + 1, frames + f, matched + m),
                _ => (whole, frames, matched),
            });
        println!(
            "calls: {} placed in {:.0} s, {} answered in the history; sipp: {} succeeded, {} failed, exit {:?}",
            self.plan.total(),
            self.calls_took.as_secs_f64(),
            self.answered(),
            self.sipp.succeeded,
            self.sipp.failed,
            self.sipp.status
        );
        println!(
            "recordings: {whole} of {} whole; {matched} of {frames} 20 ms frames exactly as sent ({:.3} %); \
             checked in {:.0} s",
            self.verdicts.len(),
            100.0 * matched as f64 / frames.max(1) as f64,
            check_took.as_secs_f64()
        );
        for (call, verdict) in
            self.verdicts.iter().filter(|(_, v)| !matches!(v, Verdict::Whole { .. })).take(10)
        {
            println!("  call {call}: {verdict}");
        }
        let broken = self.apps.iter().filter(|a| a.broken.is_some()).count();
        let changes: usize = self.apps.iter().map(|a| a.changes).sum();
        let resyncs: usize = self.apps.iter().map(|a| a.resyncs).sum();
        println!(
            "apps: {} streams, {broken} broken, {changes} change events received, {resyncs} resyncs",
            self.apps.len()
        );
        let mut pages: Vec<Duration> = self.players.iter().flat_map(|p| p.pages.iter().copied()).collect();
        let mut plays: Vec<Duration> = self.players.iter().flat_map(|p| p.plays.iter().copied()).collect();
        pages.sort();
        plays.sort();
        let bytes: u64 = self.players.iter().map(|p| p.bytes).sum();
        let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
        for player in self.players {
            for (status, count) in &player.statuses {
                *statuses.entry(*status).or_default() += count;
            }
        }
        println!(
            "history: {} pages, p50 {}, p99 {}, max {}; {} plays ({:.0} MB), p50 {}, p99 {}; answers {statuses:?}",
            pages.len(),
            ms(percentile(&pages, 0.5)),
            ms(percentile(&pages, 0.99)),
            ms(pages.last().copied().unwrap_or_default()),
            plays.len(),
            bytes as f64 / 1e6,
            ms(percentile(&plays, 0.5)),
            ms(percentile(&plays, 0.99)),
        );
        // The second half of the run, while all the calls are up (not the
        // ramp, nor the last calls ending).
        let steady = self.calls_from + self.plan.run / 2..=self.calls_from + self.plan.run;
        let half: Vec<Sample> = self.samples.iter().filter(|s| steady.contains(&s.at)).cloned().collect();
        let half = &half[..];
        let (rss_slope, files_slope) =
            (slope(half, |s| s.rss_kb as f64 / 1024.0), slope(half, |s| s.open_files as f64));
        let peak_rss = self.samples.iter().map(|s| s.rss_kb).max().unwrap_or(0);
        let peak_files = self.samples.iter().map(|s| s.open_files).max().unwrap_or(0);
        let cpu = match (self.samples.first(), self.samples.last()) {
            (Some(first), Some(last)) if last.at > first.at => {
                100.0 * (last.cpu - first.cpu) / (last.at - first.at).as_secs_f64()
            }
            _ => 0.0,
        };
        println!(
            "earshotd: RSS {:.0} MB before, peak {:.0} MB, {:.0} MB after; slope over the run's second half {rss_slope:+.1} MB/h",
            self.baseline.rss_kb as f64 / 1024.0,
            peak_rss as f64 / 1024.0,
            self.after.rss_kb as f64 / 1024.0
        );
        println!(
            "earshotd: open files {} before, peak {peak_files}, {} after; slope {files_slope:+.1}/h; \
             CPU {cpu:.0} % of one core over the run",
            self.baseline.open_files, self.after.open_files
        );
        let quarters: Vec<String> = (1..=4)
            .filter_map(|q| {
                let at = self.calls_from + self.plan.run * q / 4;
                let sample = self.samples.iter().min_by_key(|s| s.at.abs_diff(at))?;
                Some(format!(
                    "{:.0} min: {:.0} MB, {} files",
                    at.as_secs_f64() / 60.0,
                    sample.rss_kb as f64 / 1024.0,
                    sample.open_files
                ))
            })
            .collect();
        println!("earshotd over the run: {}", quarters.join("; "));
        println!(
            "earshotd: {} 5xx answers, {} SIP dialogs held after the calls (/metrics)",
            self.server_errors(),
            self.dialogs_held()
        );
    }

    fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.sipp.status != Some(0) || self.sipp.failed > 0 || self.answered() != self.plan.total() {
            failures.push(format!(
                "failed calls: {} of {} answered; sipp: {} created, {} failed, exit status {:?}; its errors:\n{}",
                self.answered(),
                self.plan.total(),
                self.sipp.created,
                self.sipp.failed,
                self.sipp.status,
                self.sipp.errors
            ));
        }
        let bad: Vec<String> = self
            .verdicts
            .iter()
            .filter(|(_, verdict)| match verdict {
                // Each frame lost on the way shows as one that differs; a
                // recording of something else would match almost nowhere.
                Verdict::Whole { frames, matched } => matched * 100 < frames * 95,
                _ => true,
            })
            .map(|(call, verdict)| format!("call {call}: {verdict}"))
            .collect();
        if !bad.is_empty() {
            failures.push(format!("{} recordings lost, truncated or wrong: {}", bad.len(), bad.join("; ")));
        }
        let server_errors = self.server_errors();
        let client_errors: usize = self.players.iter().map(|p| p.errors.len()).sum();
        if server_errors > 0 || client_errors > 0 {
            let first: Vec<&String> = self.players.iter().flat_map(|p| &p.errors).take(5).collect();
            failures
                .push(format!("{server_errors} 5xx answers; the players' errors: {client_errors} {first:?}"));
        }
        let broken: Vec<String> = self
            .apps
            .iter()
            .filter_map(|a| a.broken.as_ref().map(|why| format!("agent {}: {why}", a.agent)))
            .collect();
        if !broken.is_empty() || self.apps.iter().any(|a| !a.hello) {
            failures.push(format!(
                "{} event streams broke: {:?}",
                broken.len(),
                &broken[..broken.len().min(5)]
            ));
        }
        // Each agent's apps saw each of the agent's calls pause and resume
        // (unless told to resync, when an app fetches everything again).
        let missed: Vec<String> = self
            .apps
            .iter()
            .filter(|a| a.resyncs == 0 && a.broken.is_none())
            .filter(|a| {
                let calls = self.calls_of(a.agent);
                a.paused != calls || a.resumed < calls || a.calls < calls
            })
            .map(|a| {
                format!(
                    "agent {}: {} calls; {} paused, {} resumed, {} call changes",
                    a.agent,
                    self.calls_of(a.agent),
                    a.paused,
                    a.resumed,
                    a.calls
                )
            })
            .collect();
        if !missed.is_empty() {
            failures.push(format!(
                "{} apps missed their calls' changes: {:?}",
                missed.len(),
                &missed[..missed.len().min(5)]
            ));
        }
        if self.dialogs_held() != 0 {
            failures.push(format!("{} SIP dialogs held after every call ended", self.dialogs_held()));
        }
        if self.players.iter().all(|p| p.plays.is_empty()) {
            failures.push("no player played a recording".into());
        }
        // What the load opened, closed again: the streams, the calls' sockets
        // and files (a little slack for the database's pool).
        if self.after.open_files > self.baseline.open_files + 16 {
            failures.push(format!(
                "open files: {} before the load, {} after it ended",
                self.baseline.open_files, self.after.open_files
            ));
        }
        failures
    }
}

/// Least-squares slope of `value` over time, per hour.
fn slope(samples: &[Sample], value: impl Fn(&Sample) -> f64) -> f64 {
    if samples.len() < 2 {
        return 0.0;
    }
    let n = samples.len() as f64;
    let xs: Vec<f64> = samples.iter().map(|s| s.at.as_secs_f64() / 3_600.0).collect();
    let ys: Vec<f64> = samples.iter().map(&value).collect();
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let covariance: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let variance: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if variance == 0.0 { 0.0 } else { covariance / variance }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1_000.0)
}
