//! `earshotd` on real sockets against SIP peers we did not write (sipp):
//! registration, internal, outbound and inbound calls through call flows,
//! voicemail, and recordings checked as a listener would (SPEC §6).
//!
//! Each test starts its own `earshotd` (fresh data dir, its own ports) and
//! drives sipp with the scenarios committed in `tests/sipp/`, baresip, and
//! the user agent the app's phone runs (`earshot_sip::phone`).

#[path = "common/postgres.rs"]
mod postgres;
#[path = "common/s3.rs"]
mod s3;

mod sip {
    mod attack;
    mod audio;
    mod bad_input;
    mod calls;
    mod instances;
    mod interop;
    mod phone;
    mod recording;
    mod support;
    mod tls;
}
