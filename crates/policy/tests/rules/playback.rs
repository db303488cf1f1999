//! Playing and downloading recordings and voicemails: SPEC §5, D3.

use super::fixture::*;
use earshot_policy::*;
use rstest::rstest;

use RecordingKind::{Call as CallRecording, Voicemail as VoicemailRecording};
use RecordingPlayback::{AllAvailable, None as NoPlayback, OwnOnly};
use Relation::{GroupNumber, Own, Rang, Unrelated};

/// A call related to `ME` by `relation` with a recording of `kind` (and the status that goes with it).
fn call_with(relation: Relation, kind: RecordingKind) -> Call {
    match kind {
        CallRecording => Call {
            recording: Some(recording(1, CallRecording)),
            ..related_call(relation, CallStatus::Answered)
        },
        VoicemailRecording => Call {
            voicemail: Some(recording(2, VoicemailRecording)),
            ..related_call(relation, CallStatus::Voicemail)
        },
    }
}

/// The oracle, written from §5 and D3 alone, for a visible call.
fn may_play(playback: RecordingPlayback, relation: Relation, kind: RecordingKind) -> bool {
    match playback {
        NoPlayback => false,
        OwnOnly => relation == Own || (relation == Rang && kind == VoicemailRecording),
        AllAvailable => true,
    }
}

/// §5, D3: every playback value × relation × recording kind × download value,
/// for each non-admin role with its own values set (visibility `all`, so every call is visible).
#[rstest]
fn s5_play_and_download_matrix(
    #[values(Role::Agent, Role::Supervisor, Role::Analyst)] role: Role,
    #[values(NoPlayback, OwnOnly, AllAvailable)] playback: RecordingPlayback,
    #[values(Own, Rang, GroupNumber, Unrelated)] relation: Relation,
    #[values(CallRecording, VoicemailRecording)] kind: RecordingKind,
    #[values(false, true)] can_download: bool,
) {
    let settings = UserSettings {
        call_visibility: Some(CallVisibility::All),
        recording_playback: Some(playback),
        can_download: Some(can_download),
        recording_control: None,
    };
    let v = viewer(&me(role, settings), &CompanySettings::default(), AppContext::Dashboard);
    let call = call_with(relation, kind);
    let play = may_play(playback, relation, kind);
    assert_eq!(v.may_play(&call, kind), play, "play");
    assert_eq!(v.may_download(&call, kind), play && can_download, "download");
    let access = v.access(&call);
    let rights = if kind == CallRecording { access.recording } else { access.voicemail };
    assert_eq!((rights.play, rights.download), (play, play && can_download), "access");
}

#[rstest]
// §5: admins play and download every recording of their company, whatever the settings.
#[case::s5_admin_call_recording_unrelated(Role::Admin, Unrelated, CallRecording, true, true)]
#[case::s5_admin_voicemail_unrelated(Role::Admin, Unrelated, VoicemailRecording, true, true)]
#[case::s5_admin_own(Role::Admin, Own, CallRecording, true, true)]
// §3 defaults: an agent plays own recordings only and downloads nothing.
#[case::s3_agent_default_own_recording(Role::Agent, Own, CallRecording, true, false)]
// §4.2 before §5: a voicemail that rang ME on a number no longer routed to ME (D7) is not even visible.
#[case::s5_agent_default_rang_voicemail_number_not_mine(Role::Agent, Rang, VoicemailRecording, false, false)]
#[case::s3_agent_default_rang_call_recording(Role::Agent, Rang, CallRecording, false, false)]
#[case::s3_agent_default_group_voicemail(Role::Agent, GroupNumber, VoicemailRecording, false, false)]
// D1: an unset supervisor or analyst plays nothing, not even their own calls.
#[case::d1_supervisor_unset_own(Role::Supervisor, Own, CallRecording, false, false)]
#[case::d1_analyst_unset_own_voicemail(Role::Analyst, Own, VoicemailRecording, false, false)]
fn s5_defaults(
    #[case] role: Role,
    #[case] relation: Relation,
    #[case] kind: RecordingKind,
    #[case] play: bool,
    #[case] download: bool,
) {
    let v = viewer(&me(role, UserSettings::default()), &CompanySettings::default(), AppContext::Dashboard);
    let call = call_with(relation, kind);
    assert_eq!((v.may_play(&call, kind), v.may_download(&call, kind)), (play, download));
}

#[rstest]
// §5: nothing invisible is playable, even with `all_available` and download on.
#[case::s5_invisible_call_recording(CallRecording)]
#[case::s5_invisible_voicemail(VoicemailRecording)]
fn s5_invisible_is_not_playable(#[case] kind: RecordingKind) {
    let settings = UserSettings {
        call_visibility: Some(CallVisibility::OwnAndMissed),
        recording_playback: Some(AllAvailable),
        can_download: Some(true),
        recording_control: None,
    };
    let v = viewer(&me(Role::Agent, settings), &CompanySettings::default(), AppContext::Calling);
    let mut call = call_with(Unrelated, kind);
    call.status = CallStatus::Answered;
    assert!(!v.can_see(&call));
    assert!(!v.may_play(&call, kind));
    assert!(!v.may_download(&call, kind));
    assert_eq!(v.access(&call), CallAccess::default());
}

/// §5: a call with no recording of a kind has nothing to play or download of that kind.
#[rstest]
#[case::s5_no_recording_admin(Role::Admin)]
#[case::s5_no_recording_agent(Role::Agent)]
fn s5_nothing_to_play(#[case] role: Role) {
    let company = CompanySettings {
        agent_recording_playback: AllAvailable,
        agent_can_download: true,
        ..CompanySettings::default()
    };
    let v = viewer(&me(role, UserSettings::default()), &company, AppContext::Calling);
    let call = related_call(Own, CallStatus::Answered);
    for kind in [CallRecording, VoicemailRecording] {
        assert!(!v.may_play(&call, kind));
        assert!(!v.may_download(&call, kind));
    }
}

/// D3: a voicemail "of their own calls" is one on a call that rang them; the
/// voicemail of a call routed to their group that did not ring them is not theirs.
#[test]
fn d3_voicemail_of_a_call_that_rang_me() {
    let v =
        viewer(&me(Role::Agent, UserSettings::default()), &CompanySettings::default(), AppContext::Calling);
    let rang_me = Call { rang: vec![ME], ..call_with(GroupNumber, VoicemailRecording) };
    let rang_others = call_with(GroupNumber, VoicemailRecording);
    assert!(v.can_see(&rang_me) && v.can_see(&rang_others));
    assert!(v.may_play(&rang_me, VoicemailRecording));
    assert!(!v.may_play(&rang_others, VoicemailRecording));
}

#[rstest]
// D2: in analytics the company's playback value governs supervisors and analysts.
#[case::d2_supervisor_analytics_company_all_available(
    Role::Supervisor,
    AppContext::Analytics,
    AllAvailable,
    true
)]
#[case::d2_supervisor_analytics_company_none(Role::Supervisor, AppContext::Analytics, NoPlayback, false)]
#[case::d2_analyst_analytics_company_all_available(Role::Analyst, AppContext::Analytics, AllAvailable, true)]
#[case::d1_supervisor_dashboard_company_all_available(
    Role::Supervisor,
    AppContext::Dashboard,
    AllAvailable,
    false
)]
#[case::d1_analyst_calling_company_all_available(Role::Analyst, AppContext::Calling, AllAvailable, false)]
// §4.3: agents with their own `none` keep it in analytics.
#[case::s4_3_agent_own_none_analytics(Role::Agent, AppContext::Analytics, AllAvailable, false)]
fn d2_playback_in_analytics(
    #[case] role: Role,
    #[case] app: AppContext,
    #[case] company_playback: RecordingPlayback,
    #[case] expected: bool,
) {
    let company = CompanySettings {
        agent_call_visibility: CallVisibility::All,
        agent_recording_playback: company_playback,
        ..CompanySettings::default()
    };
    let own = if role == Role::Agent {
        UserSettings { recording_playback: Some(NoPlayback), ..UserSettings::default() }
    } else {
        UserSettings {
            call_visibility: Some(CallVisibility::All),
            recording_playback: Some(NoPlayback),
            ..UserSettings::default()
        }
    };
    let v = viewer(&me(role, own), &company, app);
    assert_eq!(v.may_play(&call_with(Unrelated, CallRecording), CallRecording), expected);
}
