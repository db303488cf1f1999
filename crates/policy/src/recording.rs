//! Recording a call (SPEC §6): the decision at the start (§6.1), what a
//! keypad code does to the recording and who may key it (§6.2, D4, D5), and
//! the recording trace that answers "why was this recorded".

use crate::flow::{FlowPath, Step, StepAddress, WalkError};
use crate::ids::{NumberId, Timestamp, UserId};
use crate::keypad::KeypadCode;
use crate::model::{Number, User};
use crate::settings::{AppContext, CompanySettings, effective_settings};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How a call's recording was decided (SPEC §2).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    /// A company setting (`record_inbound`, `record_outbound`, `record_internal`).
    Company,
    /// A call-flow `record` step. Final: keypad codes can't change it (D5).
    CallFlow,
    /// A user started a recording the company setting had off (§6.2).
    User,
}

/// Whether the call is being recorded right now.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    /// Audio is being written.
    Recording,
    /// Recording was started and is paused by `#11#`.
    Paused,
    /// Recording never started.
    Off,
}

/// The company setting that decided a call's recording.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordSetting {
    /// `record_inbound`.
    RecordInbound,
    /// `record_outbound`.
    RecordOutbound,
    /// `record_internal`.
    RecordInternal,
}

/// What decided recording at the start of a call, for the trace.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Decider {
    /// A company setting.
    Company {
        /// Which one.
        setting: RecordSetting,
    },
    /// A `record` step of a number's call flow.
    CallFlow {
        /// The number whose flow it is.
        number: NumberId,
        /// Where the step sits in the flow.
        step: StepAddress,
    },
}

/// One line of a call's recording trace.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEntry {
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    pub event: TraceEvent,
}

/// What happened to a call's recording.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TraceEvent {
    /// Recording was decided at the start of the call.
    Decided {
        /// Whether the call is recorded.
        recording: bool,
        /// What decided.
        decider: Decider,
    },
    /// A user started a recording that was off (`#12#`).
    Started {
        /// Who keyed it.
        by: UserId,
    },
    /// A user paused the recording (`#11#`).
    Paused {
        /// Who keyed it.
        by: UserId,
    },
    /// A user resumed a paused recording (`#12#`).
    Resumed {
        /// Who keyed it.
        by: UserId,
    },
    /// A user keyed a code that was refused.
    Refused {
        /// Who keyed it.
        by: UserId,
        /// The code.
        code: KeypadCode,
        /// Why it was refused.
        reason: CodeRefusal,
    },
}

/// The kind of call starting, with what the decision needs.
#[derive(Clone, Copy, Debug)]
pub enum CallStart<'a> {
    /// A call from outside to `number`, which went through its flow along `path`.
    Inbound {
        /// The number dialled.
        number: &'a Number,
        /// The path the call took through the number's flow.
        path: &'a FlowPath,
    },
    /// A call from a user to an outside number.
    Outbound,
    /// A call from one user to another.
    Internal,
}

/// How recording starts for a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingDecision {
    /// Whether the call is recorded from the start.
    pub recording: bool,
    /// What decided.
    pub decided_by: DecidedBy,
    /// The first line of the call's trace.
    pub entry: TraceEntry,
}

/// Decides at `at` whether a call is recorded from its start (SPEC §6.1).
///
/// Inbound: the last `record` step on the path the call took decides
/// (`call_flow`); with none on the path, `record_inbound` (`company`).
/// Outbound: `record_outbound`. Internal: `record_internal`.
///
/// Fails only when an inbound path does not fit the number's flow.
pub fn decide_recording(
    start: CallStart<'_>,
    company: &CompanySettings,
    at: Timestamp,
) -> Result<RecordingDecision, WalkError> {
    let by_company = |setting, recording| RecordingDecision {
        recording,
        decided_by: DecidedBy::Company,
        entry: TraceEntry {
            at,
            event: TraceEvent::Decided { recording, decider: Decider::Company { setting } },
        },
    };
    Ok(match start {
        CallStart::Inbound { number, path } => {
            let last_record_step =
                path.steps(&number.flow)?.into_iter().rev().find_map(|(address, step)| match step {
                    Step::Record { enabled } => Some((address, *enabled)),
                    _ => None,
                });
            match last_record_step {
                Some((step, recording)) => RecordingDecision {
                    recording,
                    decided_by: DecidedBy::CallFlow,
                    entry: TraceEntry {
                        at,
                        event: TraceEvent::Decided {
                            recording,
                            decider: Decider::CallFlow { number: number.id, step },
                        },
                    },
                },
                None => by_company(RecordSetting::RecordInbound, company.record_inbound),
            }
        }
        CallStart::Outbound => by_company(RecordSetting::RecordOutbound, company.record_outbound),
        CallStart::Internal => by_company(RecordSetting::RecordInternal, company.record_internal),
    })
}

/// Why a keypad code was refused; the app shows [`CodeRefusal::message`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CodeRefusal {
    /// The user's effective `recording_control` is off (D4).
    #[error("you may not pause or start recordings: recording control is off for you")]
    NoRecordingControl,
    /// The number's call flow decided recording for this call, and that is final (D5).
    #[error("this call's recording is set by the number's call flow and can't be changed from the keypad")]
    DecidedByCallFlow,
}

impl CodeRefusal {
    /// A sentence for the caller's app: the error's words (lower-case, to
    /// chain after others) as a sentence of their own.
    #[must_use]
    pub fn message(self) -> String {
        let words = self.to_string();
        let mut letters = words.chars();
        letters
            .next()
            .map_or_else(String::new, |first| format!("{}{}.", first.to_uppercase(), letters.as_str()))
    }
}

/// Why a code that was allowed changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoChange {
    /// `#11#` while already paused.
    AlreadyPaused,
    /// `#12#` while already recording.
    AlreadyRecording,
    /// `#11#` while the call was never recorded: nothing to pause.
    NotRecording,
}

/// What a keypad code does to a call's recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CodeOutcome {
    /// The recording changes state.
    Changed {
        /// The new state.
        state: RecordingState,
        /// How the recording is decided from now on.
        decided_by: DecidedBy,
        /// The trace line to add.
        entry: TraceEntry,
    },
    /// Allowed, but there was nothing to change.
    Unchanged {
        /// The state, as it was.
        state: RecordingState,
        /// Why nothing changed.
        why: NoChange,
    },
    /// Refused; the recording is as it was.
    Refused {
        /// Why, for the caller's app.
        reason: CodeRefusal,
        /// The trace line to add.
        entry: TraceEntry,
    },
}

/// The recording of a call in progress: its state, how it was decided, and its trace.
///
/// A call has one recording whatever happens to it (transfers, holds, a second
/// agent joining): keep one `LiveRecording` per call, not per leg.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRecording {
    /// Recording, paused, or off.
    pub state: RecordingState,
    /// How it was decided.
    pub decided_by: DecidedBy,
    /// Why it is (or isn't) recorded, line by line.
    pub trace: Vec<TraceEntry>,
}

impl LiveRecording {
    /// The recording of a call that starts with `decision`.
    #[must_use]
    pub fn start(decision: RecordingDecision) -> Self {
        Self {
            state: if decision.recording { RecordingState::Recording } else { RecordingState::Off },
            decided_by: decision.decided_by,
            trace: vec![decision.entry],
        }
    }

    /// What `code`, keyed at `at` by `keyed_by` (a user on the call), does
    /// (SPEC §6.2, D4, D5). Pure: apply the outcome with [`Self::apply`].
    ///
    /// Refused when the user's effective `recording_control` is off (D4), or
    /// when a call-flow `record` step decided this call (D5). Starting a
    /// recording the company setting had off marks it decided by `user`.
    #[must_use]
    pub fn on_code(
        &self,
        code: KeypadCode,
        keyed_by: &User,
        company: &CompanySettings,
        at: Timestamp,
    ) -> CodeOutcome {
        let by = keyed_by.id;
        let refuse = |reason| CodeOutcome::Refused {
            reason,
            entry: TraceEntry { at, event: TraceEvent::Refused { by, code, reason } },
        };
        // recording_control does not depend on the app context; any context gives the same value.
        let control = effective_settings(keyed_by.role, &keyed_by.settings, company, AppContext::Calling)
            .recording_control
            .value;
        if !control {
            return refuse(CodeRefusal::NoRecordingControl);
        }
        if self.decided_by == DecidedBy::CallFlow {
            return refuse(CodeRefusal::DecidedByCallFlow);
        }
        let change = |state, decided_by, event| CodeOutcome::Changed {
            state,
            decided_by,
            entry: TraceEntry { at, event },
        };
        let unchanged = |why| CodeOutcome::Unchanged { state: self.state, why };
        match (code, self.state) {
            (KeypadCode::Pause, RecordingState::Recording) => {
                change(RecordingState::Paused, self.decided_by, TraceEvent::Paused { by })
            }
            (KeypadCode::Pause, RecordingState::Paused) => unchanged(NoChange::AlreadyPaused),
            (KeypadCode::Pause, RecordingState::Off) => unchanged(NoChange::NotRecording),
            (KeypadCode::Resume, RecordingState::Paused) => {
                change(RecordingState::Recording, self.decided_by, TraceEvent::Resumed { by })
            }
            (KeypadCode::Resume, RecordingState::Off) => {
                change(RecordingState::Recording, DecidedBy::User, TraceEvent::Started { by })
            }
            (KeypadCode::Resume, RecordingState::Recording) => unchanged(NoChange::AlreadyRecording),
        }
    }

    /// Applies an outcome of [`Self::on_code`]: new state and trace line.
    pub fn apply(&mut self, outcome: &CodeOutcome) {
        match outcome {
            CodeOutcome::Changed { state, decided_by, entry } => {
                self.state = *state;
                self.decided_by = *decided_by;
                self.trace.push(entry.clone());
            }
            CodeOutcome::Refused { entry, .. } => self.trace.push(entry.clone()),
            CodeOutcome::Unchanged { .. } => {}
        }
    }
}

impl fmt::Display for Decider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Company { setting } => {
                let name = match setting {
                    RecordSetting::RecordInbound => "record_inbound",
                    RecordSetting::RecordOutbound => "record_outbound",
                    RecordSetting::RecordInternal => "record_internal",
                };
                write!(f, "company setting {name}")
            }
            Self::CallFlow { number, step } => write!(f, "call-flow record step ({step}) of number {number}"),
        }
    }
}

wire_names!(DecidedBy { Company => "company", CallFlow => "call_flow", User => "user" });
wire_names!(RecordingState { Recording => "recording", Paused => "paused", Off => "off" });
