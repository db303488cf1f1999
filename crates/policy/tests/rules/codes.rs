//! What `#11#` and `#12#` do to a call's recording, and who may key them:
//! SPEC §6.2, D4, D5 (and the §6 trace).

use super::fixture::*;
use earshot_policy::*;
use rstest::rstest;

use KeypadCode::{Pause, Resume};
use RecordingState::{Off, Paused, Recording};

const AT: Timestamp = Timestamp(1_700_000_010_000);

fn live(state: RecordingState, decided_by: DecidedBy) -> LiveRecording {
    LiveRecording { state, decided_by, trace: vec![] }
}

fn control(on: Option<bool>) -> UserSettings {
    UserSettings { recording_control: on, ..UserSettings::default() }
}

fn company(agent_recording_control: bool) -> CompanySettings {
    CompanySettings { agent_recording_control, ..CompanySettings::default() }
}

/// What the outcome says, in one comparable shape.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Changed(RecordingState, DecidedBy, TraceEvent),
    Unchanged(NoChange),
    Refused(CodeRefusal),
}

fn check(recording: &LiveRecording, code: KeypadCode, keyed_by: &User, company: &CompanySettings) -> Expect {
    match recording.on_code(code, keyed_by, company, AT) {
        CodeOutcome::Changed { state, decided_by, entry } => {
            assert_eq!(entry.at, AT);
            Expect::Changed(state, decided_by, entry.event)
        }
        CodeOutcome::Unchanged { state, why } => {
            assert_eq!(state, recording.state);
            Expect::Unchanged(why)
        }
        CodeOutcome::Refused { reason, entry } => {
            assert_eq!(
                entry,
                TraceEntry { at: AT, event: TraceEvent::Refused { by: keyed_by.id, code, reason } }
            );
            Expect::Refused(reason)
        }
    }
}

#[rstest]
// §6.2 / D4: allowed codes.
#[case::s6_2_pause_while_recording(live(Recording, DecidedBy::Company), Pause, Role::Agent, control(None), company(true), Expect::Changed(Paused, DecidedBy::Company, TraceEvent::Paused { by: ME }))]
#[case::s6_2_resume_while_paused(live(Paused, DecidedBy::Company), Resume, Role::Agent, control(None), company(true), Expect::Changed(Recording, DecidedBy::Company, TraceEvent::Resumed { by: ME }))]
// §6.2: starting a recording the company had off marks it decided by `user`.
#[case::s6_2_start_when_company_had_it_off(live(Off, DecidedBy::Company), Resume, Role::Agent, control(None), company(true), Expect::Changed(Recording, DecidedBy::User, TraceEvent::Started { by: ME }))]
// §6.2: a resume after a user's start stays decided by `user`; a pause keeps it.
#[case::s6_2_pause_user_started(live(Recording, DecidedBy::User), Pause, Role::Agent, control(None), company(true), Expect::Changed(Paused, DecidedBy::User, TraceEvent::Paused { by: ME }))]
#[case::s6_2_resume_user_started(live(Paused, DecidedBy::User), Resume, Role::Agent, control(None), company(true), Expect::Changed(Recording, DecidedBy::User, TraceEvent::Resumed { by: ME }))]
// §6.2: codes that change nothing.
#[case::s6_2_pause_twice(
    live(Paused, DecidedBy::Company),
    Pause,
    Role::Agent,
    control(None),
    company(true),
    Expect::Unchanged(NoChange::AlreadyPaused)
)]
#[case::s6_2_resume_while_recording(
    live(Recording, DecidedBy::Company),
    Resume,
    Role::Agent,
    control(None),
    company(true),
    Expect::Unchanged(NoChange::AlreadyRecording)
)]
#[case::s6_2_pause_when_never_recorded(
    live(Off, DecidedBy::Company),
    Pause,
    Role::Agent,
    control(None),
    company(true),
    Expect::Unchanged(NoChange::NotRecording)
)]
// D4: refused without recording_control, however the recording was decided.
#[case::d4_refused_company_off_user_unset(
    live(Recording, DecidedBy::Company),
    Pause,
    Role::Agent,
    control(None),
    company(false),
    Expect::Refused(CodeRefusal::NoRecordingControl)
)]
#[case::d4_refused_own_off_company_on(
    live(Recording, DecidedBy::Company),
    Pause,
    Role::Agent,
    control(Some(false)),
    company(true),
    Expect::Refused(CodeRefusal::NoRecordingControl)
)]
#[case::d4_refused_start_without_right(
    live(Off, DecidedBy::Company),
    Resume,
    Role::Agent,
    control(None),
    company(false),
    Expect::Refused(CodeRefusal::NoRecordingControl)
)]
#[case::d4_refused_before_flow_check(
    live(Recording, DecidedBy::CallFlow),
    Pause,
    Role::Agent,
    control(None),
    company(false),
    Expect::Refused(CodeRefusal::NoRecordingControl)
)]
// D4: the own value overrides the company value, for every role.
#[case::d4_allowed_own_on_company_off(live(Recording, DecidedBy::Company), Pause, Role::Agent, control(Some(true)), company(false), Expect::Changed(Paused, DecidedBy::Company, TraceEvent::Paused { by: ME }))]
#[case::d4_supervisor_company_on(live(Recording, DecidedBy::Company), Pause, Role::Supervisor, control(None), company(true), Expect::Changed(Paused, DecidedBy::Company, TraceEvent::Paused { by: ME }))]
#[case::d4_supervisor_own_off(
    live(Recording, DecidedBy::Company),
    Pause,
    Role::Supervisor,
    control(Some(false)),
    company(true),
    Expect::Refused(CodeRefusal::NoRecordingControl)
)]
#[case::d4_admin_company_off(
    live(Recording, DecidedBy::Company),
    Pause,
    Role::Admin,
    control(None),
    company(false),
    Expect::Refused(CodeRefusal::NoRecordingControl)
)]
#[case::d4_admin_own_on(live(Paused, DecidedBy::Company), Resume, Role::Admin, control(Some(true)), company(false), Expect::Changed(Recording, DecidedBy::Company, TraceEvent::Resumed { by: ME }))]
#[case::d4_analyst_own_on(live(Off, DecidedBy::Company), Resume, Role::Analyst, control(Some(true)), company(false), Expect::Changed(Recording, DecidedBy::User, TraceEvent::Started { by: ME }))]
// D5: a call-flow record step is final, whichever way it went and whichever code.
#[case::d5_flow_recording_pause_refused(
    live(Recording, DecidedBy::CallFlow),
    Pause,
    Role::Agent,
    control(Some(true)),
    company(true),
    Expect::Refused(CodeRefusal::DecidedByCallFlow)
)]
#[case::d5_flow_off_start_refused(
    live(Off, DecidedBy::CallFlow),
    Resume,
    Role::Agent,
    control(Some(true)),
    company(true),
    Expect::Refused(CodeRefusal::DecidedByCallFlow)
)]
#[case::d5_flow_admin_refused(
    live(Recording, DecidedBy::CallFlow),
    Pause,
    Role::Admin,
    control(Some(true)),
    company(true),
    Expect::Refused(CodeRefusal::DecidedByCallFlow)
)]
fn s6_2_code_outcome(
    #[case] recording: LiveRecording,
    #[case] code: KeypadCode,
    #[case] role: Role,
    #[case] settings: UserSettings,
    #[case] company: CompanySettings,
    #[case] expected: Expect,
) {
    assert_eq!(check(&recording, code, &me(role, settings), &company), expected);
}

/// §6.2 / D4: in an internal call each user's own `recording_control` governs
/// the codes that user keys; the trace names who keyed each.
#[test]
fn d4_internal_call_with_two_users() {
    let company = CompanySettings { record_internal: true, ..CompanySettings::default() };
    let allowed = user(ME, Role::Agent, control(Some(true)));
    let refused = user(COLLEAGUE, Role::Agent, control(None));
    let mut recording =
        LiveRecording::start(decide_recording(CallStart::Internal, &company, Timestamp(0)).unwrap());

    let outcome = recording.on_code(Pause, &refused, &company, Timestamp(1_000));
    assert!(matches!(outcome, CodeOutcome::Refused { reason: CodeRefusal::NoRecordingControl, .. }));
    recording.apply(&outcome);
    assert_eq!(recording.state, Recording);

    let outcome = recording.on_code(Pause, &allowed, &company, Timestamp(2_000));
    recording.apply(&outcome);
    assert_eq!(recording.state, Paused);

    let outcome = recording.on_code(Resume, &refused, &company, Timestamp(3_000));
    recording.apply(&outcome);
    assert_eq!(recording.state, Paused, "the colleague can't resume what ME paused");

    let outcome = recording.on_code(Resume, &allowed, &company, Timestamp(4_000));
    recording.apply(&outcome);
    assert_eq!(recording.state, Recording);

    let events: Vec<_> = recording.trace.iter().map(|entry| (entry.at.0, entry.event.clone())).collect();
    assert_eq!(
        events,
        vec![
            (
                0,
                TraceEvent::Decided {
                    recording: true,
                    decider: Decider::Company { setting: RecordSetting::RecordInternal }
                }
            ),
            (
                1_000,
                TraceEvent::Refused { by: COLLEAGUE, code: Pause, reason: CodeRefusal::NoRecordingControl }
            ),
            (2_000, TraceEvent::Paused { by: ME }),
            (
                3_000,
                TraceEvent::Refused { by: COLLEAGUE, code: Resume, reason: CodeRefusal::NoRecordingControl }
            ),
            (4_000, TraceEvent::Resumed { by: ME }),
        ]
    );
}

/// §6: a whole call's trace: decided by company (off), started by a user,
/// paused, paused again (no line), resumed.
#[test]
fn s6_trace_of_a_call() {
    let company = CompanySettings {
        record_outbound: false,
        agent_recording_control: true,
        ..CompanySettings::default()
    };
    let agent = me(Role::Agent, UserSettings::default());
    let mut recording =
        LiveRecording::start(decide_recording(CallStart::Outbound, &company, Timestamp(0)).unwrap());
    assert_eq!((recording.state, recording.decided_by), (Off, DecidedBy::Company));
    for (at, code) in [(10, Resume), (20, Pause), (30, Pause), (40, Resume)] {
        let outcome = recording.on_code(code, &agent, &company, Timestamp(at));
        recording.apply(&outcome);
    }
    assert_eq!((recording.state, recording.decided_by), (Recording, DecidedBy::User));
    let events: Vec<_> = recording.trace.iter().map(|entry| (entry.at.0, entry.event.clone())).collect();
    assert_eq!(
        events,
        vec![
            (
                0,
                TraceEvent::Decided {
                    recording: false,
                    decider: Decider::Company { setting: RecordSetting::RecordOutbound }
                }
            ),
            (10, TraceEvent::Started { by: ME }),
            (20, TraceEvent::Paused { by: ME }),
            (40, TraceEvent::Resumed { by: ME }),
        ]
    );
}

/// D5: a call-flow decision survives every code anyone keys.
#[test]
fn d5_flow_decision_is_final_for_the_call() {
    let number = number(MY_NUMBER, vec![record(false), ring_user(ME)]);
    let path = FlowPath { choices: vec![], steps_taken: 2 };
    let company = CompanySettings { agent_recording_control: true, ..CompanySettings::default() };
    let mut recording = LiveRecording::start(
        decide_recording(CallStart::Inbound { number: &number, path: &path }, &company, Timestamp(0))
            .unwrap(),
    );
    for role in Role::ALL {
        for code in KeypadCode::ALL {
            let outcome = recording.on_code(code, &me(role, control(Some(true))), &company, Timestamp(5));
            recording.apply(&outcome);
        }
    }
    assert_eq!((recording.state, recording.decided_by), (Off, DecidedBy::CallFlow));
}

/// §6.2: a refusal carries a sentence the caller's app can show.
#[rstest]
#[case::d4_refusal_message(CodeRefusal::NoRecordingControl, "recording control is off")]
#[case::d5_refusal_message(CodeRefusal::DecidedByCallFlow, "call flow")]
fn s6_2_refusal_messages(#[case] reason: CodeRefusal, #[case] contains: &str) {
    assert!(reason.message().contains(contains), "{}", reason.message());
}

/// What the agent's app shows when a code is refused is a sentence of its own.
#[rstest]
#[case(
    CodeRefusal::NoRecordingControl,
    "You may not pause or start recordings: recording control is off for you."
)]
#[case(
    CodeRefusal::DecidedByCallFlow,
    "This call's recording is set by the number's call flow and can't be changed from the keypad."
)]
fn a_refusal_reads_as_a_sentence(#[case] refusal: CodeRefusal, #[case] shown: &str) {
    assert_eq!(refusal.message(), shown);
}
