//! SIP under attack (issue 18): SIPVicious, the tool internet scanners run,
//! against a real `earshotd`. A scanner that announces itself gets no
//! answer at all; one that hides enumerates no extension (an unknown user
//! and a wrong password get the same answer) and cracks no password from a
//! list holding the right one, while the users it attacks register and
//! call as usual.
//!
//! The attackers send from their own loopback addresses (127.0.0.2 and
//! up), the users' phones from 127.0.0.10: neither is the trunk's
//! 127.0.0.1, which the service trusts. SIPVicious comes from PyPI (`./x
//! test` installs it in a virtual environment and names its Python in
//! `EARSHOT_SIPVICIOUS_PYTHON`).

use super::phone::{connected, registered, state, wait_for};
use super::support::Service;
use earshot_sip::phone::{Account, Phone, PhoneConfig, PhoneEvent, ScriptedAudio};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// Where the users' phones are.
const USERS: [u8; 4] = [127, 0, 0, 10];

/// SIPVicious's tools, run by a Python that has it.
struct Sipvicious {
    python: String,
}

impl Sipvicious {
    fn find() -> Self {
        let python = std::env::var("EARSHOT_SIPVICIOUS_PYTHON").unwrap_or_else(|_| "python3".into());
        let found =
            Command::new(&python).args(["-c", "import sipvicious"]).status().is_ok_and(|s| s.success());
        assert!(
            found,
            "SIPVicious is not installed for {python}: run the tests with ./x test, which installs it"
        );
        Self { python }
    }

    /// Runs `tool` (`svwar`, `svcrack`) from `source`, announcing itself
    /// as `user_agent` (SIPVicious says `friendly-scanner`; a careful
    /// attacker changes it). What it printed.
    async fn run(&self, tool: &str, user_agent: &str, source: &str, args: &[String]) -> String {
        // The tools have no option for their User-Agent: it is the default
        // of the one function that writes their requests. And their `-b`
        // (the address to send from) is read but never used (0.3.8): the
        // address is given to the class that sends.
        let class = if tool == "svcrack" { "ASipOfRedWine" } else { "TakeASip" };
        let program = format!(
            "import sys\n\
             import sipvicious.libs.svhelper as helper\n\
             defaults = list(helper.makeRequest.__defaults__)\n\
             defaults[defaults.index('friendly-scanner')] = {user_agent:?}\n\
             helper.makeRequest.__defaults__ = tuple(defaults)\n\
             import sipvicious.{tool} as tool\n\
             original = tool.{class}.__init__\n\
             def bound(self, *args, **kwargs):\n\
             \x20   kwargs['bindingip'] = {source:?}\n\
             \x20   original(self, *args, **kwargs)\n\
             tool.{class}.__init__ = bound\n\
             sys.argv[0] = {tool:?}\n\
             sys.exit(tool.main())\n"
        );
        let mut command = tokio::process::Command::new(&self.python);
        command.args(["-c", &program]).args(["-x", source]).args(args).kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .expect("SIPVicious finishes within its budget")
            .unwrap();
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
    }
}

/// A user's phone from [`USERS`], registering as `extension`.
async fn user_phone(service: &Service, extension: &str) -> (Phone, UnboundedReceiver<PhoneEvent>) {
    let ip = IpAddr::from(USERS);
    let config = PhoneConfig {
        listen: SocketAddr::new(ip, 0),
        media_ip: ip,
        account: Some(Account {
            registrar: SocketAddr::from(([127, 0, 0, 1], service.sip_port)),
            user: extension.to_owned(),
            auth_user: Some(format!("{extension}@acme.test")),
            password: format!("sip-secret-{extension}"),
            expires_s: 300,
        }),
        user_agent: "Earshot/test".into(),
        tls: None,
    };
    Phone::start(config).await.unwrap()
}

/// A metric's value.
fn metric(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// A password list of `length` guesses with the right one at `at`.
fn word_list(dir: &std::path::Path, name: &str, length: usize, right: &str, at: usize) -> String {
    let mut words: Vec<String> = (0..length).map(|i| format!("guess-{i:04}")).collect();
    words[at] = right.to_owned();
    let path = dir.join(name);
    std::fs::write(&path, words.join("\n") + "\n").unwrap();
    path.to_string_lossy().into_owned()
}

/// An OPTIONS from `source` saying it is `user_agent`; the answer's first
/// line, if one comes within a second.
async fn options_from(service: &Service, source: [u8; 4], user_agent: &str) -> Option<String> {
    let socket = tokio::net::UdpSocket::bind(SocketAddr::from((source, 0))).await.unwrap();
    let local = socket.local_addr().unwrap();
    let request = format!(
        "OPTIONS sip:100@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
         From: <sip:100@{local}>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: {branch}@probe\r\nCSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\nUser-Agent: {user_agent}\r\nContent-Length: 0\r\n\r\n",
        port = service.sip_port,
        branch = rand::random::<u32>(),
    );
    socket.send_to(request.as_bytes(), ("127.0.0.1", service.sip_port)).await.unwrap();
    let mut buffer = vec![0_u8; 4_096];
    let received = tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buffer)).await.ok()?.ok()?;
    Some(String::from_utf8_lossy(&buffer[..received]).lines().next().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanner_that_announces_itself_gets_no_answer_at_all() {
    let tools = Sipvicious::find();
    let service = Service::start().await;
    service.agent("Ada", "101", json!({})).await;
    let target = format!("udp://127.0.0.1:{}", service.sip_port);

    let said = tools.run("svwar", "friendly-scanner", "127.0.0.2", &["-e100-120".into(), target]).await;
    assert!(!said.contains("| 101"), "svwar found an extension: {said}");
    assert_eq!(
        options_from(&service, [127, 0, 0, 3], "friendly-scanner").await,
        None,
        "a scanner is answered"
    );
    // The same request from someone else is answered.
    let answer = options_from(&service, [127, 0, 0, 3], "Linphone/5.2").await;
    assert_eq!(answer.as_deref(), Some("SIP/2.0 200 OK"));

    let metrics = service.metrics().await;
    assert!(metric(&metrics, "earshot_sip_scanner_dropped_total") >= 2, "{metrics}");
    // Logged once per source, not per request.
    let logged = service.log().matches("a SIP scanner announced itself").count();
    assert_eq!(logged, 2, "one line for each of the two sources:\n{}", service.log());
    assert!(service.log().contains("source=127.0.0.2"), "svwar sent from its own address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_scanner_enumerates_no_extension() {
    let tools = Sipvicious::find();
    let service = Service::start().await;
    service.agent("Ada", "101", json!({})).await;
    service.agent("Bo", "102", json!({})).await;
    let target = format!("udp://127.0.0.1:{}", service.sip_port);
    for method in ["REGISTER", "INVITE", "OPTIONS"] {
        let said = tools
            .run(
                "svwar",
                "Zoiper rv2.10.20",
                "127.0.0.2",
                &["-e100-120".into(), "-m".into(), method.into(), target.clone()],
            )
            .await;
        for extension in ["101", "102"] {
            assert!(
                !said.contains(&format!("| {extension} ")),
                "svwar found {extension} with {method}: {said}"
            );
        }
    }
    // Forced on, it lists every extension it tried alike: those that exist
    // answer exactly as those that do not.
    let said = tools
        .run(
            "svwar",
            "Zoiper rv2.10.20",
            "127.0.0.2",
            &["-e100-120".into(), "--force".into(), target.clone()],
        )
        .await;
    let rows: Vec<String> = (100..=120)
        .filter_map(|extension| {
            let extension = extension.to_string();
            said.lines()
                .find(|line| line.starts_with(&format!("| {extension} ")))
                .map(|line| line.replace(&extension, "N"))
        })
        .collect();
    // (svwar gives up at the first answer it cannot tell apart, or lists all alike.)
    assert!(rows.is_empty() || rows.len() == 21, "svwar listed some extensions, not all it tried: {said}");
    assert!(rows.iter().all(|row| *row == rows[0]), "an extension that exists reads differently: {said}");
    let metrics = service.metrics().await;
    assert_eq!(metric(&metrics, "earshot_sip_flood_dropped_total"), 0, "svwar was answered throughout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_finds_no_password_while_the_users_register_and_call() {
    let tools = Sipvicious::find();
    let service = Service::start().await;
    service.agent("Ada", "101", json!({})).await;
    service.agent("Bo", "102", json!({})).await;
    service.agent("Cy", "103", json!({})).await;
    let target = format!("udp://127.0.0.1:{}", service.sip_port);
    let words = tempfile::tempdir().unwrap();
    let crack = |user: &str, list: String| {
        vec![
            "-u".to_owned(),
            format!("{user}@acme.test"),
            "-e".into(),
            user.into(),
            "-d".into(),
            list,
            target.clone(),
        ]
    };

    // The tool works against us: a password among its first four guesses is found.
    let easy = word_list(words.path(), "easy.txt", 20, "sip-secret-103", 3);
    let said = tools.run("svcrack", "Zoiper rv2.10.20", "127.0.0.3", &crack("103", easy)).await;
    assert!(
        said.contains("sip-secret-103"),
        "svcrack did not find a password it had in its first guesses: {said}"
    );

    // Ada and Bo are at their desks, registered.
    let (ada, mut ada_events) = user_phone(&service, "101").await;
    registered(&mut ada_events).await;
    let (bo, mut bo_events) = user_phone(&service, "102").await;
    registered(&mut bo_events).await;

    // An attacker goes through a list with Ada's password in it; meanwhile
    // Ada's second phone registers and she calls Bo, who answers.
    let list = word_list(words.path(), "ada.txt", 200, "sip-secret-101", 40);
    let args = crack("101", list);
    let attack = tools.run("svcrack", "Zoiper rv2.10.20", "127.0.0.2", &args);
    let desk = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (second, mut second_events) = user_phone(&service, "101").await;
        registered(&mut second_events).await;
        let call = ada.dial("102", Box::new(ScriptedAudio::saying(&[0; 8_000])));
        let incoming = wait_for(&mut bo_events, 15, |e| match e {
            PhoneEvent::Incoming { call, .. } => Some(*call),
            _ => None,
        })
        .await;
        bo.answer(incoming, Box::new(ScriptedAudio::saying(&[0; 8_000])));
        state(&mut ada_events, call, connected).await;
        ada.hang_up(call);
        second.stop();
    };
    let (said, ()) = tokio::join!(attack, desk);
    assert!(!said.contains("sip-secret-101"), "svcrack found Ada's password: {said}");
    // Five of its guesses were checked (three were the first run's); the
    // rest of the list was refused unchecked, or dropped as a flood.
    let metrics = service.metrics().await;
    assert_eq!(metric(&metrics, "earshot_sip_auth_failures_total"), 3 + 5, "{metrics}");
    let turned_away = metric(&metrics, "earshot_sip_auth_refused_total")
        + metric(&metrics, "earshot_sip_flood_dropped_total");
    assert!(turned_away >= 20, "svcrack stopped early: {said}\n{metrics}");

    // A second source carries on: Ada's account is now locked for every
    // source she never used, even with the right password…
    let list = word_list(words.path(), "ada2.txt", 40, "sip-secret-101", 30);
    let said = tools.run("svcrack", "Zoiper rv2.10.20", "127.0.0.4", &crack("101", list)).await;
    assert!(!said.contains("sip-secret-101"), "svcrack found Ada's password: {said}");
    let right_only = word_list(words.path(), "right.txt", 1, "sip-secret-101", 0);
    let said = tools.run("svcrack", "Zoiper rv2.10.20", "127.0.0.5", &crack("101", right_only)).await;
    assert!(
        !said.contains("sip-secret-101"),
        "a locked account took its right password from a new source: {said}"
    );
    // …and Ada still registers from her desk.
    let (again, mut again_events) = user_phone(&service, "101").await;
    registered(&mut again_events).await;
    again.stop();

    let metrics = service.metrics().await;
    assert!(metric(&metrics, "earshot_sip_auth_failures_total") >= 10, "{metrics}");
    assert!(metric(&metrics, "earshot_sip_auth_refused_total") > 0, "{metrics}");
    assert!(metric(&metrics, "earshot_sip_sources_blocked_total") >= 2, "{metrics}");
    assert!(metric(&metrics, "earshot_sip_accounts_locked_total") >= 1, "{metrics}");
    // Each block is logged once, not each refused request.
    let log = service.log();
    let blocks: Vec<&str> =
        log.lines().filter(|line| line.contains("this source is refused for a while")).collect();
    assert_eq!(blocks.len() as u64, metric(&metrics, "earshot_sip_sources_blocked_total"), "{log}");
    assert!(blocks[0].contains("source=127.0.0.2") && blocks[1].contains("source=127.0.0.4"), "{blocks:?}");
    ada.stop();
    bo.stop();
}

/// A REGISTER from `socket` for 101, its Via and headers claiming another
/// address; with `nonce`, a (wrong) digest answer.
fn forged_register(socket: &std::net::UdpSocket, service: &Service, nonce: Option<&str>) -> String {
    let local = socket.local_addr().unwrap();
    let authorization = nonce.map_or_else(String::new, |nonce| {
        format!(
            "Authorization: Digest username=\"101@acme.test\", realm=\"earshot\", nonce=\"{nonce}\", \
             uri=\"sip:127.0.0.1\", response=\"00000000000000000000000000000000\", algorithm=MD5\r\n"
        )
    });
    let request = format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};received =127.0.0.99;rport\r\n\
         From: <sip:101@127.0.0.1>;tag={branch}\r\nTo: <sip:101@127.0.0.1>\r\nCall-ID: {branch}@forged\r\n\
         CSeq: 1 REGISTER\r\nContact: <sip:101@{local}>\r\nMax-Forwards: 70\r\n\
         X-Earshot-Source: 127.0.0.98:5060\r\nX-Earshot-Client: 127.0.0.97\r\n{authorization}\
         User-Agent: Linphone/5.2\r\nContent-Length: 0\r\n\r\n",
        branch = rand::random::<u32>(),
    );
    socket.send_to(request.as_bytes(), ("127.0.0.1", service.sip_port)).unwrap();
    let mut buffer = vec![0_u8; 4_096];
    let received = socket.recv(&mut buffer).expect("an answer");
    String::from_utf8_lossy(&buffer[..received]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guesser_cannot_pass_for_another_address() {
    let service = Service::start().await;
    service.agent("Ada", "101", json!({})).await;
    let log = tokio::task::spawn_blocking(move || {
        let socket = std::net::UdpSocket::bind("127.0.0.6:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let challenge = forged_register(&socket, &service, None);
        assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
        let nonce =
            challenge.split("nonce=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap().to_owned();
        for _ in 0..6 {
            let answer = forged_register(&socket, &service, Some(&nonce));
            assert!(answer.starts_with("SIP/2.0 403"), "{answer}");
        }
        // The nonce, handed to this address, is no good from another.
        let elsewhere = std::net::UdpSocket::bind("127.0.0.7:0").unwrap();
        elsewhere.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let answer = forged_register(&elsewhere, &service, Some(&nonce));
        assert!(answer.starts_with("SIP/2.0 401"), "a nonce spent from elsewhere is stale: {answer}");
        service.log()
    })
    .await
    .unwrap();
    let blocks: Vec<&str> =
        log.lines().filter(|line| line.contains("this source is refused for a while")).collect();
    assert_eq!(blocks.len(), 1, "{log}");
    assert!(blocks[0].contains("source=127.0.0.6"), "blocked as what it claimed to be: {}", blocks[0]);
}
