//! Service benchmarks; figures go to docs/PERFORMANCE.md.
//!
//! - history: a page of 50 calls out of 1,000,000 stored, for an agent at each
//!   visibility level, p50 and p99, on SQLite (and PostgreSQL when
//!   `EARSHOT_BENCH_POSTGRES_URL` names a server);
//! - push: time for a settings change to reach 1,000 connected event streams;
//! - import: calls per second through `POST /api/v1/calls/import`.
//!
//! `cargo bench -p earshot-service --bench service` runs it all;
//! with `-- --test` (as `./x test` does) it runs everything small, once.

#![allow(clippy::print_stdout)]

use earshot_policy::{AppContext, CallVisibility, CompanyId, GroupId, NumberId, UserId, UserSettings};
use earshot_service::api::calls::{CallsQuery, page};
use earshot_service::company::{NewCompany, create_company};
use earshot_service::db::{Db, Query};
use earshot_service::{AppState, app};
use futures::StreamExt as _;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use sqlx::Row as _;
use std::time::{Duration, Instant};

struct Sizes {
    calls: usize,
    pages: usize,
    streams: usize,
    imports: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A company of 60 agents (one per level under test among them), 6 groups, 12 numbers, and `calls` calls.
async fn seed(db: &Db, calls: usize) -> (CompanyId, Vec<(CallVisibility, UserId)>) {
    let new = NewCompany {
        name: "Bench".into(),
        admin_email: "admin@bench.test".into(),
        admin_password: "bench-password".into(),
        admin_name: "Admin".into(),
    };
    let (company, _) = create_company(db, &new).await.unwrap();
    let mut tx = db.pool().begin().await.unwrap();
    let mut groups = Vec::new();
    for g in 0..6 {
        let mut q = Query::new("INSERT INTO groups (company_id, name) VALUES (");
        q.bind(company.0).push(", ").bind(format!("Team {g}")).push(") RETURNING id");
        groups.push(GroupId(db.fetch_optional(&mut *tx, &q).await.unwrap().unwrap().try_get("id").unwrap()));
    }
    let mut users = Vec::new();
    for u in 0..60 {
        let level = CallVisibility::ALL_LEVELS[u % 4];
        let settings = UserSettings { call_visibility: Some(level), ..UserSettings::default() };
        let mut q = Query::new(
            "INSERT INTO users (company_id, name, email, role, settings, password_hash, created_at) VALUES (",
        );
        q.bind(company.0)
            .push(", ")
            .bind(format!("Agent {u}"))
            .push(", ")
            .bind(format!("agent{u}@bench.test"))
            .push(", 'agent', ")
            .bind(serde_json::to_string(&settings).unwrap())
            .push(", 'x', 0) RETURNING id");
        let id = UserId(db.fetch_optional(&mut *tx, &q).await.unwrap().unwrap().try_get("id").unwrap());
        let mut q = Query::new("INSERT INTO group_members (group_id, user_id) VALUES (");
        q.bind(groups[u % 6].0).push(", ").bind(id.0).push(")");
        db.execute(&mut *tx, &q).await.unwrap();
        users.push((level, id));
    }
    let mut numbers = Vec::new();
    for n in 0..12 {
        let flow = serde_json::json!([
            {"type": "ring_user", "user": users[n * 5].1.0},
            {"type": "ring_group", "group": groups[n % 6].0},
            {"type": "voicemail"}
        ]);
        let mut q = Query::new("INSERT INTO numbers (company_id, e164, name, flow) VALUES (");
        q.bind(company.0)
            .push(", ")
            .bind(format!("+44207000{n:04}"))
            .push(", 'Line', ")
            .bind(flow.to_string())
            .push(") RETURNING id");
        numbers
            .push(NumberId(db.fetch_optional(&mut *tx, &q).await.unwrap().unwrap().try_get("id").unwrap()));
    }
    tx.commit().await.unwrap();

    let mut rng = StdRng::seed_from_u64(7);
    let start = 1_700_000_000_000i64;
    let mut next_id: i64 = {
        let row = db
            .fetch_optional(db.pool(), &Query::new("SELECT COALESCE(MAX(id), 0) AS m FROM calls"))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64, _>("m").unwrap() + 1
    };
    let batch = 400;
    let mut written = 0;
    while written < calls {
        let n = batch.min(calls - written);
        let mut tx = db.pool().begin().await.unwrap();
        let mut q = Query::new(
            "INSERT INTO calls (id, company_id, direction, status, started_at, answered_at, ended_at, number_id, external_number, recording_trace) VALUES ",
        );
        let mut users_q =
            Query::new("INSERT INTO call_users (call_id, user_id, relation, company_id, started_at) VALUES ");
        for i in 0..n {
            let id = next_id + i as i64;
            let started = start + (written + i) as i64 * 2_000;
            let roll: f64 = rng.random();
            let (direction, status) = match roll {
                r if r < 0.4 => ("inbound", "answered"),
                r if r < 0.48 => ("inbound", "missed"),
                r if r < 0.55 => ("inbound", "voicemail"),
                r if r < 0.85 => ("outbound", "answered"),
                r if r < 0.95 => ("outbound", "unanswered"),
                _ => ("internal", "answered"),
            };
            let number = (direction != "internal").then(|| numbers[rng.random_range(0..numbers.len())].0);
            let party = users[rng.random_range(0..users.len())].1;
            if i > 0 {
                q.push(", ");
                users_q.push(", ");
            }
            q.push("(")
                .bind(id)
                .push(", ")
                .bind(company.0)
                .push(", ")
                .bind(direction)
                .push(", ")
                .bind(status)
                .push(", ")
                .bind(started)
                .push(", ")
                .bind((status == "answered").then_some(started + 5_000))
                .push(", ")
                .bind(started + 60_000)
                .push(", ")
                .bind(number)
                .push(", '+15550100', '[]')");
            let relation = if status == "answered" || direction != "inbound" { "party" } else { "rang" };
            users_q
                .push("(")
                .bind(id)
                .push(", ")
                .bind(party.0)
                .push(", ")
                .bind(relation)
                .push(", ")
                .bind(company.0)
                .push(", ")
                .bind(started)
                .push(")");
        }
        db.execute(&mut *tx, &q).await.unwrap();
        db.execute(&mut *tx, &users_q).await.unwrap();
        tx.commit().await.unwrap();
        next_id += n as i64;
        written += n;
    }
    if db.backend() == earshot_service::db::Backend::Postgres {
        // Identity columns don't see explicit ids: move the sequence past them.
        db.execute(
            db.pool(),
            &Query::new("SELECT setval(pg_get_serial_sequence('calls', 'id'), (SELECT MAX(id) FROM calls))"),
        )
        .await
        .unwrap();
        db.execute(db.pool(), &Query::new("ANALYZE")).await.unwrap();
    } else {
        db.execute(db.pool(), &Query::new("ANALYZE")).await.unwrap();
    }
    // And a new agent: no calls of their own, no numbers, no groups. The worst case for a
    // filter that scans the history in time order: almost nothing matches.
    let mut q = Query::new(
        "INSERT INTO users (company_id, name, email, role, settings, password_hash, created_at) VALUES (",
    );
    q.bind(company.0).push(", 'New agent', 'new@bench.test', 'agent', '{}', 'x', 0) RETURNING id");
    let new_agent = UserId(db.fetch_optional(db.pool(), &q).await.unwrap().unwrap().try_get("id").unwrap());
    db.execute(db.pool(), &Query::new("UPDATE companies SET version = version + 1")).await.unwrap();
    let mut levels: Vec<(CallVisibility, UserId)> = CallVisibility::ALL_LEVELS
        .iter()
        .map(|level| *users.iter().find(|(l, _)| l == level).unwrap())
        .collect();
    levels.push((CallVisibility::OwnAndMissed, new_agent));
    (company, levels)
}

async fn history(label: &str, db: Db, dir: &std::path::Path, sizes: &Sizes) {
    let seeded = Instant::now();
    let (company, levels) = seed(&db, sizes.calls).await;
    println!("history/{label}: seeded {} calls in {:.1} s", sizes.calls, seeded.elapsed().as_secs_f64());
    let state = AppState::new(db, dir);
    let snapshot = state.snapshots.get(&state.db, company).await.unwrap();
    let mut rng = StdRng::seed_from_u64(11);
    for (level, user) in levels {
        let user = snapshot.company.user(user).unwrap();
        let viewer = earshot_policy::Viewer::new(
            user,
            snapshot.company.settings(),
            snapshot.company.routing(),
            AppContext::Calling,
        );
        let mut times = Vec::with_capacity(sizes.pages);
        let mut cursor: Option<String> = None;
        for i in 0..sizes.pages {
            // Half first pages, half the next page after wherever the last one ended.
            if i % 2 == 0 || rng.random_bool(0.1) {
                cursor = None;
            }
            let filters = CallsQuery {
                app: Some(AppContext::Calling),
                cursor: cursor.clone(),
                limit: Some(50),
                ..CallsQuery::default()
            };
            let started = Instant::now();
            let answer = page(&state, &viewer, &filters).await.unwrap();
            times.push(started.elapsed());
            cursor = answer.next_cursor;
        }
        times.sort();
        let who = if user.name == "New agent" { "new agent, no calls" } else { level.as_str() };
        println!(
            "history/{label}/{:<19} page of 50 of {} calls: p50 {}  p99 {}  ({} pages)",
            who,
            sizes.calls,
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            sizes.pages
        );
    }
}

async fn push(sizes: &Sizes) {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(dir.path(), None).await.unwrap();
    let new = NewCompany {
        name: "Push".into(),
        admin_email: "admin@push.test".into(),
        admin_password: "push-password".into(),
        admin_name: "Admin".into(),
    };
    create_company(&state.db, &new).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = app(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let session: serde_json::Value = client
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"email": "admin@push.test", "password": "push-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["token"].as_str().unwrap().to_owned();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(sizes.streams);
    let (got_tx, mut got_rx) = tokio::sync::mpsc::channel(sizes.streams);
    for _ in 0..sizes.streams {
        let (client, base, token, ready, got) =
            (client.clone(), base.clone(), token.clone(), ready_tx.clone(), got_tx.clone());
        tokio::spawn(async move {
            let response =
                client.get(format!("{base}/api/v1/events")).bearer_auth(token).send().await.unwrap();
            let mut stream = response.bytes_stream();
            let mut text = String::new();
            let mut said_ready = false;
            while let Some(Ok(chunk)) = stream.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
                if !said_ready && text.contains("event: hello") {
                    said_ready = true;
                    ready.send(()).await.unwrap();
                }
                if text.contains("event: change") {
                    got.send(Instant::now()).await.unwrap();
                    return;
                }
            }
        });
    }
    for _ in 0..sizes.streams {
        ready_rx.recv().await.unwrap();
    }
    let sent = Instant::now();
    let response = client
        .put(format!("{base}/api/v1/settings"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"agent_call_visibility": "all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut times = Vec::with_capacity(sizes.streams);
    for _ in 0..sizes.streams {
        times.push(got_rx.recv().await.unwrap().saturating_duration_since(sent));
    }
    times.sort();
    println!(
        "push: settings change to {} event streams: p50 {}  p99 {}  max {}",
        sizes.streams,
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().unwrap())
    );
}

async fn import(sizes: &Sizes) {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(dir.path(), None).await.unwrap();
    let new = NewCompany {
        name: "Import".into(),
        admin_email: "admin@import.test".into(),
        admin_password: "import-password".into(),
        admin_name: "Admin".into(),
    };
    create_company(&state.db, &new).await.unwrap();
    let router = app(state.clone());
    let login = serde_json::json!({"email": "admin@import.test", "password": "import-password"});
    let token = {
        use tower::ServiceExt as _;
        let request = axum::http::Request::post("/api/v1/session")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(login.to_string()))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["token"].as_str().unwrap().to_owned()
    };
    // A 10-second stereo recording for every other call.
    let mut wav = std::io::Cursor::new(Vec::new());
    {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::new(&mut wav, spec).unwrap();
        for n in 0..80_000 {
            writer.write_sample((n % 200) as i16 * 50).unwrap();
        }
        writer.finalize().unwrap();
    }
    let wav = base64::engine::general_purpose::STANDARD.encode(wav.into_inner());
    let calls: Vec<serde_json::Value> = (0..sizes.imports)
        .map(|i| {
            let started = 1_700_000_000_000i64 + i as i64 * 60_000;
            let mut call = serde_json::json!({"direction": "outbound", "status": "answered", "started_at": started,
                "answered_at": started + 5_000, "ended_at": started + 15_000, "external_number": "+15550100",
                "parties": ["admin@import.test"]});
            if i % 2 == 0 {
                call["recording"] = serde_json::json!({"wav_base64": wav});
            }
            call
        })
        .collect();
    let body = serde_json::json!({"calls": calls}).to_string();
    let megabytes = body.len() as f64 / 1e6;
    let started = Instant::now();
    use tower::ServiceExt as _;
    let request = axum::http::Request::post("/api/v1/calls/import")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::from(body))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 201);
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "import: {} calls ({} with a 10 s stereo WAV), {megabytes:.1} MB of JSON in {seconds:.2} s: {:.0} calls/s, {:.1} MB/s",
        sizes.imports,
        sizes.imports / 2,
        sizes.imports as f64 / seconds,
        megabytes / seconds
    );
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--test");
    let sizes = if quick {
        Sizes { calls: 2_000, pages: 10, streams: 20, imports: 10 }
    } else {
        let pages = std::env::var("EARSHOT_BENCH_PAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
        Sizes { calls: 1_000_000, pages, streams: 1_000, imports: 1_000 }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), None).await.unwrap();
        history("sqlite", db, dir.path(), &sizes).await;
        if let Ok(url) = std::env::var("EARSHOT_BENCH_POSTGRES_URL") {
            let db = Db::connect(&url).await.unwrap();
            history("postgres", db, dir.path(), &sizes).await;
        }
        push(&sizes).await;
        import(&sizes).await;
    });
    if quick {
        println!("service benchmarks ran once, small (--test)");
    }
}
