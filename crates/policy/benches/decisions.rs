//! How fast `policy` decides visibility, play and download: 1,000,000
//! generated calls of a 60-user company, decided for one user of each role.
//!
//! Run with `cargo bench -p earshot-policy --bench decisions`; the figure to
//! read is "thrpt" (calls decided per second). See docs/PERFORMANCE.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use earshot_policy::*;
use std::hint::black_box;

const CALLS: usize = 1_000_000;
const USERS: i64 = 60;
const GROUPS: i64 = 8;
const NUMBERS: i64 = 24;

/// A small deterministic generator (xorshift64*), so every run decides the same calls.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn company() -> Company {
    let id = CompanyId(1);
    let settings =
        CompanySettings { agent_call_visibility: CallVisibility::ViaGroups, ..CompanySettings::default() };
    let users = (1..=USERS)
        .map(|n| {
            let role = match n {
                1 => Role::Admin,
                2..=4 => Role::Supervisor,
                5 => Role::Analyst,
                _ => Role::Agent,
            };
            let settings = match role {
                Role::Supervisor => UserSettings {
                    call_visibility: Some(CallVisibility::GroupsAndNumbers),
                    recording_playback: Some(RecordingPlayback::AllAvailable),
                    can_download: Some(true),
                    recording_control: Some(true),
                },
                Role::Analyst => UserSettings {
                    call_visibility: Some(CallVisibility::All),
                    recording_playback: Some(RecordingPlayback::OwnOnly),
                    ..UserSettings::default()
                },
                Role::Admin | Role::Agent => UserSettings::default(),
            };
            User {
                id: UserId(n),
                company: id,
                name: format!("User {n}"),
                email: format!("user{n}@example.com"),
                role,
                extension: Some(format!("{}", 100 + n)),
                groups: vec![GroupId(n % GROUPS + 1), GroupId((n + 3) % GROUPS + 1)],
                settings,
            }
        })
        .collect();
    let groups =
        (1..=GROUPS).map(|n| Group { id: GroupId(n), company: id, name: format!("Team {n}") }).collect();
    let numbers = (1..=NUMBERS)
        .map(|n| Number {
            id: NumberId(n),
            company: id,
            e164: format!("+4420700{n:05}"),
            name: format!("Line {n}"),
            flow: Flow::new(vec![
                Step::Record { enabled: n % 3 != 0 },
                Step::RingUser { user: UserId(n * 2 % USERS + 1), timeout_s: 20 },
                Step::RingGroup {
                    group: GroupId(n % GROUPS + 1),
                    strategy: RingStrategy::Simultaneous,
                    timeout_s: 20,
                },
                Step::Voicemail {},
            ]),
        })
        .collect();
    Company::new(id, settings, users, groups, numbers).expect("every record belongs to the company")
}

fn calls(company: CompanyId) -> Vec<Call> {
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    (0..CALLS as i64)
        .map(|n| {
            let direction = Direction::ALL[dice.below(3) as usize];
            let status = match (direction, dice.below(10)) {
                (_, 0..=6) => CallStatus::Answered,
                (Direction::Inbound, 7..=8) => CallStatus::Missed,
                (Direction::Inbound, _) => CallStatus::Voicemail,
                _ => CallStatus::Unanswered,
            };
            let user = UserId(dice.below(USERS as u64) as i64 + 1);
            let answered = status == CallStatus::Answered;
            let recording = (answered && dice.below(3) != 0).then(|| Recording {
                id: RecordingId(n),
                call: CallId(n),
                kind: RecordingKind::Call,
                duration_ms: 60_000,
                size_bytes: 1_920_044,
                paused_spans: vec![],
                deleted: None,
            });
            let voicemail = (status == CallStatus::Voicemail).then(|| Recording {
                id: RecordingId(n),
                call: CallId(n),
                kind: RecordingKind::Voicemail,
                duration_ms: 20_000,
                size_bytes: 320_044,
                paused_spans: vec![],
                deleted: None,
            });
            Call {
                id: CallId(n),
                company,
                direction,
                status,
                started_at: Timestamp(1_700_000_000_000 + n * 1_000),
                answered_at: None,
                ended_at: None,
                number: (direction != Direction::Internal)
                    .then(|| NumberId(dice.below(NUMBERS as u64) as i64 + 1)),
                external_number: None,
                contact: None,
                parties: if answered || direction != Direction::Inbound { vec![user] } else { vec![] },
                rang: vec![user, UserId(dice.below(USERS as u64) as i64 + 1)],
                recording,
                voicemail,
                decided_by: None,
                recording_trace: vec![],
                legal_hold: None,
            }
        })
        .collect()
}

fn decisions(c: &mut Criterion) {
    let company = company();
    let calls = calls(company.id());
    let mut group = c.benchmark_group("visibility+play+download");
    group.throughput(Throughput::Elements(CALLS as u64));
    group.sample_size(10);
    for (role, user) in
        [("admin", UserId(1)), ("supervisor", UserId(2)), ("analyst", UserId(5)), ("agent", UserId(6))]
    {
        let viewer = company.viewer(user, AppContext::Dashboard).expect("the user exists");
        group.bench_function(role, |b| {
            b.iter(|| {
                let mut allowed = 0u32;
                for call in &calls {
                    let access = viewer.access(black_box(call));
                    allowed += u32::from(access.visible)
                        + u32::from(access.recording.play)
                        + u32::from(access.recording.download)
                        + u32::from(access.voicemail.play)
                        + u32::from(access.voicemail.download);
                }
                black_box(allowed)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
