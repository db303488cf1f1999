//! A real `earshotd` with SIP on loopback, set up through its admin API, and
//! the sipp peers around it.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// Ports for this test process: a block of its own, so parallel tests (and
/// parallel test processes) never share one. All below 32768, where Linux
/// starts handing out ephemeral ports: a port there can be taken at any time
/// by some client's outgoing connection (a regression: `earshotd` once
/// failed to start, "Address already in use", on a port in that range).
fn next_ports(count: u16) -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // A test binary takes about 4,000 ports; four blocks of 5,000 end at 30,000.
    let base = 10_000 + (std::process::id() % 4) as u16 * 5_000;
    base + NEXT.fetch_add(count, Ordering::Relaxed)
}

/// `-p` and `-mp` for a sipp that plays no media: a block of ports of its own
/// (sipp binds the media port and the two above it).
fn sipp_ports() -> [String; 4] {
    let port = next_ports(10);
    ["-p".into(), port.to_string(), "-mp".into(), (port + 4).to_string()]
}

/// A child process killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One `earshotd` serving SIP, with a company whose admin is logged in.
pub struct Service {
    pub dir: tempfile::TempDir,
    process: Option<Process>,
    pub http: String,
    pub sip_port: u16,
    pub trunk_port: u16,
    pub rtp: String,
    client: reqwest::Client,
    pub token: String,
    /// A config file's `[recordings]` (recordings in S3), if any.
    store: Option<String>,
    /// PostgreSQL instead of SQLite in the data dir.
    database: Option<String>,
    /// SIP over TLS: its port, certificate and key files.
    pub tls: Option<TlsFiles>,
}

/// Where a test service's SIP over TLS listens, and its certificate's files.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub port: u16,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A certificate authority of the tests' own, issuing certificates for
/// loopback (`127.0.0.1` and `localhost`).
pub struct Pki {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    /// The CA's certificate, PEM: what a client trusts.
    pub ca_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let ca_pem = params.self_signed(&key).unwrap().pem();
        Self { params, key, ca_pem }
    }

    /// A server certificate for loopback: (chain PEM, key PEM).
    pub fn server(&self) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "earshotd test");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        (params.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem())
    }

    /// The CA's certificate written to `dir`, for a client to trust.
    pub fn ca_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join(format!("ca-{}.pem", rand::random::<u32>()));
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}

pub const ADMIN: (&str, &str) = ("boss@acme.test", "boss-password");

impl Service {
    /// `earshotd init` then `serve --sip … --trunk sip:127.0.0.1:<trunk_port>`.
    pub async fn start() -> Self {
        Self::start_with(None, None).await
    }

    /// As [`Self::start`], recordings sealed under the master key in `key_file`.
    pub async fn start_sealed(key_file: &Path) -> Self {
        Self::start_with(
            Some(format!("[recordings]\nkey_file = {:?}\n", key_file.display().to_string())),
            None,
        )
        .await
    }

    /// As [`Self::start`], with recordings kept in `s3`.
    pub async fn start_with_s3(s3: &crate::s3::S3Server) -> Self {
        Self::start_with(Some(s3.config_toml()), None).await
    }

    /// As [`Self::start`], on the PostgreSQL database at `url`, with
    /// recordings kept in `s3` if given.
    pub async fn start_on_postgres(url: &str, s3: Option<&crate::s3::S3Server>) -> Self {
        Self::start_with(s3.map(crate::s3::S3Server::config_toml), Some(url.to_owned())).await
    }

    /// Another `earshotd` on the same PostgreSQL database, with a data dir
    /// and ports of its own: a second instance of one installation.
    pub async fn another_instance(&self) -> Self {
        let database = self.database.clone().expect("instances share a PostgreSQL database");
        let mut service = Self::unstarted(tempfile::tempdir().unwrap(), self.store.clone(), Some(database));
        service.launch().await;
        service.token = service.log_in(ADMIN.0, ADMIN.1).await;
        service
    }

    /// A handle on this installation whose SIP address is `sip_port` (an
    /// edge in front of the instances): phones and callers started with it
    /// go there; its API is this instance's.
    pub fn front(&self, sip_port: u16) -> Self {
        let mut front = Self::unstarted(tempfile::tempdir().unwrap(), None, None);
        front.http.clone_from(&self.http);
        front.token.clone_from(&self.token);
        front.sip_port = sip_port;
        front
    }

    /// As [`Self::start`], serving SIP over TLS too with a certificate
    /// `pki` issued.
    pub async fn start_with_tls(pki: &Pki) -> Self {
        Self::start_inner(None, None, Some(pki)).await
    }

    async fn start_with(store: Option<String>, database: Option<String>) -> Self {
        Self::start_inner(store, database, None).await
    }

    async fn start_inner(store: Option<String>, database: Option<String>, pki: Option<&Pki>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let binary = env!("CARGO_BIN_EXE_earshotd");
        let status = Command::new(binary)
            .args(["init", "--data-dir"])
            .arg(dir.path())
            .args(database.iter().flat_map(|url| ["--database-url", url.as_str()]))
            .args(["--company", "Acme", "--admin-email", ADMIN.0, "--admin-password", ADMIN.1])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let mut service = Self::unstarted(dir, store, database);
        if let Some(pki) = pki {
            let (cert, key) = pki.server();
            let files = TlsFiles {
                port: service.sip_port + 2,
                cert: service.dir.path().join("sip.crt"),
                key: service.dir.path().join("sip.key"),
            };
            std::fs::write(&files.cert, cert).unwrap();
            std::fs::write(&files.key, key).unwrap();
            service.tls = Some(files);
        }
        service.launch().await;
        service.token = service.log_in(ADMIN.0, ADMIN.1).await;
        service
    }

    fn unstarted(dir: tempfile::TempDir, store: Option<String>, database: Option<String>) -> Self {
        let ports = next_ports(120);
        let rtp_low = ports + 20;
        Self {
            dir,
            process: None,
            http: format!("127.0.0.1:{ports}"),
            sip_port: ports + 1,
            trunk_port: ports + 2,
            rtp: format!("{rtp_low}-{}", rtp_low + 99),
            client: reqwest::Client::new(),
            token: String::new(),
            store,
            database,
            tls: None,
        }
    }

    /// Starts (or restarts) the binary on the same data dir and ports.
    pub async fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("earshotd.log"))
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_earshotd"));
        command
            .args(["serve", "--data-dir"])
            .arg(self.dir.path())
            .args(["--http", &self.http, "--sip", &format!("127.0.0.1:{}", self.sip_port)])
            .args(["--rtp-ports", &self.rtp, "--trunk", &format!("sip:127.0.0.1:{}", self.trunk_port)])
            .env("EARSHOT_LOG", "info,earshot_service=debug,rsipstack=warn")
            .stderr(log);
        if let Some(database) = &self.database {
            command.args(["--database-url", database]);
        }
        if let Some(tls) = &self.tls {
            command
                .args(["--sip-tls", &format!("127.0.0.1:{}", tls.port)])
                .arg("--sip-tls-cert")
                .arg(&tls.cert)
                .arg("--sip-tls-key")
                .arg(&tls.key);
        }
        if let Some(store) = &self.store {
            let config = self.dir.path().join("earshot.toml");
            std::fs::write(&config, store).unwrap();
            command
                .arg("--config")
                .arg(config)
                .env("AWS_ACCESS_KEY_ID", crate::s3::S3_ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", crate::s3::S3_SECRET_KEY);
        }
        let child = command.spawn().unwrap();
        self.process = Some(Process(child));
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.client.get(format!("http://{}/healthz", self.http)).send().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("earshotd did not start: {}", self.log());
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.0.kill();
            let _ = process.0.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("earshotd.log")).unwrap_or_default()
    }

    pub async fn log_in(&self, email: &str, password: &str) -> String {
        let response = self
            .client
            .post(format!("http://{}/api/v1/session", self.http))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "log-in of {email}: {}", response.status());
        response.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
    }

    pub async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method.clone(), format!("http://{}/api/v1{path}", self.http))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Changes company settings (merged into the current ones).
    pub async fn settings(&self, patch: Value) {
        let mut settings = self.api(reqwest::Method::GET, "/settings", None).await;
        for (key, value) in patch.as_object().unwrap() {
            settings[key] = value.clone();
        }
        self.api(reqwest::Method::PUT, "/settings", Some(settings)).await;
    }

    /// An agent with `extension`, e-mail `<extension>@acme.test` and SIP password `sip-<extension>`.
    pub async fn agent(&self, name: &str, extension: &str, settings: Value) -> i64 {
        let body = json!({
            "name": name,
            "email": format!("{extension}@acme.test"),
            "role": "agent",
            "extension": extension,
            "settings": settings,
            "password": format!("password-{extension}"),
            "sip_password": format!("sip-secret-{extension}"),
        });
        self.api(reqwest::Method::POST, "/users", Some(body)).await["id"].as_i64().unwrap()
    }

    pub async fn group(&self, name: &str, members: &[i64]) -> i64 {
        let id = self.api(reqwest::Method::POST, "/groups", Some(json!({"name": name}))).await["id"]
            .as_i64()
            .unwrap();
        for member in members {
            let mut user = self.api(reqwest::Method::GET, &format!("/users/{member}"), None).await;
            let groups = user["groups"].as_array_mut().unwrap();
            groups.push(json!(id));
            let body = json!({
                "name": user["name"], "email": user["email"], "role": user["role"],
                "extension": user["extension"], "groups": user["groups"], "settings": user["settings"],
            });
            self.api(reqwest::Method::PUT, &format!("/users/{member}"), Some(body)).await;
        }
        id
    }

    /// Ada (101), and `+15550100` ringing her for a second, then taking a voicemail.
    pub async fn voicemail_line(&self) {
        let ada = self.agent("Ada", "101", json!({})).await;
        let flow = json!([{"type": "ring_user", "user": ada, "timeout_s": 1}, {"type": "voicemail"}]);
        self.number("+15550100", flow).await;
    }

    pub async fn number(&self, e164: &str, flow: Value) -> i64 {
        let body = json!({"e164": e164, "name": "Line", "flow": flow});
        self.api(reqwest::Method::POST, "/numbers", Some(body)).await["id"].as_i64().unwrap()
    }

    /// Everything pushed to `email`'s app on the event stream from now on, as raw text.
    pub async fn listen(&self, email: &str, password: &str) -> std::sync::Arc<std::sync::Mutex<String>> {
        use futures::StreamExt as _;
        let token = self.log_in(email, password).await;
        let response = self
            .client
            .get(format!("http://{}/api/v1/events", self.http))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        let heard = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&heard);
        tokio::spawn(async move {
            let mut stream = response.bytes_stream();
            while let Some(Ok(chunk)) = stream.next().await {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&chunk));
            }
        });
        heard
    }

    /// The company's calls, newest first.
    pub async fn calls(&self) -> Vec<Value> {
        self.api(reqwest::Method::GET, "/calls?app=dashboard&limit=50", None).await["calls"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Waits until the history holds `count` calls.
    pub async fn wait_for_calls(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let calls = self.calls().await;
            if calls.len() >= count || Instant::now() > deadline {
                assert!(calls.len() >= count, "{} calls, wanted {count}; log:\n{}", calls.len(), self.log());
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET /metrics`.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(format!("http://{}/metrics", self.http)).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// A recording's WAV, through the download endpoint (as the admin).
    pub async fn download(&self, recording: i64) -> Vec<u8> {
        let response = self
            .client
            .get(format!("http://{}/api/v1/recordings/{recording}/download?app=dashboard", self.http))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "download: {}", response.status());
        response.bytes().await.unwrap().to_vec()
    }

    /// Registers a device of `extension` that is a sipp at `device_port`.
    pub fn register(&self, extension: &str, device_port: u16) -> bool {
        self.register_with(extension, &format!("sip-secret-{extension}"), device_port)
    }

    /// Registers with a given SIP password.
    pub fn register_with(&self, extension: &str, password: &str, device_port: u16) -> bool {
        self.register_over(extension, password, device_port, "u1")
    }

    /// Registers over a sipp transport (`u1` UDP, `t1` TCP).
    pub fn register_over(&self, extension: &str, password: &str, device_port: u16, transport: &str) -> bool {
        let work = tempfile::tempdir().unwrap();
        let inf = work.path().join("device.csv");
        std::fs::write(&inf, format!("SEQUENTIAL\n{extension};{device_port}\n")).unwrap();
        let status = Command::new("sipp")
            .arg(format!("127.0.0.1:{}", self.sip_port))
            .args(["-sf", &scenario("register.xml").to_string_lossy()])
            .args(["-inf", &inf.to_string_lossy()])
            .args(["-au", &format!("{extension}@acme.test"), "-ap", password])
            .args(["-m", "1", "-i", "127.0.0.1", "-timeout", "10s", "-t", transport])
            .args(sipp_ports())
            .args(["-timeout_error", "-nostdin"])
            .current_dir(work.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        status.success()
    }
}

/// A committed sipp scenario.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sipp").join(name)
}

/// A sipp peer, with its own working dir for traces.
pub struct Sipp {
    process: Option<Process>,
    pub work: tempfile::TempDir,
}

/// What a sipp peer plays and when it hangs up.
pub struct Peer<'a> {
    pub scenario: &'a str,
    pub pcap: Option<&'a Path>,
    pub ring_ms: u64,
    pub talk_ms: u64,
    pub from: &'a str,
    /// The final response a refused call expects.
    pub final_status: u16,
}

impl Default for Peer<'_> {
    fn default() -> Self {
        Self {
            scenario: "uas.xml",
            pcap: None,
            ring_ms: 200,
            talk_ms: 1_000,
            from: "sipp",
            final_status: 480,
        }
    }
}

impl Sipp {
    /// Starts sipp with `peer`'s scenario (placeholders filled) and `args`.
    pub fn start(peer: &Peer<'_>, args: &[String]) -> Self {
        let work = tempfile::tempdir().unwrap();
        let silent = work.path().join("silence.pcap");
        if peer.pcap.is_none() {
            super::audio::Track::new().until(200).write_pcap(&silent);
        }
        let pcap = peer.pcap.unwrap_or(&silent);
        let text = std::fs::read_to_string(scenario(peer.scenario))
            .unwrap()
            .replace("@PCAP@", &pcap.to_string_lossy())
            .replace("@RING_MS@", &peer.ring_ms.to_string())
            .replace("@TALK_MS@", &peer.talk_ms.to_string())
            .replace("@FROM@", peer.from)
            .replace("@FINAL@", &peer.final_status.to_string());
        let file = work.path().join(peer.scenario);
        std::fs::write(&file, text).unwrap();
        let child = Command::new("sipp")
            .args(["-sf", &file.to_string_lossy(), "-i", "127.0.0.1", "-nostdin"])
            .args(["-trace_msg", "-trace_err", "-timeout", "60s", "-timeout_error"])
            .args(if args.iter().any(|a| a == "-m") { &[][..] } else { &["-m", "1"][..] })
            .args(args)
            .current_dir(work.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self { process: Some(Process(child)), work }
    }

    /// A device answering on a port of its own; returns it and its port.
    pub fn device(peer: &Peer<'_>) -> (Self, u16) {
        let port = next_ports(10);
        let sipp = Self::start(peer, &["-p".into(), port.to_string(), "-mp".into(), (port + 4).to_string()]);
        std::thread::sleep(Duration::from_millis(300));
        (sipp, port)
    }

    /// The trunk's far end: answers what `earshotd` sends to the trunk.
    pub fn trunk(service: &Service, peer: &Peer<'_>) -> Self {
        let media = next_ports(10);
        let sipp = Self::start(
            peer,
            &["-p".into(), service.trunk_port.to_string(), "-mp".into(), media.to_string()],
        );
        std::thread::sleep(Duration::from_millis(300));
        sipp
    }

    /// A call to `target`: from the trunk's address when `auth` is `None`, else as that user.
    pub fn call(service: &Service, target: &str, auth: Option<&str>, peer: &Peer<'_>) -> Self {
        Self::calls(service, target, auth, peer, &[])
    }

    /// Like [`Self::call`], with more sipp arguments (`-m`, `-r`…; the last `-m` wins).
    pub fn calls(
        service: &Service,
        target: &str,
        auth: Option<&str>,
        peer: &Peer<'_>,
        more: &[&str],
    ) -> Self {
        let port = next_ports(10);
        let mut args = vec![
            format!("127.0.0.1:{}", service.sip_port),
            "-s".into(),
            target.into(),
            "-p".into(),
            port.to_string(),
            "-mp".into(),
            (port + 4).to_string(),
        ];
        if let Some(extension) = auth {
            args.extend([
                "-au".into(),
                format!("{extension}@acme.test"),
                "-ap".into(),
                format!("sip-secret-{extension}"),
            ]);
        }
        args.extend(more.iter().map(|a| (*a).to_owned()));
        Self::start(peer, &args)
    }

    /// Waits for sipp to finish; true when its scenario passed.
    pub fn wait(&mut self) -> bool {
        let mut process = self.process.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = process.0.try_wait().unwrap() {
                return status.success();
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// sipp's own account of what went wrong, for assertion messages.
    pub fn errors(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(self.work.path()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with("errors.log") || name.ends_with("messages.log") {
                out.push_str(&format!(
                    "--- {name}\n{}\n",
                    std::fs::read_to_string(entry.path()).unwrap_or_default()
                ));
            }
        }
        out
    }
}

/// Kamailio as the SIP edge in front of several instances, with the
/// configuration we ship (`deploy/kamailio/kamailio.cfg`), on a port of its
/// own. Stopped (SIGTERM, which takes its children with it) when dropped.
pub struct Edge {
    child: Option<Child>,
    /// Its SIP port on 127.0.0.1 (UDP and TCP).
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Edge {
    /// Starts Kamailio with `instances` as its dispatcher set, and waits until it listens.
    pub async fn start(instances: &[&Service]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("dispatcher.list");
        let lines: String = instances.iter().map(|s| format!("1 sip:127.0.0.1:{}\n", s.sip_port)).collect();
        std::fs::write(&list, lines).unwrap();
        let port = next_ports(10);
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kamailio/kamailio.cfg");
        let log = std::fs::File::create(dir.path().join("kamailio.log")).unwrap();
        let child = Command::new("kamailio")
            .arg("-f")
            .arg(config)
            .args(["-DD", "-E", "-A", &format!("LISTEN=udp:127.0.0.1:{port}")])
            .args(["-A", &format!("TCP_LISTEN=tcp:127.0.0.1:{port}")])
            .args(["-A", &format!("DS_LIST=\"{}\"", list.display())])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("kamailio is installed (./x test installs it)");
        let edge = Self { child: Some(child), port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "kamailio did not start: {}", edge.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        edge
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }
}
