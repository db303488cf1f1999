//! Recording decided at the start of a call: SPEC §6.1 (and §6 trace).

use super::fixture::*;
use earshot_policy::*;
use rstest::rstest;

const AT: Timestamp = Timestamp(1_700_000_000_000);

fn key(c: char) -> MenuChoice {
    MenuChoice::Key(Key::from_char(c).unwrap())
}

/// A walk through `steps` taking `choices` at menus, stopping after `steps_taken` steps.
fn path(choices: &[MenuChoice], steps_taken: usize) -> FlowPath {
    FlowPath { choices: choices.to_vec(), steps_taken }
}

fn decide_inbound(
    steps: Vec<Step>,
    path: &FlowPath,
    record_inbound: bool,
) -> (bool, DecidedBy, Option<StepAddress>) {
    let number = number(MY_NUMBER, steps);
    let company = CompanySettings { record_inbound, ..CompanySettings::default() };
    let decision = decide_recording(CallStart::Inbound { number: &number, path }, &company, AT).unwrap();
    let step = match decision.entry.event {
        TraceEvent::Decided { decider: Decider::CallFlow { number: n, step }, recording } => {
            assert_eq!((n, recording), (MY_NUMBER, decision.recording));
            Some(step)
        }
        TraceEvent::Decided { decider: Decider::Company { setting }, recording } => {
            assert_eq!((setting, recording), (RecordSetting::RecordInbound, record_inbound));
            None
        }
        other => panic!("a start decision is a Decided entry, got {other:?}"),
    };
    assert_eq!(decision.entry.at, AT);
    (decision.recording, decision.decided_by, step)
}

fn at(parts: &[AddressPart]) -> Option<StepAddress> {
    Some(StepAddress(parts.to_vec()))
}

use AddressPart::{Branch, Step as S};

/// A flow with a menu: key 1 records, key 2 does not record, timeout has no record step.
fn menu_flow() -> Vec<Step> {
    vec![
        announce("Welcome"),
        menu(
            vec![
                ('1', vec![record(true), ring_user(ME)]),
                ('2', vec![record(false), ring_group(MY_GROUP)]),
                ('3', vec![ring_user(COLLEAGUE)]),
            ],
            vec![voicemail()],
        ),
    ]
}

#[rstest]
// §6.1: no record step on the path: record_inbound decides, either way.
#[case::s6_1_inbound_no_record_step_company_on(vec![ring_user(ME)], path(&[], 1), true, (true, DecidedBy::Company, None))]
#[case::s6_1_inbound_no_record_step_company_off(vec![ring_user(ME)], path(&[], 1), false, (false, DecidedBy::Company, None))]
// §6.1: a record step on the path decides, overriding the company both ways.
#[case::s6_1_inbound_record_on_company_off(vec![record(true), ring_user(ME)], path(&[], 2), false, (true, DecidedBy::CallFlow, at(&[S(0)])))]
#[case::s6_1_inbound_record_off_company_on(vec![record(false), ring_user(ME)], path(&[], 2), true, (false, DecidedBy::CallFlow, at(&[S(0)])))]
// §6.1: the last record step on the path decides.
#[case::s6_1_inbound_last_record_step_wins(vec![record(true), announce("x"), record(false), ring_user(ME)], path(&[], 4), true, (false, DecidedBy::CallFlow, at(&[S(2)])))]
// §6.1: a record step the call never reached (it was answered before) does not count.
#[case::s6_1_inbound_record_step_after_answer(vec![ring_user(ME), record(false), voicemail()], path(&[], 1), true, (true, DecidedBy::Company, None))]
#[case::s6_1_inbound_record_step_before_voicemail(vec![ring_user(ME), record(true), voicemail()], path(&[], 3), false, (true, DecidedBy::CallFlow, at(&[S(1)])))]
// §6.1: menus: only the branch taken counts.
#[case::s6_1_menu_branch_1_records(menu_flow(), path(&[key('1')], 4), false, (true, DecidedBy::CallFlow, at(&[S(1), Branch(key('1')), S(0)])))]
#[case::s6_1_menu_branch_2_does_not_record(menu_flow(), path(&[key('2')], 4), true, (false, DecidedBy::CallFlow, at(&[S(1), Branch(key('2')), S(0)])))]
#[case::s6_1_menu_branch_3_no_step_company_on(menu_flow(), path(&[key('3')], 3), true, (true, DecidedBy::Company, None))]
#[case::s6_1_menu_branch_3_no_step_company_off(menu_flow(), path(&[key('3')], 3), false, (false, DecidedBy::Company, None))]
#[case::s6_1_menu_timeout_branch(menu_flow(), path(&[MenuChoice::Timeout], 3), true, (true, DecidedBy::Company, None))]
// §6.1: a record step before the menu holds unless the branch has its own.
#[case::s6_1_record_before_menu_branch_without_step(vec![record(false), menu(vec![('1', vec![ring_user(ME)]), ('2', vec![record(true), ring_user(ME)])], vec![])], path(&[key('1')], 3), true, (false, DecidedBy::CallFlow, at(&[S(0)])))]
#[case::s6_1_record_before_menu_branch_overrides(vec![record(false), menu(vec![('1', vec![ring_user(ME)]), ('2', vec![record(true), ring_user(ME)])], vec![])], path(&[key('2')], 4), false, (true, DecidedBy::CallFlow, at(&[S(1), Branch(key('2')), S(0)])))]
// §6.1: nested menus: the step inside the inner branch decides.
#[case::s6_1_nested_menus_inner_step(vec![menu(vec![('1', vec![record(true), menu(vec![('9', vec![record(false), ring_user(ME)])], vec![ring_user(ME)])])], vec![])], path(&[key('1'), key('9')], 5), true, (false, DecidedBy::CallFlow, at(&[S(0), Branch(key('1')), S(1), Branch(key('9')), S(0)])))]
#[case::s6_1_nested_menus_outer_step(vec![menu(vec![('1', vec![record(true), menu(vec![('9', vec![record(false), ring_user(ME)])], vec![ring_user(ME)])])], vec![])], path(&[key('1'), MenuChoice::Timeout], 4), false, (true, DecidedBy::CallFlow, at(&[S(0), Branch(key('1')), S(0)])))]
// §6.1: after a branch runs out, the steps after the menu run, and a record step there counts.
#[case::s6_1_step_after_menu_branch(vec![menu(vec![('1', vec![announce("x")])], vec![]), record(true), ring_user(ME)], path(&[key('1')], 4), false, (true, DecidedBy::CallFlow, at(&[S(1)])))]
fn s6_1_inbound_decision(
    #[case] steps: Vec<Step>,
    #[case] path: FlowPath,
    #[case] record_inbound: bool,
    #[case] expected: (bool, DecidedBy, Option<StepAddress>),
) {
    assert_eq!(decide_inbound(steps, &path, record_inbound), expected);
}

#[rstest]
#[case::s6_1_outbound_on(CallStart::Outbound, CompanySettings { record_outbound: true, ..CompanySettings::default() }, true, RecordSetting::RecordOutbound)]
#[case::s6_1_outbound_off(CallStart::Outbound, CompanySettings { record_outbound: false, ..CompanySettings::default() }, false, RecordSetting::RecordOutbound)]
#[case::s6_1_internal_default_off(
    CallStart::Internal,
    CompanySettings::default(),
    false,
    RecordSetting::RecordInternal
)]
#[case::s6_1_internal_on(CallStart::Internal, CompanySettings { record_internal: true, ..CompanySettings::default() }, true, RecordSetting::RecordInternal)]
// §6.1: inbound_record does not affect outbound or internal calls.
#[case::s6_1_outbound_ignores_record_inbound(CallStart::Outbound, CompanySettings { record_inbound: false, record_outbound: true, ..CompanySettings::default() }, true, RecordSetting::RecordOutbound)]
#[case::s6_1_internal_ignores_record_outbound(CallStart::Internal, CompanySettings { record_outbound: true, record_internal: false, ..CompanySettings::default() }, false, RecordSetting::RecordInternal)]
fn s6_1_outbound_and_internal(
    #[case] start: CallStart<'static>,
    #[case] company: CompanySettings,
    #[case] recording: bool,
    #[case] setting: RecordSetting,
) {
    let decision = decide_recording(start, &company, AT).unwrap();
    assert_eq!(decision.recording, recording);
    assert_eq!(decision.decided_by, DecidedBy::Company);
    assert_eq!(
        decision.entry,
        TraceEntry {
            at: AT,
            event: TraceEvent::Decided { recording, decider: Decider::Company { setting } }
        }
    );
}

/// §6.1: a stored path that no longer fits the flow is an error, not a guess.
#[test]
fn s6_1_path_that_does_not_fit_is_an_error() {
    let number = number(MY_NUMBER, menu_flow());
    let company = CompanySettings::default();
    let bad_key = path(&[key('7')], 3);
    let too_long = path(&[key('1')], 9);
    for path in [bad_key, too_long] {
        let result = decide_recording(CallStart::Inbound { number: &number, path: &path }, &company, AT);
        assert_eq!(result, Err(WalkError::PathDoesNotFit));
    }
}

/// §6: the trace names which call-flow step decided, in words a user reads.
#[test]
fn s6_trace_names_the_deciding_step() {
    let decider =
        Decider::CallFlow { number: MY_NUMBER, step: StepAddress(vec![S(1), Branch(key('2')), S(0)]) };
    assert_eq!(decider.to_string(), "call-flow record step (step 2 › key 2 › step 1) of number 30");
    let company = Decider::Company { setting: RecordSetting::RecordInbound };
    assert_eq!(company.to_string(), "company setting record_inbound");
}
