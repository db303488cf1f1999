//! Company settings (SPEC §3), per-user settings, and the effective value of
//! each setting for a user in an app context (SPEC §3, §4.3, D1, D2).

use crate::model::Role;
use serde::{Deserialize, Serialize};

/// Which calls a user sees (SPEC §4.2). Levels are ordered: each one shows
/// everything the one before it shows, and more.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum CallVisibility {
    /// Own calls, and missed calls and voicemails to the user's numbers and group numbers.
    OwnAndMissed,
    /// Also every call via numbers routed to the user's groups.
    ViaGroups,
    /// Also every call via numbers routed to the user.
    GroupsAndNumbers,
    /// Every call of the company.
    All,
}

impl CallVisibility {
    /// Every level, lowest first.
    pub const ALL_LEVELS: [Self; 4] =
        [Self::OwnAndMissed, Self::ViaGroups, Self::GroupsAndNumbers, Self::All];
}

/// Which recordings a user may play (SPEC §5).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RecordingPlayback {
    /// No recording at all; the UI shows no player.
    None,
    /// Recordings of the user's own calls, and voicemails of calls that rang them (D3).
    OwnOnly,
    /// Every recording and voicemail of a visible call.
    AllAvailable,
}

impl RecordingPlayback {
    /// Every value, most restrictive first.
    pub const ALL_VALUES: [Self; 3] = [Self::None, Self::OwnOnly, Self::AllAvailable];
}

/// What a recording holds for a span paused by `#11#` (SPEC §6.2).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum PausedAudio {
    /// Silence for the paused span: the file keeps the call's timeline.
    #[default]
    Silence,
    /// The paused span is cut out of the file.
    Skip,
}

/// A company's settings, SPEC §3. [`Default`] gives the defaults of that table.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default)]
pub struct CompanySettings {
    /// Record inbound calls (unless a call-flow `record` step decides).
    pub record_inbound: bool,
    /// Record outbound calls.
    pub record_outbound: bool,
    /// Record internal calls.
    pub record_internal: bool,
    /// Users may pause and start recordings with `#11#` / `#12#` (company value of `recording_control`, D4).
    pub agent_recording_control: bool,
    /// Which calls agents see.
    pub agent_call_visibility: CallVisibility,
    /// Which recordings agents may play.
    pub agent_recording_playback: RecordingPlayback,
    /// Agents may download the recordings they may play.
    pub agent_can_download: bool,
    /// What a paused span becomes in the recording file.
    pub paused_audio: PausedAudio,
    /// Days call recordings and voicemails are kept, counted from the call's
    /// start; `null`: forever. Older ones are deleted by the service (the
    /// calls stay), except those of calls on legal hold.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 36_500))]
    pub recording_retention_days: Option<u32>,
}

impl Default for CompanySettings {
    fn default() -> Self {
        Self {
            record_inbound: true,
            record_outbound: true,
            record_internal: false,
            agent_recording_control: false,
            agent_call_visibility: CallVisibility::OwnAndMissed,
            agent_recording_playback: RecordingPlayback::OwnOnly,
            agent_can_download: false,
            paused_audio: PausedAudio::Silence,
            recording_retention_days: None,
        }
    }
}

/// A user's own settings (SPEC §2). Each is optional: unset means "company
/// default" for agents and "not configured" for supervisors and analysts (D1).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default)]
pub struct UserSettings {
    /// May pause and start recordings from the keypad (D4).
    pub recording_control: Option<bool>,
    /// Which calls the user sees.
    pub call_visibility: Option<CallVisibility>,
    /// Which recordings the user may play.
    pub recording_playback: Option<RecordingPlayback>,
    /// May download the recordings the user may play.
    pub can_download: Option<bool>,
}

/// The app a right is evaluated in (SPEC §4.3).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum AppContext {
    /// The phone UI's call history.
    Calling,
    /// History, contact log and reports.
    Dashboard,
    /// Analytics: company values govern supervisors and analysts too (D2).
    Analytics,
}

impl AppContext {
    /// Every context.
    pub const ALL: [Self; 3] = [Self::Calling, Self::Dashboard, Self::Analytics];
}

/// Where an effective value comes from: what the admin UI shows next to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum SettingSource {
    /// Admins are unrestricted; no setting applies.
    Role,
    /// The user's own value.
    User,
    /// The company value ("company default").
    Company,
    /// A supervisor's or analyst's unset value: the most restrictive one ("not configured", D1).
    NotConfigured,
}

/// An effective value and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Effective<T> {
    /// The value that applies.
    pub value: T,
    /// Why this value applies.
    pub source: SettingSource,
}

impl<T> Effective<T> {
    const fn new(value: T, source: SettingSource) -> Self {
        Self { value, source }
    }

    /// The user's own value if set, else `fallback` with `fallback_source`.
    fn own_or(own: Option<T>, fallback: T, fallback_source: SettingSource) -> Self {
        match own {
            Some(value) => Self::new(value, SettingSource::User),
            None => Self::new(fallback, fallback_source),
        }
    }
}

/// The settings that apply to one user in one app context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct EffectiveSettings {
    /// Which calls the user sees.
    pub call_visibility: Effective<CallVisibility>,
    /// Which recordings the user may play.
    pub recording_playback: Effective<RecordingPlayback>,
    /// May the user download what they may play.
    pub can_download: Effective<bool>,
    /// May the user pause and start recordings with keypad codes (D4).
    pub recording_control: Effective<bool>,
}

/// The effective settings of a user with `role` and own settings `own`, in
/// `app`, given the company's settings (SPEC §3, §4.3, D1, D2).
///
/// - Admins are unrestricted for visibility, playback and download.
/// - Agents: their own value if set, else the company value, in every app.
/// - Supervisors and analysts: their own value, or the most restrictive value
///   when unset; the company value never applies to them in calling and
///   dashboard (D1). In analytics the company values govern them (§4.3, D2):
///   visibility and playback as D2 names, and download too, since §4.3 says
///   "the company values apply" and the article limits "never affected by
///   company settings" for download to "dashboard and calling apps".
/// - `recording_control`, for every role: own value if set, else the company value.
#[must_use]
pub fn effective_settings(
    role: Role,
    own: &UserSettings,
    company: &CompanySettings,
    app: AppContext,
) -> EffectiveSettings {
    use SettingSource::{Company, NotConfigured};
    let recording_control =
        Effective::own_or(own.recording_control, company.agent_recording_control, Company);
    match role {
        Role::Admin => EffectiveSettings {
            call_visibility: Effective::new(CallVisibility::All, SettingSource::Role),
            recording_playback: Effective::new(RecordingPlayback::AllAvailable, SettingSource::Role),
            can_download: Effective::new(true, SettingSource::Role),
            recording_control,
        },
        Role::Agent => EffectiveSettings {
            call_visibility: Effective::own_or(own.call_visibility, company.agent_call_visibility, Company),
            recording_playback: Effective::own_or(
                own.recording_playback,
                company.agent_recording_playback,
                Company,
            ),
            can_download: Effective::own_or(own.can_download, company.agent_can_download, Company),
            recording_control,
        },
        Role::Supervisor | Role::Analyst => {
            if app == AppContext::Analytics {
                EffectiveSettings {
                    call_visibility: Effective::new(company.agent_call_visibility, Company),
                    recording_playback: Effective::new(company.agent_recording_playback, Company),
                    can_download: Effective::new(company.agent_can_download, Company),
                    recording_control,
                }
            } else {
                EffectiveSettings {
                    call_visibility: Effective::own_or(
                        own.call_visibility,
                        CallVisibility::OwnAndMissed,
                        NotConfigured,
                    ),
                    recording_playback: Effective::own_or(
                        own.recording_playback,
                        RecordingPlayback::None,
                        NotConfigured,
                    ),
                    can_download: Effective::own_or(own.can_download, false, NotConfigured),
                    recording_control,
                }
            }
        }
    }
}

wire_names!(CallVisibility {
    OwnAndMissed => "own_and_missed",
    ViaGroups => "via_groups",
    GroupsAndNumbers => "groups_and_numbers",
    All => "all",
});
wire_names!(RecordingPlayback { None => "none", OwnOnly => "own_only", AllAvailable => "all_available" });
wire_names!(PausedAudio { Silence => "silence", Skip => "skip" });
wire_names!(AppContext { Calling => "calling", Dashboard => "dashboard", Analytics => "analytics" });
