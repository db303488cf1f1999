//! The user agent's registration on a simulated clock: refreshed before it
//! runs out, tried again after a failure with a growing wait, stopped at
//! log-out.

use earshot_policy::Timestamp;
use earshot_telephony::ua::{Registration, RegistrationCommand, RegistrationState};

fn register(expires_s: u32) -> RegistrationCommand {
    RegistrationCommand::Register { expires_s }
}

#[test]
fn a_registration_is_refreshed_before_it_runs_out() {
    let mut registration = Registration::new(600);
    registration.start(Timestamp(0));
    assert_eq!(registration.poll_command(), Some(register(600)));
    assert_eq!(registration.state(), &RegistrationState::Registering);
    // The registrar grants less than asked: the refresh follows what it granted.
    registration.handle_response(200, "OK", Some(120), Timestamp(50));
    assert_eq!(registration.state(), &RegistrationState::Registered { until: Timestamp(120_050) });
    assert_eq!(registration.poll_timeout(), Some(Timestamp(60_050)));
    registration.handle_timeout(Timestamp(60_050));
    assert_eq!(registration.poll_command(), Some(register(600)));
    // Still registered while the refresh is out.
    assert!(matches!(registration.state(), RegistrationState::Registered { .. }));
    registration.handle_response(200, "OK", Some(3_600), Timestamp(60_100));
    // An hour: refreshed a minute before it runs out.
    assert_eq!(registration.poll_timeout(), Some(Timestamp(60_100 + 3_540_000)));
}

#[test]
fn a_failure_is_tried_again_later_and_later_until_it_works() {
    let mut registration = Registration::new(300);
    registration.start(Timestamp(0));
    registration.poll_command();
    let mut now = Timestamp(0);
    let mut waits = Vec::new();
    for _ in 0..8 {
        registration.handle_unreachable(now);
        let RegistrationState::Failed { status, retry_at, .. } = registration.state().clone() else {
            panic!("failed: {:?}", registration.state())
        };
        assert_eq!(status, 0);
        waits.push(retry_at.millis_since(now));
        now = retry_at;
        registration.handle_timeout(now);
        assert_eq!(registration.poll_command(), Some(register(300)));
        assert_eq!(registration.state(), &RegistrationState::Registering);
    }
    assert_eq!(waits, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
    registration.handle_response(200, "OK", None, now);
    assert!(matches!(registration.state(), RegistrationState::Registered { .. }));
    // Refused credentials wait longer: retrying soon won't change them.
    registration.handle_timeout(registration.poll_timeout().unwrap());
    registration.poll_command();
    registration.handle_response(403, "Forbidden", None, now);
    let RegistrationState::Failed { status, reason, .. } = registration.state().clone() else { panic!() };
    assert_eq!((status, reason.as_str()), (403, "Forbidden"));
}

/// Registered for 300 s at 10 ms, then logged out at 20 ms: the unregister is out.
fn registered_then_stopped() -> Registration {
    let mut registration = Registration::new(300);
    registration.start(Timestamp(0));
    registration.poll_command();
    registration.handle_response(200, "OK", Some(300), Timestamp(10));
    registration.stop(Timestamp(20));
    assert_eq!(registration.poll_command(), Some(register(0)));
    registration
}

#[test]
fn log_out_unregisters_and_nothing_is_retried() {
    let mut registration = registered_then_stopped();
    assert_eq!(registration.state(), &RegistrationState::Unregistered);
    registration.handle_response(200, "OK", Some(0), Timestamp(30));
    assert_eq!(registration.state(), &RegistrationState::Unregistered);
    assert_eq!(registration.poll_timeout(), None);
}

#[test]
fn registering_again_while_the_unregister_is_out_registers_after_it() {
    let mut registration = registered_then_stopped();
    // Logged in again before the registrar answered the unregister.
    registration.start(Timestamp(25));
    assert_eq!(registration.poll_command(), None, "one REGISTER at a time");
    registration.handle_response(200, "OK", Some(0), Timestamp(30));
    assert_eq!(registration.poll_command(), Some(register(300)));
    registration.handle_response(200, "OK", Some(300), Timestamp(40));
    assert!(matches!(registration.state(), RegistrationState::Registered { .. }));
}
