//! Call flows: routing read from the tree (D6), walking it (§6.1), and the
//! checks a flow passes before it is saved.

use super::fixture::*;
use earshot_policy::*;
use rstest::rstest;
use std::collections::BTreeSet;

use AddressPart::{Branch, Step as S};

fn key(c: char) -> MenuChoice {
    MenuChoice::Key(Key::from_char(c).unwrap())
}

#[rstest]
// D6: every ring_user / ring_group anywhere in the tree, whichever branch.
#[case::d6_top_level(vec![ring_user(ME), ring_group(MY_GROUP)], vec![ME], vec![MY_GROUP])]
#[case::d6_inside_menu_branch(vec![menu(vec![('1', vec![ring_user(ME)]), ('2', vec![ring_group(MY_GROUP)])], vec![])], vec![ME], vec![MY_GROUP])]
#[case::d6_inside_timeout_branch(vec![menu(vec![('1', vec![announce("x")])], vec![ring_user(COLLEAGUE)])], vec![COLLEAGUE], vec![])]
#[case::d6_nested_menus(vec![menu(vec![('1', vec![menu(vec![('2', vec![ring_user(ME), ring_group(OTHER_GROUP)])], vec![])])], vec![])], vec![ME], vec![OTHER_GROUP])]
#[case::d6_after_voicemail_branch_still_counts(vec![menu(vec![('1', vec![voicemail()]), ('2', vec![ring_user(COLLEAGUE)])], vec![ring_user(ME)])], vec![COLLEAGUE, ME], vec![])]
#[case::d6_no_ring_steps(vec![announce("Closed"), voicemail()], vec![], vec![])]
#[case::d6_repeated_user_counts_once(vec![ring_user(ME), menu(vec![('1', vec![ring_user(ME)])], vec![])], vec![ME], vec![])]
fn d6_routing(#[case] steps: Vec<Step>, #[case] users: Vec<UserId>, #[case] groups: Vec<GroupId>) {
    let flow = Flow::new(steps);
    assert_eq!(flow.routed_users(), users.into_iter().collect::<BTreeSet<_>>());
    assert_eq!(flow.routed_groups(), groups.into_iter().collect::<BTreeSet<_>>());
}

/// §6.1: a walk goes step by step, waits at menus for a choice, and after a
/// branch runs out goes on with the steps after the menu.
#[test]
fn s6_1_walk_through_a_flow() {
    let flow = Flow::new(vec![
        announce("Welcome"),
        menu(vec![('1', vec![record(true)]), ('2', vec![ring_user(ME)])], vec![]),
        ring_group(MY_GROUP),
        voicemail(),
    ]);
    let mut walk = FlowWalk::new();
    let next = |walk: &mut FlowWalk| walk.next_step(&flow).map(|step| step.map(|(address, _)| address));
    assert_eq!(next(&mut walk), Ok(Some(StepAddress(vec![S(0)]))));
    assert_eq!(next(&mut walk), Ok(Some(StepAddress(vec![S(1)]))));
    assert_eq!(walk.next_step(&flow).map(|_| ()), Err(WalkError::ChoiceNeeded(StepAddress(vec![S(1)]))));
    assert!(matches!(walk.choose(&flow, key('7')), Err(WalkError::NoSuchOption { .. })));
    walk.choose(&flow, key('1')).unwrap();
    assert_eq!(walk.choose(&flow, key('1')), Err(WalkError::NoMenu));
    assert_eq!(next(&mut walk), Ok(Some(StepAddress(vec![S(1), Branch(key('1')), S(0)]))));
    assert_eq!(next(&mut walk), Ok(Some(StepAddress(vec![S(2)]))));
    assert_eq!(next(&mut walk), Ok(Some(StepAddress(vec![S(3)]))));
    assert_eq!(next(&mut walk), Ok(None));
    assert_eq!(walk.path(), &FlowPath { choices: vec![key('1')], steps_taken: 5 });
    // The stored path replays the same steps.
    let replayed: Vec<_> =
        walk.path().steps(&flow).unwrap().into_iter().map(|(address, _)| address).collect();
    assert_eq!(replayed.len(), 5);
    assert_eq!(replayed[2], StepAddress(vec![S(1), Branch(key('1')), S(0)]));
    // Every address the walk gave leads back to its step.
    for (address, step) in walk.path().steps(&flow).unwrap() {
        assert_eq!(flow.step_at(&address), Some(step));
    }
    assert_eq!(flow.step_at(&StepAddress(vec![S(9)])), None);
    assert_eq!(flow.list_at(&StepAddress(vec![S(1), Branch(key('2'))])).map(<[Step]>::len), Some(1));
    assert_eq!(flow.list_at(&StepAddress(vec![S(0), Branch(key('2'))])), None, "step 1 is no menu");
}

fn problems(steps: Vec<Step>) -> Vec<String> {
    let flow = Flow::new(steps);
    let users = [ME, COLLEAGUE];
    let groups = [MY_GROUP, OTHER_GROUP];
    match flow.validate(|user| users.contains(&user), |group| groups.contains(&group)) {
        Ok(()) => vec![],
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

#[rstest]
#[case::s2_valid_flow(vec![announce("Hi"), menu(vec![('1', vec![ring_user(ME)])], vec![ring_group(MY_GROUP), voicemail()])], &[])]
#[case::s2_empty_flow(vec![], &["the flow has no steps"])]
#[case::s2_unknown_user(vec![ring_user(UserId(99))], &["step 1: user 99 does not exist"])]
#[case::s2_unknown_group_in_branch(vec![menu(vec![('1', vec![ring_group(GroupId(98))])], vec![])], &["step 1 › key 1 › step 1: group 98 does not exist"])]
#[case::s2_empty_menu(vec![menu(vec![], vec![voicemail()])], &["step 1: the menu has no options"])]
#[case::s2_zero_ring_timeout(vec![Step::RingUser { user: ME, timeout_s: 0 }], &["step 1: the timeout must be at least one second"])]
#[case::s2_step_after_voicemail(vec![voicemail(), ring_user(ME)], &["step 2: this step comes after a voicemail and can never be reached"])]
#[case::s2_step_after_voicemail_in_timeout_branch(vec![menu(vec![('1', vec![ring_user(ME)])], vec![voicemail(), announce("x")])], &["step 1 › no key › step 2: this step comes after a voicemail and can never be reached"])]
#[case::s2_every_problem_reported(vec![ring_user(UserId(99)), ring_group(GroupId(98))], &["step 1: user 99 does not exist", "step 2: group 98 does not exist"])]
fn s2_flow_validation(#[case] steps: Vec<Step>, #[case] expected: &[&str]) {
    assert_eq!(problems(steps), expected);
}

/// §2: menus nested deeper than the limit are refused.
#[test]
fn s2_menus_nested_too_deep() {
    let mut steps = vec![ring_user(ME)];
    for _ in 0..=MAX_MENU_DEPTH {
        steps = vec![menu(vec![('1', steps)], vec![])];
    }
    assert!(problems(steps).iter().any(|problem| problem.contains("menus nest more than 16 deep")));
}

/// §2: the flow's JSON form, as the API and the admin editor exchange it.
#[test]
fn s2_flow_wire_format() {
    let json = serde_json::json!([
        {"type": "record", "enabled": true},
        {"type": "announce", "prompt": {"text": "Welcome to Earshot"}},
        {"type": "menu", "prompt": {"audio": "menu.wav"},
         "options": {"1": [{"type": "ring_user", "user": 10}],
                     "2": [{"type": "ring_group", "group": 20, "strategy": "round_robin", "timeout_s": 30}]},
         "timeout": [{"type": "voicemail"}]}
    ]);
    let flow: Flow = serde_json::from_value(json).unwrap();
    assert_eq!(flow.steps.len(), 3);
    match &flow.steps[2] {
        Step::Menu { options, timeout, timeout_s, .. } => {
            assert_eq!(*timeout_s, 5, "menus wait 5 s by default");
            assert_eq!(options[&Key::digit(1)], vec![Step::RingUser { user: ME, timeout_s: 20 }]);
            assert_eq!(timeout, &vec![Step::Voicemail {}]);
        }
        other => panic!("expected a menu, got {other:?}"),
    }
    let back = serde_json::to_value(&flow).unwrap();
    let again: Flow = serde_json::from_value(back).unwrap();
    assert_eq!(again, flow);
    assert!(serde_json::from_value::<Flow>(serde_json::json!([{"type": "dance"}])).is_err());
}
