//! The floor under `earshotd`'s relay: what relaying calls costs on this
//! machine when nothing but the relaying is done (docs/PERFORMANCE.md).
//!
//! The same traffic as `calls.sh`, without SIP and without our relay's
//! logic: a caller process sends a 172-byte RTP-sized datagram every 20 ms
//! from one socket per call and never reads (like sipp's `rtp_stream`); an
//! echo process returns every datagram from one socket, blocking in `recv`
//! (like `sipp -rtp_echo`). This process is the relay, on one thread: two
//! sockets per call, every 20 ms one `recvmmsg` on each socket, then every
//! packet sent on to the other leg's peer (the echo for the callers'
//! packets, the caller's latched address for the echoes). CPU is utime +
//! stime of this process from `/proc`, over a window with every call
//! flowing, as a percentage of one core per call: the figure `calls.sh`
//! reports, for a relay that does nothing else.
//!
//! `cargo bench -p earshot-service --bench relay_floor` measures 50, 100,
//! 200 and 400 calls (`-- 200` only 200); `-- --test` (as `./x test` runs
//! it) a few calls, briefly, and checks the packets came back.

#![allow(clippy::print_stdout)]

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(20);
const PACKET: usize = 172;
const BATCH: usize = 8;
const ROLE: &str = "EARSHOT_FLOOR_ROLE";
/// A peer process ends itself after this long, should the relay die
/// without killing it (a level takes 16 s).
const PEER_LIFETIME: Duration = Duration::from_secs(60);

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("echo") => return echo(),
        Ok("caller") => return caller(),
        _ => {}
    }
    let test = std::env::args().any(|arg| arg == "--test");
    if test {
        // Too short a window for a CPU figure (the clock ticks are 10 ms).
        let (_, echoed) = measure(10, Duration::from_millis(300), Duration::from_millis(700));
        assert!(echoed > 0, "no packet came back through the echo");
        println!("relay floor, 10 calls (test run): {echoed} echoes relayed");
        return;
    }
    let mut levels: Vec<usize> = std::env::args().skip(1).filter_map(|arg| arg.parse().ok()).collect();
    if levels.is_empty() {
        levels = vec![50, 100, 200, 400];
    }
    for calls in levels {
        let (per_call, echoed) = measure(calls, Duration::from_secs(4), Duration::from_secs(12));
        println!(
            "relay floor, {calls:>3} calls: {per_call:.4} % of one core per call ({echoed} echoes relayed)"
        );
    }
}

/// Relays `calls` calls for `warm_up` and then `window`, and returns the CPU
/// per call over the window (% of one core) and the echoes relayed in it.
// The peers are killed and waited for when the window ends; should the
// relay panic first, they end themselves (`PEER_LIFETIME`).
#[allow(clippy::zombie_processes)]
fn measure(calls: usize, warm_up: Duration, window: Duration) -> (f64, u64) {
    let loopback = |_| UdpSocket::bind("127.0.0.1:0").expect("binding a loopback socket");
    let a: Vec<UdpSocket> = (0..calls).map(loopback).collect();
    let b: Vec<UdpSocket> = (0..calls).map(loopback).collect();
    let mut echo = spawn("echo");
    let echo_addr: SocketAddr = read_line(&mut echo).parse().expect("the echo's address");
    let mut caller = spawn("caller");
    {
        let stdin = caller.stdin.as_mut().expect("the caller's stdin");
        for socket in &a {
            writeln!(stdin, "{}", socket.local_addr().expect("a local address"))
                .expect("writing to the caller");
        }
    }
    drop(caller.stdin.take());

    let mut latched: Vec<Option<SocketAddr>> = vec![None; calls];
    let mut outbox: Vec<(usize, [u8; PACKET], SocketAddr)> = Vec::with_capacity(2 * calls);
    let mut bufs = [[0u8; 2048]; BATCH];
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let start = Instant::now();
    let mut next = start;
    let mut measured: Option<(Instant, f64, u64)> = None;
    let mut echoed = 0u64;
    loop {
        let now = Instant::now();
        if measured.is_none() && now >= start + warm_up {
            measured = Some((now, cpu_seconds(), echoed));
        }
        if let Some((since, cpu, echoes)) = measured
            && now >= since + window
        {
            let per_call =
                (cpu_seconds() - cpu) / now.duration_since(since).as_secs_f64() / calls as f64 * 100.0;
            let _ = caller.kill();
            let _ = echo.kill();
            let _ = caller.wait();
            let _ = echo.wait();
            return (per_call, echoed - echoes);
        }
        // Read every socket once: callers' packets go to the echo, echoes
        // back to the caller heard on that call.
        for (leg, sockets) in [(0, &a), (1, &b)] {
            for (call, socket) in sockets.iter().enumerate() {
                let mut slices = bufs.each_mut().map(|buf| [std::io::IoSliceMut::new(buf)]);
                let Ok(received) = recvmmsg(
                    socket.as_raw_fd(),
                    &mut headers,
                    slices.iter_mut(),
                    MsgFlags::MSG_DONTWAIT,
                    None,
                ) else {
                    continue;
                };
                let mut got = [(0, None); BATCH];
                let mut count = 0;
                for (slot, message) in got.iter_mut().zip(received) {
                    let from =
                        message.address.as_ref().and_then(|a| a.as_sockaddr_in()).map(|v4| (*v4).into());
                    *slot = (message.bytes, from.map(SocketAddr::V4));
                    count += 1;
                }
                for (index, &(len, from)) in got[..count].iter().enumerate() {
                    let mut packet = [0u8; PACKET];
                    let len = len.min(PACKET);
                    packet[..len].copy_from_slice(&bufs[index][..len]);
                    if leg == 0 {
                        latched[call] = latched[call].or(from);
                        outbox.push((call + calls, packet, echo_addr));
                    } else if let Some(to) = latched[call] {
                        echoed += 1;
                        outbox.push((call, packet, to));
                    }
                }
            }
        }
        for (socket, packet, to) in outbox.drain(..) {
            let socket = if socket < calls { &a[socket] } else { &b[socket - calls] };
            let _ = socket.send_to(&packet, to);
        }
        wait_for_tick(&mut next);
    }
}

/// Sleeps until the tick after `next` and moves `next` to it; a tick
/// already past is not made up.
fn wait_for_tick(next: &mut Instant) {
    *next += TICK;
    let now = Instant::now();
    if *next > now {
        std::thread::sleep(*next - now);
    } else {
        *next = now;
    }
}

fn spawn(role: &str) -> Child {
    Command::new(std::env::current_exe().expect("this benchmark's path"))
        .env(ROLE, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting a peer process")
}

fn read_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("the peer's stdout"))
        .read_line(&mut line)
        .expect("reading the peer");
    line.trim().to_owned()
}

/// utime + stime of this process, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("reading /proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a command name") + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    // CLK_TCK is 100 on Linux for every architecture we build for.
    ticks / 100.0
}

/// The echo peer: returns every datagram to its sender, from one socket,
/// blocking in `recv_from` (as `sipp -rtp_echo` does).
fn echo() {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("binding the echo socket");
    println!("{}", socket.local_addr().expect("the echo's address"));
    std::io::stdout().flush().expect("telling the relay the echo's address");
    socket.set_read_timeout(Some(Duration::from_secs(1))).expect("a read timeout");
    let started = Instant::now();
    let mut buf = [0u8; 2048];
    while started.elapsed() < PEER_LIFETIME {
        if let Ok((len, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..len], from);
        }
    }
}

/// The callers: one socket per call, each sending a packet to its relay leg
/// every 20 ms, never reading (as sipp's `rtp_stream` does not).
fn caller() {
    let targets: Vec<SocketAddr> = std::io::stdin()
        .lock()
        .lines()
        .map(|line| line.expect("reading the relay's legs").parse().expect("a leg's address"))
        .collect();
    let sockets: Vec<UdpSocket> =
        targets.iter().map(|_| UdpSocket::bind("127.0.0.1:0").expect("binding a caller socket")).collect();
    let packet = [0x80u8; PACKET];
    let started = Instant::now();
    let mut next = started;
    while started.elapsed() < PEER_LIFETIME {
        for (socket, to) in sockets.iter().zip(&targets) {
            let _ = socket.send_to(&packet, to);
        }
        wait_for_tick(&mut next);
    }
}
