//! A service on a fresh database, and requests to it.

pub use crate::postgres::fresh_postgres;
pub use crate::s3::{S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY, S3Server};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use earshot_policy::{
    Call, CallId, CallStatus, CompanyId, Direction, NumberId, Recording, RecordingId, RecordingKind,
    Timestamp, UserId,
};
use earshot_service::calls::{RecordingFile, insert_call};
use earshot_service::company::{NewCompany, create_company};
use earshot_service::db::Db;
use earshot_service::{AppState, app};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The backends to run on: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<Option<String>> {
    let mut backends = vec![None];
    if let Ok(url) = std::env::var("EARSHOT_TEST_POSTGRES_URL")
        && !url.is_empty()
    {
        backends.push(Some(url));
    }
    backends
}

/// A service over a fresh database in a temporary directory.
pub struct TestService {
    pub state: AppState,
    /// Kept so the directory lives as long as the service.
    _dir: tempfile::TempDir,
}

async fn open_db(backend: &Option<String>, dir: &std::path::Path) -> Db {
    match backend {
        None => Db::open(dir, None).await.unwrap(),
        Some(server) => Db::connect(&fresh_postgres(server).await).await.unwrap(),
    }
}

impl TestService {
    /// A service on `backend` (None: SQLite).
    pub async fn start(backend: &Option<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(backend, dir.path()).await;
        Self { state: AppState::new(db, dir.path()), _dir: dir }
    }

    /// A service on SQLite whose recordings are sealed under `keys`.
    pub async fn start_sealed(keys: earshot_telephony::sealed::KeyRing) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(&None, dir.path()).await;
        let recordings = earshot_service::store::Recordings::local(&dir.path().join("recordings"))
            .unwrap()
            .with_keys(keys);
        Self { state: AppState::with_recordings(db, dir.path(), recordings), _dir: dir }
    }

    /// A service on the PostgreSQL database at `url` (which exists).
    pub async fn start_at(url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(url).await.unwrap();
        Self { state: AppState::new(db, dir.path()), _dir: dir }
    }

    /// A service on the PostgreSQL database at `url`, recordings in `s3`.
    pub async fn start_at_with_s3(url: &str, s3: &S3Server) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(url).await.unwrap();
        let recordings = s3.recordings(&dir.path().join("recordings")).await;
        Self { state: AppState::with_recordings(db, dir.path(), recordings), _dir: dir }
    }

    /// Two instances on one fresh PostgreSQL database of the server at
    /// `server_url`, each with a data directory of its own, as two
    /// `earshotd` machines behind a load balancer.
    pub async fn pair_on_postgres(server_url: &str) -> (Self, Self) {
        let url = fresh_postgres(server_url).await;
        let mut pair = Vec::new();
        for _ in 0..2 {
            let dir = tempfile::tempdir().unwrap();
            let db = Db::connect(&url).await.unwrap();
            pair.push(Self { state: AppState::new(db, dir.path()), _dir: dir });
        }
        let b = pair.pop().unwrap();
        (pair.pop().unwrap(), b)
    }

    /// A service on SQLite whose recordings go to `s3` (which need not be up).
    pub async fn start_with_s3(s3: &S3Server) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(&None, dir.path()).await;
        let recordings = s3.recordings(&dir.path().join("recordings")).await;
        Self { state: AppState::with_recordings(db, dir.path(), recordings), _dir: dir }
    }

    /// Creates a company with an admin `admin@<slug>.test` / `admin-password`.
    pub async fn company(&self, name: &str) -> (CompanyId, UserId) {
        let new = NewCompany {
            name: name.into(),
            admin_email: format!("admin@{}.test", slug(name)),
            admin_password: "admin-password".into(),
            admin_name: format!("{name} Admin"),
        };
        create_company(&self.state.db, &new).await.unwrap()
    }

    /// Sends a request; returns the status and the body as JSON (or as a string, when not JSON).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, bytes) = self.raw(method, path, token, body, &[]).await;
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    /// Sends a request with extra headers; returns status, headers and raw body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = match body {
            Some(body) => {
                request.header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string()))
            }
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = app(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec();
        (status, headers, bytes)
    }

    /// Sends `body` as is, with `content_type`.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &str,
        content_type: &str,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut request =
            Request::builder().method(method).uri(path).header(header::CONTENT_TYPE, content_type);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = app(self.state.clone())
            .oneshot(request.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec();
        (status, headers, bytes)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::PUT, path, Some(token), Some(body)).await
    }

    /// Logs in; panics unless it works.
    pub async fn log_in(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .request(
                Method::POST,
                "/api/v1/session",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Creates a user through the API as `admin_token`; returns their id.
    pub async fn create_user(&self, admin_token: &str, body: Value) -> UserId {
        let (status, created) = self.post("/api/v1/users", admin_token, body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        UserId(created["id"].as_i64().unwrap())
    }

    /// Stores `call` directly, with a WAV of `seconds` for each recording it has; returns its id.
    pub async fn store_call(&self, call: &Call) -> CallId {
        let mut files = Vec::new();
        for recording in [&call.recording, &call.voicemail].into_iter().flatten() {
            let file_name = format!("test-{}-{}.wav", call.company, rand_name());
            let channels = Recording::channels(recording.kind);
            let size = write_wav(&self.state.recordings_dir().join(&file_name), channels, 8_000);
            files.push(RecordingFile {
                recording: Recording { size_bytes: size, duration_ms: 1_000, ..recording.clone() },
                file_name,
            });
        }
        let mut tx = self.state.db.pool().begin().await.unwrap();
        let id = insert_call(&self.state.db, &mut tx, call, &files).await.unwrap();
        tx.commit().await.unwrap();
        id
    }
}

fn rand_name() -> String {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!("{}", COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

fn slug(name: &str) -> String {
    name.to_lowercase().chars().filter(char::is_ascii_alphanumeric).collect()
}

/// Writes a WAV of `samples` frames of a 440 Hz tone; returns its size.
pub fn write_wav(path: &std::path::Path, channels: u16, samples: u32) -> u64 {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let spec = hound::WavSpec {
        channels,
        sample_rate: 8_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for n in 0..samples {
        let value = ((f64::from(n) * 440.0 * std::f64::consts::TAU / 8_000.0).sin() * 8_000.0) as i16;
        for _ in 0..channels {
            writer.write_sample(value).unwrap();
        }
    }
    writer.finalize().unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// A call of `company` with nothing in it yet.
pub fn blank_call(company: CompanyId, direction: Direction, status: CallStatus, started_at: i64) -> Call {
    Call {
        id: CallId(0),
        company,
        direction,
        status,
        started_at: Timestamp(started_at),
        answered_at: None,
        ended_at: Some(Timestamp(started_at + 60_000)),
        number: None,
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

/// A recording of `kind` to attach to a call (ids are assigned on insert).
pub fn recording(kind: RecordingKind) -> Recording {
    Recording {
        id: RecordingId(0),
        call: CallId(0),
        kind,
        duration_ms: 1_000,
        size_bytes: 0,
        paused_spans: vec![],
        deleted: None,
    }
}

/// A number id from a JSON answer.
pub fn number_id(value: &Value) -> NumberId {
    NumberId(value["id"].as_i64().unwrap())
}

/// A small company through the API: Acme, its people, lines and calls.
pub struct Acme {
    pub company: CompanyId,
    pub admin: String,
    pub supervisor: String,
    pub analyst: String,
    pub ada: String,
    pub bo: String,
    pub ada_id: UserId,
    pub bo_id: UserId,
    pub sales_line: NumberId,
    pub support_line: NumberId,
    /// Inbound, answered by Ada on the Sales line, recorded.
    pub sales_answered: CallId,
    /// Inbound, missed on the Support line; rang Bo.
    pub support_missed: CallId,
    /// Inbound, voicemail on the Support line; rang Bo.
    pub support_voicemail: CallId,
    /// Outbound by Bo from the Support line, recorded.
    pub bo_outbound: CallId,
    /// Internal, Ada and Bo, recorded.
    pub internal: CallId,
}

impl TestService {
    /// Builds [`Acme`].
    pub async fn acme(&self) -> Acme {
        let (company, _) = self.company("Acme").await;
        let admin = self.log_in("admin@acme.test", "admin-password").await;
        let (_, sales) = self.post("/api/v1/groups", &admin, json!({"name": "Sales"})).await;
        let (_, support) = self.post("/api/v1/groups", &admin, json!({"name": "Support"})).await;
        let user = |name: &str, role: &str, group: &Value, extension: &str, settings: Value| {
            json!({
                "name": name, "email": format!("{}@acme.test", name.to_lowercase()), "role": role,
                "password": format!("{}-password", name.to_lowercase()), "extension": extension,
                "groups": if group.is_null() { json!([]) } else { json!([group["id"]]) }, "settings": settings,
            })
        };
        self.create_user(&admin, user("Sam", "supervisor", &sales, "201", json!({"call_visibility": "groups_and_numbers", "recording_playback": "all_available", "can_download": true}))).await;
        self.create_user(&admin, user("Nia", "analyst", &Value::Null, "301", json!({}))).await;
        let ada_id = self.create_user(&admin, user("Ada", "agent", &sales, "101", json!({}))).await;
        let bo_id = self.create_user(&admin, user("Bo", "agent", &support, "102", json!({}))).await;
        let (status, sales_line) = self
            .post(
                "/api/v1/numbers",
                &admin,
                json!({"e164": "+442070000010", "name": "Sales line", "flow": [
                    {"type": "announce", "prompt": {"text": "Acme sales"}},
                    {"type": "ring_group", "group": sales["id"]},
                    {"type": "voicemail"}]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{sales_line}");
        let (status, support_line) = self
            .post(
                "/api/v1/numbers",
                &admin,
                json!({"e164": "+442070000011", "name": "Support line", "flow": [
                    {"type": "menu", "prompt": {"text": "Press 1"},
                     "options": {"1": [{"type": "record", "enabled": true}, {"type": "ring_user", "user": bo_id.0}]},
                     "timeout": [{"type": "ring_group", "group": support["id"]}, {"type": "voicemail"}]}]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{support_line}");
        let (sales_line, support_line) = (number_id(&sales_line), number_id(&support_line));
        let day = 1_763_900_000_000;
        let mut call = blank_call(company, Direction::Inbound, CallStatus::Answered, day);
        call.number = Some(sales_line);
        call.parties = vec![ada_id];
        call.rang = vec![ada_id];
        call.recording = Some(recording(RecordingKind::Call));
        let sales_answered = self.store_call(&call).await;
        let mut call = blank_call(company, Direction::Inbound, CallStatus::Missed, day + 1_000_000);
        call.number = Some(support_line);
        call.rang = vec![bo_id];
        let support_missed = self.store_call(&call).await;
        let mut call = blank_call(company, Direction::Inbound, CallStatus::Voicemail, day + 2_000_000);
        call.number = Some(support_line);
        call.rang = vec![bo_id];
        call.voicemail = Some(recording(RecordingKind::Voicemail));
        let support_voicemail = self.store_call(&call).await;
        let mut call = blank_call(company, Direction::Outbound, CallStatus::Answered, day + 3_000_000);
        call.number = Some(support_line);
        call.parties = vec![bo_id];
        call.recording = Some(recording(RecordingKind::Call));
        let bo_outbound = self.store_call(&call).await;
        let mut call = blank_call(company, Direction::Internal, CallStatus::Answered, day + 4_000_000);
        call.external_number = None;
        call.parties = vec![ada_id, bo_id];
        call.rang = vec![bo_id];
        call.recording = Some(recording(RecordingKind::Call));
        let internal = self.store_call(&call).await;
        Acme {
            company,
            supervisor: self.log_in("sam@acme.test", "sam-password").await,
            analyst: self.log_in("nia@acme.test", "nia-password").await,
            ada: self.log_in("ada@acme.test", "ada-password").await,
            bo: self.log_in("bo@acme.test", "bo-password").await,
            admin,
            ada_id,
            bo_id,
            sales_line,
            support_line,
            sales_answered,
            support_missed,
            support_voicemail,
            bo_outbound,
            internal,
        }
    }

    /// The ids of the calls `token` sees in `app`, newest first, following every page.
    pub async fn visible(&self, token: &str, app: &str) -> Vec<CallId> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/api/v1/calls?app={app}&limit=2&cursor={cursor}"),
                None => format!("/api/v1/calls?app={app}&limit=2"),
            };
            let (status, page) = self.get(&path, token).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            ids.extend(
                page["calls"].as_array().unwrap().iter().map(|call| CallId(call["id"].as_i64().unwrap())),
            );
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return ids,
            }
        }
    }
}
