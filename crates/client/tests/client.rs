//! `earshot-client` against a real `earshotd` (its library, serving HTTP on
//! a loopback socket, SQLite in a temporary data dir, seeded with the demo
//! company), with tokens in the kernel keyring. `./x test` runs the tests in
//! a fresh session keyring (`keyctl session -`).

mod common;
use common::{best_match, envelope};
use earshot_api::{CallOut, CallsQuery};
use earshot_client::{
    Account, Api, Cache, ClientError, Feed, History, Keyring, KeyringBackend, Player, SignedIn, download,
};
use earshot_policy::{AppContext, CallVisibility, RecordingKind};
use earshot_service::demo::PEOPLE;
use std::time::Duration;

struct Demo {
    server: String,
    serving: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// `earshotd` with the demo company, on a free loopback port.
async fn demo() -> Demo {
    let dir = tempfile::tempdir().unwrap();
    let state = earshot_service::AppState::open(dir.path(), None).await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    earshot_service::demo::seed(&state, i64::try_from(now).unwrap()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    let app = earshot_service::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let serving = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Demo { server, serving, _dir: dir }
}

/// A keyring of this test's own, in the kernel keyring.
fn keyring() -> Keyring {
    KeyringBackend::Kernel.install();
    let keyring = Keyring::new(format!("earshot-test-{}", rand_suffix()));
    let works =
        keyring.save("http://probe", "probe", "probe").and_then(|()| keyring.load("http://probe", "probe"));
    assert!(
        matches!(works, Ok(Some(_))),
        "the kernel keyring takes no keys here ({works:?}): run the tests in a session keyring, \
         `keyctl session - cargo test` (./x test does)"
    );
    keyring.forget("http://probe", "probe").unwrap();
    keyring
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    hasher.finish()
}

fn password_of(email: &str) -> &'static str {
    PEOPLE.iter().find(|p| p.2 == email).map(|p| p.3).unwrap()
}

async fn sign_in(demo: &Demo, keyring: &Keyring, email: &str) -> SignedIn {
    SignedIn::log_in(keyring, &demo.server, email, password_of(email)).await.unwrap()
}

/// Every page the service gives `api` in `app`.
async fn all_calls(api: &Api, app: AppContext) -> Vec<CallOut> {
    let mut calls = Vec::new();
    let mut cursor = None;
    loop {
        let query = CallsQuery { app: Some(app), cursor, limit: Some(200), ..CallsQuery::default() };
        let page = api.calls(&query).await.unwrap();
        calls.extend(page.calls);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return calls,
        }
    }
}

#[tokio::test]
async fn the_token_lives_in_the_keyring_from_log_in_to_log_out() {
    let demo = demo().await;
    let keyring = keyring();
    let server = demo.server.trim_start_matches("http://").to_owned();

    let refused = SignedIn::log_in(&keyring, &server, "ada@acme.demo", "not-her-password").await.unwrap_err();
    assert_eq!(refused.code(), "log_in_refused");
    assert!(refused.to_string().contains("wrong"), "a clear message: {refused}");
    assert_eq!(keyring.load(&demo.server, "ada@acme.demo").unwrap(), None);

    let ada = sign_in(&demo, &keyring, "ada@acme.demo").await;
    assert_eq!(ada.user.name, "Ada Agent");
    let token = keyring.load(&demo.server, "ada@acme.demo").unwrap().expect("the token is in the keyring");
    assert!(token.len() >= 32);

    // The app starts again: the kept token signs her in without a password.
    let (again, snapshot) = SignedIn::resume(&keyring, &server, "ADA@acme.demo")
        .await
        .unwrap()
        .expect("signed in from the keyring");
    assert_eq!(again.user.id, ada.user.id);
    assert_eq!(snapshot.me.email, "ada@acme.demo");

    ada.log_out().await.unwrap();
    assert_eq!(keyring.load(&demo.server, "ada@acme.demo").unwrap(), None, "log-out removes the token");
    assert!(SignedIn::resume(&keyring, &server, "ada@acme.demo").await.unwrap().is_none());
    let ended = again.sync().await.unwrap_err();
    assert_eq!(ended.code(), "session_ended", "the old token no longer works: {ended}");
}

#[tokio::test]
async fn an_ended_session_sends_the_user_back_to_log_in_and_forgets_the_token() {
    let demo = demo().await;
    let keyring = keyring();
    let bo = sign_in(&demo, &keyring, "bo@acme.demo").await;
    // The session ends elsewhere (here: the token is revoked on the service).
    bo.api().log_out().await.unwrap();
    let error = bo.sync().await.unwrap_err();
    assert!(matches!(error, ClientError::SessionEnded { .. }), "{error:?}");
    assert!(!error.to_string().is_empty(), "the service's explanation is shown");
    assert_eq!(keyring.load(&demo.server, "bo@acme.demo").unwrap(), None);
    let resumed = SignedIn::resume(&keyring, &demo.server, "bo@acme.demo").await.unwrap();
    assert!(resumed.is_none(), "nothing to resume: the app shows log-in");

    let offline = SignedIn::log_in(&keyring, "127.0.0.1:1", "bo@acme.demo", "demo-bo").await.unwrap_err();
    assert_eq!(offline.code(), "offline", "{offline}");
}

/// SPEC §7: the app decides locally exactly what the service would answer.
#[tokio::test]
async fn local_rights_equal_the_services_for_every_demo_user_and_app() {
    let demo = demo().await;
    let keyring = keyring();
    let admin = sign_in(&demo, &keyring, "admin@acme.demo").await;
    let everything = all_calls(admin.api(), AppContext::Dashboard).await;
    assert!(everything.len() > 1_000, "the demo has its history: {}", everything.len());
    for (_, name, email, _, _) in PEOPLE {
        let user = sign_in(&demo, &keyring, email).await;
        let snapshot = user.sync().await.unwrap();
        for app in AppContext::ALL {
            let service = all_calls(user.api(), app).await;
            let mut local = History::new(&snapshot, app);
            // Local decisions over the whole history, not only what the service sent.
            local.extend(earshot_api::CallPage { calls: everything.clone(), next_cursor: None });
            let ids = |calls: &[CallOut]| calls.iter().map(|c| c.call.id).collect::<Vec<_>>();
            assert_eq!(ids(local.calls()), ids(&service), "{name} in {app:?}: the same calls");
            for (mine, theirs) in local.calls().iter().zip(&service) {
                assert_eq!(
                    (mine.can_play, mine.can_download, mine.access),
                    (theirs.can_play, theirs.can_download, theirs.access),
                    "{name} in {app:?}, call {}: the same rights",
                    mine.call.id
                );
            }
        }
    }
}

#[tokio::test]
async fn a_pushed_settings_change_refilters_the_open_history_at_once() {
    let demo = demo().await;
    let keyring = keyring();
    let admin = sign_in(&demo, &keyring, "admin@acme.demo").await;
    let admin_token = token_of(&demo, &keyring, "admin@acme.demo");
    // An agent who follows the company's visibility (no value of their own).
    let snapshot = admin.sync().await.unwrap();
    let agent_email = agent_on_company_visibility(&snapshot);
    let mut settings = snapshot.settings.clone();
    settings.agent_call_visibility = CallVisibility::All;
    put_settings(admin.api(), &admin_token, &settings).await;

    let user = sign_in(&demo, &keyring, &agent_email).await;
    let mut feed = earshot_client::events::follow(user.api().clone());
    assert!(matches!(next(&mut feed).await, Feed::Connected { .. }));
    let mut snapshot = user.sync().await.unwrap();
    let mut history = History::new(&snapshot, AppContext::Calling);
    history.extend(
        user.api()
            .calls(&CallsQuery { app: Some(AppContext::Calling), limit: Some(200), ..CallsQuery::default() })
            .await
            .unwrap(),
    );
    let before = history.calls().len();
    assert_eq!(before, 200, "with `all` a full page");

    settings.agent_call_visibility = CallVisibility::OwnAndMissed;
    put_settings(admin.api(), &admin_token, &settings).await;
    let Feed::Change(pushed) = next(&mut feed).await else { panic!("a change is pushed") };
    assert!(pushed.change.changes_rights(), "{pushed:?}");
    snapshot = user.sync().await.unwrap();
    let outcome = history.apply(&snapshot);
    assert!(!outcome.removed.is_empty(), "calls the agent may no longer see disappear");
    assert_eq!(history.calls().len(), before - outcome.removed.len());
    assert!(outcome.removed.iter().all(|id| history.call(*id).is_none()), "removed calls are not found");
    assert!(history.calls().iter().all(|c| history.call(c.call.id) == Some(c)), "kept calls are found by id");
    let viewer = snapshot.viewer(AppContext::Calling);
    assert!(history.calls().iter().all(|c| viewer.can_see(&c.call)));
    // What is left is what the service now answers, in the same order.
    let service = all_calls(user.api(), AppContext::Calling).await;
    let kept: Vec<_> = history.calls().iter().map(|c| c.call.id).collect();
    let now_visible: Vec<_> = service.iter().map(|c| c.call.id).filter(|id| kept.contains(id)).collect();
    assert_eq!(kept, now_visible);
}

async fn put_settings(api: &Api, token: &str, settings: &earshot_policy::CompanySettings) {
    let response = reqwest::Client::new()
        .put(format!("{}/api/v1/settings", api.server()))
        .bearer_auth(token)
        .json(settings)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.text().await.unwrap());
}

/// A signed-in user's token, from the keyring (the API does not hand it out).
fn token_of(demo: &Demo, keyring: &Keyring, email: &str) -> String {
    keyring.load(&demo.server, email).unwrap().expect("signed in")
}

async fn next(feed: &mut tokio::sync::mpsc::UnboundedReceiver<Feed>) -> Feed {
    tokio::time::timeout(Duration::from_secs(10), feed.recv()).await.expect("the feed speaks").expect("open")
}

#[tokio::test]
async fn a_download_is_byte_identical_and_all_or_nothing() {
    let demo = demo().await;
    let keyring = keyring();
    let admin = sign_in(&demo, &keyring, "admin@acme.demo").await;
    let snapshot = admin.sync().await.unwrap();
    let mut history = History::new(&snapshot, AppContext::Dashboard);
    history.extend(
        admin.api().calls(&CallsQuery { has_recording: Some(true), ..CallsQuery::default() }).await.unwrap(),
    );
    let call = history.calls().iter().find(|c| c.call.recording.is_some()).expect("a recorded call").clone();
    let dir = tempfile::tempdir().unwrap();
    let name = earshot_api::download_name(&call.call, RecordingKind::Call);
    assert!(name.ends_with(".wav") && name.contains(call.call.direction.as_str()), "{name}");
    let destination = dir.path().join(&name);
    let mut seen = Vec::new();
    let bytes = download::download(
        admin.api(),
        &history,
        call.call.id,
        RecordingKind::Call,
        &destination,
        || Ok(()),
        |progress| seen.push(progress),
    )
    .await
    .unwrap();
    let file = std::fs::read(&destination).unwrap();
    assert_eq!(file.len() as u64, bytes);
    assert_eq!(seen.last().map(|p| (p.written, p.total)), Some((bytes, Some(bytes))), "progress to the end");
    let reader = hound::WavReader::open(&destination).unwrap();
    assert_eq!((reader.spec().channels, reader.spec().sample_rate), (2, 8_000));
    let recording = call.call.recording.as_ref().unwrap().id;
    let direct = reqwest::Client::new()
        .get(format!("{}/api/v1/recordings/{recording}/audio", demo.server))
        .bearer_auth(token_of(&demo, &keyring, "admin@acme.demo"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(file, direct.as_ref(), "byte for byte what the service holds");

    // The right is revoked mid-way: nothing is left behind.
    let revoked = dir.path().join("revoked.wav");
    let chunks = std::cell::Cell::new(0);
    let error = download::download(
        admin.api(),
        &history,
        call.call.id,
        RecordingKind::Call,
        &revoked,
        || {
            chunks.set(chunks.get() + 1);
            if chunks.get() > 1 {
                Err(ClientError::Forbidden {
                    detail: "Your right to download this recording was revoked.".into(),
                })
            } else {
                Ok(())
            }
        },
        |_| {},
    )
    .await
    .unwrap_err();
    assert_eq!(error.code(), "forbidden");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from(&name)], "no partial file");

    // Someone without the right is refused before a byte moves.
    let ada = sign_in(&demo, &keyring, "ada@acme.demo").await;
    let ada_snapshot = ada.sync().await.unwrap();
    let mut ada_history = History::new(&ada_snapshot, AppContext::Dashboard);
    ada_history.extend(ada.api().calls(&CallsQuery::default()).await.unwrap());
    let own =
        ada_history.calls().iter().find(|c| c.call.recording.is_some()).expect("Ada has recorded calls");
    assert!(!own.can_download, "demo agents may not download");
    {
        let refused = download::download(
            ada.api(),
            &ada_history,
            own.call.id,
            RecordingKind::Call,
            &dir.path().join("ada.wav"),
            || Ok(()),
            |_| {},
        )
        .await
        .unwrap_err();
        assert_eq!(refused.code(), "forbidden");
    }
    assert!(!dir.path().join("ada.wav").exists());
}

/// `./x test` starts a private PulseAudio whose default sink `spk` is a null
/// sink; ALSA (cpal's default host) plays into it. Records what the app plays.
fn record_speaker(seconds: u64) -> std::process::Child {
    let available =
        std::process::Command::new("pactl").arg("info").output().is_ok_and(|o| o.status.success());
    assert!(available, "no PulseAudio to play into: run the tests through ./x test, which starts one");
    std::process::Command::new("parecord")
        .args(["--device=spk.monitor", "--channels=1", "--rate=8000", "--format=s16le", "--file-format=wav"])
        .arg(format!("--process-time-msec={}", 20))
        .arg(std::env::temp_dir().join(format!("earshot-speaker-{seconds}-{}.wav", std::process::id())))
        .spawn()
        .expect("parecord")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_sounds_like_the_recording_and_obeys_pause_and_seek() {
    let demo = demo().await;
    let keyring = keyring();
    let admin = sign_in(&demo, &keyring, "admin@acme.demo").await;
    let snapshot = admin.sync().await.unwrap();
    let mut history = History::new(&snapshot, AppContext::Dashboard);
    let query = CallsQuery { has_recording: Some(true), limit: Some(200), ..CallsQuery::default() };
    history.extend(admin.api().calls(&query).await.unwrap());
    let call = history
        .calls()
        .iter()
        .find(|c| {
            c.call.recording.as_ref().is_some_and(|r| r.duration_ms > 8_000 && r.paused_spans.is_empty())
        })
        .expect("a recorded call of over 8 s")
        .clone();
    let recording = call.call.recording.as_ref().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source_path = dir.path().join("source.wav");
    download::download(
        admin.api(),
        &history,
        call.call.id,
        RecordingKind::Call,
        &source_path,
        || Ok(()),
        |_| {},
    )
    .await
    .unwrap();
    let source: Vec<f32> = {
        let mut reader = hound::WavReader::open(&source_path).unwrap();
        let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        samples.chunks(2).map(|f| (f32::from(f[0]) + f32::from(f[1])) / 2.0 / 32_768.0).collect()
    };

    let player = Player::open(admin.api(), &history, call.call.id, RecordingKind::Call, None).await.unwrap();
    let status = player.status();
    assert_eq!(status.duration_ms, recording.duration_ms, "{status:?}");
    assert!(!status.playing && status.position_ms == 0, "opens paused at the start: {status:?}");

    let mut speaker = record_speaker(6);
    tokio::time::sleep(Duration::from_millis(500)).await;
    player.play();
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    player.pause();
    // The output stops at its next period.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let paused_at = player.status().position_ms;
    assert!(
        (2_500..5_000).contains(&paused_at),
        "about 4.5 s played, less the output's start-up: {paused_at}"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(player.status().position_ms, paused_at, "paused means paused");
    speaker.kill().unwrap();
    speaker.wait().unwrap();
    let captured_path = std::env::temp_dir().join(format!("earshot-speaker-6-{}.wav", std::process::id()));
    let captured: Vec<f32> = {
        // parecord killed mid-way leaves its header unfinished: read the samples after it.
        let bytes = std::fs::read(&captured_path).unwrap();
        let data = bytes.windows(4).position(|w| w == b"data").map_or(44, |at| at + 8);
        bytes[data..]
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0)
            .collect()
    };
    let _ = std::fs::remove_file(&captured_path);
    let heard = envelope(&captured, 160);
    let played = envelope(&source[..16_000.min(source.len())], 160);
    let similarity = best_match(&played, &heard);
    assert!(similarity > 0.8, "what came out of the speaker is the recording (correlation {similarity:.2})");

    player.seek(1_000);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let moved = player.status().position_ms;
    assert!((900..1_300).contains(&moved), "seek moves the position: {moved}");
    player.set_speed(5.0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!((player.status().speed - 2.0).abs() < f64::EPSILON, "speed is kept within 0.5–2");
    // At 2× the position moves twice as fast as the clock (the pitch is
    // kept: stretch.rs's tests); 1.8 s in 1.5 s is more than 1× could do.
    let from = player.status().position_ms;
    player.play();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    player.pause();
    let advanced = player.status().position_ms.saturating_sub(from);
    assert!((1_800..3_500).contains(&advanced), "2× played {advanced} ms of the recording in 1.5 s");

    // Someone who may not play it gets no player, and no byte is fetched.
    let ada = sign_in(&demo, &keyring, "ada@acme.demo").await;
    let ada_history = History::new(&ada.sync().await.unwrap(), AppContext::Dashboard);
    let refused =
        Player::open(ada.api(), &ada_history, call.call.id, RecordingKind::Call, None).await.unwrap_err();
    assert_eq!(refused.code(), "forbidden");
}

#[tokio::test]
async fn the_cache_opens_the_history_offline_and_drops_what_a_rights_change_hides() {
    let demo = demo().await;
    let keyring = keyring();
    let admin = sign_in(&demo, &keyring, "admin@acme.demo").await;
    let admin_token = token_of(&demo, &keyring, "admin@acme.demo");
    let mut settings = admin.sync().await.unwrap().settings;
    settings.agent_call_visibility = CallVisibility::All;
    put_settings(admin.api(), &admin_token, &settings).await;
    let email = agent_on_company_visibility(&admin.sync().await.unwrap());
    let user = sign_in(&demo, &keyring, &email).await;
    let snapshot = user.sync().await.unwrap();
    let mut history = History::new(&snapshot, AppContext::Calling);
    let query = CallsQuery { app: Some(AppContext::Calling), limit: Some(200), ..CallsQuery::default() };
    history.extend(user.api().calls(&query).await.unwrap());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("earshot").join("cache.db");
    let account = Account { server: user.api().server().to_owned(), email: email.clone() };
    let cache = Cache::open(&path).await.unwrap();
    cache.save_snapshot(&account, &snapshot).await.unwrap();
    cache.save_calls(&account, AppContext::Calling, history.calls()).await.unwrap();
    drop(cache);
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "owner only");
    }

    // The app starts again with no server: everything it saw is there.
    let cache = Cache::open(&path).await.unwrap();
    let cached = cache.snapshot(&account).await.unwrap().expect("the snapshot");
    assert_eq!(cached.version, snapshot.version);
    let offline = cache.history(&account, AppContext::Calling, &cached).await.unwrap();
    let ids = |h: &History| h.calls().iter().map(|c| c.call.id).collect::<Vec<_>>();
    assert_eq!(ids(&offline), ids(&history));
    assert!(offline.calls().iter().zip(history.calls()).all(|(a, b)| a == b), "rights as they were");

    // Stricter rules hide calls: read with them, the cache drops those for good.
    let mut stricter = cached.clone();
    stricter.settings.agent_call_visibility = CallVisibility::OwnAndMissed;
    let narrowed = cache.history(&account, AppContext::Calling, &stricter).await.unwrap();
    assert!(narrowed.calls().len() < offline.calls().len(), "some calls are hidden");
    let viewer = stricter.viewer(AppContext::Calling);
    assert!(narrowed.calls().iter().all(|c| viewer.can_see(&c.call)));
    let reread = cache.history(&account, AppContext::Calling, &cached).await.unwrap();
    assert_eq!(ids(&reread), ids(&narrowed), "hidden calls are gone from the file, not only from the screen");

    // Contact names: the list kept is the one listed last.
    use earshot_policy::ContactId;
    let listed = vec![(ContactId(1), "Initech".to_owned()), (ContactId(2), "Globex".to_owned())];
    cache.save_contacts(&account, &listed).await.unwrap();
    assert_eq!(sorted(cache.contacts(&account).await.unwrap()), listed);
    let relisted = vec![(ContactId(2), "Globex Corporation".to_owned())];
    cache.save_contacts(&account, &relisted).await.unwrap();
    assert_eq!(cache.contacts(&account).await.unwrap(), relisted, "a deleted contact leaves the file");
    let other = Account { email: "someone-else@acme.demo".into(), ..account.clone() };
    assert!(cache.contacts(&other).await.unwrap().is_empty(), "kept per user");

    cache.forget(&account).await.unwrap();
    assert!(cache.snapshot(&account).await.unwrap().is_none(), "log-out forgets the cache");
    assert!(cache.contacts(&account).await.unwrap().is_empty(), "and the contact names");
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

/// A demo agent who follows the company's visibility (no value of their own).
fn agent_on_company_visibility(snapshot: &earshot_api::SyncSnapshot) -> String {
    snapshot
        .users
        .iter()
        .find(|u| {
            u.role == earshot_policy::Role::Agent
                && u.settings.as_ref().is_some_and(|s| s.call_visibility.is_none())
        })
        .expect("a demo agent on the company's visibility")
        .email
        .clone()
}

/// The app as the Tauri shell drives it: log in, history windows and
/// filters, a call's details, start again from the keyring, log out.
#[tokio::test]
async fn the_app_logs_in_lists_calls_resumes_and_logs_out() {
    use earshot_client::app::App;
    use earshot_client::view::{HistoryFilter, UiError};
    let demo = demo().await;
    let keyring = keyring();
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(dir.path().to_owned(), keyring.clone());
    assert_eq!(app.last_login(), None);
    let refused = app.log_in(&demo.server, "sam@acme.demo", "wrong-password").await.unwrap_err();
    assert_eq!(UiError::from(refused).code, "log_in_refused");
    let me = app.log_in(&demo.server, "Sam@acme.demo", "demo-sam").await.unwrap();
    assert_eq!(
        (me.name.as_str(), me.role.as_str(), me.company.as_str()),
        ("Sam Supervisor", "supervisor", "Acme Support")
    );
    let all = HistoryFilter::default();
    let first = app.history(AppContext::Dashboard, all.clone(), 0, 50).await.unwrap();
    assert_eq!(
        (first.offset, first.calls.len(), first.loaded),
        (0, 50, 200),
        "one page fetched, 50 rows shown"
    );
    assert!(first.calls.windows(2).all(|w| w[0].started_at >= w[1].started_at), "newest first");
    assert!(first.calls.iter().all(|c| !c.other_party.is_empty()));
    assert!(first.calls.iter().all(|c| !c.can_download || c.can_play), "download ⇒ play");
    let deeper = app.history(AppContext::Dashboard, all.clone(), 180, 50).await.unwrap();
    assert_eq!(
        (deeper.offset, deeper.calls.len(), deeper.loaded),
        (180, 50, 400),
        "the next page is fetched"
    );
    let again = app.history(AppContext::Dashboard, all.clone(), 0, 50).await.unwrap();
    assert_eq!(again.calls, first.calls, "loaded rows are not fetched again");

    // Filters are the service's, and the rows still the local rules'.
    let inbound_missed = HistoryFilter {
        direction: Some("inbound".into()),
        status: Some("missed".into()),
        ..HistoryFilter::default()
    };
    let window = app.history(AppContext::Dashboard, inbound_missed, 0, 100).await.unwrap();
    assert!(!window.calls.is_empty());
    assert!(window.calls.iter().all(|c| c.direction == "inbound" && c.status == "missed"));
    let recorded = HistoryFilter { has_recording: Some(true), ..HistoryFilter::default() };
    let window = app.history(AppContext::Dashboard, recorded, 0, 100).await.unwrap();
    assert!(window.calls.iter().all(|c| c.has_recording));
    let needle = first.calls.iter().find(|c| c.other_party.starts_with('+')).unwrap().other_party.clone();
    let search =
        HistoryFilter { search: Some(needle[needle.len() - 6..].to_owned()), ..HistoryFilter::default() };
    let window = app.history(AppContext::Dashboard, search, 0, 100).await.unwrap();
    assert!(window.calls.iter().any(|c| c.other_party == needle), "search finds the number");
    let bad = HistoryFilter { status: Some("lost".into()), ..HistoryFilter::default() };
    assert_eq!(app.history(AppContext::Dashboard, bad, 0, 10).await.unwrap_err().code(), "invalid");

    // A recorded call's details say why it was recorded, and who was on it.
    let row =
        first.calls.iter().find(|c| c.has_recording && c.status == "answered").expect("a recorded call");
    let details = app.call_details(AppContext::Dashboard, row.id).await.unwrap();
    assert_eq!(&details.row, row);
    assert!(!details.recordings.is_empty());
    assert!(details.recordings.iter().all(|r| r.file_name.ends_with(".wav")));
    // Recorded from the start, or started by a user's #12# later.
    let trace: Vec<&str> = details.trace.iter().map(|t| t.text.as_str()).collect();
    assert!(
        trace.first().is_some_and(|t| t.starts_with("Recorded") || t.starts_with("Not recorded")),
        "{trace:?}"
    );
    assert!(
        trace[0].starts_with("Recorded") || trace.iter().any(|t| t.contains("started the recording (#12#)")),
        "{trace:?}"
    );
    let directory = app.directory().unwrap();
    assert!(directory.users.iter().any(|u| u.name == "Ada Agent"));

    // Analytics: the service's sums, named from the snapshot; days add up.
    let now = i64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis(),
    )
    .unwrap();
    let stats = app.analytics(now - 61 * 86_400_000, now + 1).await.unwrap();
    assert!(stats.total.calls > 0);
    let by_day: i64 =
        stats.per_day.iter().map(|d| d.calls.inbound + d.calls.outbound + d.calls.internal).sum();
    assert_eq!(by_day, stats.total.calls);
    assert!(stats.per_user.iter().all(|u| !u.name.starts_with("user ")), "users are named");
    assert_eq!(
        app.analytics(now, now - 1).await.unwrap_err().code(),
        "invalid",
        "a reversed range is refused, in words"
    );

    // Started for another server (EARSHOT_SERVER), the app offers that one
    // and does not resume the session kept for this one.
    let elsewhere =
        App::new(dir.path().to_owned(), keyring.clone()).with_default_server(Some("127.0.0.1:1".into()));
    assert_eq!(
        elsewhere.last_login().map(|l| (l.server, l.email)),
        Some(("127.0.0.1:1".into(), String::new()))
    );
    assert_eq!(elsewhere.resume().await.unwrap(), None);
    // The app starts again, for the same server written another way (or for
    // none): signed in from the keyring, no password.
    let same = demo.server.trim_start_matches("http://").to_owned() + "/";
    let again = App::new(dir.path().to_owned(), keyring.clone()).with_default_server(Some(same));
    assert_eq!(again.last_login().map(|l| l.email), Some("sam@acme.demo".into()));
    assert_eq!(again.resume().await.unwrap(), Some(me.clone()));
    let again = App::new(dir.path().to_owned(), keyring.clone());
    assert_eq!(again.resume().await.unwrap(), Some(me));
    again.log_out().await.unwrap();
    assert_eq!(keyring.load(&demo.server, "sam@acme.demo").unwrap(), None);
    let third = App::new(dir.path().to_owned(), keyring);
    assert_eq!(third.resume().await.unwrap(), None, "logged out: the log-in form shows");
    let ended = third.history(AppContext::Dashboard, all, 0, 10).await.unwrap_err();
    assert_eq!(ended.code(), "session_ended");
}

/// The app follows the push feed by itself: an admin's settings change
/// reaches an agent's open app, which re-decides its history, stops the
/// recording it was playing, and refuses the download (SPEC §7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_applies_a_pushed_rights_change_to_history_player_and_download() {
    use earshot_client::app::App;
    use earshot_client::view::{AppEvent, HistoryFilter};
    use earshot_policy::RecordingPlayback;
    let demo = demo().await;
    let keyring = keyring();
    let admin = sign_in(&demo, &keyring, "admin@acme.demo").await;
    let admin_token = token_of(&demo, &keyring, "admin@acme.demo");
    let snapshot = admin.sync().await.unwrap();
    let agent = agent_on_company_visibility(&snapshot);
    let mut settings = snapshot.settings.clone();
    settings.agent_call_visibility = CallVisibility::All;
    settings.agent_recording_playback = RecordingPlayback::AllAvailable;
    settings.agent_can_download = true;
    put_settings(admin.api(), &admin_token, &settings).await;

    let dir = tempfile::tempdir().unwrap();
    let app = App::new(dir.path().to_owned(), keyring.clone());
    let mut events = app.events();
    app.log_in(&demo.server, &agent, password_of(&agent)).await.unwrap();
    let recorded = HistoryFilter { has_recording: Some(true), ..HistoryFilter::default() };
    let window = app.history(AppContext::Calling, recorded, 0, 50).await.unwrap();
    // A row's can_play covers the call recording and the voicemail: find a
    // call whose call recording the agent may play and download.
    let mut call = None;
    for row in window.calls.iter().filter(|c| c.can_play && c.can_download) {
        let details = app.call_details(AppContext::Calling, row.id).await.unwrap();
        if details.recordings.iter().any(|r| r.kind == "call" && r.can_play && r.can_download) {
            call = Some(row.clone());
            break;
        }
    }
    let call = call.expect("a call whose recording the agent may play");
    let all = app.history(AppContext::Calling, HistoryFilter::default(), 0, 200).await.unwrap();
    let state = app.play(AppContext::Calling, call.id, RecordingKind::Call).await.unwrap();
    assert_eq!(state.call, call.id);
    let waveform = app.waveform(AppContext::Calling, call.id, RecordingKind::Call, 120).await.unwrap();
    assert_eq!(waveform.len(), 120);
    assert!(waveform.iter().any(|p| *p > 0), "a recording with sound has a waveform");

    settings.agent_call_visibility = CallVisibility::OwnAndMissed;
    settings.agent_recording_playback = RecordingPlayback::None;
    put_settings(admin.api(), &admin_token, &settings).await;
    let changed = std::time::Instant::now();
    let (mut stopped, mut refreshed) = (None, None);
    while stopped.is_none() || refreshed.is_none() {
        let event =
            tokio::time::timeout(Duration::from_secs(5), events.recv()).await.expect("events come").unwrap();
        match event {
            AppEvent::Player { state } if state.status.error.is_some() => stopped = Some(state),
            AppEvent::HistoryChanged { removed } => refreshed = Some(removed),
            _ => {}
        }
    }
    // Measured, not asserted: the push takes milliseconds on loopback.
    eprintln!("rights change reached the app in {:?}", changed.elapsed());
    assert!(stopped.unwrap().status.error.unwrap().contains("withdrawn"));
    assert!(!refreshed.unwrap().is_empty(), "calls the agent may no longer see are named");
    let now = app.history(AppContext::Calling, HistoryFilter::default(), 0, 200).await.unwrap();
    assert!(now.loaded < all.loaded || now.calls != all.calls, "the history changed");
    assert!(now.calls.iter().all(|c| !c.can_play && !c.can_download), "no player and no download any more");
    // The service agrees with what the app shows.
    let service = all_calls(
        &Api::with_token(&demo.server, token_of(&demo, &keyring, &agent)).unwrap(),
        AppContext::Calling,
    )
    .await;
    let shown: Vec<i64> = now.calls.iter().map(|c| c.id).collect();
    let served: Vec<i64> = service.iter().take(shown.len()).map(|c| c.call.id.0).collect();
    assert_eq!(shown, served);
    let refused = app
        .download(AppContext::Calling, call.id, RecordingKind::Call, &dir.path().join("x.wav"))
        .await
        .unwrap_err();
    assert!(matches!(refused.code().as_str(), "forbidden" | "not_found"), "{refused:?}");
    assert!(!dir.path().join("x.wav").exists());
    let refused = app.waveform(AppContext::Calling, call.id, RecordingKind::Call, 120).await.unwrap_err();
    assert!(matches!(refused.code().as_str(), "forbidden" | "not_found"), "{refused:?}");
}

/// The admin screens' data and changes: effective values with their source
/// (D1), the service's words for a refused change, and no admin data for
/// anyone else.
#[tokio::test]
async fn the_app_administers_the_company_and_refuses_non_admins() {
    use earshot_client::app::App;
    use earshot_client::view::{AdminChange, HistoryFilter};
    use earshot_policy::{Role, SettingSource};
    let demo = demo().await;
    let keyring = keyring();
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(dir.path().to_owned(), keyring.clone());
    app.log_in(&demo.server, "admin@acme.demo", "demo-admin").await.unwrap();
    let data = app.admin().await.unwrap();
    assert!(data.users.len() >= 10 && !data.groups.is_empty() && !data.numbers.is_empty());
    for view in &data.users {
        let own = view.user.user.settings.call_visibility;
        let source = view.effective.call_visibility.source;
        let expected = match (view.user.user.role, own) {
            (Role::Admin, _) => SettingSource::Role,
            (_, Some(_)) => SettingSource::User,
            (Role::Agent, None) => SettingSource::Company,
            (Role::Supervisor | Role::Analyst, None) => SettingSource::NotConfigured,
        };
        assert_eq!(source, expected, "{}", view.user.user.name);
    }
    assert!(
        data.users.iter().any(|u| u.effective.call_visibility.source == SettingSource::NotConfigured)
            || data
                .users
                .iter()
                .all(|u| u.user.user.role != Role::Analyst || u.user.user.settings.call_visibility.is_some()),
        "the demo has a user whose value is not configured, or sets every one"
    );

    // A change is applied; a bad one comes back in the service's words.
    let mut settings = data.settings.clone();
    settings.record_internal = !settings.record_internal;
    app.admin_change(AdminChange::Settings { settings: settings.clone() }).await.unwrap();
    assert_eq!(app.admin().await.unwrap().settings, settings);
    let mut contact =
        earshot_api::ContactWrite { name: "Initech".into(), numbers: vec!["+15550009999".into()] };
    app.admin_change(AdminChange::Contact { id: None, contact: contact.clone() }).await.unwrap();
    let created = app.admin().await.unwrap().contacts.into_iter().find(|c| c.name == "Initech").unwrap();
    contact.numbers = vec!["not a number".into()];
    let refused =
        app.admin_change(AdminChange::Contact { id: Some(created.id.0), contact }).await.unwrap_err();
    assert!(refused.to_string().contains("E.164") || refused.to_string().contains("number"), "{refused}");
    app.admin_change(AdminChange::Delete { what: "contacts".into(), id: created.id.0 }).await.unwrap();
    let bad = AdminChange::Delete { what: "settings".into(), id: 1 };
    assert_eq!(app.admin_change(bad).await.unwrap_err().code(), "invalid");
    // A download is in the audit log, and its line says which call it was.
    let calls = app.history(AppContext::Dashboard, HistoryFilter::default(), 0, 200).await.unwrap().calls;
    // Rows name the contact an outside number belongs to.
    let named: Vec<_> = calls.iter().filter(|c| c.contact.is_some()).collect();
    assert!(!named.is_empty(), "the demo's newest 200 calls include some with contacts");
    for row in named {
        let contact = data.contacts.iter().find(|c| Some(&c.name) == row.contact.as_ref()).unwrap();
        assert!(contact.numbers.contains(&row.other_party), "{row:?} is not a number of {contact:?}");
    }
    let call = calls
        .iter()
        .find(|c| c.can_download && c.direction != "internal")
        .expect("the admin may download an outside call's recording");
    let details = app.call_details(AppContext::Dashboard, call.id).await.unwrap();
    let recording = details.recordings.iter().find(|r| r.can_download).unwrap();
    let kind = if recording.kind == "call" { RecordingKind::Call } else { RecordingKind::Voicemail };
    app.download(AppContext::Dashboard, call.id, kind, &dir.path().join("audited.wav")).await.unwrap();
    let audit = app.audit(None).await.unwrap();
    assert!(audit.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let line = &audit[0];
    assert_eq!((line.action.as_str(), line.call), ("download", call.id));
    assert_eq!(line.call_direction.as_deref(), Some(call.direction.as_str()));
    assert_eq!(line.call_started_at, Some(call.started_at));
    assert_eq!(line.call_with.as_deref(), Some(call.other_party.as_str()));

    // An agent gets no admin data: the service refuses.
    let agent = App::new(tempfile::tempdir().unwrap().path().to_owned(), keyring);
    agent.log_in(&demo.server, "ada@acme.demo", "demo-ada").await.unwrap();
    assert_eq!(agent.admin().await.unwrap_err().code(), "forbidden");
    assert_eq!(agent.audit(None).await.unwrap_err().code(), "forbidden");
}

/// The app opens from its cache at once and shows the history read-only
/// when the service cannot be reached.
#[tokio::test]
async fn the_app_opens_offline_from_its_cache() {
    use earshot_client::app::App;
    use earshot_client::view::HistoryFilter;
    let demo = demo().await;
    let keyring = keyring();
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(dir.path().to_owned(), keyring.clone());
    let me = app.log_in(&demo.server, "sam@acme.demo", "demo-sam").await.unwrap();
    let online = app.history(AppContext::Dashboard, HistoryFilter::default(), 0, 50).await.unwrap();
    drop(app);

    // The service goes away; the app starts again.
    demo.serving.abort();
    let _ = (&mut { demo.serving }).await;
    let offline = App::new(dir.path().to_owned(), keyring);
    let mut events = offline.events();
    assert_eq!(
        offline.resume().await.unwrap(),
        Some(me),
        "signed in from the keyring and the cached snapshot"
    );
    let window = offline.history(AppContext::Dashboard, HistoryFilter::default(), 0, 50).await.unwrap();
    assert!(
        online.calls.iter().any(|row| row.contact.is_some()),
        "some of the newest 50 calls name a contact"
    );
    assert_eq!(
        window.calls, online.calls,
        "the cached history, decided again locally, with its contact names"
    );
    assert!(window.complete, "offline, the cache is all there is");
    // (The phone tells the ui where it is too; it is not what this waits for.)
    let event = loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap().unwrap();
        if !matches!(event, earshot_client::view::AppEvent::Phone { .. }) {
            break event;
        }
    };
    assert!(
        matches!(event, earshot_client::view::AppEvent::Connection { online: false, .. }),
        "the ui is told it is offline: {event:?}"
    );
    let filtered = HistoryFilter { status: Some("missed".into()), ..HistoryFilter::default() };
    assert_eq!(offline.history(AppContext::Dashboard, filtered, 0, 50).await.unwrap_err().code(), "offline");
}
