//! Effective settings: SPEC §3 (defaults, who takes which value), §4.3 (app
//! contexts), D1 (supervisors and analysts per user only), D2 (analytics).

use earshot_policy::*;
use rstest::rstest;

use CallVisibility::{All, GroupsAndNumbers, OwnAndMissed, ViaGroups};
use RecordingPlayback::{AllAvailable, OwnOnly};
use SettingSource::{Company, NotConfigured, Role as ByRole, User as ByUser};

/// Every company value set to its most permissive.
fn permissive() -> CompanySettings {
    CompanySettings {
        agent_recording_control: true,
        agent_call_visibility: All,
        agent_recording_playback: AllAvailable,
        agent_can_download: true,
        ..CompanySettings::default()
    }
}

fn own(
    call_visibility: Option<CallVisibility>,
    recording_playback: Option<RecordingPlayback>,
    can_download: Option<bool>,
    recording_control: Option<bool>,
) -> UserSettings {
    UserSettings { recording_control, call_visibility, recording_playback, can_download }
}

fn unset() -> UserSettings {
    UserSettings::default()
}

type Expected = (
    (CallVisibility, SettingSource),
    (RecordingPlayback, SettingSource),
    (bool, SettingSource),
    (bool, SettingSource),
);

fn check(role: Role, own: &UserSettings, company: &CompanySettings, app: AppContext) -> Expected {
    let e = effective_settings(role, own, company, app);
    (
        (e.call_visibility.value, e.call_visibility.source),
        (e.recording_playback.value, e.recording_playback.source),
        (e.can_download.value, e.can_download.source),
        (e.recording_control.value, e.recording_control.source),
    )
}

#[rstest]
// §3 / D1: an admin is unrestricted, whatever the company or own values say, in every app.
#[case::s3_admin_calling_restrictive_company(Role::Admin, unset(), CompanySettings::default(), AppContext::Calling, ((All, ByRole), (AllAvailable, ByRole), (true, ByRole), (false, Company)))]
#[case::s3_admin_dashboard_restrictive_own(Role::Admin, own(Some(OwnAndMissed), Some(RecordingPlayback::None), Some(false), None), CompanySettings::default(), AppContext::Dashboard, ((All, ByRole), (AllAvailable, ByRole), (true, ByRole), (false, Company)))]
#[case::s4_3_admin_analytics(Role::Admin, unset(), CompanySettings::default(), AppContext::Analytics, ((All, ByRole), (AllAvailable, ByRole), (true, ByRole), (false, Company)))]
// §3: an agent takes the company value when their own is unset ("company default").
#[case::s3_agent_unset_default_company(Role::Agent, unset(), CompanySettings::default(), AppContext::Calling, ((OwnAndMissed, Company), (OwnOnly, Company), (false, Company), (false, Company)))]
#[case::s3_agent_unset_permissive_company(Role::Agent, unset(), permissive(), AppContext::Dashboard, ((All, Company), (AllAvailable, Company), (true, Company), (true, Company)))]
// §3: an agent's own value overrides the company value, both ways.
#[case::s3_agent_own_overrides_restrictive_company(Role::Agent, own(Some(ViaGroups), Some(AllAvailable), Some(true), Some(true)), CompanySettings::default(), AppContext::Calling, ((ViaGroups, ByUser), (AllAvailable, ByUser), (true, ByUser), (true, ByUser)))]
#[case::s3_agent_own_overrides_permissive_company(Role::Agent, own(Some(OwnAndMissed), Some(RecordingPlayback::None), Some(false), Some(false)), permissive(), AppContext::Dashboard, ((OwnAndMissed, ByUser), (RecordingPlayback::None, ByUser), (false, ByUser), (false, ByUser)))]
#[case::s3_agent_partly_set(Role::Agent, own(Some(GroupsAndNumbers), None, None, None), permissive(), AppContext::Calling, ((GroupsAndNumbers, ByUser), (AllAvailable, Company), (true, Company), (true, Company)))]
// §4.3: in analytics agents keep their own override, else the company value.
#[case::s4_3_agent_analytics_keeps_override(Role::Agent, own(Some(ViaGroups), Some(OwnOnly), Some(false), None), permissive(), AppContext::Analytics, ((ViaGroups, ByUser), (OwnOnly, ByUser), (false, ByUser), (true, Company)))]
#[case::s4_3_agent_analytics_unset(Role::Agent, unset(), permissive(), AppContext::Analytics, ((All, Company), (AllAvailable, Company), (true, Company), (true, Company)))]
// D1: supervisors and analysts with nothing set get the most restrictive values, "not configured",
// even when the company is permissive.
#[case::d1_supervisor_unset_calling(Role::Supervisor, unset(), permissive(), AppContext::Calling, ((OwnAndMissed, NotConfigured), (RecordingPlayback::None, NotConfigured), (false, NotConfigured), (true, Company)))]
#[case::d1_supervisor_unset_dashboard(Role::Supervisor, unset(), CompanySettings::default(), AppContext::Dashboard, ((OwnAndMissed, NotConfigured), (RecordingPlayback::None, NotConfigured), (false, NotConfigured), (false, Company)))]
#[case::d1_analyst_unset_calling(Role::Analyst, unset(), permissive(), AppContext::Calling, ((OwnAndMissed, NotConfigured), (RecordingPlayback::None, NotConfigured), (false, NotConfigured), (true, Company)))]
#[case::d1_analyst_unset_dashboard(Role::Analyst, unset(), CompanySettings::default(), AppContext::Dashboard, ((OwnAndMissed, NotConfigured), (RecordingPlayback::None, NotConfigured), (false, NotConfigured), (false, Company)))]
// D1: their own values apply, and the company value never does outside analytics.
#[case::d1_supervisor_own_calling(Role::Supervisor, own(Some(All), Some(AllAvailable), Some(true), Some(true)), CompanySettings::default(), AppContext::Calling, ((All, ByUser), (AllAvailable, ByUser), (true, ByUser), (true, ByUser)))]
#[case::d1_supervisor_own_dashboard_restrictive(Role::Supervisor, own(Some(ViaGroups), Some(OwnOnly), Some(false), Some(false)), permissive(), AppContext::Dashboard, ((ViaGroups, ByUser), (OwnOnly, ByUser), (false, ByUser), (false, ByUser)))]
#[case::d1_analyst_own_dashboard(Role::Analyst, own(Some(GroupsAndNumbers), Some(AllAvailable), Some(true), None), CompanySettings::default(), AppContext::Dashboard, ((GroupsAndNumbers, ByUser), (AllAvailable, ByUser), (true, ByUser), (false, Company)))]
// D2, §4.3: in analytics the company values govern supervisors and analysts: visibility and
// playback (D2), and download ("the company values apply"; the article's "never affected by
// company settings" for download is limited to "dashboard and calling apps").
#[case::d2_supervisor_analytics_company_values(Role::Supervisor, own(Some(OwnAndMissed), Some(RecordingPlayback::None), Some(false), None), permissive(), AppContext::Analytics, ((All, Company), (AllAvailable, Company), (true, Company), (true, Company)))]
#[case::d2_supervisor_analytics_restrictive_company(Role::Supervisor, own(Some(All), Some(AllAvailable), Some(true), None), CompanySettings::default(), AppContext::Analytics, ((OwnAndMissed, Company), (OwnOnly, Company), (false, Company), (false, Company)))]
#[case::d2_analyst_analytics_company_values(Role::Analyst, unset(), permissive(), AppContext::Analytics, ((All, Company), (AllAvailable, Company), (true, Company), (true, Company)))]
#[case::d2_analyst_analytics_restrictive_company(Role::Analyst, own(Some(All), Some(AllAvailable), Some(true), None), CompanySettings::default(), AppContext::Analytics, ((OwnAndMissed, Company), (OwnOnly, Company), (false, Company), (false, Company)))]
// §3 / D4: recording_control, for every role, is the own value if set, else the company value.
#[case::d4_admin_control_own_off(Role::Admin, own(None, None, None, Some(false)), permissive(), AppContext::Calling, ((All, ByRole), (AllAvailable, ByRole), (true, ByRole), (false, ByUser)))]
#[case::d4_admin_control_company_on(Role::Admin, unset(), permissive(), AppContext::Calling, ((All, ByRole), (AllAvailable, ByRole), (true, ByRole), (true, Company)))]
#[case::d4_supervisor_control_own_on(Role::Supervisor, own(None, None, None, Some(true)), CompanySettings::default(), AppContext::Calling, ((OwnAndMissed, NotConfigured), (RecordingPlayback::None, NotConfigured), (false, NotConfigured), (true, ByUser)))]
#[case::d4_analyst_control_company_off(Role::Analyst, unset(), CompanySettings::default(), AppContext::Calling, ((OwnAndMissed, NotConfigured), (RecordingPlayback::None, NotConfigured), (false, NotConfigured), (false, Company)))]
#[case::d4_agent_control_own_on_company_off(Role::Agent, own(None, None, None, Some(true)), CompanySettings::default(), AppContext::Calling, ((OwnAndMissed, Company), (OwnOnly, Company), (false, Company), (true, ByUser)))]
fn s3_effective_settings(
    #[case] role: Role,
    #[case] own: UserSettings,
    #[case] company: CompanySettings,
    #[case] app: AppContext,
    #[case] expected: Expected,
) {
    assert_eq!(check(role, &own, &company, app), expected);
}

/// §3: each row's default.
#[rstest]
#[case::s3_default_record_inbound_on(|s: &CompanySettings| s.record_inbound, true)]
#[case::s3_default_record_outbound_on(|s: &CompanySettings| s.record_outbound, true)]
#[case::s3_default_record_internal_off(|s: &CompanySettings| s.record_internal, false)]
#[case::s3_default_agent_recording_control_off(|s: &CompanySettings| s.agent_recording_control, false)]
#[case::s3_default_agent_call_visibility_own_and_missed(|s: &CompanySettings| s.agent_call_visibility == OwnAndMissed, true)]
#[case::s3_default_agent_recording_playback_own_only(|s: &CompanySettings| s.agent_recording_playback == OwnOnly, true)]
#[case::s3_default_agent_can_download_off(|s: &CompanySettings| s.agent_can_download, false)]
#[case::s3_default_paused_audio_silence(|s: &CompanySettings| s.paused_audio == PausedAudio::Silence, true)]
fn s3_company_defaults(#[case] read: fn(&CompanySettings) -> bool, #[case] expected: bool) {
    assert_eq!(read(&CompanySettings::default()), expected);
    // A settings document that names nothing takes the same defaults.
    let parsed: CompanySettings = serde_json::from_str("{}").unwrap();
    assert_eq!(read(&parsed), expected);
}

/// §3: the SPEC's own words are the wire format.
#[rstest]
#[case::s3_wire_own_and_missed(serde_json::to_value(OwnAndMissed), "own_and_missed")]
#[case::s3_wire_via_groups(serde_json::to_value(ViaGroups), "via_groups")]
#[case::s3_wire_groups_and_numbers(serde_json::to_value(GroupsAndNumbers), "groups_and_numbers")]
#[case::s3_wire_all(serde_json::to_value(All), "all")]
#[case::s3_wire_all_available(serde_json::to_value(AllAvailable), "all_available")]
#[case::s3_wire_own_only(serde_json::to_value(OwnOnly), "own_only")]
#[case::s3_wire_none(serde_json::to_value(RecordingPlayback::None), "none")]
#[case::s3_wire_silence(serde_json::to_value(PausedAudio::Silence), "silence")]
#[case::s3_wire_skip(serde_json::to_value(PausedAudio::Skip), "skip")]
fn s3_wire_names(#[case] value: serde_json::Result<serde_json::Value>, #[case] expected: &str) {
    assert_eq!(value.unwrap(), serde_json::Value::String(expected.into()));
}

/// §3: levels are ordered, so "at least `via_groups`" means what §4.2 says.
#[test]
fn s4_2_levels_are_ordered() {
    assert!(OwnAndMissed < ViaGroups && ViaGroups < GroupsAndNumbers && GroupsAndNumbers < All);
}

/// §2, §3: every value's `as_str` is its serde name, and `FromStr` reads it back.
#[test]
fn s3_wire_names_match_serde() {
    fn check<T>(values: &[T])
    where
        T: Copy + std::fmt::Debug + PartialEq + serde::Serialize + std::str::FromStr<Err = UnknownName>,
        T: AsStr,
    {
        for value in values {
            let name = value.name();
            assert_eq!(serde_json::to_value(value).unwrap(), serde_json::Value::String(name.into()));
            assert_eq!(name.parse::<T>().unwrap(), *value);
        }
        assert!("no such value".parse::<T>().is_err());
    }
    check(&CallVisibility::ALL_LEVELS);
    check(&RecordingPlayback::ALL_VALUES);
    check(&[PausedAudio::Silence, PausedAudio::Skip]);
    check(&AppContext::ALL);
    check(&Role::ALL);
    check(&Direction::ALL);
    check(&CallStatus::ALL);
    check(&[RecordingKind::Call, RecordingKind::Voicemail]);
    check(&[DecidedBy::Company, DecidedBy::CallFlow, DecidedBy::User]);
    check(&[RecordingState::Recording, RecordingState::Paused, RecordingState::Off]);
    assert_eq!("manager".parse::<Role>().unwrap_err().to_string(), "\"manager\" is not a Role");
}

/// The tests' bridge to each type's inherent `as_str`.
trait AsStr {
    fn name(&self) -> &'static str;
}

macro_rules! as_str {
    ($($type:ty),+) => {
        $(impl AsStr for $type {
            fn name(&self) -> &'static str {
                self.as_str()
            }
        })+
    };
}

as_str!(
    CallVisibility,
    RecordingPlayback,
    PausedAudio,
    AppContext,
    Role,
    Direction,
    CallStatus,
    RecordingKind,
    DecidedBy,
    RecordingState
);
