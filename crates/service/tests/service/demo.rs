//! `earshotd demo`: the seeded company is what the issue describes and every
//! recording is a real, valid WAV.

use super::support::{TestService, backends};
use earshot_policy::{CallStatus, Direction, RecordingKind, Role, Step};
use earshot_service::demo;
use std::collections::HashSet;

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() { dir_size(&entry.path()) } else { meta.len() }
        })
        .sum()
}

#[tokio::test]
async fn the_demo_company_is_complete_and_its_recordings_play() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        assert!(!demo::is_seeded(&service.state).await.unwrap());
        demo::seed(&service.state, 1_795_500_000_000).await.unwrap();
        assert!(demo::is_seeded(&service.state).await.unwrap());

        // Every printed log-in works, with the role it says.
        let mut tokens = Vec::new();
        for login in demo::logins() {
            let token = service.log_in(login.email, login.password).await;
            let (_, sync) = service.get("/api/v1/sync", &token).await;
            assert_eq!(sync["me"]["role"], login.role.as_str());
            tokens.push((login.role, token));
        }
        let roles: Vec<Role> = demo::logins().iter().map(|l| l.role).collect();
        assert_eq!(roles.iter().filter(|r| **r == Role::Admin).count(), 1);
        assert_eq!(roles.iter().filter(|r| **r == Role::Supervisor).count(), 2);
        assert_eq!(roles.iter().filter(|r| **r == Role::Analyst).count(), 1);
        assert_eq!(roles.iter().filter(|r| **r == Role::Agent).count(), 6);
        let admin = &tokens[0].1;

        let snapshot =
            service.state.snapshots.get(&service.state.db, earshot_policy::CompanyId(1)).await.unwrap();
        let company = &snapshot.company;
        assert_eq!(company.groups().len(), 3);
        assert_eq!(company.numbers().len(), 4);
        let mut kinds = HashSet::new();
        for number in company.numbers() {
            number.flow.visit(|_, step| {
                kinds.insert(std::mem::discriminant(step));
            });
            number
                .flow
                .validate(|u| company.user(u).is_some(), |g| company.groups().iter().any(|x| x.id == g))
                .unwrap();
        }
        for step in [
            Step::Menu {
                prompt: earshot_policy::Prompt::Text(String::new()),
                options: Default::default(),
                timeout: vec![],
                timeout_s: 1,
            },
            Step::RingUser { user: earshot_policy::UserId(0), timeout_s: 1 },
            Step::RingGroup { group: earshot_policy::GroupId(0), strategy: Default::default(), timeout_s: 1 },
            Step::Voicemail {},
            Step::Record { enabled: true },
        ] {
            assert!(kinds.contains(&std::mem::discriminant(&step)), "{step:?}");
        }
        let (_, contacts) = service.get("/api/v1/contacts", admin).await;
        assert!(contacts.as_array().unwrap().len() >= 20);

        // A few thousand calls of every direction and status over 60 days.
        let mut calls = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/calls?limit=200&cursor={c}"),
                None => "/api/v1/calls?limit=200".into(),
            };
            let (_, page) = service.get(&path, admin).await;
            calls.extend(page["calls"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.into()),
                None => break,
            }
        }
        assert!(calls.len() >= 2_000, "{} calls", calls.len());
        let oldest = calls.iter().map(|c| c["started_at"].as_i64().unwrap()).min().unwrap();
        assert!(1_795_500_000_000 - oldest > 55 * 86_400_000);
        // The history ends before the moment it was seeded: nothing in the future.
        for call in &calls {
            for field in ["started_at", "answered_at", "ended_at"] {
                let at = call[field].as_i64().unwrap_or(0);
                assert!(at <= 1_795_500_000_000, "call {} has {field} in the future: {at}", call["id"]);
            }
        }
        for (direction, status) in [
            (Direction::Inbound, CallStatus::Answered),
            (Direction::Inbound, CallStatus::Missed),
            (Direction::Inbound, CallStatus::Voicemail),
            (Direction::Outbound, CallStatus::Answered),
            (Direction::Outbound, CallStatus::Unanswered),
            (Direction::Internal, CallStatus::Answered),
            (Direction::Internal, CallStatus::Unanswered),
        ] {
            assert!(
                calls.iter().any(|c| c["direction"] == direction.as_str() && c["status"] == status.as_str()),
                "{direction:?} {status:?}"
            );
        }
        let decided: HashSet<&str> = calls.iter().filter_map(|c| c["decided_by"].as_str()).collect();
        assert_eq!(decided, HashSet::from(["company", "call_flow", "user"]));

        // A few hundred real WAVs, some with paused spans, all valid and as long as stored.
        let with_audio: Vec<&serde_json::Value> =
            calls.iter().filter(|c| !c["recording"].is_null() || !c["voicemail"].is_null()).collect();
        assert!(with_audio.len() >= 200, "{}", with_audio.len());
        let paused = with_audio
            .iter()
            .filter(|c| c["recording"]["paused_spans"].as_array().is_some_and(|s| !s.is_empty()))
            .count();
        assert!(paused >= 5, "{paused} recordings with paused spans");
        for call in with_audio.iter().take(40) {
            for (field, kind) in [("recording", RecordingKind::Call), ("voicemail", RecordingKind::Voicemail)]
            {
                if call[field].is_null() {
                    continue;
                }
                let id = call[field]["id"].as_i64().unwrap();
                let (status, _, bytes) = service
                    .raw(
                        axum::http::Method::GET,
                        &format!("/api/v1/recordings/{id}/audio"),
                        Some(admin),
                        None,
                        &[],
                    )
                    .await;
                assert_eq!(status, axum::http::StatusCode::OK);
                assert_eq!(bytes.len() as u64, call[field]["size_bytes"].as_u64().unwrap());
                let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap();
                assert_eq!(reader.spec().channels, earshot_policy::Recording::channels(kind));
                assert_eq!(reader.spec().sample_rate, 8_000);
                assert_eq!(u64::from(reader.duration()) / 8, call[field]["duration_ms"].as_u64().unwrap());
                if kind == RecordingKind::Call {
                    // The recording runs to the hang-up (it may start after the answer, on #12#).
                    let talk = call["ended_at"].as_i64().unwrap() - call["answered_at"].as_i64().unwrap();
                    let recorded = call[field]["duration_ms"].as_i64().unwrap();
                    assert!(
                        (recorded..=recorded + 2_000).contains(&talk),
                        "talk {talk} ms, recording {recorded} ms"
                    );
                }
            }
        }
        assert!(dir_size(&service.state.recordings_dir()) < 190 * 1024 * 1024);
        let (_, sync) = service.get("/api/v1/sync", admin).await;
        assert_eq!(sync["company"]["name"], "Acme Support");
    }
}
