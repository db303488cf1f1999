//! Who sees which call: SPEC §4.1–§4.3, D6, D7, D8.

use super::fixture::*;
use earshot_policy::*;
use rstest::rstest;

use CallStatus::{Answered, Missed, Unanswered, Voicemail};
use CallVisibility::{All, GroupsAndNumbers, OwnAndMissed, ViaGroups};
use Relation::{GroupNumber, MyNumber, Own, Rang, Unrelated};

/// The oracle, written from §4.2 alone: the lowest level at which a call
/// related by `relation` with `status` becomes visible (`None`: only at `all`).
fn lowest_level_that_shows(relation: Relation, status: CallStatus) -> CallVisibility {
    let missed = matches!(status, Missed | Voicemail);
    match relation {
        Own => OwnAndMissed,                   // rule 1
        MyNumber if missed => OwnAndMissed,    // rule 2
        GroupNumber if missed => OwnAndMissed, // rule 2
        GroupNumber => ViaGroups,              // rule 3
        MyNumber => GroupsAndNumbers,          // rule 4
        Rang | Unrelated => All,               // rule 5: being rung is no reason to see a call
    }
}

fn sees(user: &User, company: &CompanySettings, app: AppContext, call: &Call) -> bool {
    viewer(user, company, app).can_see(call)
}

/// §4.1, §4.2: every level × relation × status, for each non-admin role,
/// with the level set on the user (so it is effective for every role, D1).
#[rstest]
fn s4_2_visibility_matrix(
    #[values(Role::Agent, Role::Supervisor, Role::Analyst)] role: Role,
    #[values(OwnAndMissed, ViaGroups, GroupsAndNumbers, All)] level: CallVisibility,
    #[values(Own, Rang, MyNumber, GroupNumber, Unrelated)] relation: Relation,
    #[values(Answered, Missed, Voicemail, Unanswered)] status: CallStatus,
) {
    let user = me(role, visibility(level));
    let call = related_call(relation, status);
    let expected = level >= lowest_level_that_shows(relation, status);
    assert_eq!(sees(&user, &CompanySettings::default(), AppContext::Dashboard, &call), expected);
}

/// §4.2 with an agent's level coming from the company (§3), in the calling app.
#[rstest]
fn s4_2_agent_company_level_matrix(
    #[values(OwnAndMissed, ViaGroups, GroupsAndNumbers, All)] level: CallVisibility,
    #[values(Own, Rang, MyNumber, GroupNumber, Unrelated)] relation: Relation,
    #[values(Answered, Missed, Voicemail)] status: CallStatus,
) {
    let company = CompanySettings { agent_call_visibility: level, ..CompanySettings::default() };
    let user = me(Role::Agent, UserSettings::default());
    let call = related_call(relation, status);
    let expected = level >= lowest_level_that_shows(relation, status);
    assert_eq!(sees(&user, &company, AppContext::Calling, &call), expected);
}

/// §4.2: admins see every call of their company, whatever their own or the company's values.
#[rstest]
fn s4_2_admin_sees_every_company_call(
    #[values(Own, Rang, MyNumber, GroupNumber, Unrelated)] relation: Relation,
    #[values(Answered, Missed, Voicemail, Unanswered)] status: CallStatus,
    #[values(AppContext::Calling, AppContext::Dashboard, AppContext::Analytics)] app: AppContext,
) {
    let admin = me(Role::Admin, visibility(OwnAndMissed));
    assert!(sees(&admin, &CompanySettings::default(), app, &related_call(relation, status)));
}

#[rstest]
// D8: nobody sees another company's calls, not even an admin, not even their "own" ones.
#[case::d8_admin_other_company(Role::Admin, All, Own)]
#[case::d8_agent_all_other_company(Role::Agent, All, Unrelated)]
#[case::d8_agent_own_other_company(Role::Agent, OwnAndMissed, Own)]
#[case::d8_supervisor_all_other_company(Role::Supervisor, All, GroupNumber)]
#[case::d8_analyst_all_other_company(Role::Analyst, All, MyNumber)]
fn d8_other_company_is_invisible(
    #[case] role: Role,
    #[case] level: CallVisibility,
    #[case] relation: Relation,
) {
    let user = me(role, visibility(level));
    let foreign = Call { company: OTHER_COMPANY, ..related_call(relation, Answered) };
    for app in AppContext::ALL {
        assert!(!sees(&user, &CompanySettings::default(), app, &foreign));
    }
    assert!(
        !viewer(&user, &CompanySettings::default(), AppContext::Dashboard)
            .visibility_filter()
            .matches(&foreign)
    );
}

#[rstest]
// §4.3 / D1: an unset supervisor sees only own and missed in calling and dashboard, whatever the company says.
#[case::d1_supervisor_unset_dashboard_ignores_company_all(
    Role::Supervisor,
    AppContext::Dashboard,
    Unrelated,
    false
)]
#[case::d1_supervisor_unset_calling_ignores_company_all(
    Role::Supervisor,
    AppContext::Calling,
    GroupNumber,
    false
)]
#[case::d1_analyst_unset_dashboard_ignores_company_all(Role::Analyst, AppContext::Dashboard, MyNumber, false)]
#[case::d1_supervisor_unset_dashboard_own(Role::Supervisor, AppContext::Dashboard, Own, true)]
// D2: in analytics the company's `all` governs them.
#[case::d2_supervisor_unset_analytics_company_all(Role::Supervisor, AppContext::Analytics, Unrelated, true)]
#[case::d2_analyst_unset_analytics_company_all(Role::Analyst, AppContext::Analytics, Unrelated, true)]
// §4.3: agents follow the company in every app.
#[case::s4_3_agent_unset_calling_company_all(Role::Agent, AppContext::Calling, Unrelated, true)]
#[case::s4_3_agent_unset_analytics_company_all(Role::Agent, AppContext::Analytics, Unrelated, true)]
fn s4_3_app_contexts_with_company_all(
    #[case] role: Role,
    #[case] app: AppContext,
    #[case] relation: Relation,
    #[case] expected: bool,
) {
    let company = CompanySettings { agent_call_visibility: All, ..CompanySettings::default() };
    let user = me(role, UserSettings::default());
    assert_eq!(sees(&user, &company, app, &related_call(relation, Answered)), expected);
}

#[rstest]
// D2: a supervisor whose own level is `all` sees only what the company allows in analytics.
#[case::d2_supervisor_own_all_analytics_restricted(Role::Supervisor, AppContext::Analytics, false)]
#[case::d2_supervisor_own_all_dashboard_unrestricted(Role::Supervisor, AppContext::Dashboard, true)]
#[case::d2_analyst_own_all_analytics_restricted(Role::Analyst, AppContext::Analytics, false)]
#[case::d2_analyst_own_all_calling_unrestricted(Role::Analyst, AppContext::Calling, true)]
// §4.3: an agent's own `all` holds in analytics too.
#[case::s4_3_agent_own_all_analytics(Role::Agent, AppContext::Analytics, true)]
fn d2_own_all_against_restrictive_company(
    #[case] role: Role,
    #[case] app: AppContext,
    #[case] expected: bool,
) {
    let user = me(role, visibility(All));
    let call = related_call(Unrelated, Answered);
    assert_eq!(sees(&user, &CompanySettings::default(), app, &call), expected);
}

/// D6: routing is read from every `ring_user`/`ring_group` anywhere in the
/// flow, whichever branch: `MY_NUMBER` rings `ME` only in menu branch 1,
/// `GROUP_NUMBER` rings `MY_GROUP` only on the menu's timeout.
#[test]
fn d6_routing_from_every_branch() {
    let routing = routing();
    assert_eq!(routing.numbers_of_user(ME), &[MY_NUMBER]);
    assert_eq!(routing.numbers_of_group(MY_GROUP), &[GROUP_NUMBER]);
    assert_eq!(routing.numbers_of_user(COLLEAGUE), &[OTHER_NUMBER]);
    assert_eq!(routing.numbers_of_groups(&[MY_GROUP, OTHER_GROUP]), vec![GROUP_NUMBER, OTHER_NUMBER]);
}

/// D7: visibility follows routing as configured now. A missed call to a
/// number that rang `ME` last month disappears once the number is routed
/// elsewhere, and one to a number newly routed to `ME` appears.
#[test]
fn d7_routing_change_applies_to_history_at_once() {
    let user = me(Role::Agent, UserSettings::default());
    let company = CompanySettings::default();
    let old_call = Call { rang: vec![ME], ..related_call(MyNumber, Missed) };
    assert!(Viewer::new(&user, &company, &routing(), AppContext::Calling).can_see(&old_call));

    let rerouted =
        vec![number(MY_NUMBER, vec![ring_user(COLLEAGUE)]), number(OTHER_NUMBER, vec![ring_user(ME)])];
    let now = Viewer::new(&user, &company, &Routing::from_numbers(&rerouted), AppContext::Calling);
    assert!(!now.can_see(&old_call), "rang alone does not make a call visible (§4.2)");
    assert!(now.can_see(&related_call(Unrelated, Missed)), "OTHER_NUMBER is now routed to ME");
}

/// D7: joining a group makes its numbers' missed calls visible at once; leaving hides them.
#[test]
fn d7_group_membership_change_applies_at_once() {
    let mut user = me(Role::Agent, UserSettings::default());
    let call = related_call(GroupNumber, Voicemail);
    assert!(viewer(&user, &CompanySettings::default(), AppContext::Calling).can_see(&call));
    user.groups.clear();
    assert!(!viewer(&user, &CompanySettings::default(), AppContext::Calling).can_see(&call));
}

/// §4.2: a call without a company number (internal) is visible only to its parties below `all`.
#[rstest]
#[case::s4_2_internal_own(vec![ME, COLLEAGUE], GroupsAndNumbers, true)]
#[case::s4_2_internal_others(vec![COLLEAGUE, UserId(12)], GroupsAndNumbers, false)]
#[case::s4_2_internal_others_level_all(vec![COLLEAGUE, UserId(12)], All, true)]
fn s4_2_internal_calls(#[case] parties: Vec<UserId>, #[case] level: CallVisibility, #[case] expected: bool) {
    let call = Call { parties, ..call(Direction::Internal, Answered, None) };
    let user = me(Role::Agent, visibility(level));
    assert_eq!(sees(&user, &CompanySettings::default(), AppContext::Calling, &call), expected);
}

/// §4.2: the database filter matches the direct rule on every matrix cell.
#[rstest]
fn s4_2_filter_matches_rule(
    #[values(Role::Admin, Role::Agent, Role::Supervisor, Role::Analyst)] role: Role,
    #[values(OwnAndMissed, ViaGroups, GroupsAndNumbers, All)] level: CallVisibility,
    #[values(Own, Rang, MyNumber, GroupNumber, Unrelated)] relation: Relation,
) {
    let user = me(role, visibility(level));
    let v = viewer(&user, &CompanySettings::default(), AppContext::Dashboard);
    let filter = v.visibility_filter();
    for status in CallStatus::ALL {
        let call = related_call(relation, status);
        assert_eq!(filter.matches(&call), v.can_see(&call), "{status:?}");
    }
}

/// §4.1: the relations of a user to a call.
#[rstest]
#[case::s4_1_own(Own, true, true)]
#[case::s4_1_rang(Rang, false, true)]
#[case::s4_1_my_number(MyNumber, false, false)]
#[case::s4_1_group_number(GroupNumber, false, false)]
#[case::s4_1_unrelated(Unrelated, false, false)]
fn s4_1_relations(#[case] relation: Relation, #[case] own: bool, #[case] rang: bool) {
    let v =
        viewer(&me(Role::Agent, UserSettings::default()), &CompanySettings::default(), AppContext::Calling);
    let call = related_call(relation, Missed);
    assert_eq!((v.is_own(&call), v.was_rung(&call)), (own, rang));
    let on_my_number = call.number == Some(MY_NUMBER);
    let on_group_number = call.number == Some(GROUP_NUMBER);
    assert!(v.my_numbers().contains(&MY_NUMBER));
    assert_eq!(call.number.is_some_and(|n| v.my_numbers().contains(&n)), on_my_number);
    assert_eq!(call.number.is_some_and(|n| v.group_numbers().contains(&n)), on_group_number);
}

/// D8: a company is built from its own records only.
#[rstest]
#[case::d8_foreign_user("a user")]
#[case::d8_foreign_group("a group")]
#[case::d8_foreign_number("a number")]
fn d8_company_refuses_foreign_records(#[case] record: &'static str) {
    let mut users = vec![me(Role::Agent, UserSettings::default())];
    let mut groups = vec![Group { id: MY_GROUP, company: COMPANY, name: "Sales".into() }];
    let mut numbers = numbers();
    match record {
        "a user" => users[0].company = OTHER_COMPANY,
        "a group" => groups[0].company = OTHER_COMPANY,
        _ => numbers[1].company = OTHER_COMPANY,
    }
    let error = Company::new(COMPANY, CompanySettings::default(), users, groups, numbers).unwrap_err();
    assert_eq!(error, ForeignRecord { company: COMPANY, belongs_to: OTHER_COMPANY, record });
}

/// §2: which statuses each direction can end in.
#[rstest]
#[case::s2_inbound_answered(Direction::Inbound, Answered, true)]
#[case::s2_inbound_missed(Direction::Inbound, Missed, true)]
#[case::s2_inbound_voicemail(Direction::Inbound, Voicemail, true)]
#[case::s2_inbound_unanswered(Direction::Inbound, Unanswered, false)]
#[case::s2_outbound_missed(Direction::Outbound, Missed, false)]
#[case::s2_outbound_unanswered(Direction::Outbound, Unanswered, true)]
#[case::s2_internal_voicemail(Direction::Internal, Voicemail, false)]
#[case::s2_internal_answered(Direction::Internal, Answered, true)]
fn s2_statuses_fit_directions(#[case] direction: Direction, #[case] status: CallStatus, #[case] fits: bool) {
    assert_eq!(status.fits(direction), fits);
}
