//! Property tests for the laws the rules must keep on any company and any call
//! (SPEC §3–§6, D1, D2, D8, D9).

use super::fixture::{COMPANY, OTHER_COMPANY};
use earshot_policy::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::subsequence;

const GROUPS: [GroupId; 3] = [GroupId(1), GroupId(2), GroupId(3)];

fn user_ids(count: usize) -> Vec<UserId> {
    (1..=count as i64).map(UserId).collect()
}

fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(Role::ALL.to_vec())
}

fn level() -> impl Strategy<Value = CallVisibility> {
    prop::sample::select(CallVisibility::ALL_LEVELS.to_vec())
}

fn playback() -> impl Strategy<Value = RecordingPlayback> {
    prop::sample::select(RecordingPlayback::ALL_VALUES.to_vec())
}

fn user_settings() -> impl Strategy<Value = UserSettings> {
    (any::<Option<bool>>(), prop::option::of(level()), prop::option::of(playback()), any::<Option<bool>>())
        .prop_map(|(recording_control, call_visibility, recording_playback, can_download)| UserSettings {
            recording_control,
            call_visibility,
            recording_playback,
            can_download,
        })
}

fn company_settings() -> impl Strategy<Value = CompanySettings> {
    (any::<[bool; 5]>(), level(), playback(), any::<bool>()).prop_map(|(flags, level, playback, skip)| {
        CompanySettings {
            record_inbound: flags[0],
            record_outbound: flags[1],
            record_internal: flags[2],
            agent_recording_control: flags[3],
            agent_can_download: flags[4],
            agent_call_visibility: level,
            agent_recording_playback: playback,
            paused_audio: if skip { PausedAudio::Skip } else { PausedAudio::Silence },
            recording_retention_days: None,
        }
    })
}

/// A step tree naming users `1..=user_count` and the three groups, menus nested up to 3 deep.
fn steps(user_count: usize) -> impl Strategy<Value = Vec<Step>> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(|enabled| Step::Record { enabled }),
        Just(Step::Announce { prompt: Prompt::Text("Hello".into()) }),
        (1..=user_count as i64).prop_map(|id| Step::RingUser { user: UserId(id), timeout_s: 20 }),
        prop::sample::select(GROUPS.to_vec()).prop_map(|group| Step::RingGroup {
            group,
            strategy: RingStrategy::Simultaneous,
            timeout_s: 20
        }),
    ];
    let step = leaf.prop_recursive(3, 24, 4, |inner| {
        (vec(vec(inner.clone(), 0..3), 1..3), vec(inner, 0..2)).prop_map(|(branches, timeout)| Step::Menu {
            prompt: Prompt::Text("Choose".into()),
            options: branches
                .into_iter()
                .enumerate()
                .map(|(i, steps)| (Key::digit(i as u8 + 1), steps))
                .collect(),
            timeout,
            timeout_s: 5,
        })
    });
    vec(step, 0..5)
}

#[derive(Clone, Debug)]
struct Scenario {
    company: Company,
    calls: Vec<Call>,
}

fn recording_of(kind: RecordingKind) -> impl Strategy<Value = Option<Recording>> {
    prop::option::of((1..1_000_000i64).prop_map(move |id| Recording {
        id: RecordingId(id),
        call: CallId(id),
        kind,
        duration_ms: 1_000,
        size_bytes: 16_044,
        paused_spans: vec![],
        deleted: None,
    }))
}

fn call(user_count: usize, number_count: usize) -> impl Strategy<Value = Call> {
    let users = user_ids(user_count);
    (
        (
            prop::sample::select(Direction::ALL.to_vec()),
            prop::sample::select(CallStatus::ALL.to_vec()),
            // Number ids 1..=number_count exist; one more is a number nobody routes.
            prop::option::of(1..=number_count as i64 + 1),
            subsequence(users.clone(), 0..=2.min(user_count)),
            subsequence(users, 0..=user_count),
        ),
        recording_of(RecordingKind::Call),
        recording_of(RecordingKind::Voicemail),
        prop::bool::weighted(0.1),
        1..1_000_000i64,
    )
        .prop_map(|((direction, status, number, parties, rang), recording, voicemail, foreign, id)| {
            Call {
                id: CallId(id),
                company: if foreign { OTHER_COMPANY } else { COMPANY },
                direction,
                status,
                started_at: Timestamp(0),
                answered_at: None,
                ended_at: None,
                number: number.map(NumberId),
                external_number: None,
                contact: None,
                parties,
                rang,
                recording,
                voicemail,
                decided_by: None,
                recording_trace: vec![],
                legal_hold: None,
            }
        })
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (1..7usize, 1..5usize)
        .prop_flat_map(|(user_count, number_count)| {
            (
                company_settings(),
                vec((role(), subsequence(GROUPS.to_vec(), 0..=3), user_settings()), user_count),
                vec(steps(user_count), number_count),
                vec(call(user_count, number_count), 1..24),
            )
        })
        .prop_map(|(settings, users, flows, calls)| {
            let users = users
                .into_iter()
                .enumerate()
                .map(|(i, (role, groups, settings))| User {
                    id: UserId(i as i64 + 1),
                    company: COMPANY,
                    name: format!("User {i}"),
                    email: format!("user{i}@example.com"),
                    role,
                    extension: None,
                    groups,
                    settings,
                })
                .collect();
            let groups = GROUPS
                .iter()
                .map(|id| Group { id: *id, company: COMPANY, name: format!("Group {id}") })
                .collect();
            let numbers = flows
                .into_iter()
                .enumerate()
                .map(|(i, steps)| Number {
                    id: NumberId(i as i64 + 1),
                    company: COMPANY,
                    e164: format!("+44207000{i:04}"),
                    name: format!("Number {i}"),
                    flow: Flow::new(steps),
                })
                .collect();
            Scenario { company: Company::new(COMPANY, settings, users, groups, numbers).unwrap(), calls }
        })
}

fn viewers(company: &Company) -> impl Iterator<Item = Viewer> + '_ {
    company.users().iter().flat_map(move |user| {
        AppContext::ALL.map(|app| Viewer::new(user, company.settings(), company.routing(), app))
    })
}

const KINDS: [RecordingKind; 2] = [RecordingKind::Call, RecordingKind::Voicemail];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// §5: may download ⇒ may play ⇒ visible; and `access` says the same as the single questions.
    #[test]
    fn s5_download_implies_play_implies_visible(s in scenario()) {
        for v in viewers(&s.company) {
            for call in &s.calls {
                let access = v.access(call);
                prop_assert_eq!(access.visible, v.can_see(call));
                for kind in KINDS {
                    let rights = if kind == RecordingKind::Call { access.recording } else { access.voicemail };
                    prop_assert_eq!(rights.play, v.may_play(call, kind));
                    prop_assert_eq!(rights.download, v.may_download(call, kind));
                    if v.may_download(call, kind) { prop_assert!(v.may_play(call, kind)); }
                    if v.may_play(call, kind) {
                        prop_assert!(v.can_see(call));
                        prop_assert!(call.recording_of(kind).is_some());
                    }
                }
            }
        }
    }

    /// Issue 18: a deleted recording is played and downloaded by no one, not even an admin;
    /// deleting it changes nothing else (who sees the call, the other recording's rights).
    #[test]
    fn a_deleted_recording_plays_for_no_one(s in scenario()) {
        let deletion = Deletion { at: Timestamp(1), by: None, reason: DeletionReason::Retention };
        for v in viewers(&s.company) {
            for call in &s.calls {
                let mut deleted = call.clone();
                if let Some(recording) = deleted.recording.as_mut() {
                    recording.deleted = Some(deletion);
                }
                let (before, after) = (v.access(call), v.access(&deleted));
                prop_assert!(!after.recording.play && !after.recording.download);
                prop_assert_eq!(after.visible, before.visible);
                prop_assert_eq!(after.voicemail, before.voicemail);
            }
        }
    }

    /// §4.2: a higher visibility level never hides a call a lower level shows.
    #[test]
    fn s4_2_higher_level_never_hides(s in scenario()) {
        for user in s.company.users().iter().filter(|user| user.role != Role::Admin) {
            for app in [AppContext::Calling, AppContext::Dashboard] {
                let at = |level| {
                    let user = User { settings: UserSettings { call_visibility: Some(level), ..user.settings.clone() }, ..user.clone() };
                    Viewer::new(&user, s.company.settings(), s.company.routing(), app)
                };
                for pair in CallVisibility::ALL_LEVELS.windows(2) {
                    let (lower, higher) = (at(pair[0]), at(pair[1]));
                    for call in &s.calls {
                        prop_assert!(!lower.can_see(call) || higher.can_see(call), "{:?} shows what {:?} hides", pair[0], pair[1]);
                    }
                }
            }
        }
    }

    /// §4.2, §5, D8: an admin sees, plays and downloads everything in the company, and nothing outside it.
    #[test]
    fn d8_admin_everything_inside_nothing_outside(s in scenario(), settings in user_settings()) {
        let admin = User {
            id: UserId(1_000),
            company: COMPANY,
            name: "Admin".into(),
            email: "admin@example.com".into(),
            role: Role::Admin,
            extension: None,
            groups: vec![],
            settings,
        };
        for app in AppContext::ALL {
            let v = Viewer::new(&admin, s.company.settings(), s.company.routing(), app);
            for call in &s.calls {
                let inside = call.company == COMPANY;
                prop_assert_eq!(v.can_see(call), inside);
                for kind in KINDS {
                    let has = call.recording_of(kind).is_some();
                    prop_assert_eq!(v.may_play(call, kind), inside && has);
                    prop_assert_eq!(v.may_download(call, kind), inside && has);
                }
            }
        }
    }

    /// D8: nobody, whatever their role and settings, sees another company's call.
    #[test]
    fn d8_no_one_sees_another_company(s in scenario()) {
        for v in viewers(&s.company) {
            for call in s.calls.iter().filter(|call| call.company != COMPANY) {
                prop_assert!(!v.can_see(call));
                prop_assert_eq!(v.access(call), CallAccess::default());
            }
        }
    }

    /// D1: a supervisor's or analyst's rights outside analytics do not change when company settings change.
    #[test]
    fn d1_supervisor_and_analyst_ignore_company_outside_analytics(s in scenario(), other in company_settings()) {
        for user in s.company.users().iter().filter(|user| matches!(user.role, Role::Supervisor | Role::Analyst)) {
            for app in [AppContext::Calling, AppContext::Dashboard] {
                let before = Viewer::new(user, s.company.settings(), s.company.routing(), app);
                let after = Viewer::new(user, &other, s.company.routing(), app);
                prop_assert_eq!(before.settings().call_visibility, after.settings().call_visibility);
                prop_assert_eq!(before.settings().recording_playback, after.settings().recording_playback);
                prop_assert_eq!(before.settings().can_download, after.settings().can_download);
                for call in &s.calls {
                    prop_assert_eq!(before.access(call), after.access(call));
                }
            }
        }
    }

    /// D2: in analytics, supervisors and analysts see and play exactly as an unset agent would.
    #[test]
    fn d2_analytics_uses_company_values(s in scenario()) {
        for user in s.company.users().iter().filter(|user| matches!(user.role, Role::Supervisor | Role::Analyst)) {
            let v = Viewer::new(user, s.company.settings(), s.company.routing(), AppContext::Analytics);
            let as_agent = User { role: Role::Agent, settings: UserSettings::default(), ..user.clone() };
            let agent = Viewer::new(&as_agent, s.company.settings(), s.company.routing(), AppContext::Analytics);
            for call in &s.calls {
                prop_assert_eq!(v.can_see(call), agent.can_see(call));
                for kind in KINDS {
                    prop_assert_eq!(v.may_play(call, kind), agent.may_play(call, kind));
                    prop_assert_eq!(v.may_download(call, kind), agent.may_download(call, kind));
                }
            }
        }
    }

    /// §4.2: the database filter description and the visibility rule agree on every call.
    #[test]
    fn s4_2_filter_agrees_with_visibility(s in scenario()) {
        for v in viewers(&s.company) {
            let filter = v.visibility_filter();
            for call in &s.calls {
                prop_assert_eq!(filter.matches(call), v.can_see(call), "{:?} {:?}", filter, call);
            }
            // The filter survives the trip to the service and back.
            let json = serde_json::to_string(&filter).unwrap();
            prop_assert_eq!(serde_json::from_str::<VisibilityFilter>(&json).unwrap(), filter);
        }
    }

    /// §6.1: an inbound call is decided by the last record step on its path, else by record_inbound;
    /// a walk's stored path replays the same steps.
    #[test]
    fn s6_1_inbound_decided_by_last_record_step_on_path(
        s in scenario(),
        choices in vec(prop_oneof![(1..4u8).prop_map(|d| MenuChoice::Key(Key::digit(d))), Just(MenuChoice::Timeout)], 0..6),
        stop_after in 0..12usize,
    ) {
        for number in s.company.numbers() {
            let mut walk = FlowWalk::new();
            let mut choices = choices.iter();
            let mut walked = Vec::new();
            while walked.len() < stop_after {
                match walk.next_step(&number.flow) {
                    Ok(Some(step)) => walked.push(step),
                    Ok(None) => break,
                    Err(WalkError::ChoiceNeeded(_)) => {
                        let Some(choice) = choices.next() else { break };
                        if walk.choose(&number.flow, *choice).is_err() { walk.choose(&number.flow, MenuChoice::Timeout).unwrap(); }
                    }
                    Err(other) => prop_assert!(false, "{}", other),
                }
            }
            let path = walk.path().clone();
            prop_assert_eq!(path.steps(&number.flow).unwrap(), walked.clone());
            let decision = decide_recording(CallStart::Inbound { number, path: &path }, s.company.settings(), Timestamp(0)).unwrap();
            let last_record = walked.iter().rev().find_map(|(_, step)| match step {
                Step::Record { enabled } => Some(*enabled),
                _ => None,
            });
            match last_record {
                Some(enabled) => prop_assert_eq!((decision.recording, decision.decided_by), (enabled, DecidedBy::CallFlow)),
                None => prop_assert_eq!((decision.recording, decision.decided_by), (s.company.settings().record_inbound, DecidedBy::Company)),
            }
        }
    }

    /// D4, D5: whatever codes anyone keys, a refused code changes nothing, a call-flow decision never
    /// changes, and the state only moves the ways §6.2 allows.
    #[test]
    fn d5_codes_never_override_a_call_flow(
        s in scenario(),
        decided_by in prop::sample::select(vec![DecidedBy::Company, DecidedBy::CallFlow]),
        recording in any::<bool>(),
        keyed in vec((any::<prop::sample::Index>(), prop::sample::select(KeypadCode::ALL.to_vec())), 0..12),
    ) {
        let mut live = LiveRecording {
            state: if recording { RecordingState::Recording } else { RecordingState::Off },
            decided_by,
            trace: vec![],
        };
        for (i, (who, code)) in keyed.into_iter().enumerate() {
            let user = who.get(s.company.users());
            let before = live.clone();
            let outcome = live.on_code(code, user, s.company.settings(), Timestamp(i as i64));
            live.apply(&outcome);
            // §3: recording_control is the user's own value if set, else the company's, for every role.
            let control = user.settings.recording_control.unwrap_or(s.company.settings().agent_recording_control);
            match outcome {
                CodeOutcome::Refused { .. } => {
                    prop_assert!(!control || before.decided_by == DecidedBy::CallFlow);
                    prop_assert_eq!((live.state, live.decided_by), (before.state, before.decided_by));
                }
                CodeOutcome::Changed { state, .. } => {
                    prop_assert!(control && before.decided_by != DecidedBy::CallFlow);
                    prop_assert_eq!(state == RecordingState::Paused, code == KeypadCode::Pause);
                }
                CodeOutcome::Unchanged { .. } => prop_assert_eq!(live.state, before.state),
            }
            prop_assert_eq!(live.decided_by == DecidedBy::CallFlow, decided_by == DecidedBy::CallFlow);
        }
    }

    /// D9, §6.2: nothing is lost or reordered: the keys relayed, with each code's four keys put
    /// back where it was found, are exactly the keys pressed, in order. And codes are found exactly
    /// where an independent scan finds them: left to right, four keys spelling a code with no gap
    /// over 3 s between arrivals, a found code's keys not reused.
    #[test]
    fn d9_detector_loses_and_reorders_nothing(
        presses in vec((prop::sample::select(vec!['#', '1', '2', '5', '*']), 0..4_000i64, 0..300i64, any::<bool>()), 0..40),
    ) {
        let mut detector = KeypadCodeDetector::new();
        let mut now = Timestamp(0);
        let mut pressed: Vec<(char, i64)> = Vec::new();
        let mut rebuilt = Vec::new();
        let mut codes = Vec::new();
        let drain = |detector: &mut KeypadCodeDetector, rebuilt: &mut Vec<char>, codes: &mut Vec<(String, i64, i64)>| {
            while let Some(action) = detector.poll_action() {
                match action {
                    KeypadAction::PressKey { key } | KeypadAction::ReplayKey { key, .. } => rebuilt.push(key.as_char()),
                    KeypadAction::ReleaseKey { .. } => {}
                    KeypadAction::Code(code) => {
                        rebuilt.extend(code.code.keys().map(Key::as_char));
                        codes.push((code.code.to_string(), code.first_key_at.0, code.last_key_at.0));
                    }
                }
            }
        };
        for (c, gap, hold, send_end) in presses {
            now = now.plus_millis(gap);
            if let Some(deadline) = detector.poll_timeout() && deadline <= now {
                detector.handle_timeout(deadline);
            }
            let key = Key::from_char(c).unwrap();
            pressed.push((c, now.0));
            detector.handle_key_down(now, key);
            now = now.plus_millis(hold);
            if send_end {
                detector.handle_key_up(now, key);
                detector.handle_key_up(now, key);
            }
            drain(&mut detector, &mut rebuilt, &mut codes);
        }
        if let Some(deadline) = detector.poll_timeout() {
            detector.handle_timeout(deadline);
        }
        drain(&mut detector, &mut rebuilt, &mut codes);
        prop_assert!(!detector.is_holding());
        prop_assert_eq!(rebuilt, pressed.iter().map(|(c, _)| *c).collect::<Vec<_>>());

        let mut expected = Vec::new();
        let mut i = 0;
        while i + 4 <= pressed.len() {
            let window = &pressed[i..i + 4];
            let spelled: String = window.iter().map(|(c, _)| c).collect();
            let brisk = window.windows(2).all(|pair| pair[1].1 - pair[0].1 <= 3_000);
            if (spelled == "#11#" || spelled == "#12#") && brisk {
                expected.push((spelled, window[0].1, window[3].1));
                i += 4;
            } else {
                i += 1;
            }
        }
        prop_assert_eq!(codes, expected);
    }

    /// §2: the model survives JSON, so the service and the app share it as is.
    #[test]
    fn s2_model_round_trips_through_json(s in scenario()) {
        for user in s.company.users() {
            prop_assert_eq!(&serde_json::from_str::<User>(&serde_json::to_string(user).unwrap()).unwrap(), user);
        }
        for number in s.company.numbers() {
            prop_assert_eq!(&serde_json::from_str::<Number>(&serde_json::to_string(number).unwrap()).unwrap(), number);
        }
        for call in &s.calls {
            prop_assert_eq!(&serde_json::from_str::<Call>(&serde_json::to_string(call).unwrap()).unwrap(), call);
        }
        let settings = serde_json::to_string(s.company.settings()).unwrap();
        prop_assert_eq!(&serde_json::from_str::<CompanySettings>(&settings).unwrap(), s.company.settings());
    }
}
