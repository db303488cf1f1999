//! The JSON the service and the desktop app exchange is `earshot-policy`'s
//! model as serde writes it. These tests read a company written by hand in
//! that JSON (`tests/data/company.json`, the shape of a `GET /sync` snapshot
//! plus a page of calls) and check the rules' answers on it, so a renamed
//! field or value breaks here before it breaks an app in the field.

use earshot_policy::*;
use serde::Deserialize as _;
use std::collections::BTreeMap;

#[derive(serde::Deserialize)]
struct Snapshot {
    id: CompanyId,
    settings: CompanySettings,
    users: Vec<User>,
    groups: Vec<Group>,
    numbers: Vec<Number>,
    calls: Vec<Call>,
}

fn snapshot() -> (Company, Vec<Call>) {
    let text = include_str!("data/company.json");
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let snapshot =
        Snapshot::deserialize(&mut deserializer).expect("tests/data/company.json is a valid snapshot");
    let company =
        Company::new(snapshot.id, snapshot.settings, snapshot.users, snapshot.groups, snapshot.numbers)
            .expect("every record belongs to the company");
    (company, snapshot.calls)
}

/// Call ids: visible, may play, may download.
type Decided = (Vec<i64>, Vec<i64>, Vec<i64>);

/// For each user, in `app`: the visible calls, and which of them they may play and download.
fn decisions(app: AppContext) -> BTreeMap<i64, Decided> {
    let (company, calls) = snapshot();
    company
        .users()
        .iter()
        .map(|user| {
            let viewer = company.viewer(user.id, app).unwrap();
            let ids = |keep: &dyn Fn(&CallAccess) -> bool| {
                calls
                    .iter()
                    .filter(|call| keep(&viewer.access(call)))
                    .map(|call| call.id.0)
                    .collect::<Vec<_>>()
            };
            let visible = ids(&|a| a.visible);
            let play = ids(&|a| a.recording.play || a.voicemail.play);
            let download = ids(&|a| a.recording.download || a.voicemail.download);
            (user.id.0, (visible, play, download))
        })
        .collect()
}

/// §4.2, §5, D1, D3, D8 on the snapshot, in the dashboard.
#[test]
fn s4_s5_dashboard_decisions_on_a_hand_written_company() {
    let expected = BTreeMap::from([
        // Admin: every call of company 7 (not 104, company 8); plays and downloads all recordings.
        (1, (vec![100, 101, 102, 103], vec![100, 101, 103], vec![100, 101, 103])),
        // Supervisor, groups_and_numbers via Sales (number 10): own internal call 103, call 100 on
        // the Sales line; all_available + download.
        (2, (vec![100, 103], vec![100, 103], vec![100, 103])),
        // Analyst with nothing configured (D1): own_and_missed, plays nothing; owns nothing.
        (3, (vec![], vec![], vec![])),
        // Agent in Sales: company via_groups shows 100 (own, too); own_only plays own 100.
        (4, (vec![100], vec![100], vec![])),
        // Agent in Support: number 11 is routed to Bo (ring_user) and Support (ring_group):
        // voicemail 101 (missed rule, rang Bo: D3 plays it), own 102 (no recording), own 103;
        // own can_download on.
        (5, (vec![101, 102, 103], vec![101, 103], vec![101, 103])),
    ]);
    assert_eq!(decisions(AppContext::Dashboard), expected);
}

/// D2 on the snapshot: in analytics the analyst gets the company's via_groups and own_only.
#[test]
fn d2_analytics_decisions_on_a_hand_written_company() {
    let analytics = decisions(AppContext::Analytics);
    assert_eq!(analytics[&3], (vec![], vec![], vec![]), "the analyst belongs to no group and owns no call");
    // The supervisor: company via_groups (Sales → number 10), own_only, and the company's
    // download off, although her own download is on.
    assert_eq!(analytics[&2], (vec![100, 103], vec![103], vec![]));
}

/// §6: the recording trace reads back with the deciding step's address.
#[test]
fn s6_trace_reads_back() {
    let (_, calls) = snapshot();
    let trace = &calls.iter().find(|call| call.id == CallId(102)).unwrap().recording_trace;
    let TraceEvent::Decided { decider, recording: false } = &trace[0].event else {
        panic!("the first line is the decision: {trace:?}");
    };
    assert_eq!(decider.to_string(), "call-flow record step (step 1 › key 1 › step 1) of number 11");
    assert!(matches!(trace[1].event, TraceEvent::Refused { reason: CodeRefusal::NoRecordingControl, .. }));
}

/// §2: serde writes exactly the JSON that was read (field names and values unchanged).
#[test]
fn s2_round_trip_keeps_the_json() {
    let text = include_str!("data/company.json");
    let original: serde_json::Value = serde_json::from_str(text).unwrap();
    for (field, ty) in [("users", "users"), ("calls", "calls")] {
        let items = original[field].as_array().unwrap();
        for item in items {
            let written = match ty {
                "users" => serde_json::to_value(serde_json::from_value::<User>(item.clone()).unwrap()),
                _ => serde_json::to_value(serde_json::from_value::<Call>(item.clone()).unwrap()),
            }
            .unwrap();
            assert_eq!(strip_nulls_and_empties(&written), strip_nulls_and_empties(item), "{field}");
        }
    }
}

/// Unset settings may be written as `null` or left out; compare without them.
fn strip_nulls_and_empties(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), strip_nulls_and_empties(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        serde_json::Value::Array(items) => items.iter().map(strip_nulls_and_empties).collect(),
        other => other.clone(),
    }
}
