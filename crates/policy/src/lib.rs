//! Earshot's rules, as pure functions: who sees, plays and downloads which
//! call, and how a call's recording is decided and controlled (SPEC §3–§6).
//!
//! This crate is the one source of truth for those rules. The service calls
//! it on every request; the desktop app calls it on the settings it syncs.
//! It does no I/O, runs no async code and reads no clock: time is passed in.
//!
//! - [`effective_settings`]: the value of each setting for a user in an app
//!   context (§3, §4.3, D1, D2).
//! - [`Routing`] and [`Flow`]: which numbers are routed to whom, read from the
//!   call-flow trees (D6, D7); [`FlowWalk`] steps an inbound call through a flow.
//! - [`Viewer`]: visibility of a call (§4.2, D8), may play and may download
//!   (§5, D3), and the [`VisibilityFilter`] a database can execute.
//! - [`decide_recording`] and [`LiveRecording`]: recording at the start of a
//!   call (§6.1) and what `#11#` / `#12#` do to it (§6.2, D4, D5).
//! - [`KeypadCodeDetector`]: finds the codes in a leg's key presses and says
//!   which keys to relay and which to hold back (§6.2, D9).
//!
//! ```
//! use earshot_policy::*;
//!
//! let company = CompanyId(1);
//! let agent = User {
//!     id: UserId(7),
//!     company,
//!     name: "Ada".into(),
//!     email: "ada@example.com".into(),
//!     role: Role::Agent,
//!     extension: Some("107".into()),
//!     groups: vec![],
//!     settings: UserSettings::default(),
//! };
//! let support = Number {
//!     id: NumberId(3),
//!     company,
//!     e164: "+442071234567".into(),
//!     name: "Support".into(),
//!     flow: Flow::new(vec![Step::RingUser { user: agent.id, timeout_s: 20 }]),
//! };
//! let routing = Routing::from_numbers([&support]);
//! let viewer = Viewer::new(&agent, &CompanySettings::default(), &routing, AppContext::Calling);
//!
//! let missed = Call {
//!     id: CallId(1),
//!     company,
//!     direction: Direction::Inbound,
//!     status: CallStatus::Missed,
//!     started_at: Timestamp(0),
//!     answered_at: None,
//!     ended_at: Some(Timestamp(20_000)),
//!     number: Some(support.id),
//!     external_number: Some("+15550100".into()),
//!     contact: None,
//!     parties: vec![],
//!     rang: vec![agent.id],
//!     recording: None,
//!     voicemail: None,
//!     decided_by: None,
//!     recording_trace: vec![],
//!     legal_hold: None,
//! };
//! // A missed call to a number routed to the agent is visible at every level (§4.2 rule 2).
//! assert!(viewer.can_see(&missed));
//! // Answered calls to it are not, at the default level `own_and_missed`.
//! assert!(!viewer.can_see(&Call { status: CallStatus::Answered, ..missed }));
//! ```

/// Gives a fieldless enum `as_str` and `FromStr` with the same names serde uses,
/// for storing it in a database column or a query string.
macro_rules! wire_names {
    ($type:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $type {
            /// The value's name, as serde writes it.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name),+
                }
            }
        }

        impl std::str::FromStr for $type {
            type Err = crate::UnknownName;

            fn from_str(name: &str) -> Result<Self, Self::Err> {
                match name {
                    $($name => Ok(Self::$variant),)+
                    _ => Err(crate::UnknownName { kind: stringify!($type), name: name.to_owned() }),
                }
            }
        }
    };
}

/// A name that is not one of a type's values, from a `FromStr` of this crate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a {kind}")]
pub struct UnknownName {
    /// The type whose value was asked for.
    pub kind: &'static str,
    /// The name given.
    pub name: String,
}

mod access;
mod filter;
mod flow;
mod ids;
mod keypad;
mod model;
mod recording;
mod settings;

pub use access::{CallAccess, Company, ForeignRecord, RecordingAccess, Routing, Viewer};
pub use filter::{VisibilityFilter, VisibilityScope};
pub use flow::{
    AddressPart, Flow, FlowPath, FlowProblem, FlowProblemKind, FlowWalk, MAX_MENU_DEPTH, MenuChoice, Prompt,
    RingStrategy, Step, StepAddress, WalkError,
};
pub use ids::{CallId, CompanyId, ContactId, GroupId, NumberId, RecordingId, Timestamp, UserId};
pub use keypad::{
    CODE_KEY_WINDOW_MS, DetectedCode, KEY_PATTERN, Key, KeypadAction, KeypadCode, KeypadCodeDetector,
};
pub use model::{
    Call, CallStatus, Contact, Deletion, DeletionReason, Direction, Group, LegalHold, Number, PausedSpan,
    Recording, RecordingKind, Role, User,
};
pub use recording::{
    CallStart, CodeOutcome, CodeRefusal, DecidedBy, Decider, LiveRecording, NoChange, RecordSetting,
    RecordingDecision, RecordingState, TraceEntry, TraceEvent, decide_recording,
};
pub use settings::{
    AppContext, CallVisibility, CompanySettings, Effective, EffectiveSettings, PausedAudio,
    RecordingPlayback, SettingSource, UserSettings, effective_settings,
};
