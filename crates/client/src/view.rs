//! What the ui shows, as plain data: the types that cross to the ui as JSON
//! (their TypeScript twins in `ui/src/lib/generated.ts` are generated from
//! them by ts-rs, and a test fails when they drift), and the pure functions
//! that make them from a call and the synced snapshot. No rule is decided
//! here: every right shown was stamped by `earshot-policy`.

use crate::error::ClientError;
use crate::history::other_party;
use earshot_api::{
    AdminUser, AuditEntry, CallOut, CallsQuery, ContactOut, ContactWrite, GroupWithMembers, GroupWrite,
    NumberWrite, Summary, SyncSnapshot, Totals, UserWrite,
};
use earshot_policy::{
    CallStatus, CompanySettings, Decider, Direction, EffectiveSettings, Number, RecordSetting, RecordingKind,
    Role, TraceEntry, TraceEvent, UserId,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ts_rs::TS;

/// The signed-in user, for the ui's header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct Me {
    /// The server.
    pub server: String,
    /// E-mail.
    pub email: String,
    /// Name.
    pub name: String,
    /// Role (`admin`, `supervisor`, `analyst`, `agent`).
    pub role: String,
    /// The company's name.
    pub company: String,
}

/// The server and e-mail of the last log-in (not secret: kept in a file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct LastLogin {
    /// The server.
    pub server: String,
    /// E-mail.
    pub email: String,
}

/// One line of the history list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct CallRow {
    /// The call's id.
    pub id: i64,
    /// `inbound`, `outbound` or `internal`.
    pub direction: String,
    /// `answered`, `missed`, `voicemail` or `unanswered`.
    pub status: String,
    /// When it started, ms since the epoch.
    pub started_at: i64,
    /// How long it was answered, when it was.
    pub duration_ms: Option<i64>,
    /// The external number, or the other user of an internal call.
    pub other_party: String,
    /// The name of the contact the external number belongs to, when known.
    pub contact: Option<String>,
    /// The company number used, E.164.
    pub number: Option<String>,
    /// It has a recording or voicemail.
    pub has_recording: bool,
    /// The user may play it (a player is shown).
    pub can_play: bool,
    /// The user may download it.
    pub can_download: bool,
}

/// The filters of a history list; every one optional, all of them together.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[ts(optional_fields)]
pub struct HistoryFilter {
    /// `inbound`, `outbound` or `internal`.
    pub direction: Option<String>,
    /// `answered`, `missed`, `voicemail` or `unanswered`.
    pub status: Option<String>,
    /// Started at or after, ms since the epoch.
    pub from: Option<i64>,
    /// Started before, ms since the epoch.
    pub to: Option<i64>,
    /// A user who was a party.
    pub user: Option<i64>,
    /// The company number used.
    pub number: Option<i64>,
    /// A group one of whose members was a party.
    pub group: Option<i64>,
    /// The contact the call was with.
    pub contact: Option<i64>,
    /// With (true) or without (false) a recording or voicemail.
    pub has_recording: Option<bool>,
    /// Text in the external number or the contact's name.
    pub search: Option<String>,
}

impl HistoryFilter {
    /// The same filter with empty text treated as no text, so equal filters
    /// share one cached history.
    #[must_use]
    pub fn normalized(mut self) -> Self {
        self.search = self.search.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        self
    }

    /// Whether nothing is filtered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The service query for these filters (no app, cursor or limit yet).
    pub fn query(&self) -> Result<CallsQuery, ClientError> {
        let invalid =
            |what: &str, value: &str| ClientError::Invalid { detail: format!("{value:?} is not a {what}.") };
        Ok(CallsQuery {
            direction: self
                .direction
                .as_deref()
                .map(|d| d.parse::<Direction>().map_err(|_| invalid("direction", d)))
                .transpose()?,
            status: self
                .status
                .as_deref()
                .map(|s| s.parse::<CallStatus>().map_err(|_| invalid("call status", s)))
                .transpose()?,
            from: self.from,
            to: self.to,
            user: self.user,
            number: self.number,
            group: self.group,
            contact: self.contact,
            has_recording: self.has_recording,
            q: self.search.clone(),
            ..CallsQuery::default()
        })
    }
}

/// A stretch of the history list: the rows from `offset`, for a virtualized
/// list that asks only for what is on screen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct HistoryWindow {
    /// Where `calls` start in the list.
    pub offset: u32,
    /// The rows.
    pub calls: Vec<CallRow>,
    /// Calls loaded so far (the list's length until `complete`).
    pub loaded: u32,
    /// Every page has been loaded.
    pub complete: bool,
}

/// Something named, for pickers and labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct Named {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
}

/// Who and what a history can be filtered by, from the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct Directory {
    /// Users.
    pub users: Vec<Named>,
    /// Groups.
    pub groups: Vec<Named>,
    /// Company numbers, named "Support line (+44…)".
    pub numbers: Vec<Named>,
}

/// A recording of a call as the details show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct RecordingView {
    /// `call` or `voicemail`.
    pub kind: String,
    /// Length, ms.
    pub duration_ms: u64,
    /// Size of the WAV, bytes.
    pub size_bytes: u64,
    /// Spans paused by `#11#`, `[start_ms, end_ms, cut_ms]`: silent from
    /// start to end, or (`paused_audio = skip`) cut out at start = end,
    /// `cut_ms` long.
    pub paused_spans: Vec<(u64, u64, u64)>,
    /// The player is shown.
    pub can_play: bool,
    /// The download button is shown.
    pub can_download: bool,
    /// The name a save dialog proposes.
    pub file_name: String,
    /// When it is deleted: when, by whom and why, in words (no player then).
    pub deleted: Option<String>,
}

/// One line of "why was this recorded".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct TraceLine {
    /// When, ms since the epoch.
    pub at: i64,
    /// What happened, in words.
    pub text: String,
}

/// An opened call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct CallDetails {
    /// As in the list.
    pub row: CallRow,
    /// When it was answered.
    pub answered_at: Option<i64>,
    /// When it ended.
    pub ended_at: Option<i64>,
    /// The company number, named.
    pub number_name: Option<String>,
    /// The contact, when known.
    pub contact: Option<Named>,
    /// The users on the call.
    pub parties: Vec<String>,
    /// The users whose phones rang.
    pub rang: Vec<String>,
    /// The recording and the voicemail, those it has.
    pub recordings: Vec<RecordingView>,
    /// Why it was (not) recorded, oldest first; empty when recording was never decided.
    pub trace: Vec<TraceLine>,
    /// The legal hold on the call, in words ("On legal hold since … (Alex Admin)").
    pub legal_hold: Option<String>,
}

/// Where the player is, sent as it plays.
#[derive(Clone, Debug, PartialEq, Serialize, TS)]
pub struct PlayerState {
    /// The call.
    pub call: i64,
    /// `call` or `voicemail`.
    pub kind: String,
    /// Where the player is.
    #[serde(flatten)]
    pub status: crate::player::Status,
}

/// What the ui asks the player to do.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, TS)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum PlayerCommand {
    /// Play from where it is.
    Play,
    /// Pause.
    Pause,
    /// Move to `position_ms`.
    Seek {
        /// Where.
        position_ms: u64,
    },
    /// Play at `speed` (0.5 to 2).
    Speed {
        /// How fast.
        speed: f64,
    },
    /// Close the player.
    Stop,
}

/// The app's own settings, kept on this computer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct AppSettings {
    /// The output device's id; the system default when `None`.
    pub output_device: Option<String>,
    /// How calls sound: microphone, speaker, processing.
    pub call_audio: crate::call_audio::AudioSettings,
    /// After how many minutes a paused recording reminds the agent (0: never).
    pub pause_reminder_min: u32,
    /// `system`, `light` or `dark`.
    pub theme: Theme,
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            output_device: None,
            call_audio: crate::call_audio::AudioSettings::default(),
            pause_reminder_min: 2,
            theme: Theme::default(),
        }
    }
}

/// The colour theme.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    /// Follow the system.
    #[default]
    System,
    /// Light.
    Light,
    /// Dark.
    Dark,
}

/// What the app tells the ui without being asked.
#[derive(Clone, Debug, PartialEq, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AppEvent {
    /// The history of these app contexts changed (a new call, or rights
    /// changed and calls were re-decided): ask for the window again.
    HistoryChanged {
        /// `removed` calls are gone; the ui closes them if open.
        removed: Vec<i64>,
    },
    /// The player moved.
    Player {
        /// Where it is.
        state: PlayerState,
    },
    /// A download moved.
    Download {
        /// The call.
        call: i64,
        /// Bytes written.
        written: u64,
        /// Bytes in all, when known.
        total: Option<u64>,
    },
    /// The push connection to the service dropped or came back.
    Connection {
        /// Connected now.
        online: bool,
        /// What happened, when offline.
        message: Option<String>,
    },
    /// The session ended (revoked, expired): back to log-in.
    SessionEnded {
        /// The service's words.
        message: String,
    },
    /// The phone or one of its calls moved.
    Phone {
        /// The whole phone now.
        phone: crate::softphone::PhoneView,
    },
    /// A `tel:`/`sip:` link asks for this number in the dial pad.
    DialRequest {
        /// The number, cleaned.
        number: String,
    },
    /// The level meter's microphone, over the last tenth of a second.
    MicrophoneLevel {
        /// The loudest sample, dB below full scale.
        peak_dbfs: f64,
        /// The average level, dB below full scale.
        rms_dbfs: f64,
    },
}

/// Counts of calls, by direction and by status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, TS)]
pub struct Breakdown {
    /// Inbound calls.
    pub inbound: i64,
    /// Outbound calls.
    pub outbound: i64,
    /// Internal calls.
    pub internal: i64,
    /// Answered calls.
    pub answered: i64,
    /// Missed calls.
    pub missed: i64,
    /// Calls that went to voicemail.
    pub voicemail: i64,
    /// Calls nobody answered (outbound and internal).
    pub unanswered: i64,
}

impl Breakdown {
    fn of(by_direction: &BTreeMap<String, i64>, by_status: &BTreeMap<String, i64>) -> Self {
        let n = |map: &BTreeMap<String, i64>, key: &str| map.get(key).copied().unwrap_or_default();
        Self {
            inbound: n(by_direction, "inbound"),
            outbound: n(by_direction, "outbound"),
            internal: n(by_direction, "internal"),
            answered: n(by_status, "answered"),
            missed: n(by_status, "missed"),
            voicemail: n(by_status, "voicemail"),
            unanswered: n(by_status, "unanswered"),
        }
    }
}

/// One day of the analytics chart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct DayView {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Its calls.
    pub calls: Breakdown,
}

/// A user's or group's line in the analytics tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct TotalsRow {
    /// The user or group.
    pub name: String,
    /// Calls.
    pub calls: i64,
    /// Answered calls.
    pub answered: i64,
    /// Talk time, ms.
    pub talk_ms: i64,
    /// Answered calls recorded.
    pub recorded: i64,
}

/// The analytics screen: the calls the user may see in the `analytics`
/// context (SPEC §4.3), summed by the service.
#[derive(Clone, Debug, PartialEq, Serialize, TS)]
pub struct Analytics {
    /// Range start, ms.
    pub from: i64,
    /// Range end (exclusive), ms.
    pub to: i64,
    /// Every call in the range, with the totals.
    pub total: TotalsRow,
    /// Answered share of all calls.
    pub answered_rate: Option<f64>,
    /// Average talk time, ms.
    pub average_talk_ms: Option<i64>,
    /// Recorded share of answered calls.
    pub recorded_share: Option<f64>,
    /// By direction and status.
    pub calls: Breakdown,
    /// Per UTC day.
    pub per_day: Vec<DayView>,
    /// Per user, most calls first.
    pub per_user: Vec<TotalsRow>,
    /// Per group, most calls first.
    pub per_group: Vec<TotalsRow>,
}

/// The analytics view of a summary, users and groups named from the snapshot.
#[must_use]
pub fn analytics(summary: &Summary, snapshot: &SyncSnapshot) -> Analytics {
    let line = |name: String, t: &Totals| TotalsRow {
        name,
        calls: t.calls,
        answered: t.answered,
        talk_ms: t.talk_ms,
        recorded: t.recorded,
    };
    let mut per_user: Vec<TotalsRow> =
        summary.per_user.iter().map(|row| line(user_name(snapshot, UserId(row.key)), &row.totals)).collect();
    per_user.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.name.cmp(&b.name)));
    let group_name = |id: i64| {
        snapshot
            .groups
            .iter()
            .find(|g| g.id.0 == id)
            .map_or_else(|| format!("group {id}"), |g| g.name.clone())
    };
    let mut per_group: Vec<TotalsRow> =
        summary.per_group.iter().map(|row| line(group_name(row.key), &row.totals)).collect();
    per_group.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.name.cmp(&b.name)));
    Analytics {
        from: summary.from,
        to: summary.to,
        total: line("All calls".into(), &summary.totals),
        answered_rate: summary.answered_rate,
        average_talk_ms: summary.average_talk_ms,
        recorded_share: summary.recorded_share,
        calls: Breakdown::of(&summary.by_direction, &summary.by_status),
        per_day: summary
            .per_day
            .iter()
            .map(|d| DayView { day: d.day.clone(), calls: Breakdown::of(&d.by_direction, &d.by_status) })
            .collect(),
        per_user,
        per_group,
    }
}

/// A user as the admin screens show them: as stored, and what applies to
/// them in the history (`policy`'s effective values, with where each comes
/// from: "company default", "not configured", D1).
#[derive(Clone, Debug, Serialize, TS)]
pub struct AdminUserView {
    /// As stored.
    pub user: AdminUser,
    /// What applies in `calling` and `dashboard`.
    pub effective: EffectiveSettings,
}

/// What a user of `role` gets for the settings they leave unset: "company
/// default" for agents, "not configured" (the most restrictive) for
/// supervisors and analysts, unrestricted for admins (D1), as `policy` says.
#[derive(Clone, Debug, Serialize, TS)]
pub struct UnsetMeaning {
    /// The role.
    pub role: Role,
    /// The effective values with nothing set.
    pub effective: EffectiveSettings,
}

/// Everything the admin screens show.
#[derive(Clone, Debug, Serialize, TS)]
pub struct AdminData {
    /// Company settings (SPEC §3).
    pub settings: CompanySettings,
    /// Users.
    pub users: Vec<AdminUserView>,
    /// What unset user settings mean, per role.
    pub unset: Vec<UnsetMeaning>,
    /// Groups with their members.
    pub groups: Vec<GroupWithMembers>,
    /// Numbers with their call flows.
    pub numbers: Vec<Number>,
    /// Contacts.
    pub contacts: Vec<ContactOut>,
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct AuditRow {
    /// The entry's id (the next page is before it).
    pub id: i64,
    /// When, ms since the epoch.
    pub at: i64,
    /// Who: a user's name, or "Earshot (retention)" for the service itself.
    pub user: String,
    /// `play`, `download`, `delete`, `hold` or `release`.
    pub action: String,
    /// The call.
    pub call: i64,
    /// Its direction (`inbound`, `outbound`, `internal`), when the call is still kept.
    pub call_direction: Option<String>,
    /// When it started, ms since the epoch, when the call is still kept.
    pub call_started_at: Option<i64>,
    /// Who else was on it: the outside number, or the users of an internal call.
    pub call_with: Option<String>,
    /// The recording; none for a hold on a call without one.
    pub recording: Option<i64>,
    /// From where.
    pub remote_addr: Option<String>,
    /// With what.
    pub user_agent: Option<String>,
}

/// An admin's change; `id: None` creates.
#[derive(Clone, Debug, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AdminChange {
    /// Company settings.
    Settings {
        /// Every setting.
        settings: CompanySettings,
    },
    /// A user.
    User {
        /// Which, or a new one.
        id: Option<i64>,
        /// Every field.
        user: UserWrite,
    },
    /// A group.
    Group {
        /// Which, or a new one.
        id: Option<i64>,
        /// Name and members.
        group: GroupWrite,
    },
    /// A number and its call flow.
    Number {
        /// Which, or a new one.
        id: Option<i64>,
        /// Number, name and flow.
        number: NumberWrite,
    },
    /// A contact.
    Contact {
        /// Which, or a new one.
        id: Option<i64>,
        /// Name and numbers.
        contact: ContactWrite,
    },
    /// Deletes a user, group, number or contact.
    Delete {
        /// `users`, `groups`, `numbers` or `contacts`.
        what: String,
        /// Which.
        id: i64,
    },
    /// Places (or lifts) a legal hold on a call: its recordings are kept
    /// whatever the retention, and not deleted on request.
    LegalHold {
        /// Which call.
        call: i64,
        /// Hold, or lift the hold.
        held: bool,
    },
    /// Deletes a contact's recordings and voicemails, on their request; the
    /// calls stay, marked deleted. Calls on legal hold keep theirs.
    DeleteContactRecordings {
        /// Which contact.
        contact: i64,
    },
}

/// The audit log's rows, users named from the snapshot.
#[must_use]
pub fn audit_rows(entries: Vec<AuditEntry>, snapshot: &SyncSnapshot) -> Vec<AuditRow> {
    entries
        .into_iter()
        .map(|e| AuditRow {
            id: e.id,
            at: e.at,
            user: e
                .user
                .map_or_else(|| "Earshot (retention)".to_owned(), |id| user_name(snapshot, UserId(id))),
            action: e.action,
            call: e.call,
            call_direction: e.call_summary.as_ref().map(|c| c.direction.clone()),
            call_started_at: e.call_summary.as_ref().map(|c| c.started_at),
            call_with: e.call_summary.as_ref().and_then(|c| {
                if c.direction != Direction::Internal.as_str() {
                    return c.external_number.clone();
                }
                let names: Vec<String> =
                    c.parties.iter().map(|id| user_name(snapshot, UserId(*id))).collect();
                (!names.is_empty()).then(|| names.join(" and "))
            }),
            recording: e.recording,
            remote_addr: e.remote_addr,
            user_agent: e.user_agent,
        })
        .collect()
}

/// An error as the ui gets it: a stable `code` to match, a `message` to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct UiError {
    /// From [`ClientError::code`].
    pub code: crate::error::ErrorCode,
    /// For the user.
    pub message: String,
}

impl From<ClientError> for UiError {
    fn from(error: ClientError) -> Self {
        Self { code: error.code(), message: error.to_string() }
    }
}

fn user_name(snapshot: &SyncSnapshot, id: UserId) -> String {
    if id == snapshot.me.id {
        return snapshot.me.name.clone();
    }
    snapshot.users.iter().find(|user| user.id == id).map_or_else(|| format!("user {id}"), |u| u.name.clone())
}

/// The list row of a call; `contact` is its contact's name, when known.
#[must_use]
pub fn row(out: &CallOut, snapshot: &SyncSnapshot, contact: Option<String>) -> CallRow {
    let call = &out.call;
    CallRow {
        id: call.id.0,
        direction: call.direction.as_str().to_owned(),
        status: call.status.as_str().to_owned(),
        started_at: call.started_at.0,
        duration_ms: call.answered_at.zip(call.ended_at).map(|(answered, ended)| ended.0 - answered.0),
        other_party: other_party(call, snapshot).unwrap_or_else(|| "Unknown".into()),
        contact,
        number: call
            .number
            .and_then(|id| snapshot.numbers.iter().find(|n| n.id == id))
            .map(|n| n.e164.clone()),
        has_recording: call.audio_of(RecordingKind::Call).is_some()
            || call.audio_of(RecordingKind::Voicemail).is_some(),
        can_play: out.can_play,
        can_download: out.can_download,
    }
}

/// The details of a call; `contact` is the contact's name when known.
#[must_use]
pub fn details(out: &CallOut, snapshot: &SyncSnapshot, contact: Option<String>) -> CallDetails {
    let call = &out.call;
    let recordings = [RecordingKind::Call, RecordingKind::Voicemail]
        .into_iter()
        .filter_map(|kind| {
            let recording = call.recording_of(kind)?;
            let access = match kind {
                RecordingKind::Call => &out.access.recording,
                RecordingKind::Voicemail => &out.access.voicemail,
            };
            Some(RecordingView {
                kind: kind.as_str().to_owned(),
                duration_ms: recording.duration_ms,
                size_bytes: recording.size_bytes,
                paused_spans: recording
                    .paused_spans
                    .iter()
                    .map(|s| (s.start_ms, s.end_ms, s.cut_ms))
                    .collect(),
                can_play: access.play,
                can_download: access.download,
                file_name: earshot_api::download_name(call, kind),
                deleted: recording.deleted.map(|deletion| deleted_words(&deletion, snapshot)),
            })
        })
        .collect();
    CallDetails {
        row: row(out, snapshot, contact.clone()),
        answered_at: call.answered_at.map(|t| t.0),
        ended_at: call.ended_at.map(|t| t.0),
        number_name: call
            .number
            .and_then(|id| snapshot.numbers.iter().find(|n| n.id == id))
            .map(|n| n.name.clone()),
        contact: call.contact.zip(contact).map(|(id, name)| Named { id: id.0, name }),
        parties: call.parties.iter().map(|id| user_name(snapshot, *id)).collect(),
        rang: call.rang.iter().map(|id| user_name(snapshot, *id)).collect(),
        recordings,
        trace: call.recording_trace.iter().map(|entry| trace_line(entry, snapshot)).collect(),
        legal_hold: call.legal_hold.map(|hold| {
            format!("On legal hold since {} ({})", earshot_api::date(hold.at.0), user_name(snapshot, hold.by))
        }),
    }
}

/// "Deleted on 2026-03-01 by Alex Admin, on request."
fn deleted_words(deletion: &earshot_policy::Deletion, snapshot: &SyncSnapshot) -> String {
    match (deletion.reason, deletion.by) {
        (earshot_policy::DeletionReason::Retention, _) => {
            format!(
                "Deleted on {}: the company keeps recordings for a limited time.",
                earshot_api::date(deletion.at.0)
            )
        }
        (earshot_policy::DeletionReason::Request, Some(by)) => {
            format!(
                "Deleted on {} by {}, on request.",
                earshot_api::date(deletion.at.0),
                user_name(snapshot, by)
            )
        }
        (earshot_policy::DeletionReason::Request, None) => {
            format!("Deleted on {}, on request.", earshot_api::date(deletion.at.0))
        }
    }
}

/// A trace entry in words.
#[must_use]
pub fn trace_line(entry: &TraceEntry, snapshot: &SyncSnapshot) -> TraceLine {
    let text = match &entry.event {
        TraceEvent::Decided { recording, decider } => {
            let verb = if *recording { "Recorded" } else { "Not recorded" };
            match decider {
                Decider::Company { setting } => {
                    let (name, calls) = match setting {
                        RecordSetting::RecordInbound => ("record_inbound", "inbound"),
                        RecordSetting::RecordOutbound => ("record_outbound", "outbound"),
                        RecordSetting::RecordInternal => ("record_internal", "internal"),
                    };
                    let state = if *recording { "on" } else { "off" };
                    format!("{verb}: the company setting “{name}” is {state} for {calls} calls.")
                }
                Decider::CallFlow { number, step } => {
                    let number = snapshot
                        .numbers
                        .iter()
                        .find(|n| n.id == *number)
                        .map_or_else(|| format!("number {number}"), |n| format!("{} ({})", n.name, n.e164));
                    format!(
                        "{verb}: the call flow of {number} says so at step {step}; keypad codes cannot change it."
                    )
                }
            }
        }
        TraceEvent::Started { by } => format!("{} started the recording (#12#).", user_name(snapshot, *by)),
        TraceEvent::Paused { by } => format!("{} paused the recording (#11#).", user_name(snapshot, *by)),
        TraceEvent::Resumed { by } => format!("{} resumed the recording (#12#).", user_name(snapshot, *by)),
        TraceEvent::Refused { by, code, reason } => {
            format!("{} keyed {code}, refused: {}.", user_name(snapshot, *by), reason.message())
        }
    };
    TraceLine { at: entry.at.0, text }
}

/// The filter pickers' choices.
#[must_use]
pub fn directory(snapshot: &SyncSnapshot) -> Directory {
    let mut users: Vec<Named> =
        snapshot.users.iter().map(|u| Named { id: u.id.0, name: u.name.clone() }).collect();
    users.sort_by(|a, b| a.name.cmp(&b.name));
    Directory {
        users,
        groups: snapshot.groups.iter().map(|g| Named { id: g.id.0, name: g.name.clone() }).collect(),
        numbers: snapshot
            .numbers
            .iter()
            .map(|n| Named { id: n.id.0, name: format!("{} ({})", n.name, n.e164) })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_search_is_no_filter() {
        let filter = HistoryFilter { search: Some("  ".into()), ..HistoryFilter::default() }.normalized();
        assert!(filter.is_empty());
    }

    #[test]
    fn filters_become_the_service_query() {
        let filter = HistoryFilter {
            direction: Some("inbound".into()),
            status: Some("missed".into()),
            has_recording: Some(true),
            ..HistoryFilter::default()
        };
        let query = filter.query().unwrap();
        assert_eq!(query.direction, Some(Direction::Inbound));
        assert_eq!(query.status, Some(CallStatus::Missed));
        assert_eq!(query.has_recording, Some(true));
        let bad = HistoryFilter { direction: Some("sideways".into()), ..HistoryFilter::default() };
        assert_eq!(bad.query().unwrap_err().code(), "invalid");
    }

    /// `ui/src/lib/generated.ts` is what ts-rs makes of these types; run
    /// with `UPDATE_UI_TYPES=1` to rewrite it after changing them.
    #[test]
    fn ui_types_are_generated_from_these() {
        // Ids and times are below 2^53: plain numbers in JavaScript.
        let cfg = ts_rs::Config::new().with_large_int("number");
        let mut text = String::from(
            "// Generated from earshot-client's `view` types by ts-rs; do not edit.\n\
             // After changing them: UPDATE_UI_TYPES=1 cargo test -p earshot-client ui_types\n\n",
        );
        for decl in [
            Me::decl(&cfg),
            LastLogin::decl(&cfg),
            CallRow::decl(&cfg),
            HistoryFilter::decl(&cfg),
            HistoryWindow::decl(&cfg),
            Named::decl(&cfg),
            Directory::decl(&cfg),
            RecordingView::decl(&cfg),
            TraceLine::decl(&cfg),
            CallDetails::decl(&cfg),
            PlayerState::decl(&cfg),
            crate::player::Status::decl(&cfg),
            PlayerCommand::decl(&cfg),
            crate::audio::AudioDevice::decl(&cfg),
            crate::error::ErrorCode::decl(&cfg),
            crate::softphone::PhoneStatus::decl(&cfg),
            crate::softphone::CallStatus::decl(&cfg),
            crate::softphone::CallRecording::decl(&cfg),
            crate::softphone::CallQuality::decl(&cfg),
            crate::softphone::CallView::decl(&cfg),
            crate::softphone::Colleague::decl(&cfg),
            crate::device_test::MicrophoneTest::decl(&cfg),
            crate::softphone::PhoneView::decl(&cfg),
            crate::call_audio::AudioSettings::decl(&cfg),
            AppSettings::decl(&cfg),
            Theme::decl(&cfg),
            AppEvent::decl(&cfg),
            Breakdown::decl(&cfg),
            DayView::decl(&cfg),
            TotalsRow::decl(&cfg),
            Analytics::decl(&cfg),
            AdminUserView::decl(&cfg),
            UnsetMeaning::decl(&cfg),
            AdminData::decl(&cfg),
            AuditRow::decl(&cfg),
            AdminChange::decl(&cfg),
            // The shared model's types these use (earshot-api and earshot-policy, feature `ts`).
            AdminUser::decl(&cfg),
            UserWrite::decl(&cfg),
            GroupWithMembers::decl(&cfg),
            GroupWrite::decl(&cfg),
            NumberWrite::decl(&cfg),
            ContactOut::decl(&cfg),
            ContactWrite::decl(&cfg),
            CompanySettings::decl(&cfg),
            earshot_policy::UserSettings::decl(&cfg),
            earshot_policy::CallVisibility::decl(&cfg),
            earshot_policy::RecordingPlayback::decl(&cfg),
            earshot_policy::PausedAudio::decl(&cfg),
            EffectiveSettings::decl(&cfg),
            earshot_policy::SettingSource::decl(&cfg),
            earshot_policy::Effective::<()>::decl(&cfg),
            Role::decl(&cfg),
            earshot_policy::User::decl(&cfg),
            earshot_policy::Group::decl(&cfg),
            Number::decl(&cfg),
            earshot_policy::Flow::decl(&cfg),
            earshot_policy::Step::decl(&cfg),
            earshot_policy::Prompt::decl(&cfg),
            earshot_policy::RingStrategy::decl(&cfg),
            earshot_policy::Key::decl(&cfg),
            UserId::decl(&cfg),
            earshot_policy::GroupId::decl(&cfg),
            earshot_policy::NumberId::decl(&cfg),
            earshot_policy::CompanyId::decl(&cfg),
            earshot_policy::ContactId::decl(&cfg),
            UiError::decl(&cfg),
        ] {
            text.push_str("export ");
            text.push_str(&decl);
            text.push('\n');
        }
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/lib/generated.ts");
        if std::env::var_os("UPDATE_UI_TYPES").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "ui/src/lib/generated.ts is stale: run UPDATE_UI_TYPES=1 cargo test -p earshot-client ui_types\n{text}"
        );
    }
}
