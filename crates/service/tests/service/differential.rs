//! The SQL visibility filter against `policy` (SPEC §4.2, §5, D8): on random
//! companies, every user in every app context gets, through the paged SQL
//! query, exactly the calls `Viewer::can_see` shows, with `can_play` and
//! `can_download` equal to `policy`'s answers, alone and under each of the
//! history's filters. 1,000 scenarios per backend.

use super::support::{TestService, backends};
use earshot_policy::*;
use earshot_service::api::analytics::summarize;
use earshot_service::api::calls::{CallsQuery, page};
use earshot_service::calls::{RecordingFile, insert_call};
use earshot_service::db::Query;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::subsequence;
use proptest::test_runner::{Config, TestRunner};
use sqlx::Row as _;

#[derive(Clone, Debug)]
struct Scenario {
    settings: CompanySettings,
    /// Role, groups (indexes into 0..3), own settings.
    users: Vec<(Role, Vec<usize>, UserSettings)>,
    /// For each number: the users (indexes) and groups (indexes) its flow rings, and where.
    numbers: Vec<(Vec<usize>, Vec<usize>, bool)>,
    calls: Vec<ScenarioCall>,
}

#[derive(Clone, Debug)]
struct ScenarioCall {
    direction: Direction,
    status: CallStatus,
    number: Option<usize>,
    parties: Vec<usize>,
    rang: Vec<usize>,
    recording: bool,
    voicemail: bool,
    started_at: i64,
}

fn level() -> impl Strategy<Value = CallVisibility> {
    prop::sample::select(CallVisibility::ALL_LEVELS.to_vec())
}

fn playback() -> impl Strategy<Value = RecordingPlayback> {
    prop::sample::select(RecordingPlayback::ALL_VALUES.to_vec())
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (1..6usize, 0..4usize)
        .prop_flat_map(|(user_count, number_count)| {
            let user_indexes: Vec<usize> = (0..user_count).collect();
            let settings =
                (level(), playback(), any::<bool>()).prop_map(|(visibility, playback, download)| {
                    CompanySettings {
                        agent_call_visibility: visibility,
                        agent_recording_playback: playback,
                        agent_can_download: download,
                        ..CompanySettings::default()
                    }
                });
            let user = (
                prop::sample::select(Role::ALL.to_vec()),
                subsequence(vec![0, 1, 2], 0..=3),
                (prop::option::of(level()), prop::option::of(playback()), any::<Option<bool>>()),
            )
                .prop_map(
                    |(role, groups, (call_visibility, recording_playback, can_download))| {
                        (
                            role,
                            groups,
                            UserSettings {
                                call_visibility,
                                recording_playback,
                                can_download,
                                recording_control: None,
                            },
                        )
                    },
                );
            let number = (
                subsequence(user_indexes.clone(), 0..=user_count.min(2)),
                subsequence(vec![0, 1, 2], 0..=2),
                any::<bool>(),
            );
            let call = (
                (
                    prop::sample::select(Direction::ALL.to_vec()),
                    prop::sample::select(CallStatus::ALL.to_vec()),
                    prop::option::of(0..number_count.max(1)),
                ),
                subsequence(user_indexes.clone(), 0..=user_count.min(2)),
                subsequence(user_indexes, 0..=user_count),
                any::<(bool, bool)>(),
                // Few distinct start times, so pages often split calls that started together.
                0..6i64,
            )
                .prop_map(
                    move |((direction, status, number), parties, rang, (recording, voicemail), started)| {
                        ScenarioCall {
                            direction,
                            status,
                            number: number.filter(|_| number_count > 0),
                            parties,
                            rang,
                            recording,
                            voicemail,
                            started_at: 1_700_000_000_000 + started * 1_000,
                        }
                    },
                );
            (settings, vec(user, user_count), vec(number, number_count), vec(call, 0..14))
        })
        .prop_map(|(settings, users, numbers, calls)| Scenario { settings, users, numbers, calls })
}

async fn insert(service: &TestService, scenario: &Scenario, serial: usize) -> (Company, Vec<Call>) {
    let db = &service.state.db;
    let (company, _) = service.company(&format!("Scenario {serial}")).await;
    let mut tx = db.pool().begin().await.unwrap();
    let mut query = Query::new("UPDATE companies SET settings = ");
    query.bind(serde_json::to_string(&scenario.settings).unwrap()).push(" WHERE id = ").bind(company.0);
    db.execute(&mut *tx, &query).await.unwrap();
    let mut group_ids = Vec::new();
    for g in 0..3 {
        let mut query = Query::new("INSERT INTO groups (company_id, name) VALUES (");
        query.bind(company.0).push(", ").bind(format!("Group {g}")).push(") RETURNING id");
        group_ids.push(GroupId(
            db.fetch_optional(&mut *tx, &query).await.unwrap().unwrap().try_get("id").unwrap(),
        ));
    }
    let mut users = Vec::new();
    for (i, (role, groups, settings)) in scenario.users.iter().enumerate() {
        let email = format!("u{i}@scenario{serial}.test");
        let mut query = Query::new(
            "INSERT INTO users (company_id, name, email, role, settings, password_hash, created_at) VALUES (",
        );
        query
            .bind(company.0)
            .push(", ")
            .bind(format!("User {i}"))
            .push(", ")
            .bind(email.clone())
            .push(", ")
            .bind(role.as_str())
            .push(", ")
            .bind(serde_json::to_string(settings).unwrap())
            .push(", 'not a hash', 0) RETURNING id");
        let id = UserId(db.fetch_optional(&mut *tx, &query).await.unwrap().unwrap().try_get("id").unwrap());
        for g in groups {
            let mut query = Query::new("INSERT INTO group_members (group_id, user_id) VALUES (");
            query.bind(group_ids[*g].0).push(", ").bind(id.0).push(")");
            db.execute(&mut *tx, &query).await.unwrap();
        }
        users.push(User {
            id,
            company,
            name: format!("User {i}"),
            email,
            role: *role,
            extension: None,
            groups: groups.iter().map(|g| group_ids[*g]).collect(),
            settings: settings.clone(),
        });
    }
    let mut numbers = Vec::new();
    for (n, (ring_users, ring_groups, in_menu)) in scenario.numbers.iter().enumerate() {
        let mut steps: Vec<Step> =
            ring_users.iter().map(|u| Step::RingUser { user: users[*u].id, timeout_s: 20 }).collect();
        steps.extend(ring_groups.iter().map(|g| Step::RingGroup {
            group: group_ids[*g],
            strategy: RingStrategy::Simultaneous,
            timeout_s: 20,
        }));
        steps.push(Step::Voicemail {});
        let flow = if *in_menu {
            // D6: a branch counts as much as the top level.
            Flow::new(vec![Step::Menu {
                prompt: Prompt::Text("Choose".into()),
                options: [(Key::digit(1), steps)].into_iter().collect(),
                timeout: vec![],
                timeout_s: 5,
            }])
        } else {
            Flow::new(steps)
        };
        let e164 = format!("+4420{serial:06}{n}");
        let mut query = Query::new("INSERT INTO numbers (company_id, e164, name, flow) VALUES (");
        query
            .bind(company.0)
            .push(", ")
            .bind(e164.clone())
            .push(", 'Line', ")
            .bind(serde_json::to_string(&flow).unwrap())
            .push(") RETURNING id");
        let id = NumberId(db.fetch_optional(&mut *tx, &query).await.unwrap().unwrap().try_get("id").unwrap());
        numbers.push(Number { id, company, e164, name: "Line".into(), flow });
    }
    let mut query = Query::new("UPDATE companies SET version = version + 1 WHERE id = ");
    query.bind(company.0);
    db.execute(&mut *tx, &query).await.unwrap();
    let mut calls = Vec::new();
    for call in &scenario.calls {
        let kinds = [(call.recording, RecordingKind::Call), (call.voicemail, RecordingKind::Voicemail)];
        let recordings: Vec<Recording> = kinds
            .iter()
            .filter(|(has, _)| *has)
            .map(|(_, kind)| Recording {
                id: RecordingId(0),
                call: CallId(0),
                kind: *kind,
                duration_ms: 1_000,
                size_bytes: 16_044,
                paused_spans: vec![],
                deleted: None,
            })
            .collect();
        let mut model = Call {
            id: CallId(0),
            company,
            direction: call.direction,
            status: call.status,
            started_at: Timestamp(call.started_at),
            answered_at: None,
            ended_at: None,
            number: call.number.map(|n| numbers[n].id),
            external_number: None,
            contact: None,
            parties: call.parties.iter().map(|u| users[*u].id).collect(),
            rang: call.rang.iter().map(|u| users[*u].id).collect(),
            recording: None,
            voicemail: None,
            decided_by: None,
            recording_trace: vec![],
            legal_hold: None,
        };
        let files: Vec<RecordingFile> = recordings
            .iter()
            .map(|r| RecordingFile { recording: r.clone(), file_name: "none.wav".into() })
            .collect();
        model.id = insert_call(db, &mut tx, &model, &files).await.unwrap();
        for recording in recordings {
            match recording.kind {
                RecordingKind::Call => model.recording = Some(recording),
                RecordingKind::Voicemail => model.voicemail = Some(recording),
            }
        }
        calls.push(model);
    }
    tx.commit().await.unwrap();
    let groups = group_ids.iter().map(|id| Group { id: *id, company, name: String::new() }).collect();
    (Company::new(company, scenario.settings.clone(), users, groups, numbers).unwrap(), calls)
}

/// A filter of `GET /calls`, and the same filter in Rust.
/// Which calls a filter keeps, in Rust.
type Keep = Box<dyn Fn(&Call) -> bool>;

fn filter_for(round: usize, company: &Company, calls: &[Call]) -> (CallsQuery, Keep) {
    let query = CallsQuery::default();
    match round % 7 {
        0 => (query, Box::new(|_| true)),
        1 => {
            let direction = Direction::ALL[round / 7 % 3];
            (CallsQuery { direction: Some(direction), ..query }, Box::new(move |c| c.direction == direction))
        }
        2 => {
            let status = CallStatus::ALL[round / 7 % 4];
            (CallsQuery { status: Some(status), ..query }, Box::new(move |c| c.status == status))
        }
        3 => {
            let has = (round / 7).is_multiple_of(2);
            (
                CallsQuery { has_recording: Some(has), ..query },
                Box::new(move |c| (c.recording.is_some() || c.voicemail.is_some()) == has),
            )
        }
        4 => match company.numbers().get(round / 7 % company.numbers().len().max(1)) {
            Some(number) => {
                let id = number.id;
                (CallsQuery { number: Some(id.0), ..query }, Box::new(move |c| c.number == Some(id)))
            }
            None => (query, Box::new(|_| true)),
        },
        5 => {
            let user = company.users()[round / 7 % company.users().len()].id;
            (CallsQuery { user: Some(user.0), ..query }, Box::new(move |c| c.parties.contains(&user)))
        }
        _ => {
            let middle = calls.get(calls.len() / 2).map_or(0, |c| c.started_at.0);
            (
                CallsQuery { from: Some(middle), to: Some(middle + 2_000), ..query },
                Box::new(move |c| (middle..middle + 2_000).contains(&c.started_at.0)),
            )
        }
    }
}

async fn check(service: &TestService, scenario: &Scenario, serial: usize) {
    let (company, calls) = insert(service, scenario, serial).await;
    let mut round = serial;
    for user in company.users() {
        for app in AppContext::ALL {
            round += 1;
            let (base_query, keep) = filter_for(round, &company, &calls);
            let viewer = Viewer::new(user, company.settings(), company.routing(), app);
            let mut expected: Vec<&Call> =
                calls.iter().filter(|call| viewer.can_see(call) && keep(call)).collect();
            expected.sort_by_key(|call| std::cmp::Reverse((call.started_at, call.id)));
            let mut got = Vec::new();
            let mut cursor = None;
            loop {
                let filters = CallsQuery { app: Some(app), cursor, limit: Some(3), ..base_query.clone() };
                let answer = page(&service.state, &viewer, &filters).await.unwrap();
                got.extend(answer.calls);
                match answer.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            if app == AppContext::Analytics && round.is_multiple_of(7) {
                // The analytics summary counts exactly the calls policy shows in analytics.
                let summary = summarize(&service.state, &viewer, 0, i64::MAX).await.unwrap();
                assert_eq!(summary.totals.calls, expected.len() as i64, "analytics summary");
                let answered = expected.iter().filter(|c| c.status == CallStatus::Answered).count();
                assert_eq!(summary.totals.answered, answered as i64, "analytics summary");
            }
            let got_ids: Vec<CallId> = got.iter().map(|out| out.call.id).collect();
            let expected_ids: Vec<CallId> = expected.iter().map(|call| call.id).collect();
            assert_eq!(
                got_ids, expected_ids,
                "{:?} as {:?} in {app:?} with {base_query:?}",
                user.role, user.settings
            );
            for (out, call) in got.iter().zip(&expected) {
                let access = viewer.access(call);
                assert_eq!(out.access, access, "call {}", call.id);
                assert_eq!(out.can_play, access.recording.play || access.voicemail.play);
                assert_eq!(out.can_download, access.recording.download || access.voicemail.download);
            }
        }
    }
}

#[test]
fn sql_visibility_equals_policy_on_random_companies() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for backend in backends() {
        let service = runtime.block_on(TestService::start(&backend));
        let serial = std::cell::Cell::new(0);
        let mut runner = TestRunner::new(Config {
            cases: 1_000,
            failure_persistence: None,
            max_shrink_iters: 0,
            ..Config::default()
        });
        runner
            .run(&scenario(), |scenario| {
                serial.set(serial.get() + 1);
                runtime.block_on(check(&service, &scenario, serial.get()));
                Ok(())
            })
            .unwrap();
        assert!(serial.get() >= 1_000, "{} scenarios on {:?}", serial.get(), service.state.db.backend());
    }
}
