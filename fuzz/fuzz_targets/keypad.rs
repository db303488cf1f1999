//! Any key edges and timeouts into the keypad-code detector: it never panics,
//! and every key pressed either reaches the far end (pressed or replayed) or
//! is part of a code, in order.
#![no_main]

use arbitrary::Arbitrary;
use earshot_policy::{Key, KeypadAction, KeypadCodeDetector, Timestamp};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input {
    Press { key: u8, after_ms: u16, held_ms: u16 },
    Wait { ms: u16 },
}

fuzz_target!(|inputs: Vec<Input>| {
    let mut detector = KeypadCodeDetector::new();
    let mut now = 0_i64;
    let mut pressed = Vec::new();
    let mut out = Vec::new();
    let keys = b"0123456789*#ABCD";
    let drain = |detector: &mut KeypadCodeDetector, out: &mut Vec<Key>| {
        while let Some(action) = detector.poll_action() {
            match action {
                KeypadAction::PressKey { key } | KeypadAction::ReplayKey { key, .. } => out.push(key),
                KeypadAction::ReleaseKey { .. } => {}
                KeypadAction::Code(code) => out.extend(code.code.keys()),
            }
        }
    };
    for input in inputs {
        match input {
            Input::Press { key, after_ms, held_ms } => {
                let key = Key::from_char(char::from(keys[usize::from(key % 16)])).unwrap();
                now += i64::from(after_ms);
                detector.handle_key_down(Timestamp(now), key);
                drain(&mut detector, &mut out);
                now += i64::from(held_ms);
                detector.handle_key_up(Timestamp(now), key);
                pressed.push(key);
            }
            Input::Wait { ms } => {
                now += i64::from(ms);
                detector.handle_timeout(Timestamp(now));
            }
        }
        drain(&mut detector, &mut out);
    }
    now += 10_000;
    detector.handle_timeout(Timestamp(now));
    drain(&mut detector, &mut out);
    assert_eq!(out, pressed, "keys lost, added or reordered");
});
