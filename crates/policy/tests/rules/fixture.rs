//! Small builders for users, numbers and calls, so each case reads as one line.

use earshot_policy::*;

pub const COMPANY: CompanyId = CompanyId(1);
pub const OTHER_COMPANY: CompanyId = CompanyId(2);

/// The user under test.
pub const ME: UserId = UserId(10);
/// Somebody else in the same company.
pub const COLLEAGUE: UserId = UserId(11);
/// A group `ME` belongs to.
pub const MY_GROUP: GroupId = GroupId(20);
/// A group `ME` does not belong to.
pub const OTHER_GROUP: GroupId = GroupId(21);
/// Routed to `ME` by a `ring_user` step.
pub const MY_NUMBER: NumberId = NumberId(30);
/// Routed to `MY_GROUP` by a `ring_group` step.
pub const GROUP_NUMBER: NumberId = NumberId(31);
/// Routed to `COLLEAGUE` and `OTHER_GROUP` only.
pub const OTHER_NUMBER: NumberId = NumberId(32);

pub fn user(id: UserId, role: Role, settings: UserSettings) -> User {
    User {
        id,
        company: COMPANY,
        name: format!("User {id}"),
        email: format!("user{id}@example.com"),
        role,
        extension: Some(format!("{}", 100 + id.0)),
        groups: vec![MY_GROUP],
        settings,
    }
}

/// `ME` with `role` and own settings.
pub fn me(role: Role, settings: UserSettings) -> User {
    user(ME, role, settings)
}

pub fn ring_user(user: UserId) -> Step {
    Step::RingUser { user, timeout_s: 20 }
}

pub fn ring_group(group: GroupId) -> Step {
    Step::RingGroup { group, strategy: RingStrategy::Simultaneous, timeout_s: 20 }
}

pub fn record(enabled: bool) -> Step {
    Step::Record { enabled }
}

pub fn announce(text: &str) -> Step {
    Step::Announce { prompt: Prompt::Text(text.into()) }
}

pub fn voicemail() -> Step {
    Step::Voicemail {}
}

/// A menu with a branch for each `(key, steps)` and a `timeout` branch.
pub fn menu(options: Vec<(char, Vec<Step>)>, timeout: Vec<Step>) -> Step {
    Step::Menu {
        prompt: Prompt::Text("Press 1 for sales, 2 for support.".into()),
        options: options.into_iter().map(|(key, steps)| (Key::from_char(key).unwrap(), steps)).collect(),
        timeout,
        timeout_s: 5,
    }
}

pub fn number(id: NumberId, steps: Vec<Step>) -> Number {
    Number {
        id,
        company: COMPANY,
        e164: format!("+4420700000{}", id.0),
        name: format!("Number {id}"),
        flow: Flow::new(steps),
    }
}

/// The fixture's numbers: `MY_NUMBER` routed to `ME` inside a menu branch,
/// `GROUP_NUMBER` to `MY_GROUP` in a timeout branch, `OTHER_NUMBER` elsewhere.
pub fn numbers() -> Vec<Number> {
    vec![
        number(
            MY_NUMBER,
            vec![announce("Welcome"), menu(vec![('1', vec![ring_user(ME)])], vec![voicemail()])],
        ),
        number(
            GROUP_NUMBER,
            vec![menu(vec![('1', vec![announce("Sales")])], vec![ring_group(MY_GROUP), voicemail()])],
        ),
        number(OTHER_NUMBER, vec![ring_user(COLLEAGUE), ring_group(OTHER_GROUP), voicemail()]),
    ]
}

pub fn routing() -> Routing {
    Routing::from_numbers(&numbers())
}

pub fn viewer(user: &User, company: &CompanySettings, app: AppContext) -> Viewer {
    Viewer::new(user, company, &routing(), app)
}

pub fn recording(id: i64, kind: RecordingKind) -> Recording {
    Recording {
        id: RecordingId(id),
        call: CallId(1000),
        kind,
        duration_ms: 61_000,
        size_bytes: 976_044,
        paused_spans: vec![],
        deleted: None,
    }
}

/// A call with no parties, nobody rung, no recording.
pub fn call(direction: Direction, status: CallStatus, number: Option<NumberId>) -> Call {
    Call {
        id: CallId(1000),
        company: COMPANY,
        direction,
        status,
        started_at: Timestamp(1_700_000_000_000),
        answered_at: (status == CallStatus::Answered).then_some(Timestamp(1_700_000_005_000)),
        ended_at: Some(Timestamp(1_700_000_065_000)),
        number,
        external_number: Some("+15550100".into()),
        contact: None,
        parties: vec![],
        rang: vec![],
        recording: None,
        voicemail: None,
        decided_by: None,
        recording_trace: vec![],
        legal_hold: None,
    }
}

/// How `ME` relates to a call (SPEC §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// `ME` is a party.
    Own,
    /// `ME` rang but is not a party, and the number is not routed to `ME`.
    Rang,
    /// The call's number is routed to `ME`.
    MyNumber,
    /// The call's number is routed to a group of `ME`'s.
    GroupNumber,
    /// None of the above.
    Unrelated,
}

/// A call related to `ME` by `relation`, with `status`; the colleague is the party otherwise.
pub fn related_call(relation: Relation, status: CallStatus) -> Call {
    let direction = if status == CallStatus::Unanswered { Direction::Outbound } else { Direction::Inbound };
    let answered = status == CallStatus::Answered || status == CallStatus::Unanswered;
    let (number, parties, rang) = match relation {
        Relation::Own => (OTHER_NUMBER, vec![ME], vec![ME]),
        Relation::Rang => {
            (OTHER_NUMBER, if answered { vec![COLLEAGUE] } else { vec![] }, vec![ME, COLLEAGUE])
        }
        Relation::MyNumber => (MY_NUMBER, if answered { vec![COLLEAGUE] } else { vec![] }, vec![COLLEAGUE]),
        Relation::GroupNumber => {
            (GROUP_NUMBER, if answered { vec![COLLEAGUE] } else { vec![] }, vec![COLLEAGUE])
        }
        Relation::Unrelated => {
            (OTHER_NUMBER, if answered { vec![COLLEAGUE] } else { vec![] }, vec![COLLEAGUE])
        }
    };
    Call { parties, rang, ..call(direction, status, Some(number)) }
}

/// Settings with only `call_visibility` set.
pub fn visibility(level: CallVisibility) -> UserSettings {
    UserSettings { call_visibility: Some(level), ..UserSettings::default() }
}
