//! The model of SPEC §2: roles, users, groups, numbers, contacts, calls and
//! recordings. Plain data with serde, shared by the service and the app.

use crate::flow::Flow;
use crate::ids::{CallId, CompanyId, ContactId, GroupId, NumberId, RecordingId, Timestamp, UserId};
use crate::recording::{DecidedBy, TraceEntry};
use crate::settings::UserSettings;
use serde::{Deserialize, Serialize};

/// What a user is in their company.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees, plays and downloads everything in the company; manages it.
    Admin,
    /// Rights configured per user (D1).
    Supervisor,
    /// Rights configured per user (D1).
    Analyst,
    /// Rights from their own settings, else the company's.
    Agent,
}

impl Role {
    /// Every role.
    pub const ALL: [Self; 4] = [Self::Admin, Self::Supervisor, Self::Analyst, Self::Agent];
}

/// A user of a company.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// The company the user belongs to.
    pub company: CompanyId,
    /// Display name.
    pub name: String,
    /// Log-in e-mail address.
    pub email: String,
    /// Role.
    pub role: Role,
    /// SIP extension, when the user has a phone.
    pub extension: Option<String>,
    /// Groups the user belongs to.
    pub groups: Vec<GroupId>,
    /// The user's own settings.
    pub settings: UserSettings,
}

/// A set of users: a ring group or a team.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Group {
    /// The group's id.
    pub id: GroupId,
    /// The company the group belongs to.
    pub company: CompanyId,
    /// Display name.
    pub name: String,
}

/// A company phone number and its call flow.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Number {
    /// The number's id.
    pub id: NumberId,
    /// The company the number belongs to.
    pub company: CompanyId,
    /// The number in E.164 form, e.g. `+442071234567`.
    pub e164: String,
    /// Display name, e.g. "Support line".
    pub name: String,
    /// What an inbound call to this number goes through.
    pub flow: Flow,
}

/// An external party the company knows by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The contact's id.
    pub id: ContactId,
    /// The company the contact belongs to.
    pub company: CompanyId,
    /// Display name.
    pub name: String,
    /// The contact's phone numbers in E.164 form.
    pub numbers: Vec<String>,
}

/// Which way a call went.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From outside to a company number.
    Inbound,
    /// From a user to an outside number.
    Outbound,
    /// From one user to another.
    Internal,
}

impl Direction {
    /// Every direction.
    pub const ALL: [Self; 3] = [Self::Inbound, Self::Outbound, Self::Internal];
}

/// How a call ended.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Somebody answered.
    Answered,
    /// Inbound, nobody answered, no message left.
    Missed,
    /// Inbound, nobody answered, the caller left a message.
    Voicemail,
    /// Outbound or internal, nobody picked up.
    Unanswered,
}

impl CallStatus {
    /// Every status.
    pub const ALL: [Self; 4] = [Self::Answered, Self::Missed, Self::Voicemail, Self::Unanswered];

    /// The statuses of §4.2 rule 2, for a database filter.
    pub const MISSED_OR_VOICEMAIL: [Self; 2] = [Self::Missed, Self::Voicemail];

    /// Whether a call of `direction` can end this way (SPEC §2): `missed` and
    /// `voicemail` are for inbound calls, `unanswered` for outbound and internal
    /// ones, `answered` for any.
    #[must_use]
    pub const fn fits(self, direction: Direction) -> bool {
        match self {
            Self::Answered => true,
            Self::Missed | Self::Voicemail => matches!(direction, Direction::Inbound),
            Self::Unanswered => !matches!(direction, Direction::Inbound),
        }
    }

    /// Missed and voicemail calls are shown to everyone the number is routed to (§4.2 rule 2).
    #[must_use]
    pub const fn is_missed_or_voicemail(self) -> bool {
        matches!(self, Self::Missed | Self::Voicemail)
    }
}

/// What a recording holds.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingKind {
    /// The conversation (stereo: left our user, right the other party).
    Call,
    /// A message the caller left.
    Voicemail,
}

/// A span of a recording paused by `#11#`, in milliseconds of the
/// recording's timeline. With `paused_audio = silence` the file holds
/// silence from `start_ms` to `end_ms`; with `skip` the span was cut out:
/// `start_ms = end_ms`, the point where it was, and `cut_ms` says how long
/// it lasted.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PausedSpan {
    /// Where the pause began, in milliseconds from the start of the recording.
    pub start_ms: u64,
    /// Where the recording resumed (or the call ended).
    pub end_ms: u64,
    /// How much of the call was cut out here (`skip`); 0 when the span is
    /// in the file as silence.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cut_ms: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if takes a reference
const fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// A recording or voicemail of a call: WAV, PCM 16-bit, 8 kHz
/// ([`Recording::SAMPLE_RATE`]); calls in stereo (left our user, right the
/// other party), voicemails in mono.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    /// The recording's id.
    pub id: RecordingId,
    /// The call it belongs to.
    pub call: CallId,
    /// Call recording or voicemail.
    pub kind: RecordingKind,
    /// Length in milliseconds.
    pub duration_ms: u64,
    /// Size of the WAV file in bytes.
    pub size_bytes: u64,
    /// Spans paused by keypad codes.
    pub paused_spans: Vec<PausedSpan>,
    /// Set once the recording is deleted (its file is gone; the call stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Deletion>,
}

/// Why a recording was deleted.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionReason {
    /// It was older than the company keeps recordings (`recording_retention_days`).
    Retention,
    /// An admin deleted it on request (a contact's recordings).
    Request,
}

/// When, by whom and why a recording was deleted.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    /// When.
    pub at: Timestamp,
    /// Who: the admin; `null` for the service itself (retention).
    pub by: Option<UserId>,
    /// Why.
    pub reason: DeletionReason,
}

/// A legal hold on a call: its recordings are kept, whatever the retention,
/// and cannot be deleted on request, until the hold is released.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalHold {
    /// The admin who placed it.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
}

impl Recording {
    /// Samples per second of every recording.
    pub const SAMPLE_RATE: u32 = 8_000;
    /// Bits per sample of every recording.
    pub const BITS_PER_SAMPLE: u16 = 16;

    /// Channels of a recording of `kind`: 2 for a call, 1 for a voicemail.
    #[must_use]
    pub const fn channels(kind: RecordingKind) -> u16 {
        match kind {
            RecordingKind::Call => 2,
            RecordingKind::Voicemail => 1,
        }
    }
}

/// A call in the history (SPEC §2).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// The call's id.
    pub id: CallId,
    /// The company the call belongs to.
    pub company: CompanyId,
    /// Which way it went.
    pub direction: Direction,
    /// How it ended.
    pub status: CallStatus,
    /// When it started.
    pub started_at: Timestamp,
    /// When it was answered, if it was.
    pub answered_at: Option<Timestamp>,
    /// When it ended.
    pub ended_at: Option<Timestamp>,
    /// The company number used: inbound the number dialled, outbound the caller ID, internal none.
    pub number: Option<NumberId>,
    /// The external party's number (E.164), for inbound and outbound calls.
    pub external_number: Option<String>,
    /// The external party's contact, when known.
    pub contact: Option<ContactId>,
    /// Users on the call: the agent who placed or answered it; both users of an internal call.
    pub parties: Vec<UserId>,
    /// Users whose phones rang.
    pub rang: Vec<UserId>,
    /// The call's recording, if any.
    pub recording: Option<Recording>,
    /// The voicemail left, if any.
    pub voicemail: Option<Recording>,
    /// How the recording was decided, when recording was decided at all.
    pub decided_by: Option<DecidedBy>,
    /// Why the call was recorded: the decision at the start, then each start, pause and resume.
    pub recording_trace: Vec<TraceEntry>,
    /// A legal hold on the call, while there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_hold: Option<LegalHold>,
}

impl Call {
    /// The call's recording of `kind`, if it has one (deleted or not).
    #[must_use]
    pub const fn recording_of(&self, kind: RecordingKind) -> Option<&Recording> {
        match kind {
            RecordingKind::Call => self.recording.as_ref(),
            RecordingKind::Voicemail => self.voicemail.as_ref(),
        }
    }

    /// The call's recording of `kind` if there is one to play: it exists and
    /// is not deleted.
    #[must_use]
    pub fn audio_of(&self, kind: RecordingKind) -> Option<&Recording> {
        self.recording_of(kind).filter(|recording| recording.deleted.is_none())
    }
}

wire_names!(Role { Admin => "admin", Supervisor => "supervisor", Analyst => "analyst", Agent => "agent" });
wire_names!(Direction { Inbound => "inbound", Outbound => "outbound", Internal => "internal" });
wire_names!(CallStatus {
    Answered => "answered",
    Missed => "missed",
    Voicemail => "voicemail",
    Unanswered => "unanswered",
});
wire_names!(RecordingKind { Call => "call", Voicemail => "voicemail" });
wire_names!(DeletionReason { Retention => "retention", Request => "request" });
