//! Bad input meets a clear answer and loses nothing: malformed SIP gets 400,
//! wrong credentials 403, unknown extensions 404, RTP from strangers and
//! garbage is dropped and counted, and a flood of INVITEs is answered.

use super::support::{Peer, Service, Sipp};
use serde_json::json;
use std::time::Duration;

async fn udp_exchange(service: &Service, datagram: &[u8]) -> Option<String> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(datagram, ("127.0.0.1", service.sip_port)).await.unwrap();
    let mut buf = vec![0; 4096];
    match tokio::time::timeout(Duration::from_millis(1_500), socket.recv_from(&mut buf)).await {
        Ok(Ok((len, _))) => Some(String::from_utf8_lossy(&buf[..len]).into_owned()),
        _ => None,
    }
}

fn options(call_id: Option<&str>) -> String {
    let call_id = call_id.map(|c| format!("Call-ID: {c}\r\n")).unwrap_or_default();
    format!(
        "OPTIONS sip:earshot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{n}\r\n\
         From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:earshot@127.0.0.1>\r\n{call_id}CSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        n = rand::random::<u32>()
    )
}

async fn metric(service: &Service, name: &str) -> u64 {
    let text = reqwest::get(format!("http://{}/metrics", service.http)).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")).map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sip_gets_400_and_the_service_keeps_running() {
    let service = Service::start().await;
    let answer = udp_exchange(&service, options(None).as_bytes()).await.expect("an answer");
    assert!(answer.starts_with("SIP/2.0 400 Bad Request\r\n"), "{answer}");
    assert!(answer.contains("Call-ID"), "the Warning says what is wrong: {answer}");
    assert!(answer.contains("branch=z9hG4bK"), "the Via comes back so the sender can match it");
    assert!(udp_exchange(&service, b"\x00\x01not sip at all").await.is_none(), "noise is not answered");
    let answer = udp_exchange(&service, options(Some("alive")).as_bytes()).await.expect("an answer");
    assert!(answer.starts_with("SIP/2.0 200 OK"), "{answer}");
    assert_eq!(metric(&service, "earshot_sip_bad_requests_total").await, 1);
    assert_eq!(metric(&service, "earshot_sip_dropped_messages_total").await, 1);
}

/// Writes `message` on a new TCP connection; what comes back within 1.5 s.
async fn tcp_exchange(service: &Service, message: &[u8]) -> Option<String> {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", service.sip_port)).await.unwrap();
    stream.write_all(message).await.unwrap();
    read_answer(&mut stream).await
}

/// Over TCP the same: a malformed request gets 400 on its connection, which
/// stays open for the next message; a head whose Content-Length can't be
/// read gets 400 and the connection closes (its framing is lost); what isn't
/// SIP is dropped. Every refusal is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sip_over_tcp_gets_400_too() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let service = Service::start().await;
    let tcp = |message: String| message.replace("SIP/2.0/UDP", "SIP/2.0/TCP");

    // One connection: a request without Call-ID, then a good one.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", service.sip_port)).await.unwrap();
    stream.write_all(tcp(options(None)).as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await.expect("an answer");
    assert!(answer.starts_with("SIP/2.0 400 Bad Request\r\n"), "{answer}");
    assert!(answer.contains("Call-ID"), "the Warning says what is wrong: {answer}");
    assert!(answer.contains("Via: SIP/2.0/TCP"), "the Via comes back: {answer}");
    stream.write_all(tcp(options(Some("same-connection"))).as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await.expect("an answer on the same connection");
    assert!(answer.starts_with("SIP/2.0 200 OK"), "{answer}");

    // Noise is dropped without an answer.
    assert!(tcp_exchange(&service, b"\x00\x01not sip at all\r\n\r\n").await.is_none());

    // A Content-Length that isn't a number: 400, then the connection closes.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", service.sip_port)).await.unwrap();
    let unframable = tcp(options(Some("x"))).replace("Content-Length: 0", "Content-Length: many");
    stream.write_all(unframable.as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await.expect("an answer");
    assert!(answer.starts_with("SIP/2.0 400 Bad Request\r\n"), "{answer}");
    assert!(answer.contains("Content-Length"), "{answer}");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "the connection closes after the answer");

    // The service keeps serving, over TCP and UDP.
    let answer = tcp_exchange(&service, tcp(options(Some("alive"))).as_bytes()).await.expect("an answer");
    assert!(answer.starts_with("SIP/2.0 200 OK"), "{answer}");
    let answer = udp_exchange(&service, options(Some("alive-udp")).as_bytes()).await.expect("an answer");
    assert!(answer.starts_with("SIP/2.0 200 OK"), "{answer}");
    assert_eq!(metric(&service, "earshot_sip_bad_requests_total").await, 2);
    assert_eq!(metric(&service, "earshot_sip_dropped_messages_total").await, 1);
}

/// One message read from `stream` within 1.5 s.
async fn read_answer(stream: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0; 4096];
    match tokio::time::timeout(Duration::from_millis(1_500), stream.read(&mut buf)).await {
        Ok(Ok(len)) if len > 0 => Some(String::from_utf8_lossy(&buf[..len]).into_owned()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_get_403_and_unknown_extensions_404() {
    let service = Service::start().await;
    service.agent("Ada", "101", json!({})).await;
    // A user calling an extension nobody has.
    let mut call = Sipp::call(
        &service,
        "999",
        Some("101"),
        &Peer { scenario: "call_refused.xml", from: "101", final_status: 404, ..Peer::default() },
    );
    assert!(call.wait(), "{}", call.errors());
    // Somebody with the wrong SIP password.
    let mut call = Sipp::calls(
        &service,
        "101",
        None,
        &Peer { scenario: "call_refused.xml", from: "101", final_status: 403, ..Peer::default() },
        &["-au", "101@acme.test", "-ap", "wrong-password"],
    );
    assert!(call.wait(), "{}", call.errors());
    // A registered user whose other phone is this one: calling yourself is busy.
    let mut call = Sipp::call(
        &service,
        "101",
        Some("101"),
        &Peer { scenario: "call_refused.xml", from: "101", final_status: 486, ..Peer::default() },
    );
    assert!(call.wait(), "{}", call.errors());
    assert!(service.calls().await.is_empty(), "refused calls are not history");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_during_a_digest_check_is_500_with_retry_after_not_a_refusal() {
    let service = Service::start().await;
    service.agent("Ada", "101", json!({})).await;
    // The database refuses the digest check's query (its table is gone).
    let url = format!("sqlite://{}", service.dir.path().join("earshot.db").display());
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("ALTER TABLE users RENAME TO users_away").execute(&db).await.unwrap();
    let credentials = ["-au", "101@acme.test", "-ap", "sip-secret-101"];
    let peer = Peer { scenario: "call_refused.xml", from: "101", final_status: 500, ..Peer::default() };
    let mut call = Sipp::calls(&service, "102", None, &peer, &credentials);
    assert!(call.wait(), "{}", call.errors());
    let messages = call.errors();
    assert!(messages.contains("Retry-After: 5"), "{messages}");
    let log = service.log();
    assert!(log.contains("the store failed while checking a SIP digest"), "{log}");
    assert!(!log.contains("SIP digest refused"), "a store failure is not a refused digest: {log}");
    // Once the store is back, the same credentials get through (to a 404: nobody has 102).
    sqlx::query("ALTER TABLE users_away RENAME TO users").execute(&db).await.unwrap();
    let peer = Peer { final_status: 404, ..peer };
    let mut call = Sipp::calls(&service, "102", None, &peer, &credentials);
    assert!(call.wait(), "{}", call.errors());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtp_from_strangers_and_garbage_is_dropped_and_counted() {
    let service = Service::start().await;
    service.settings(json!({"record_inbound": true})).await;
    let ada = service.agent("Ada", "101", json!({})).await;
    service.number("+15550100", json!([{"type": "ring_user", "user": ada}])).await;
    let (mut device, port) = Sipp::device(&Peer::default());
    assert!(service.register("101", port));
    let mut caller = Sipp::call(
        &service,
        "15550100",
        None,
        &Peer { scenario: "call.xml", talk_ms: 4_000, from: "+447700900123", ..Peer::default() },
    );
    // Find the relay's port for the caller in the 200 OK's answer, then throw things at it.
    let mut relay_port = None;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let messages = caller.errors();
        let answer = messages.find("SIP/2.0 200 OK").map(|ok| &messages[ok..]);
        if let Some(answer) = answer
            && let Some(at) = answer.find("m=audio ")
        {
            let messages = answer;
            relay_port = messages[at + 8..].split(' ').next().and_then(|p| p.parse::<u16>().ok());
            break;
        }
    }
    let relay_port = relay_port.expect("the caller got an answer with SDP");
    // The caller's own packets have arrived by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stranger = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..20 {
        // Well-formed RTP, but from an address that is not the caller's.
        let mut packet = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
        packet.extend([0xff; 160]);
        stranger.send_to(&packet, ("127.0.0.1", relay_port)).await.unwrap();
        stranger.send_to(b"garbage", ("127.0.0.1", relay_port)).await.unwrap();
    }
    // Datagrams larger than any RTP packet the relay takes are cut short by
    // the read, and dropped as garbage rather than relayed in part.
    for _ in 0..5 {
        stranger.send_to(&[0x80; 4_000], ("127.0.0.1", relay_port)).await.unwrap();
    }
    assert!(caller.wait(), "{}", caller.errors());
    assert!(device.wait(), "{}", device.errors());
    assert!(metric(&service, "earshot_rtp_foreign_packets_total").await >= 40);
    assert!(metric(&service, "earshot_rtp_garbage_packets_total").await >= 5);
    let calls = service.wait_for_calls(1).await;
    assert_eq!(calls[0]["status"], "answered", "the call went on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_invites_is_answered_not_crashed_on() {
    let service = Service::start().await;
    let ada = service.agent("Ada", "101", json!({})).await;
    // Nobody is registered: every call is refused 480 after its flow has run.
    service.number("+15550100", json!([{"type": "ring_user", "user": ada}])).await;
    let mut flood = Sipp::calls(
        &service,
        "15550100",
        None,
        &Peer { scenario: "call_refused.xml", from: "+447700900123", final_status: 480, ..Peer::default() },
        &["-m", "300", "-r", "150", "-l", "100"],
    );
    assert!(
        flood.wait(),
        "every INVITE of the flood is answered: {}",
        flood.errors().chars().take(3_000).collect::<String>()
    );
    let answer =
        udp_exchange(&service, options(Some("after-the-flood")).as_bytes()).await.expect("still serving");
    assert!(answer.starts_with("SIP/2.0 200 OK"));
    assert_eq!(service.wait_for_calls(50).await.len(), 50, "each refused inbound call is a missed call");
}
