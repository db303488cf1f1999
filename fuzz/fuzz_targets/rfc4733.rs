//! Any stream of telephone-event payloads at any times: the receiver makes
//! strictly alternating key-down/key-up edges (one press at a time), and the
//! keypad leg never panics and never relays a key it did not get.
#![no_main]

use arbitrary::Arbitrary;
use earshot_policy::Timestamp;
use earshot_telephony::dtmf::{DtmfReceiver, KeyEdge, KeypadLeg, LegAction, TelephoneEvent};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Packet {
    rtp: u32,
    payload: [u8; 4],
    after_ms: u16,
}

fuzz_target!(|packets: Vec<Packet>| {
    let mut receiver = DtmfReceiver::new();
    let mut leg = KeypadLeg::new();
    let mut now = 0_i64;
    let mut down = None;
    let mut got = Vec::new();
    for packet in packets {
        now += i64::from(packet.after_ms);
        let Ok(event) = TelephoneEvent::parse(&packet.payload) else { continue };
        got.push(event.key);
        let mut edges = receiver.handle_timeout(Timestamp(now));
        edges.extend(receiver.handle(packet.rtp, event, Timestamp(now)));
        for edge in edges {
            match edge {
                KeyEdge::Down(key) => {
                    assert!(down.is_none(), "two keys down at once");
                    down = Some(key);
                }
                KeyEdge::Up(key) => assert_eq!(down.take(), Some(key), "up without its down"),
            }
        }
        leg.handle_timeout(Timestamp(now));
        leg.handle_packet(packet.rtp, event, Timestamp(now));
        while let Some(action) = leg.poll_action() {
            if let LegAction::PressKey(key) | LegAction::ReplayKey { key, .. } = action {
                assert!(got.contains(&key), "relayed a key nobody pressed");
            }
        }
    }
});
