//! Tests that prove `earshot-policy` follows SPEC §3–§6 and decisions D1–D9.
//!
//! One test binary, a module per topic. Every case names the SPEC section or
//! decision it checks: `s4_2_…` is §4.2, `d3_…` is D3.

mod rules {
    pub mod fixture;

    mod codes;
    mod effective;
    mod flows;
    mod keypad;
    mod laws;
    mod playback;
    mod recording_start;
    mod visibility;
}
