//! `earshotd demo`: a realistic demo company on an empty data directory.
//!
//! Acme Support: an admin, two supervisors, an analyst and six agents in
//! three groups; four numbers whose flows use menus, ring groups, ring users,
//! voicemail and `record` steps; contacts; about 2,500 calls over the last 60
//! days. The last two weeks' calls went through Earshot: their recording was
//! decided by `earshot-policy` from the path each call took, and the recorded
//! ones have real WAV files composed from committed speech clips (some with a
//! span paused by `#11#`). Older calls were imported from the previous phone
//! system, without recordings.

use crate::AppState;
use crate::auth::hash_password;
use crate::calls::{RecordingFile, insert_call};
use crate::company::{NewCompany, bump_version, create_company};
use crate::db::Query;
use anyhow::Context as _;
use earshot_policy::{
    Call, CallId, CallStart, CallStatus, CompanyId, CompanySettings, Direction, Flow, FlowWalk, GroupId, Key,
    KeypadCode, LiveRecording, MenuChoice, Number, NumberId, PausedSpan, Prompt, Recording, RecordingId,
    RecordingKind, RingStrategy, Role, Step, Timestamp, User, UserId, UserSettings, decide_recording,
};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{Rng as _, SeedableRng as _};
use sqlx::Row as _;
use std::collections::HashMap;
use std::path::Path;

/// One log-in the demo prints.
#[derive(Clone, Debug)]
pub struct DemoLogin {
    /// Role.
    pub role: Role,
    /// Name.
    pub name: &'static str,
    /// E-mail address.
    pub email: &'static str,
    /// Password.
    pub password: &'static str,
    /// SIP extension.
    pub extension: &'static str,
}

/// The demo's people. Passwords are for the demo only.
pub const PEOPLE: [(Role, &str, &str, &str, &str); 10] = [
    (Role::Admin, "Alex Admin", "admin@acme.demo", "demo-admin", "100"),
    (Role::Supervisor, "Sam Supervisor", "sam@acme.demo", "demo-sam", "200"),
    (Role::Supervisor, "Sue Supervisor", "sue@acme.demo", "demo-sue", "201"),
    (Role::Analyst, "Nia Analyst", "nia@acme.demo", "demo-nia", "300"),
    (Role::Agent, "Ada Agent", "ada@acme.demo", "demo-ada", "101"),
    (Role::Agent, "Bo Agent", "bo@acme.demo", "demo-bo", "102"),
    (Role::Agent, "Cy Agent", "cy@acme.demo", "demo-cy", "103"),
    (Role::Agent, "Di Agent", "di@acme.demo", "demo-di", "104"),
    (Role::Agent, "Ed Agent", "ed@acme.demo", "demo-ed", "105"),
    (Role::Agent, "Flo Agent", "flo@acme.demo", "demo-flo", "106"),
];

/// The demo SIP password of a user whose log-in password is `password`.
#[must_use]
pub fn sip_password(password: &str) -> String {
    format!("sip-{password}")
}

/// The demo's log-ins, for printing.
#[must_use]
pub fn logins() -> Vec<DemoLogin> {
    PEOPLE
        .iter()
        .map(|(role, name, email, password, extension)| DemoLogin {
            role: *role,
            name,
            email,
            password,
            extension,
        })
        .collect()
}

const DAY_MS: i64 = 86_400_000;
/// Calls newer than this went through Earshot and may have recordings.
const EARSHOT_DAYS: i64 = 14;

macro_rules! clip {
    ($name:literal) => {
        ($name, include_bytes!(concat!("../assets/speech/", $name, ".wav")).as_slice())
    };
}

const CLIPS: [(&str, &[u8]); 13] = [
    clip!("agent-greeting"),
    clip!("agent-account"),
    clip!("agent-check"),
    clip!("agent-solved"),
    clip!("agent-payment"),
    clip!("agent-bye"),
    clip!("agent-outbound"),
    clip!("caller-hello"),
    clip!("caller-account"),
    clip!("caller-problem"),
    clip!("caller-thanks"),
    clip!("caller-voicemail"),
    clip!("caller-voicemail-short"),
];

struct Clips(HashMap<&'static str, Vec<i16>>);

impl Clips {
    fn load() -> anyhow::Result<Self> {
        let mut clips = HashMap::new();
        for (name, bytes) in CLIPS {
            let reader =
                hound::WavReader::new(bytes).with_context(|| format!("reading speech clip {name}"))?;
            let samples = reader.into_samples::<i16>().collect::<Result<Vec<_>, _>>()?;
            clips.insert(name, samples);
        }
        Ok(Self(clips))
    }

    fn get(&self, name: &str) -> &[i16] {
        self.0.get(name).map_or(&[], Vec::as_slice)
    }
}

/// Whether the data directory has a company already.
pub async fn is_seeded(state: &AppState) -> anyhow::Result<bool> {
    let row = state
        .db
        .fetch_optional(state.db.pool(), &Query::new("SELECT COUNT(*) AS n FROM companies"))
        .await?
        .context("counting companies")?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Seeds the demo company; `now` is the time the history ends.
pub async fn seed(state: &AppState, now: i64) -> anyhow::Result<CompanyId> {
    let db = &state.db;
    let clips = Clips::load()?;
    let (admin_role, admin_name, admin_email, admin_password, admin_extension) = PEOPLE[0];
    debug_assert_eq!(admin_role, Role::Admin);
    let new = NewCompany {
        name: "Acme Support".into(),
        admin_email: admin_email.into(),
        admin_password: admin_password.into(),
        admin_name: admin_name.into(),
    };
    let (company, admin) = create_company(db, &new).await.map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    let settings = CompanySettings {
        record_inbound: true,
        record_outbound: false,
        record_internal: false,
        agent_recording_control: true,
        ..CompanySettings::default()
    };

    // Hash the passwords on every core at once: argon2id is slow on purpose.
    let hashes = futures::future::try_join_all(PEOPLE.iter().map(|(_, _, _, password, _)| {
        let password = (*password).to_owned();
        tokio::task::spawn_blocking(move || hash_password(&password))
    }))
    .await?
    .into_iter()
    .collect::<anyhow::Result<Vec<_>>>()?;

    let mut tx = db.pool().begin().await?;
    let mut query = Query::new("UPDATE companies SET settings = ");
    query.bind(serde_json::to_string(&settings)?).push(" WHERE id = ").bind(company.0);
    db.execute(&mut *tx, &query).await?;
    let mut query = Query::new("UPDATE users SET extension = ");
    query
        .bind(admin_extension)
        .push(", sip_ha1 = ")
        .bind(crate::sip::sip_ha1(admin_email, &sip_password(admin_password)))
        .push(" WHERE id = ")
        .bind(admin.0);
    db.execute(&mut *tx, &query).await?;

    let mut groups = Vec::new();
    for name in ["Sales", "Support", "Billing"] {
        let mut query = Query::new("INSERT INTO groups (company_id, name) VALUES (");
        query.bind(company.0).push(", ").bind(name).push(") RETURNING id");
        groups.push(GroupId(db.insert_returning_id(&mut *tx, &query).await?));
    }
    let [sales, support, billing] = [groups[0], groups[1], groups[2]];
    // Who is in which group, by index into PEOPLE.
    let membership: [(usize, &[GroupId]); 9] = [
        (1, &[sales]),
        (2, &[support, billing]),
        (3, &[]),
        (4, &[sales]),
        (5, &[sales]),
        (6, &[support]),
        (7, &[support]),
        (8, &[billing]),
        (9, &[support, billing]),
    ];
    let mut users = vec![User {
        id: admin,
        company,
        name: admin_name.into(),
        email: admin_email.into(),
        role: Role::Admin,
        extension: Some(admin_extension.into()),
        groups: vec![],
        settings: UserSettings::default(),
    }];
    for (index, member_of) in membership {
        let (role, name, email, password, extension) = PEOPLE[index];
        let settings = match (role, index) {
            // Sam runs Sales: sees its lines, plays and downloads everything he sees.
            (Role::Supervisor, 1) => UserSettings {
                call_visibility: Some(earshot_policy::CallVisibility::GroupsAndNumbers),
                recording_playback: Some(earshot_policy::RecordingPlayback::AllAvailable),
                can_download: Some(true),
                recording_control: None,
            },
            // Sue sees everything and plays it, but may not download.
            (Role::Supervisor, _) => UserSettings {
                call_visibility: Some(earshot_policy::CallVisibility::All),
                recording_playback: Some(earshot_policy::RecordingPlayback::AllAvailable),
                can_download: Some(false),
                recording_control: None,
            },
            // Flo is a senior agent: she sees her groups' calls and may download.
            (Role::Agent, 9) => UserSettings {
                call_visibility: Some(earshot_policy::CallVisibility::ViaGroups),
                can_download: Some(true),
                ..UserSettings::default()
            },
            // Nia, the analyst, is left "not configured" (D1): she works in analytics.
            _ => UserSettings::default(),
        };
        let mut query = Query::new(
            "INSERT INTO users (company_id, name, email, role, extension, settings, password_hash, sip_ha1, created_at) VALUES (",
        );
        query
            .bind(company.0)
            .push(", ")
            .bind(name)
            .push(", ")
            .bind(email)
            .push(", ")
            .bind(role.as_str())
            .push(", ")
            .bind(extension)
            .push(", ")
            .bind(serde_json::to_string(&settings)?)
            .push(", ")
            .bind(hashes[index].clone())
            .push(", ")
            .bind(crate::sip::sip_ha1(email, &sip_password(password)))
            .push(", ")
            .bind(now)
            .push(") RETURNING id");
        let id = UserId(db.insert_returning_id(&mut *tx, &query).await?);
        for group in member_of {
            let mut query = Query::new("INSERT INTO group_members (group_id, user_id) VALUES (");
            query.bind(group.0).push(", ").bind(id.0).push(")");
            db.execute(&mut *tx, &query).await?;
        }
        users.push(User {
            id,
            company,
            name: name.into(),
            email: email.into(),
            role,
            extension: Some(extension.into()),
            groups: member_of.to_vec(),
            settings,
        });
    }
    let user = |index: usize| users[index].id;
    let text = |t: &str| Prompt::Text(t.into());
    let ring_group = |group, strategy, timeout_s| Step::RingGroup { group, strategy, timeout_s };
    let flows = [
        (
            "+442071230000",
            "Main line",
            Flow::new(vec![
                Step::Announce { prompt: text("Welcome to Acme.") },
                Step::Menu {
                    prompt: text("For sales press 1, for support press 2, for billing press 3."),
                    options: [
                        (Key::digit(1), vec![ring_group(sales, RingStrategy::Simultaneous, 25)]),
                        (
                            Key::digit(2),
                            vec![
                                Step::Record { enabled: true },
                                ring_group(support, RingStrategy::RoundRobin, 40),
                            ],
                        ),
                        (
                            Key::digit(3),
                            vec![
                                Step::Record { enabled: false },
                                Step::RingUser { user: user(8), timeout_s: 25 },
                            ],
                        ),
                    ]
                    .into_iter()
                    .collect(),
                    timeout: vec![Step::Voicemail {}],
                    timeout_s: 6,
                },
                Step::Voicemail {},
            ]),
        ),
        (
            "+442071230001",
            "Sales direct",
            Flow::new(vec![
                ring_group(sales, RingStrategy::Simultaneous, 20),
                Step::RingUser { user: user(1), timeout_s: 15 },
                Step::Voicemail {},
            ]),
        ),
        (
            "+442071230002",
            "Support direct",
            Flow::new(vec![
                Step::Announce { prompt: text("Calls are recorded for training.") },
                Step::Record { enabled: true },
                ring_group(support, RingStrategy::RoundRobin, 30),
                Step::Voicemail {},
            ]),
        ),
        (
            "+442071230003",
            "Billing",
            Flow::new(vec![
                Step::Announce { prompt: text("Payments are never recorded.") },
                Step::Record { enabled: false },
                ring_group(billing, RingStrategy::Simultaneous, 30),
                Step::Voicemail {},
            ]),
        ),
    ];
    let mut numbers = Vec::new();
    for (e164, name, flow) in flows {
        let mut query = Query::new("INSERT INTO numbers (company_id, e164, name, flow) VALUES (");
        query
            .bind(company.0)
            .push(", ")
            .bind(e164)
            .push(", ")
            .bind(name)
            .push(", ")
            .bind(serde_json::to_string(&flow)?)
            .push(") RETURNING id");
        let id = NumberId(db.insert_returning_id(&mut *tx, &query).await?);
        numbers.push(Number { id, company, e164: e164.into(), name: name.into(), flow });
    }

    let mut rng = StdRng::seed_from_u64(0x00ea_25b0);
    let mut contacts = Vec::new();
    for (i, name) in CONTACT_NAMES.iter().enumerate() {
        let e164 = format!("+1555{:07}", 100 + i * 37);
        let mut query = Query::new("INSERT INTO contacts (company_id, name) VALUES (");
        query.bind(company.0).push(", ").bind(*name).push(") RETURNING id");
        let id: i64 = db.insert_returning_id(&mut *tx, &query).await?;
        let mut query = Query::new("INSERT INTO contact_numbers (contact_id, company_id, e164) VALUES (");
        query.bind(id).push(", ").bind(company.0).push(", ").bind(e164.clone()).push(")");
        db.execute(&mut *tx, &query).await?;
        contacts.push((earshot_policy::ContactId(id), e164));
    }

    let recordings_dir = state.recordings_dir().join(company.0.to_string());
    std::fs::create_dir_all(&recordings_dir)?;
    let agents: Vec<&User> = users.iter().filter(|u| u.role == Role::Agent).collect();
    let members = |group: GroupId| -> Vec<UserId> {
        users.iter().filter(|u| u.groups.contains(&group)).map(|u| u.id).collect()
    };
    let start = now - 60 * DAY_MS;
    let mut at = start;
    let mut serial = 0u64;
    while at < now - 10 * 60_000 {
        // Office hours bring most calls; nights are quiet.
        let hour = (at.rem_euclid(DAY_MS)) / 3_600_000;
        let gap_minutes =
            if (8..18).contains(&hour) { rng.random_range(3..24) } else { rng.random_range(60..240) };
        at += gap_minutes * 60_000 + rng.random_range(0..60_000);
        // The history ends before `now`: no call starts (or, at up to ten
        // minutes' talk, ends) in the future.
        if at > now - 15 * 60_000 {
            break;
        }
        serial += 1;
        let through_earshot = at > now - EARSHOT_DAYS * DAY_MS;
        let roll: f64 = rng.random();
        let direction = if roll < 0.55 {
            Direction::Inbound
        } else if roll < 0.9 {
            Direction::Outbound
        } else {
            Direction::Internal
        };
        let (external, contact) = if rng.random_bool(0.6) {
            let (id, e164) = contacts.choose(&mut rng).context("contacts")?;
            (Some(e164.clone()), Some(*id))
        } else {
            (Some(format!("+1555{:07}", rng.random_range(2_000_000..9_999_999))), None)
        };
        let mut call = Call {
            id: CallId(0),
            company,
            direction,
            status: CallStatus::Answered,
            started_at: Timestamp(at),
            answered_at: None,
            ended_at: None,
            number: None,
            external_number: external,
            contact,
            parties: vec![],
            rang: vec![],
            recording: None,
            voicemail: None,
            decided_by: None,
            recording_trace: vec![],
            legal_hold: None,
        };
        let talk_ms = rng.random_range(20_000..600_000);
        let mut recording_start = None;
        match direction {
            Direction::Inbound => {
                let number = numbers.choose(&mut rng).context("numbers")?;
                call.number = Some(number.id);
                let mut walk = FlowWalk::new();
                let mut clock = at;
                let mut ended = false;
                while let Some((_, step)) = walk.next_step(&number.flow).ok().flatten() {
                    match step {
                        Step::Menu { options, .. } => {
                            clock += 8_000;
                            let keys: Vec<Key> = options.keys().copied().collect();
                            let choice = if rng.random_bool(0.1) {
                                MenuChoice::Timeout
                            } else {
                                MenuChoice::Key(*keys.choose(&mut rng).context("menu keys")?)
                            };
                            walk.choose(&number.flow, choice).ok();
                        }
                        Step::Announce { .. } => clock += 3_000,
                        Step::Record { .. } => {}
                        Step::RingUser { user, timeout_s } => {
                            call.rang.push(*user);
                            if rng.random_bool(0.7) {
                                clock += rng.random_range(3_000..15_000);
                                call.parties = vec![*user];
                                ended = true;
                                break;
                            }
                            clock += i64::from(*timeout_s) * 1000;
                        }
                        Step::RingGroup { group, timeout_s, .. } => {
                            let group_members = members(*group);
                            call.rang.extend(&group_members);
                            if rng.random_bool(0.8)
                                && let Some(answerer) = group_members.choose(&mut rng)
                            {
                                clock += rng.random_range(3_000..15_000);
                                call.parties = vec![*answerer];
                                ended = true;
                                break;
                            }
                            clock += i64::from(*timeout_s) * 1000;
                        }
                        Step::Voicemail {} => {
                            call.status =
                                if rng.random_bool(0.6) { CallStatus::Voicemail } else { CallStatus::Missed };
                            ended = true;
                            break;
                        }
                    }
                }
                if !ended {
                    call.status = CallStatus::Missed;
                }
                call.rang.sort_unstable();
                call.rang.dedup();
                if call.status == CallStatus::Answered {
                    call.answered_at = Some(Timestamp(clock));
                    call.ended_at = Some(Timestamp(clock + talk_ms));
                    if through_earshot {
                        let path = walk.path().clone();
                        let decision = decide_recording(
                            CallStart::Inbound { number, path: &path },
                            &settings,
                            Timestamp(clock),
                        )?;
                        recording_start = Some(LiveRecording::start(decision));
                    }
                } else {
                    call.ended_at = Some(Timestamp(
                        clock + if call.status == CallStatus::Voicemail { 25_000 } else { 0 },
                    ));
                }
            }
            Direction::Outbound => {
                let agent = agents.choose(&mut rng).context("agents")?;
                call.number = Some(numbers[if agent.groups.contains(&sales) { 1 } else { 0 }].id);
                call.parties = vec![agent.id];
                if rng.random_bool(0.75) {
                    let answered = at + rng.random_range(4_000..20_000);
                    call.answered_at = Some(Timestamp(answered));
                    call.ended_at = Some(Timestamp(answered + talk_ms));
                    if through_earshot {
                        let decision = decide_recording(CallStart::Outbound, &settings, Timestamp(answered))?;
                        recording_start = Some(LiveRecording::start(decision));
                    }
                } else {
                    call.status = CallStatus::Unanswered;
                    call.ended_at = Some(Timestamp(at + 30_000));
                }
            }
            Direction::Internal => {
                let pair: Vec<&&User> = agents.choose_multiple(&mut rng, 2).collect();
                call.external_number = None;
                call.contact = None;
                call.parties = pair.iter().map(|u| u.id).collect();
                call.rang = vec![pair[1].id];
                if rng.random_bool(0.85) {
                    call.answered_at = Some(Timestamp(at + 5_000));
                    call.ended_at = Some(Timestamp(at + 5_000 + talk_ms / 3));
                    if through_earshot {
                        let decision =
                            decide_recording(CallStart::Internal, &settings, Timestamp(at + 5_000))?;
                        recording_start = Some(LiveRecording::start(decision));
                    }
                } else {
                    call.status = CallStatus::Unanswered;
                    call.ended_at = Some(Timestamp(at + 20_000));
                }
            }
        }

        let mut files = Vec::new();
        if let Some(mut live) = recording_start {
            let agent = call.parties.first().copied();
            let answered = call.answered_at.map_or(at, |t| t.0);
            // Agents start recordings the company leaves off now and then (§6.2).
            let mut recorded_from = answered;
            if live.state == earshot_policy::RecordingState::Off
                && rng.random_bool(0.15)
                && let Some(agent) = agent.and_then(|id| users.iter().find(|u| u.id == id))
            {
                recorded_from = answered + 2_000;
                let outcome = live.on_code(KeypadCode::Resume, agent, &settings, Timestamp(recorded_from));
                live.apply(&outcome);
            }
            let pause = live.state == earshot_policy::RecordingState::Recording && rng.random_bool(0.15);
            if live.state == earshot_policy::RecordingState::Recording {
                let script = if direction == Direction::Outbound { OUTBOUND_SCRIPT } else { INBOUND_SCRIPT };
                let (path, duration_ms, size_bytes, paused_spans) =
                    write_call_wav(&recordings_dir, serial, &clips, script, pause, &mut rng)?;
                if pause && let Some(agent) = agent.and_then(|id| users.iter().find(|u| u.id == id)) {
                    for (offset, code) in [
                        (paused_spans[0].start_ms, KeypadCode::Pause),
                        (paused_spans[0].end_ms, KeypadCode::Resume),
                    ] {
                        let at = Timestamp(answered + i64::try_from(offset).unwrap_or(0));
                        let outcome = live.on_code(code, agent, &settings, at);
                        live.apply(&outcome);
                    }
                }
                files.push(RecordingFile {
                    recording: Recording {
                        id: RecordingId(0),
                        call: CallId(0),
                        kind: RecordingKind::Call,
                        duration_ms,
                        size_bytes,
                        paused_spans,
                        deleted: None,
                    },
                    file_name: path,
                });
                call.recording = files.last().map(|f| f.recording.clone());
                // A recording runs to the hang-up: the call lasts as long as
                // its recording shows (the clips make short conversations).
                call.ended_at = Some(Timestamp(recorded_from + i64::try_from(duration_ms).unwrap_or(0)));
            }
            call.decided_by = Some(live.decided_by);
            call.recording_trace = live.trace;
        }
        if call.status == CallStatus::Voicemail && through_earshot {
            let clip = if rng.random_bool(0.5) { "caller-voicemail" } else { "caller-voicemail-short" };
            let (path, duration_ms, size_bytes) = write_voicemail_wav(&recordings_dir, serial, &clips, clip)?;
            files.push(RecordingFile {
                recording: Recording {
                    id: RecordingId(0),
                    call: CallId(0),
                    kind: RecordingKind::Voicemail,
                    duration_ms,
                    size_bytes,
                    paused_spans: vec![],
                    deleted: None,
                },
                file_name: path,
            });
        }
        insert_call(db, &mut tx, &call, &files).await.context("storing a demo call")?;
    }
    bump_version(db, &mut tx, company).await.map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    tx.commit().await?;
    Ok(company)
}

const INBOUND_SCRIPT: &[(bool, &str)] = &[
    (true, "agent-greeting"),
    (false, "caller-hello"),
    (true, "agent-account"),
    (false, "caller-account"),
    (true, "agent-check"),
    (false, "caller-problem"),
    (true, "agent-solved"),
    (false, "caller-thanks"),
    (true, "agent-bye"),
];

const OUTBOUND_SCRIPT: &[(bool, &str)] = &[
    (true, "agent-outbound"),
    (false, "caller-hello"),
    (true, "agent-check"),
    (false, "caller-thanks"),
    (true, "agent-bye"),
];

fn wav_spec(channels: u16) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate: 8_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    }
}

/// A stereo conversation (left: the agent, right: the caller), optionally
/// with a paused span written as silence after the agent's payment line.
fn write_call_wav(
    dir: &Path,
    serial: u64,
    clips: &Clips,
    script: &[(bool, &str)],
    pause: bool,
    rng: &mut StdRng,
) -> anyhow::Result<(String, u64, u64, Vec<PausedSpan>)> {
    let mut left: Vec<i16> = Vec::new();
    let mut right: Vec<i16> = Vec::new();
    let mut spans = Vec::new();
    // A shorter call keeps the demo small: the greeting, a couple of turns, the goodbye.
    let turns = rng.random_range(3..=script.len().min(6));
    let mut lines: Vec<(bool, &str)> = script[..turns.saturating_sub(1)].to_vec();
    if pause {
        lines.push((true, "agent-payment"));
    }
    lines.push(*script.last().unwrap_or(&(true, "agent-bye")));
    for (index, (agent, clip)) in lines.iter().enumerate() {
        let samples = clips.get(clip);
        let (speaking, quiet) = if *agent { (&mut left, &mut right) } else { (&mut right, &mut left) };
        speaking.extend_from_slice(samples);
        quiet.extend(std::iter::repeat_n(0, samples.len()));
        let gap = 3_200; // 0.4 s between turns
        left.extend(std::iter::repeat_n(0, gap));
        right.extend(std::iter::repeat_n(0, gap));
        if pause && *clip == "agent-payment" && index + 1 < lines.len() {
            // #11# ... card details ... #12#: nothing of it is written (§6.2).
            let start_ms = left.len() as u64 / 8;
            let paused = rng.random_range(4..12) * 8_000;
            left.extend(std::iter::repeat_n(0, paused));
            right.extend(std::iter::repeat_n(0, paused));
            spans.push(PausedSpan { start_ms, end_ms: left.len() as u64 / 8, cut_ms: 0 });
        }
    }
    let name = format!("{}/call-{serial}.wav", dir.file_name().and_then(|n| n.to_str()).unwrap_or("0"));
    let path = dir.join(format!("call-{serial}.wav"));
    let mut writer = hound::WavWriter::create(&path, wav_spec(2))?;
    for (l, r) in left.iter().zip(&right) {
        writer.write_sample(*l)?;
        writer.write_sample(*r)?;
    }
    writer.finalize()?;
    let size = std::fs::metadata(&path)?.len();
    Ok((name, left.len() as u64 / 8, size, spans))
}

fn write_voicemail_wav(
    dir: &Path,
    serial: u64,
    clips: &Clips,
    clip: &str,
) -> anyhow::Result<(String, u64, u64)> {
    let name = format!("{}/voicemail-{serial}.wav", dir.file_name().and_then(|n| n.to_str()).unwrap_or("0"));
    let path = dir.join(format!("voicemail-{serial}.wav"));
    let mut writer = hound::WavWriter::create(&path, wav_spec(1))?;
    let samples = clips.get(clip);
    for sample in samples {
        writer.write_sample(*sample)?;
    }
    writer.finalize()?;
    Ok((name, samples.len() as u64 / 8, std::fs::metadata(&path)?.len()))
}

const CONTACT_NAMES: [&str; 24] = [
    "Globex Corporation",
    "Initech",
    "Umbrella Health",
    "Stark Logistics",
    "Wayne Foods",
    "Hooli",
    "Vandelay Industries",
    "Soylent Ltd",
    "Cyberdyne Systems",
    "Tyrell Estates",
    "Wonka Confectionery",
    "Gringotts Savings",
    "Monarch Travel",
    "Oceanic Airlines",
    "Pied Piper",
    "Acme Hardware",
    "Duff Brewing",
    "Krusty Catering",
    "Nakatomi Trading",
    "Sirius Cybernetics",
    "Bluth Homes",
    "Dunder Mifflin",
    "Prestige Worldwide",
    "Massive Dynamic",
];
