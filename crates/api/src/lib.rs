//! The transport types of Earshot's REST API (`/api/v1`, SPEC §9), shared by
//! `earshotd`, which serializes them, and the apps, which read them: the wire
//! format is written once. With the `openapi` feature each type also derives
//! its OpenAPI schema for the service's `/api/v1/openapi.json`.
//!
//! Rights are not decided here: [`CallOut::stamp`] asks `earshot-policy`, the
//! same way on both sides, so an app shows exactly what the service allows.
//!
//! ```
//! use earshot_api::{CallsQuery, Pushed};
//! use earshot_policy::{AppContext, Direction};
//!
//! let query = CallsQuery { app: Some(AppContext::Calling), direction: Some(Direction::Inbound), ..CallsQuery::default() };
//! assert_eq!(query.app, Some(AppContext::Calling));
//! let pushed: Pushed = serde_json::from_str(r#"{"version": 7, "kind": "settings"}"#).unwrap();
//! assert_eq!(pushed.version, 7);
//! ```
//!
//! **Invariant**: no I/O, no HTTP client or server; types and the policy calls
//! that stamp them.

use earshot_policy::{
    AppContext, Call, CallAccess, CallId, CallStatus, CodeRefusal, CompanyId, CompanySettings, ContactId,
    Direction, Flow, Group, GroupId, Number, NumberId, RecordingKind, RecordingState, Role, Routing, User,
    UserId, UserSettings, Viewer,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod rules;

// ---------------------------------------------------------------- session

/// `POST /api/v1/session`: log in.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogIn {
    /// E-mail address.
    pub email: String,
    /// Password.
    pub password: String,
}

/// The answer to a log-in.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    /// The bearer token for every other request. Shown once.
    pub token: String,
    /// Who logged in.
    pub user: User,
    /// When the token stops working (ms since the epoch).
    pub expires_at: i64,
}

const fn available() -> bool {
    true
}

/// `PUT /api/v1/me/availability`: whether the caller takes calls.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Availability {
    /// True: available; false: do not disturb (ring steps pass the user by).
    pub available: bool,
}

// ---------------------------------------------------------------- devices

/// `POST /api/v1/devices`: SIP credentials for this signed-in device, so
/// the app registers as a phone without a second password (SPEC §9).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceIn {
    /// What the device is called (the computer's name), for the admin.
    #[cfg_attr(feature = "openapi", schema(schema_with = rules::schema::device_name))]
    pub name: String,
}

/// The device's SIP credentials. The password is shown once: the service
/// keeps only its digest hash. They last as long as the session that asked
/// for them: a log-out, a session ended by the service, a disabled user or
/// a password change revokes them, and the device's registration with them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceCredentials {
    /// The digest user name (random; not the e-mail).
    pub sip_user: String,
    /// The digest password.
    pub password: String,
    /// The digest realm.
    pub realm: String,
    /// The address of record to register: the user's extension.
    pub extension: String,
    /// The service's SIP host, when it is not the API's host.
    pub sip_host: Option<String>,
    /// The service's SIP port (UDP and TCP).
    pub sip_port: u16,
    /// The service's SIP over TLS port, when it serves TLS: the app then
    /// registers and calls over TLS, checking the service's certificate,
    /// and its calls' media is SRTP.
    #[serde(default)]
    pub sip_tls_port: Option<u16>,
}

// ---------------------------------------------------------------- sync

/// `GET /api/v1/sync`: what every app syncs to decide rights locally.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncSnapshot {
    /// The company's version: every change of what follows bumps it.
    pub version: i64,
    /// The company.
    pub company: CompanyInfo,
    /// Company settings (SPEC §3).
    pub settings: CompanySettings,
    /// The caller, with their own settings.
    pub me: User,
    /// Everyone in the company. Admins get each user's settings; others get `settings: null`.
    pub users: Vec<DirectoryEntry>,
    /// Groups.
    pub groups: Vec<Group>,
    /// Numbers with their call flows.
    pub numbers: Vec<Number>,
}

impl SyncSnapshot {
    /// How the caller sees calls in `app`, decided by `policy` from this
    /// snapshot alone: the app's local enforcement (SPEC §7).
    #[must_use]
    pub fn viewer(&self, app: AppContext) -> Viewer {
        Viewer::new(&self.me, &self.settings, &Routing::from_numbers(&self.numbers), app)
    }
}

/// A contact: an external party the company knows by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ContactOut {
    /// Id.
    pub id: ContactId,
    /// Name.
    pub name: String,
    /// Phone numbers, E.164.
    pub numbers: Vec<String>,
}

/// A recording's waveform: `GET /recordings/{id}/peaks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Peaks {
    /// The recording's length.
    pub duration_ms: u64,
    /// Loudest sample of each slice of time, all channels, 0 (silence) to 255 (full scale).
    pub peaks: Vec<u8>,
}

// ---- administration (admins only)

/// A user as admins see them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AdminUser {
    /// The user, as the rules see them.
    #[serde(flatten)]
    pub user: User,
    /// Disabled users can't log in; their sessions ended when they were disabled.
    pub disabled: bool,
    /// Whether a SIP password is set (the password itself is never shown).
    pub has_sip_password: bool,
    /// The company number this user's outbound calls show; unset means the
    /// company's first number.
    pub caller_id: Option<NumberId>,
}

/// What an admin writes for a user: every editable field (a full replace).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct UserWrite {
    /// Display name.
    #[cfg_attr(feature = "openapi", schema(schema_with = rules::schema::name))]
    pub name: String,
    /// Log-in e-mail address.
    #[cfg_attr(feature = "openapi", schema(schema_with = rules::schema::email))]
    pub email: String,
    /// Role.
    pub role: Role,
    /// SIP extension, 2 to 8 digits.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = rules::schema::extension_or_null))]
    pub extension: Option<String>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<GroupId>,
    /// Own settings; unset means company default (agents) or not configured (D1).
    #[serde(default)]
    pub settings: UserSettings,
    /// New log-in password; required when creating, kept when omitted on update.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = rules::schema::password_or_null))]
    pub password: Option<String>,
    /// New SIP password; kept when omitted.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = rules::schema::password_or_null))]
    pub sip_password: Option<String>,
    /// Disabled users can't log in; kept when omitted.
    #[serde(default)]
    pub disabled: Option<bool>,
    /// The company number (id) outbound calls show as caller ID; unset means
    /// the company's first number.
    #[serde(default)]
    pub caller_id: Option<NumberId>,
}

/// A group and its members.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct GroupWithMembers {
    /// The group.
    #[serde(flatten)]
    pub group: Group,
    /// Its members.
    pub members: Vec<UserId>,
}

/// What an admin writes for a group.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct GroupWrite {
    /// Display name.
    #[cfg_attr(feature = "openapi", schema(schema_with = rules::schema::name))]
    pub name: String,
    /// Members.
    #[serde(default)]
    pub members: Vec<UserId>,
}

/// What an admin writes for a number.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NumberWrite {
    /// The number, E.164.
    #[cfg_attr(feature = "openapi", schema(schema_with = rules::schema::e164))]
    pub e164: String,
    /// Display name.
    #[cfg_attr(feature = "openapi", schema(schema_with = rules::schema::name))]
    pub name: String,
    /// The call flow.
    pub flow: Flow,
}

/// What an admin writes for a contact.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ContactWrite {
    /// Name.
    #[cfg_attr(feature = "openapi", schema(schema_with = rules::schema::name))]
    pub name: String,
    /// Phone numbers, E.164.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = rules::schema::e164_list))]
    pub numbers: Vec<String>,
}

/// One line of the audit log.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuditEntry {
    /// Id.
    pub id: i64,
    /// Who; `null` for the service itself (a deletion under the company's retention).
    pub user: Option<i64>,
    /// `play`, `download`, `delete` (a recording or voicemail deleted), `hold`
    /// (a legal hold placed on the call) or `release` (the hold lifted).
    pub action: String,
    /// Which recording; `null` for a hold on a call without one.
    pub recording: Option<i64>,
    /// Of which call.
    pub call: i64,
    /// When (ms since the epoch).
    pub at: i64,
    /// From which address.
    pub remote_addr: Option<String>,
    /// With which program.
    pub user_agent: Option<String>,
    /// The call, as a reader of the log needs it to know which call it was;
    /// `None` when the call is no longer kept.
    pub call_summary: Option<AuditCall>,
}

/// The call an audit entry is about, in brief.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuditCall {
    /// `inbound`, `outbound` or `internal`.
    pub direction: String,
    /// When it started (ms since the epoch).
    pub started_at: i64,
    /// The outside party's number, for inbound and outbound calls.
    pub external_number: Option<String>,
    /// The users on the call.
    pub parties: Vec<i64>,
}

// ---- analytics (SPEC §4.3): `GET /analytics/summary`

/// Counts and times of a set of calls.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Totals {
    /// Calls.
    pub calls: i64,
    /// Answered calls.
    pub answered: i64,
    /// Talk time of answered calls, ms.
    pub talk_ms: i64,
    /// Answered calls with a recording.
    pub recorded: i64,
}

/// A group of calls and its totals.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Row {
    /// The user's or group's id.
    pub key: i64,
    /// The totals.
    #[serde(flatten)]
    pub totals: Totals,
}

/// The summary.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Summary {
    /// The range summarised.
    pub from: i64,
    /// The range's end (exclusive).
    pub to: i64,
    /// All visible calls in the range.
    #[serde(flatten)]
    pub totals: Totals,
    /// Answered / (answered + missed + voicemail + unanswered); null when there are no calls.
    pub answered_rate: Option<f64>,
    /// Average talk time of answered calls, ms; null when none were answered.
    pub average_talk_ms: Option<i64>,
    /// Recorded / answered; null when none were answered.
    pub recorded_share: Option<f64>,
    /// Calls by direction.
    pub by_direction: BTreeMap<String, i64>,
    /// Calls by status.
    pub by_status: BTreeMap<String, i64>,
    /// Per UTC day (`YYYY-MM-DD`), by direction and status.
    pub per_day: Vec<Day>,
    /// Per user (as a party).
    pub per_user: Vec<Row>,
    /// Per group (a member was a party).
    pub per_group: Vec<Row>,
}

/// One UTC day.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Calls by direction.
    pub by_direction: BTreeMap<String, i64>,
    /// Calls by status.
    pub by_status: BTreeMap<String, i64>,
}

/// The company's id and name.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompanyInfo {
    /// Id.
    pub id: CompanyId,
    /// Name.
    pub name: String,
}

/// A user as others see them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DirectoryEntry {
    /// Id.
    pub id: UserId,
    /// Name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Role.
    pub role: Role,
    /// SIP extension.
    pub extension: Option<String>,
    /// Takes calls now (false: "Do not disturb").
    #[serde(default = "available")]
    pub available: bool,
    /// Groups.
    pub groups: Vec<GroupId>,
    /// Own settings, for admins only.
    pub settings: Option<UserSettings>,
}

// ---------------------------------------------------------------- calls

/// Query of `GET /api/v1/calls` and `GET /api/v1/contacts/{id}/calls`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[serde(deny_unknown_fields)]
pub struct CallsQuery {
    /// App context the rights are decided in (default `dashboard`).
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<AppContext>,
    /// Where the previous page ended (`next_cursor` of the last answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Calls per page, 1 to 200 (default 50).
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only this direction.
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Only this status.
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<CallStatus>,
    /// Only calls started at or after this time (ms since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    /// Only calls started before this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    /// Only calls this user was a party of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<i64>,
    /// Only calls of this company number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<i64>,
    /// Only calls a member of this group was a party of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<i64>,
    /// Only calls with this contact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<i64>,
    /// Only calls with (true) or without (false) a recording or voicemail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_recording: Option<bool>,
    /// Free text, matched in external numbers and contact names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
}

/// Query of `GET /api/v1/calls/{id}`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[serde(deny_unknown_fields)]
pub struct AppQuery {
    /// App context (default `dashboard`).
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<AppContext>,
}

/// A call as a user gets it: the call, and what they may do with its recordings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallOut {
    /// The call.
    #[serde(flatten)]
    pub call: Call,
    /// May play its recording (or voicemail): the UI shows a player.
    pub can_play: bool,
    /// May download it as `.wav`.
    pub can_download: bool,
    /// The same, per recording kind.
    pub access: CallAccess,
}

impl CallOut {
    /// `call` stamped with what `viewer` may do with it (SPEC §5), by `policy`.
    /// The service stamps what it sends; an app re-stamps what it cached when
    /// the rules change (SPEC §7).
    #[must_use]
    pub fn stamp(viewer: &Viewer, call: Call) -> Self {
        let access = viewer.access(&call);
        Self {
            can_play: access.recording.play || access.voicemail.play,
            can_download: access.recording.download || access.voicemail.download,
            access,
            call,
        }
    }
}

/// `PUT /api/v1/calls/{id}/legal-hold`: place or lift a legal hold.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LegalHoldIn {
    /// True: hold the call's recordings (kept whatever the retention, not
    /// deleted on request); false: lift the hold.
    pub held: bool,
}

/// What `DELETE /api/v1/contacts/{id}/recordings` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeletedRecordings {
    /// Recordings and voicemails deleted.
    pub deleted: u64,
    /// The contact's calls whose recordings a legal hold kept.
    pub held_calls: Vec<CallId>,
}

/// A page of calls, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallPage {
    /// The calls.
    pub calls: Vec<CallOut>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

// ---------------------------------------------------------------- recordings

/// The file name a download is saved as: date, time, direction, other party.
#[must_use]
pub fn download_name(call: &Call, kind: RecordingKind) -> String {
    let seconds = call.started_at.0.div_euclid(1000);
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let party: String = call
        .external_number
        .as_deref()
        .unwrap_or("internal")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '+')
        .collect();
    let suffix = if kind == RecordingKind::Voicemail { "-voicemail" } else { "" };
    format!(
        "earshot-{year:04}-{month:02}-{day:02}-{:02}{:02}-{}-{party}{suffix}.wav",
        rest / 3600,
        rest % 3600 / 60,
        call.direction.as_str()
    )
}

/// `YYYY-MM-DD` (UTC) of a time in ms since the epoch.
#[must_use]
pub fn date(at_ms: i64) -> String {
    let (year, month, day) = civil_from_days(at_ms.div_euclid(86_400_000));
    format!("{year:04}-{month:02}-{day:02}")
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

// ---------------------------------------------------------------- events

/// What changed (`GET /api/v1/events`, SPEC §7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// Company settings.
    Settings,
    /// Users (including their own settings and groups).
    Users,
    /// Groups.
    Groups,
    /// Numbers or their call flows.
    Numbers,
    /// Contacts.
    Contacts,
    /// A call was added or changed.
    Call {
        /// Which call.
        call: CallId,
    },
    /// A live call's recording changed state (SPEC §6.2); sent to its parties.
    RecordingState {
        /// Who gets it (the service's routing; not sent).
        #[serde(skip)]
        to: Vec<UserId>,
        /// The live call's key (it has no id until it is stored).
        call: String,
        /// Recording, paused or off.
        state: RecordingState,
    },
    /// A keypad code was refused (SPEC §6.2); sent to the user who keyed it.
    RecordingRefused {
        /// Who gets it (not sent).
        #[serde(skip)]
        to: Vec<UserId>,
        /// The live call's key.
        call: String,
        /// Why.
        reason: CodeRefusal,
        /// Why, in a sentence for the app.
        detail: String,
    },
}

impl Change {
    /// The users this change is for, when it is not for the whole company.
    #[must_use]
    pub fn recipients(&self) -> Option<&[UserId]> {
        match self {
            Self::RecordingState { to, .. } | Self::RecordingRefused { to, .. } => Some(to),
            _ => None,
        }
    }

    /// Whether the change can alter who sees or plays what: settings, users,
    /// groups and routing (SPEC §7). An app re-syncs and re-filters on these.
    #[must_use]
    pub const fn changes_rights(&self) -> bool {
        matches!(self, Self::Settings | Self::Users | Self::Groups | Self::Numbers)
    }
}

/// One pushed change, as `data:` of a server-sent event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pushed {
    /// The company's version after the change.
    pub version: i64,
    /// What changed.
    #[serde(flatten)]
    pub change: Change,
}

#[cfg(test)]
mod tests {
    use super::{CallsQuery, Change, Pushed};
    use earshot_policy::{CallStatus, RecordingState};

    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_416), (2025, 11, 24));
        assert_eq!(super::civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn a_query_serializes_only_what_is_set() {
        let query = CallsQuery { status: Some(CallStatus::Missed), limit: Some(20), ..CallsQuery::default() };
        assert_eq!(serde_json::to_string(&query).unwrap(), r#"{"limit":20,"status":"missed"}"#);
    }

    #[test]
    fn pushed_changes_read_as_sent_and_recipients_stay_on_the_service() {
        let pushed = Pushed {
            version: 3,
            change: Change::RecordingState {
                to: vec![earshot_policy::UserId(1)],
                call: "k".into(),
                state: RecordingState::Paused,
            },
        };
        let text = serde_json::to_string(&pushed).unwrap();
        assert_eq!(text, r#"{"version":3,"kind":"recording_state","call":"k","state":"paused"}"#);
        let back: Pushed = serde_json::from_str(&text).unwrap();
        assert_eq!(back.change.recipients(), Some(&[][..]));
        assert!(Change::Settings.changes_rights() && !Change::Contacts.changes_rights());
    }
}
