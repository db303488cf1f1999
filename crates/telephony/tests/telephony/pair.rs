//! Two user agents joined by a simulated network, on a simulated clock
//! (quinn's `Pair`): signalling that is delayed, reordered and duplicated,
//! media that is also lost, each side's call state machine and audio
//! endpoint driven as the app will drive them. A call set up, audio both
//! ways, keys, held and resumed twice (the SDP versions go up), hung up;
//! glare; and the ways a call ends before it starts.

use earshot_policy::{Key, Timestamp};
use earshot_telephony::dtmf::KeyEdge;
use earshot_telephony::endpoint::AudioEndpoint;
use earshot_telephony::jitter::FrameKind;
use earshot_telephony::plc::FRAME;
use earshot_telephony::sdp::{Negotiation, Origin};
use earshot_telephony::sim::{Conditions, Link};
use earshot_telephony::ua::{Call, CallEvent, CallState, Command, EndReason, Hold, Signal};
use std::net::SocketAddr;

/// What travels between the two sides' SIP stacks.
#[derive(Clone, Debug)]
enum Wire {
    Invite(Vec<u8>),
    Signal(Signal),
}

struct Side {
    name: &'static str,
    addr: SocketAddr,
    call: Option<Call>,
    media: AudioEndpoint,
    /// The tone this side speaks, in Hz.
    tone: f64,
    spoken: u64,
    /// Frames heard, with their kind.
    heard: Vec<(Timestamp, FrameKind, [i16; FRAME])>,
    /// Every state the call went through.
    states: Vec<CallState>,
    /// The SDP bodies this side sent.
    descriptions: Vec<Vec<u8>>,
    keys: Vec<KeyEdge>,
    /// Invites seen (duplicates are the SIP stack's to absorb).
    invited: bool,
}

impl Side {
    fn new(name: &'static str, port: u16, tone: f64, seed: u32) -> Self {
        Self {
            name,
            addr: SocketAddr::from(([192, 0, 2, 1], port)),
            call: None,
            media: AudioEndpoint::new(seed, seed as u16),
            tone,
            spoken: 0,
            heard: Vec::new(),
            states: Vec::new(),
            descriptions: Vec::new(),
            keys: Vec::new(),
            invited: false,
        }
    }

    fn negotiation(&self, session: u64) -> Negotiation {
        Negotiation::new(self.addr, session)
    }

    fn call(&mut self) -> &mut Call {
        self.call.as_mut().expect("a call")
    }

    fn state(&self) -> &CallState {
        self.call.as_ref().expect("a call").state()
    }

    /// The level of what was heard between `from` and `to` ms.
    fn level(&self, from: i64, to: i64) -> f64 {
        let frames: Vec<_> = self.heard.iter().filter(|(at, _, _)| (from..to).contains(&at.0)).collect();
        let sum: f64 = frames.iter().flat_map(|(_, _, f)| f.iter()).map(|s| f64::from(*s).powi(2)).sum();
        (sum / (frames.len() * FRAME).max(1) as f64).sqrt()
    }

    fn versions(&self) -> Vec<Origin> {
        self.descriptions.iter().map(|d| Origin::of(d).expect("an o= line")).collect()
    }
}

struct Pair {
    now: Timestamp,
    ada: Side,
    bo: Side,
    /// Signalling and media, each way: index 0 carries Ada's to Bo.
    signalling: [Link<Wire>; 2],
    media: [Link<Vec<u8>>; 2],
}

impl Pair {
    fn new(signalling: Conditions, media: Conditions) -> Self {
        Self {
            now: Timestamp(1_000),
            ada: Side::new("ada", 4_000, 440.0, 0x0ada),
            bo: Side::new("bo", 6_000, 620.0, 0x00b0),
            signalling: [Link::new(signalling, 1), Link::new(signalling, 2)],
            media: [Link::new(media, 3), Link::new(media, 4)],
        }
    }

    fn side(&mut self, ada: bool) -> &mut Side {
        if ada { &mut self.ada } else { &mut self.bo }
    }

    /// Ada calls Bo.
    fn dial(&mut self) {
        let sdp = self.ada.negotiation(7);
        self.ada.call = Some(Call::outgoing(sdp, self.now));
    }

    /// Runs the world for `ms`, in 5 ms steps; media every 20 ms.
    fn run(&mut self, ms: i64) {
        let end = self.now.plus_millis(ms);
        while self.now < end {
            self.now = self.now.plus_millis(5);
            for ada in [true, false] {
                self.deliver(ada);
                self.drive(ada);
            }
            if self.now.0 % 20 == 0 {
                for ada in [true, false] {
                    self.media_tick(ada);
                }
            }
        }
    }

    /// What arrived for one side by now.
    fn deliver(&mut self, ada: bool) {
        let now = self.now;
        let inbound = usize::from(ada);
        while let Some(wire) = self.signalling[inbound].poll(now) {
            let session = if ada { 7 } else { 9 };
            let side = self.side(ada);
            match wire {
                Wire::Invite(offer) => {
                    if !std::mem::replace(&mut side.invited, true) {
                        side.call = Some(
                            Call::incoming(&offer, side.negotiation(session), now).expect("a usable offer"),
                        );
                    }
                }
                Wire::Signal(signal) => {
                    if let Some(call) = side.call.as_mut() {
                        call.handle(signal, now);
                    }
                }
            }
        }
        while let Some(datagram) = self.media[inbound].poll(now) {
            let from = if ada { self.bo.addr } else { self.ada.addr };
            self.side(ada).media.handle_datagram(now, from, &datagram);
        }
    }

    /// Carries out one side's commands and events.
    fn drive(&mut self, ada: bool) {
        let now = self.now;
        let outbound = usize::from(!ada);
        let side = self.side(ada);
        let Some(call) = side.call.as_mut() else { return };
        if call.poll_timeout().is_some_and(|at| at <= now) {
            call.handle_timeout(now);
        }
        let mut wires = Vec::new();
        while let Some(command) = call.poll_command() {
            let wire = match command {
                Command::Invite { sdp } => {
                    side.descriptions.push(sdp.clone());
                    Wire::Invite(sdp)
                }
                Command::Ringing => Wire::Signal(Signal::Progress { status: 180, sdp: None }),
                Command::Answer { sdp } => {
                    side.descriptions.push(sdp.clone());
                    Wire::Signal(Signal::Answered { sdp })
                }
                Command::Reject { status } => {
                    Wire::Signal(Signal::Refused { status, reason: "refused".into() })
                }
                Command::Cancel => {
                    // The far side's stack answers the INVITE 487 as it takes the CANCEL.
                    wires.push(Wire::Signal(Signal::Cancel));
                    continue;
                }
                Command::ReInvite { cseq, sdp } => {
                    side.descriptions.push(sdp.clone());
                    Wire::Signal(Signal::ReInvite { cseq, sdp })
                }
                Command::AnswerReInvite { cseq, status, sdp } => {
                    if let Some(sdp) = &sdp {
                        side.descriptions.push(sdp.clone());
                    }
                    Wire::Signal(Signal::ReInviteAnswered { cseq, status, sdp })
                }
                Command::Bye => Wire::Signal(Signal::Bye),
            };
            wires.push(wire);
        }
        while let Some(event) = call.poll_event() {
            match event {
                CallEvent::State(state) => side.states.push(state),
                CallEvent::Media { theirs, ours } => {
                    side.media.set_peer(theirs);
                    side.media.set_direction(ours);
                }
                CallEvent::UnusableDescription(error) => panic!("{}: {error}", side.name),
            }
        }
        let cancelled = wires.iter().any(|w| matches!(w, Wire::Signal(Signal::Cancel)));
        for wire in wires {
            self.signalling[outbound].send(now, wire);
        }
        if cancelled && self.side(!ada).call.as_ref().map(Call::state) == Some(&CallState::Incoming) {
            // As the far side's stack would: 487 to the cancelled INVITE.
            let refused = Signal::Refused { status: 487, reason: "Request Terminated".into() };
            self.signalling[usize::from(ada)].send(now, Wire::Signal(refused));
        }
    }

    /// One side speaks 20 ms into its microphone and plays 20 ms to its speaker.
    fn media_tick(&mut self, ada: bool) {
        let now = self.now;
        let outbound = usize::from(!ada);
        let side = self.side(ada);
        let talking = matches!(side.call.as_ref().map(Call::state), Some(CallState::Connected { .. }));
        if talking {
            let tone = side.tone;
            let spoken = side.spoken;
            let frame: Vec<i16> = (0..FRAME as u64)
                .map(|n| {
                    (6_000.0 * (std::f64::consts::TAU * tone * (spoken + n) as f64 / 8_000.0).sin()) as i16
                })
                .collect();
            side.spoken += FRAME as u64;
            side.media.send_audio(now, &frame);
            let mut heard = [0; FRAME];
            let kind = side.media.pull_audio(now, &mut heard);
            side.heard.push((now, kind, heard));
        }
        if side.media.poll_timeout().is_some_and(|at| at <= now) {
            side.media.handle_timeout(now);
        }
        while let Some(key) = side.media.poll_key() {
            side.keys.push(key);
        }
        let mut out = Vec::new();
        while let Some(transmit) = side.media.poll_transmit() {
            out.push(transmit.payload);
        }
        for datagram in out {
            self.media[outbound].send(now, datagram);
        }
    }
}

fn rough_network() -> Pair {
    Pair::new(
        Conditions { delay_ms: 15, jitter_ms: 30, duplicate: 0.1, loss: 0.0 },
        Conditions { delay_ms: 20, jitter_ms: 30, duplicate: 0.05, loss: 0.02 },
    )
}

#[test]
fn a_call_set_up_held_and_resumed_twice_keys_and_hung_up() {
    let mut pair = rough_network();
    pair.dial();
    pair.run(300);
    assert_eq!(pair.bo.state(), &CallState::Incoming);
    assert_eq!(pair.ada.state(), &CallState::Ringing);
    pair.bo.call().answer(pair.now);
    pair.run(2_000);
    let talking = CallState::Connected { hold: Hold::default() };
    assert_eq!(pair.ada.state(), &talking);
    assert_eq!(pair.bo.state(), &talking);
    assert_eq!(pair.ada.states.first(), Some(&CallState::Ringing), "{:?}", pair.ada.states);

    // Audio both ways: each hears the other's tone, loud.
    let (from, to) = (pair.now.0 - 1_000, pair.now.0);
    assert!(pair.bo.level(from, to) > 2_000.0, "bo hears {:.0}", pair.bo.level(from, to));
    assert!(pair.ada.level(from, to) > 2_000.0, "ada hears {:.0}", pair.ada.level(from, to));

    // Keys: #11# reaches Bo once each, in order, through duplicates and jitter.
    for (i, key) in "#11#".chars().enumerate() {
        let now = pair.now.plus_millis(i as i64);
        pair.ada.media.tap_key(Key::from_char(key).unwrap(), 120, now);
    }
    pair.run(1_500);
    let downs: String = pair
        .bo
        .keys
        .iter()
        .filter_map(|k| match k {
            KeyEdge::Down(key) => Some(key.as_char()),
            KeyEdge::Up(_) => None,
        })
        .collect();
    assert_eq!(downs, "#11#", "{:?}", pair.bo.keys);
    assert_eq!(pair.bo.keys.len(), 8, "{:?}", pair.bo.keys);

    for round in 0..2 {
        pair.ada.call().hold(pair.now);
        pair.run(1_000);
        let held = CallState::Connected { hold: Hold { local: true, remote: false } };
        assert_eq!(pair.ada.state(), &held, "round {round}");
        assert_eq!(pair.bo.state(), &CallState::Connected { hold: Hold { local: false, remote: true } });
        // On hold Bo sends nothing: Ada hears silence after the buffer drains.
        pair.run(1_000);
        let quiet = pair.ada.level(pair.now.0 - 500, pair.now.0);
        assert!(quiet < 50.0, "round {round}: ada hears {quiet:.0} while holding");
        pair.ada.call().resume(pair.now);
        pair.run(1_500);
        assert_eq!(pair.ada.state(), &talking, "round {round}");
        assert_eq!(pair.bo.state(), &talking, "round {round}");
        let back = pair.ada.level(pair.now.0 - 500, pair.now.0);
        assert!(back > 2_000.0, "round {round}: ada hears {back:.0} after resuming");
    }

    // RFC 3264 §8: one session per side, its version one up on every description.
    for side in [&pair.ada, &pair.bo] {
        let origins = side.versions();
        assert_eq!(origins.len(), 5, "{}: {origins:?}", side.name);
        assert!(origins.iter().all(|o| o.session_id == origins[0].session_id), "{}: {origins:?}", side.name);
        let versions: Vec<u64> = origins.iter().map(|o| o.version).collect();
        assert_eq!(versions, [1, 2, 3, 4, 5], "{}", side.name);
    }

    // Concealment covered the lost packets: almost no frame Ada heard while talking was missing.
    let stats = pair.ada.media.stats();
    assert!(stats.jitter.lost > 0, "{stats:?}");

    pair.bo.call().hang_up(pair.now);
    pair.run(500);
    assert_eq!(pair.bo.state(), &CallState::Ended(EndReason::HungUp { by_us: true }));
    assert_eq!(pair.ada.state(), &CallState::Ended(EndReason::HungUp { by_us: false }));
}

#[test]
fn both_holding_at_once_is_settled_by_a_retry() {
    let mut pair = Pair::new(Conditions { delay_ms: 30, ..Conditions::default() }, Conditions::default());
    pair.dial();
    pair.run(200);
    pair.bo.call().answer(pair.now);
    pair.run(500);
    // Both re-offer in the same moment: each answers the other 491 and tries again later.
    pair.ada.call().hold(pair.now);
    pair.bo.call().hold(pair.now);
    pair.run(6_000);
    let both = CallState::Connected { hold: Hold { local: true, remote: true } };
    assert_eq!(pair.ada.state(), &both);
    assert_eq!(pair.bo.state(), &both);
}

#[test]
fn a_call_that_never_connects_ends_as_it_should() {
    // Bo is busy: 486, and Ada sees why.
    let mut pair = Pair::new(Conditions { delay_ms: 10, ..Conditions::default() }, Conditions::default());
    pair.dial();
    pair.run(100);
    pair.bo.call().decline(true, pair.now);
    pair.run(100);
    assert_eq!(pair.bo.state(), &CallState::Ended(EndReason::Declined { status: 486 }));
    assert_eq!(
        pair.ada.state(),
        &CallState::Ended(EndReason::Refused { status: 486, reason: "refused".into() })
    );

    // Bo declines: 603.
    let mut pair = Pair::new(Conditions { delay_ms: 10, ..Conditions::default() }, Conditions::default());
    pair.dial();
    pair.run(100);
    pair.bo.call().decline(false, pair.now);
    pair.run(100);
    assert_eq!(pair.bo.state(), &CallState::Ended(EndReason::Declined { status: 603 }));

    // Ada gives up while it rings: Bo has missed it, Ada cancelled it.
    let mut pair = Pair::new(Conditions { delay_ms: 10, ..Conditions::default() }, Conditions::default());
    pair.dial();
    pair.run(100);
    pair.ada.call().hang_up(pair.now);
    pair.run(100);
    assert_eq!(pair.bo.state(), &CallState::Ended(EndReason::Missed));
    assert_eq!(pair.ada.state(), &CallState::Ended(EndReason::Cancelled));
}

#[test]
fn an_answer_that_crosses_a_cancel_is_hung_up() {
    let mut call = Call::outgoing(Negotiation::new("192.0.2.1:4000".parse().unwrap(), 1), Timestamp(0));
    let Some(Command::Invite { sdp }) = call.poll_command() else { panic!("an INVITE first") };
    let mut callee =
        Call::incoming(&sdp, Negotiation::new("192.0.2.2:6000".parse().unwrap(), 2), Timestamp(0)).unwrap();
    callee.answer(Timestamp(5));
    let answer = std::iter::from_fn(|| callee.poll_command())
        .find_map(|c| match c {
            Command::Answer { sdp } => Some(sdp),
            _ => None,
        })
        .unwrap();
    call.hang_up(Timestamp(5));
    assert_eq!(call.poll_command(), Some(Command::Cancel));
    call.handle(Signal::Answered { sdp: answer }, Timestamp(10));
    assert_eq!(call.poll_command(), Some(Command::Bye));
    assert_eq!(call.state(), &CallState::Ended(EndReason::Cancelled));
}

#[test]
fn an_offer_without_usable_audio_is_refused_and_early_media_is_heard() {
    let video = b"v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=video 4000 RTP/AVP 96\r\n";
    assert!(
        Call::incoming(video, Negotiation::new("192.0.2.2:6000".parse().unwrap(), 2), Timestamp(0)).is_err()
    );

    let mut call = Call::outgoing(Negotiation::new("192.0.2.1:4000".parse().unwrap(), 1), Timestamp(0));
    let Some(Command::Invite { sdp }) = call.poll_command() else { panic!("an INVITE first") };
    let mut far = Negotiation::new("192.0.2.2:6000".parse().unwrap(), 2);
    let early = far.handle_offer(&sdp).unwrap().into_bytes();
    call.handle(Signal::Progress { status: 100, sdp: None }, Timestamp(1));
    assert_eq!(call.state(), &CallState::Trying);
    call.handle(Signal::Progress { status: 183, sdp: Some(early) }, Timestamp(2));
    assert_eq!(call.state(), &CallState::EarlyMedia);
    let events: Vec<CallEvent> = std::iter::from_fn(|| call.poll_event()).collect();
    assert!(events.iter().any(|e| matches!(e, CallEvent::Media { .. })), "{events:?}");
    call.handle(Signal::Refused { status: 404, reason: "Not Found".into() }, Timestamp(3));
    assert_eq!(
        call.state(),
        &CallState::Ended(EndReason::Refused { status: 404, reason: "Not Found".into() })
    );
}

#[test]
fn a_refused_hold_leaves_the_call_as_it_was_and_an_offerless_re_invite_gets_our_offer() {
    let (a, b) = ("192.0.2.1:4000".parse().unwrap(), "192.0.2.2:6000".parse().unwrap());
    let mut call = Call::outgoing(Negotiation::new(a, 1), Timestamp(0));
    let Some(Command::Invite { sdp }) = call.poll_command() else { panic!("an INVITE first") };
    let mut far = Negotiation::new(b, 2);
    let answer = far.handle_offer(&sdp).unwrap().into_bytes();
    call.handle(Signal::Answered { sdp: answer }, Timestamp(1));
    // Our hold is refused (488): the call goes on talking, and a re-offer
    // from the far side is answered sendrecv, not sendonly.
    call.hold(Timestamp(2));
    let Some(Command::ReInvite { cseq, .. }) = call.poll_command() else { panic!("a re-INVITE") };
    call.handle(Signal::ReInviteAnswered { cseq, status: 488, sdp: None }, Timestamp(3));
    assert_eq!(call.state(), &CallState::Connected { hold: Hold::default() });
    let reoffer = far.offer(earshot_telephony::sdp::MediaDirection::SendRecv).into_bytes();
    call.handle(Signal::ReInvite { cseq: 2, sdp: reoffer }, Timestamp(4));
    let Some(Command::AnswerReInvite { status: 200, sdp: Some(answer), .. }) = call.poll_command() else {
        panic!("a 200 with an answer")
    };
    assert!(String::from_utf8_lossy(&answer).contains("a=sendrecv"));
    // A re-INVITE without an offer: our offer goes in the 200, the answer comes in the ACK.
    call.handle(Signal::ReInvite { cseq: 3, sdp: Vec::new() }, Timestamp(5));
    let Some(Command::AnswerReInvite { status: 200, sdp: Some(offer), .. }) = call.poll_command() else {
        panic!("a 200 with an offer")
    };
    let answer = far.handle_offer(&offer).unwrap().into_bytes();
    while call.poll_event().is_some() {}
    call.handle(Signal::Ack { sdp: Some(answer) }, Timestamp(6));
    assert!(std::iter::from_fn(|| call.poll_event()).any(|e| matches!(e, CallEvent::Media { .. })));
    // One behind the last taken: 500 (RFC 3261 §14.2).
    call.handle(Signal::ReInvite { cseq: 2, sdp: Vec::new() }, Timestamp(7));
    assert!(matches!(call.poll_command(), Some(Command::AnswerReInvite { status: 500, .. })));
}
