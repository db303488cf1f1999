//! Earshot's telephony pieces, shared by the service (`earshotd`) and the
//! desktop app's phone.
//!
//! [`sdp`] offers and answers one G.711 audio stream with RFC 4733 events;
//! [`rtp`] parses packets and keeps one clean outgoing stream per leg;
//! [`g711`] (PCMU and PCMA through `audio-codec`); [`dtmf`], RFC 4733 telephone events in and key presses out, fed
//! to `policy`'s keypad-code detector per user leg; the [`Recorder`], a sans-IO tap on a call's media path that lines
//! up both parties' audio by RTP timestamp and arrival and leaves out what
//! was said while recording was paused (SPEC §6.2), and [`wav`], which
//! writes recordings so that a crash leaves a playable file, and repairs one
//! left by a crash. [`jitter`] buffers and conceals what a phone receives,
//! and [`playout`] decides when the phone plays each frame of it.
//! [`quality`] estimates how a call sounds (the E-model);
//! [`srtp`] protects a leg's media with SDES-keyed SRTP where its signalling is TLS.
//!
//! ```
//! use earshot_policy::{PausedAudio, Timestamp};
//! use earshot_telephony::{Channel, Recorder};
//!
//! let mut recorder = Recorder::new(PausedAudio::Silence);
//! // 20 ms of audio from each side, arriving at the same moment.
//! recorder.push(Channel::Ours, 1_000, &[100; 160], Timestamp(0));
//! recorder.push(Channel::Theirs, 9_000, &[-100; 160], Timestamp(0));
//! let frames = recorder.finish();
//! assert_eq!(frames.len(), 160);
//! assert_eq!(frames[0], [100, -100]);
//! ```

pub mod dtmf;
pub mod endpoint;
pub mod g711;
pub mod jitter;
pub mod leg;
pub mod playout;
pub mod plc;
pub mod quality;
mod recorder;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod sealed;
pub mod sim;
pub mod srtp;
pub mod ua;
pub mod wav;

pub use recorder::{Channel, Recorder, RecorderStats, SAMPLES_PER_MS, SpanSoFar};
