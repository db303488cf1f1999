//! The keypad code detector: SPEC §6.2 (codes, 3 s window) and D9 (hold back
//! what may be a code, relay everything else in order).
//!
//! Each case is a script of key events and the actions the detector gives:
//! - `K@d-u`: key `K` down at `d` ms, up at `u` ms;
//! - `K@d`: key `K` down at `d` (no end);
//! - `^K@u`: an end of key `K` at `u` (RFC 4733 repeats ends);
//! - `~t`: the timer fires at `t`.
//!
//! Actions read `press K`, `release K`, `replay K(ms)` and `code #11#(first..last)`.

use earshot_policy::*;
use rstest::rstest;

fn key(text: &str) -> Key {
    let mut chars = text.chars();
    let key = Key::from_char(chars.next().unwrap()).unwrap();
    assert!(chars.next().is_none(), "one key: {text}");
    key
}

fn millis(text: &str) -> Timestamp {
    Timestamp(text.parse().unwrap())
}

fn run(script: &str) -> String {
    let mut detector = KeypadCodeDetector::new();
    let mut out = Vec::new();
    for token in script.split_whitespace() {
        if let Some(at) = token.strip_prefix('~') {
            let now = millis(at);
            if let Some(deadline) = detector.poll_timeout()
                && now >= deadline
            {
                detector.handle_timeout(now);
            }
        } else if let Some(rest) = token.strip_prefix('^') {
            let (k, at) = rest.split_once('@').unwrap();
            detector.handle_key_up(millis(at), key(k));
        } else {
            let (k, times) = token.split_once('@').unwrap();
            match times.split_once('-') {
                Some((down, up)) => {
                    detector.handle_key_down(millis(down), key(k));
                    detector.handle_key_up(millis(up), key(k));
                }
                None => detector.handle_key_down(millis(times), key(k)),
            }
        }
        while let Some(action) = detector.poll_action() {
            out.push(match action {
                KeypadAction::PressKey { key } => format!("press {key}"),
                KeypadAction::ReleaseKey { key } => format!("release {key}"),
                KeypadAction::ReplayKey { key, duration_ms } => format!("replay {key}({duration_ms})"),
                KeypadAction::Code(code) => {
                    format!("code {}({}..{})", code.code, code.first_key_at.0, code.last_key_at.0)
                }
            });
        }
    }
    out.join(", ")
}

#[rstest]
// §6.2: the two codes, keyed briskly.
#[case::s6_2_pause_code("#@0-100 1@400-500 1@800-900 #@1200-1300", "code #11#(0..1200)")]
#[case::s6_2_resume_code("#@0-100 1@400-500 2@800-900 #@1200-1300", "code #12#(0..1200)")]
// §6.2: up to 3 s between keys still counts; exactly 3 s is "at most 3 s".
#[case::s6_2_pauses_under_3s("#@0-100 1@2900-3000 1@5800-5900 #@8700-8800", "code #11#(0..8700)")]
#[case::s6_2_pause_of_exactly_3s("#@0-100 1@3000-3100 1@6000-6100 #@9000-9100", "code #11#(0..9000)")]
// §6.2 / D9: a pause over 3 s breaks the code; held keys are relayed in order, then the rest passes.
#[case::s6_2_pause_over_3s_after_hash("#@0-100 1@3001-3101", "replay #(100), press 1, release 1")]
#[case::s6_2_pause_over_3s_mid_code(
    "#@0-100 1@400-500 1@4000-4100 #@4400-4500",
    "replay #(100), replay 1(100), press 1, release 1"
)]
#[case::s6_2_pause_over_3s_then_timer(
    "#@0-100 1@400-500 1@4000-4100 #@4400-4500 ~7401",
    "replay #(100), replay 1(100), press 1, release 1, replay #(100)"
)]
// D9: the timer relays what can no longer be a code, at once, and not a moment early.
#[case::d9_timer_before_window_ends("#@0-100 1@400-500 ~3400", "")]
#[case::d9_timer_relays_held_keys("#@0-100 1@400-500 ~3401", "replay #(100), replay 1(100)")]
#[case::d9_lone_hash_relayed_by_timer("#@0-80 ~3001", "replay #(80)")]
// §6.2: codes inside longer digit strings.
#[case::s6_2_code_after_digits(
    "1@0-100 2@300-400 #@600-700 1@900-1000 1@1200-1300 #@1500-1600",
    "press 1, release 1, press 2, release 2, code #11#(600..1500)"
)]
#[case::s6_2_code_before_digits(
    "#@0-100 1@300-400 2@600-700 #@900-1000 5@1200-1300",
    "code #12#(0..900), press 5, release 5"
)]
#[case::s6_2_two_codes_back_to_back(
    "#@0-50 1@100-150 1@200-250 #@300-350 #@400-450 1@500-550 2@600-650 #@700-750",
    "code #11#(0..300), code #12#(400..700)"
)]
// D9: `#` sequences that turn out not to be codes are relayed in order, at once.
#[case::d9_hash_then_digit("#@0-100 5@300-400", "replay #(100), press 5, release 5")]
#[case::d9_hash_1_3("#@0-100 1@300-400 3@600-700", "replay #(100), replay 1(100), press 3, release 3")]
#[case::d9_hash_1_1_1(
    "#@0-100 1@300-400 1@600-700 1@900-1000",
    "replay #(100), replay 1(100), replay 1(100), press 1, release 1"
)]
#[case::d9_hash_hash_then_code(
    "#@0-100 #@300-400 1@600-700 1@900-1000 #@1200-1300",
    "replay #(100), code #11#(300..1200)"
)]
#[case::d9_hash_1_hash_then_code(
    "#@0-100 1@300-400 #@600-700 1@900-1000 2@1200-1300 #@1500-1600",
    "replay #(100), replay 1(100), code #12#(600..1500)"
)]
#[case::d9_star_codes_are_not_codes(
    "*@0-100 1@300-400 1@600-700 *@900-1000",
    "press *, release *, press 1, release 1, press 1, release 1, press *, release *"
)]
#[case::d9_voicemail_pin_with_hash(
    "1@0-100 2@200-300 3@400-500 4@600-700 #@800-900 ~3801",
    "press 1, release 1, press 2, release 2, press 3, release 3, press 4, release 4, replay #(100)"
)]
// D9: other keys pass through without delay: the press is relayed before its end arrives.
#[case::d9_digit_pressed_at_once("7@0", "press 7")]
#[case::d9_digit_released_later("7@0 ^7@250", "press 7, release 7")]
// RFC 4733 repeats a key's end: repeats are ignored, for relayed, held and consumed keys alike.
#[case::s6_2_repeated_end_relayed_key("7@0-100 ^7@120 ^7@140", "press 7, release 7")]
#[case::s6_2_repeated_end_held_key(
    "#@0-100 ^#@120 ^#@140 1@300-400 ^1@420 1@600-700 #@900-1000 ^#@1020 ^#@1040",
    "code #11#(0..900)"
)]
#[case::s6_2_repeated_end_after_replay(
    "#@0-100 ^#@120 5@300-400 ^5@420 ^5@440",
    "replay #(100), press 5, release 5"
)]
// A key whose end never came is taken as ended when the next key arrives.
#[case::s6_2_lost_end_implicit("#@0 1@300 1@600 #@900", "code #11#(0..900)")]
#[case::s6_2_lost_end_relayed_digit("5@0 6@300-400", "press 5, release 5, press 6, release 6")]
// A held key still down when the window closes is pressed then; its end is relayed when it comes.
#[case::d9_held_key_still_down_at_timeout("#@0 ~3001 ^#@3500", "press #, release #")]
fn s6_2_keypad_detector(#[case] script: &str, #[case] expected: &str) {
    assert_eq!(run(script), expected);
}

/// D9: while a `#` sequence is held, the detector asks for a timer at the end of the 3 s window.
#[test]
fn d9_poll_timeout_tracks_last_held_key() {
    let mut detector = KeypadCodeDetector::new();
    assert_eq!(detector.poll_timeout(), None);
    detector.handle_key_down(Timestamp(1_000), Key::HASH);
    assert_eq!(detector.poll_timeout(), Some(Timestamp(1_000 + CODE_KEY_WINDOW_MS + 1)));
    detector.handle_key_up(Timestamp(1_100), Key::HASH);
    detector.handle_key_down(Timestamp(2_000), Key::digit(1));
    assert_eq!(detector.poll_timeout(), Some(Timestamp(2_000 + CODE_KEY_WINDOW_MS + 1)));
    assert!(detector.is_holding());
    detector.handle_key_down(Timestamp(2_500), Key::digit(4));
    assert_eq!(detector.poll_timeout(), None, "nothing held: no timer");
    assert!(!detector.is_holding());
}

#[rstest]
#[case::s6_2_key_chars("0123456789*#ABCD", true)]
#[case::s6_2_lowercase_letters("abcd", true)]
#[case::s6_2_not_keys("E", false)]
#[case::s6_2_not_keys_space(" ", false)]
fn s6_2_keys(#[case] text: &str, #[case] valid: bool) {
    assert_eq!(Key::parse_all(text).is_some(), valid);
}

#[test]
fn s6_2_key_wire_format() {
    assert_eq!(serde_json::to_string(&Key::HASH).unwrap(), r##""#""##);
    assert_eq!(serde_json::from_str::<Key>(r#""5""#).unwrap(), Key::digit(5));
    assert!(serde_json::from_str::<Key>(r#""55""#).is_err());
    assert!(serde_json::from_str::<Key>(r#""x""#).is_err());
    assert_eq!(KeypadCode::Pause.to_string(), "#11#");
    assert_eq!(KeypadCode::Resume.to_string(), "#12#");
}
