//! The app as the ui sees it: one [`App`] holding the signed-in session, its
//! snapshot, histories, player and cache, with one async method per thing
//! the ui asks for, and a stream of [`AppEvent`]s for what it is told
//! unasked. The Tauri shell's commands call these and nothing else, so the
//! whole app is testable without a window.
//!
//! While signed in, a task follows the service's push feed: a settings
//! change re-syncs the snapshot and re-decides every cached call at once
//! (SPEC §7): hidden calls leave the histories, a playing recording whose
//! right was withdrawn stops, and the ui is told to ask again.

use crate::audio::{self, AudioDevice};
use crate::cache::{Account, Cache};
use crate::download;
use crate::error::{ClientError, Result};
use crate::events::{self, Feed};
use crate::history::History;
use crate::player::Player;
use crate::session::{Keyring, SignedIn};
use crate::softphone::{CallRecording, PhoneStatus, PhoneView, SoftPhone};
use crate::view::{
    self, AdminChange, AdminData, AdminUserView, Analytics, AppEvent, AppSettings, AuditRow, CallDetails,
    Directory, HistoryFilter, HistoryWindow, LastLogin, Me, PlayerCommand, PlayerState, UnsetMeaning,
};
use earshot_api::{CallOut, CallPage, Change, Pushed, SyncSnapshot};
use earshot_policy::{AppContext, CallId, ContactId, RecordingKind, Role};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{Mutex, broadcast};
use tokio::task::JoinHandle;

/// Calls fetched per page (the service's most).
const PAGE: u32 = 200;
/// How often a playing recording's position is sent to the ui.
const PLAYER_TICK: Duration = Duration::from_millis(100);
/// Events the ui may fall behind by before it misses some.
const EVENT_BACKLOG: usize = 256;

/// A task that stops when this is dropped.
pub(crate) struct Task(pub(crate) JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Session {
    signed_in: SignedIn,
    account: Account,
    /// One history per app context and filter in use.
    histories: HashMap<(AppContext, HistoryFilter), History>,
    /// Histories came from the cache (the service was unreachable).
    from_cache: bool,
    /// Contact names by id, for rows and details.
    contacts: HashMap<ContactId, String>,
    /// When the contact list was last asked for (it is asked again, at
    /// most once a minute, when a row names a contact not in it).
    contacts_listed: Option<std::time::Instant>,
    _feed: Task,
}

impl Session {
    /// Makes sure the contact names of `contacts` are known: the company's
    /// contact list is read once, and again (at most once a minute) when one
    /// is not in it, and kept in the cache. Offline, the names kept there
    /// are used; a contact not among them shows as its number.
    async fn learn_contacts(&mut self, contacts: &[ContactId], cache: Option<&Cache>) {
        let unknown = contacts.iter().any(|contact| !self.contacts.contains_key(contact));
        if !unknown || self.contacts_listed.is_some_and(|at| at.elapsed() < Duration::from_secs(60)) {
            return;
        }
        self.contacts_listed = Some(std::time::Instant::now());
        match self.signed_in.api().get::<Vec<earshot_api::ContactOut>>("/contacts").await {
            Ok(list) => {
                let names: Vec<(ContactId, String)> = list.into_iter().map(|c| (c.id, c.name)).collect();
                if let Some(cache) = cache
                    && let Err(error) = cache.save_contacts(&self.account, &names).await
                {
                    tracing::warn!(%error, "contact names were not cached");
                }
                self.contacts.extend(names);
            }
            Err(error) => {
                tracing::debug!(%error, "contact names not read; using the cached ones");
                if let Some(cache) = cache
                    && let Ok(names) = cache.contacts(&self.account).await
                {
                    for (id, name) in names {
                        self.contacts.entry(id).or_insert(name);
                    }
                }
            }
        }
    }
}

struct Playing {
    app: AppContext,
    call: CallId,
    /// The call as it was when opened, to re-decide the right to play it.
    data: earshot_policy::Call,
    kind: RecordingKind,
    player: Player,
    _ticker: Task,
}

/// What the app's tasks share.
struct Shared {
    session: Mutex<Option<Session>>,
    /// The synced settings every right is decided from; read without
    /// waiting by downloads checking their right before each chunk.
    snapshot: RwLock<Option<Arc<SyncSnapshot>>>,
    playing: std::sync::Mutex<Option<Playing>>,
    events: broadcast::Sender<AppEvent>,
    cache: Mutex<Option<Cache>>,
    data_dir: PathBuf,
    /// The phone, beside the session (never behind its lock): signed-in
    /// users with an extension have one.
    phone: std::sync::Mutex<Option<Arc<SoftPhone>>>,
}

/// The desktop app's state.
pub struct App {
    keyring: Keyring,
    /// The keyring backend being found (a D-Bus round trip), off the
    /// window's start-up path; waited for before the first token is read.
    detecting: std::sync::Mutex<Option<std::thread::JoinHandle<crate::KeyringBackend>>>,
    default_server: Option<String>,
    shared: Arc<Shared>,
    /// A number a `tel:`/`sip:` link asked for, until the ui takes it.
    dial_request: std::sync::Mutex<Option<String>>,
    /// The microphone's live level, while Settings shows it.
    meter: std::sync::Mutex<Option<crate::device_test::LevelMeter>>,
}

fn ended() -> ClientError {
    ClientError::SessionEnded { detail: "Please sign in.".into() }
}

impl App {
    /// The app keeping its files in `data_dir` and tokens in `keyring`.
    #[must_use]
    pub fn new(data_dir: PathBuf, keyring: Keyring) -> Self {
        Self {
            keyring,
            detecting: std::sync::Mutex::new(None),
            default_server: None,
            shared: Arc::new(Shared {
                session: Mutex::new(None),
                snapshot: RwLock::new(None),
                playing: std::sync::Mutex::new(None),
                events: broadcast::channel(EVENT_BACKLOG).0,
                cache: Mutex::new(None),
                data_dir,
                phone: std::sync::Mutex::new(None),
            }),
            dial_request: std::sync::Mutex::new(None),
            meter: std::sync::Mutex::new(None),
        }
    }

    /// The server this start is for (`EARSHOT_SERVER`; `./x run` points it
    /// at the demo service it started): the log-in form offers it, and a
    /// log-in remembered for another server is neither offered nor resumed.
    #[must_use]
    pub fn with_default_server(mut self, server: Option<String>) -> Self {
        self.default_server = server.filter(|s| !s.trim().is_empty());
        self
    }

    /// Tokens go to the keyring backend `detecting` finds (in a thread of
    /// its own, so the window need not wait for D-Bus).
    #[must_use]
    pub fn with_keyring_detection(self, detecting: std::thread::JoinHandle<crate::KeyringBackend>) -> Self {
        *self.detecting.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(detecting);
        self
    }

    /// The keyring, once its backend is known.
    async fn keyring(&self) -> &Keyring {
        let pending = self.detecting.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(pending) = pending {
            match tokio::task::spawn_blocking(move || pending.join()).await {
                Ok(Ok(backend)) => tracing::info!(?backend, "tokens are kept in the OS keyring"),
                _ => tracing::warn!("the keyring backend could not be found; using the default"),
            }
        }
        &self.keyring
    }

    /// What the app tells the ui unasked.
    #[must_use]
    pub fn events(&self) -> broadcast::Receiver<AppEvent> {
        self.shared.events.subscribe()
    }

    /// A start's command line (or a second start's, handed over): a
    /// `tel:`/`sip:` link in it puts its number in the dial pad (never
    /// dialled unasked). The ui is told now, and asks at its start
    /// ([`Self::take_dial_request`]) in case it was not listening yet.
    /// Whether there was such a link.
    pub fn open_links(&self, args: &[String]) -> bool {
        let Some(number) = crate::deep_link::number_in(args) else { return false };
        *self.dial_request.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(number.clone());
        let _ = self.shared.events.send(AppEvent::DialRequest { number });
        true
    }

    /// The number a link asked to dial, once.
    #[must_use]
    pub fn take_dial_request(&self) -> Option<String> {
        self.dial_request.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }

    fn data_dir(&self) -> &Path {
        &self.shared.data_dir
    }

    fn last_login_path(&self) -> PathBuf {
        self.data_dir().join("last-login.json")
    }

    /// The server and e-mail used last; the server given at start instead
    /// when the last log-in was to another one, or before any log-in.
    #[must_use]
    pub fn last_login(&self) -> Option<LastLogin> {
        let saved: Option<LastLogin> =
            std::fs::read(self.last_login_path()).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let same = |a: &str, b: &str| {
            crate::api::normalize_server(a)
                .ok()
                .zip(crate::api::normalize_server(b).ok())
                .is_some_and(|(a, b)| a == b)
        };
        match (saved, &self.default_server) {
            (Some(saved), Some(given)) if !same(&saved.server, given) => {
                Some(LastLogin { server: given.clone(), email: String::new() })
            }
            (Some(saved), _) => Some(saved),
            (None, given) => given.clone().map(|server| LastLogin { server, email: String::new() }),
        }
    }

    /// Signs in with the token kept at the last log-in, if any. With a
    /// cached snapshot the app opens at once, even offline; the push feed
    /// then brings it up to date, or ends the session when the token no
    /// longer holds.
    pub async fn resume(&self) -> Result<Option<Me>> {
        let Some(last) = self.last_login() else { return Ok(None) };
        let account =
            Account { server: crate::api::normalize_server(&last.server)?, email: last.email.clone() };
        let cached = match self.shared.cache().await {
            Some(cache) => cache.snapshot(&account).await.unwrap_or_default(),
            None => None,
        };
        if let Some(snapshot) = cached
            && let Some(signed_in) =
                SignedIn::from_keyring(self.keyring().await, &last.server, &last.email, snapshot.me.clone())?
        {
            return Ok(Some(self.start(signed_in, snapshot, false).await));
        }
        match SignedIn::resume(self.keyring().await, &last.server, &last.email).await? {
            Some((signed_in, snapshot)) => Ok(Some(self.start(signed_in, snapshot, false).await)),
            None => Ok(None),
        }
    }

    /// Logs in, keeps the token in the keyring and remembers server and e-mail.
    pub async fn log_in(&self, server: &str, email: &str, password: &str) -> Result<Me> {
        let signed_in = SignedIn::log_in(self.keyring().await, server, email, password).await?;
        let snapshot = signed_in.sync().await?;
        let last =
            LastLogin { server: signed_in.api().server().to_owned(), email: email.trim().to_lowercase() };
        let path = self.last_login_path();
        std::fs::create_dir_all(self.data_dir())
            .and_then(|()| std::fs::write(&path, serde_json::to_vec(&last).unwrap_or_default()))
            .map_err(|source| ClientError::File { path, source })?;
        Ok(self.start(signed_in, snapshot, true).await)
    }

    /// Opens the signed-in session; `new_session`: just logged in (the
    /// phone gets new credentials) rather than resumed.
    async fn start(&self, signed_in: SignedIn, snapshot: SyncSnapshot, new_session: bool) -> Me {
        let account = Account {
            server: signed_in.api().server().to_owned(),
            email: snapshot.me.email.trim().to_lowercase(),
        };
        if let Some(cache) = self.shared.cache().await
            && let Err(error) = cache.save_snapshot(&account, &snapshot).await
        {
            tracing::warn!(%error, "the snapshot was not cached");
        }
        let me = Me {
            server: account.server.clone(),
            email: account.email.clone(),
            name: snapshot.me.name.clone(),
            role: snapshot.me.role.as_str().to_owned(),
            company: snapshot.company.name.clone(),
        };
        let feed = Task(tokio::spawn(follow(
            Arc::downgrade(&self.shared),
            signed_in.api().clone(),
            snapshot.version,
        )));
        self.shared.stop_player(None);
        let extension = snapshot.me.extension.clone();
        self.shared.set_snapshot(Some(snapshot));
        if let Some(extension) = extension {
            self.start_phone(&signed_in, &account.email, extension, new_session).await;
        }
        *self.shared.session.lock().await = Some(Session {
            signed_in,
            account,
            histories: HashMap::new(),
            from_cache: false,
            contacts: HashMap::new(),
            contacts_listed: None,
            _feed: feed,
        });
        me
    }

    /// Starts the user's phone on its own task; until it is up (or when it
    /// cannot be) the ui is told where it is.
    async fn start_phone(&self, signed_in: &SignedIn, email: &str, extension: String, new_session: bool) {
        let offline = move |detail: String| PhoneView {
            status: PhoneStatus::Offline,
            detail: Some(detail),
            extension: extension.clone(),
            available: true,
            calls: Vec::new(),
            directory: Vec::new(),
        };
        let _ = self.shared.events.send(AppEvent::Phone {
            phone: PhoneView { status: PhoneStatus::Connecting, ..offline(String::new()) },
        });
        let (api, keyring, email) = (signed_in.api().clone(), self.keyring().await.clone(), email.to_owned());
        let audio = self.settings().call_audio;
        let shared = Arc::downgrade(&self.shared);
        let events = self.shared.events.clone();
        tokio::spawn(async move {
            let started = SoftPhone::start(&api, &keyring, &email, new_session, audio, events.clone()).await;
            let Some(shared) = shared.upgrade() else { return };
            match started {
                Ok(phone) => {
                    let phone = Arc::new(phone);
                    // In its slot before anything is awaited: the phone may
                    // already have said it is ready, and a dial must find it.
                    let old = shared.phone_slot().replace(Arc::clone(&phone));
                    drop(old);
                    if let Some(snapshot) = shared.current() {
                        phone.set_directory(directory(&snapshot));
                        if let Some(me) = snapshot.users.iter().find(|u| u.id == snapshot.me.id) {
                            phone.set_available(me.available);
                        }
                    }
                    // Colleagues at once, contacts once the service says.
                    phone.set_names(colleagues_by_extension(&shared));
                    phone.set_names(names_by_number(&shared, &api).await);
                    // Said again now that `phone_view` can answer: a ui that
                    // asked before this saw no phone yet.
                    phone.republish();
                }
                Err(error) => {
                    tracing::warn!(%error, "the phone did not start");
                    let detail = format!("The phone is off: {error}");
                    let _ = events.send(AppEvent::Phone { phone: offline(detail) });
                }
            }
        });
    }

    /// The phone, when the signed-in user has one running.
    fn phone(&self) -> Result<Arc<SoftPhone>> {
        self.shared.phone_slot().clone().ok_or_else(|| ClientError::Phone {
            detail: "The phone is not ready: it is still connecting, or you have no extension.".into(),
        })
    }

    /// Where the phone and its calls are (`None`: no phone).
    #[must_use]
    pub fn phone_view(&self) -> Option<PhoneView> {
        self.shared.phone_slot().as_ref().map(|phone| phone.view())
    }

    /// Dials a number or extension; the call's id.
    pub fn dial(&self, target: &str) -> Result<u64> {
        self.phone()?.dial(target)
    }

    /// Answers a call ringing here (a connected call is held).
    pub fn answer(&self, call: u64) -> Result<()> {
        self.phone()?.answer(call)
    }

    /// Declines a call ringing here.
    pub fn decline(&self, call: u64) -> Result<()> {
        self.phone()?.decline(call)
    }

    /// Hangs up.
    pub fn hang_up(&self, call: u64) -> Result<()> {
        self.phone()?.hang_up(call);
        Ok(())
    }

    /// Holds or resumes the other party.
    pub fn hold(&self, call: u64, on: bool) -> Result<()> {
        self.phone()?.hold(call, on);
        Ok(())
    }

    /// Mutes or unmutes the microphone on a call.
    pub fn mute(&self, call: u64, on: bool) -> Result<()> {
        self.phone()?.mute(call, on);
        Ok(())
    }

    /// Sends keypad keys on a call (RFC 4733).
    pub fn send_keys(&self, call: u64, keys: &str) -> Result<()> {
        self.phone()?.keys(call, keys)
    }

    /// Pauses the call's recording (`#11#`, as the keypad would).
    pub fn pause_recording(&self, call: u64) -> Result<()> {
        self.phone()?.pause_recording(call);
        Ok(())
    }

    /// Resumes or starts the call's recording (`#12#`).
    pub fn resume_recording(&self, call: u64) -> Result<()> {
        self.phone()?.resume_recording(call);
        Ok(())
    }

    /// Available for calls, or "Do not disturb" (kept by the service: ring
    /// steps pass the user by while it is on).
    pub async fn set_available(&self, available: bool) -> Result<()> {
        let api = self.api().await?;
        api.put("/me/availability", &earshot_api::Availability { available }).await?;
        if let Some(phone) = self.shared.phone_slot().as_ref() {
            phone.set_available(available);
        }
        Ok(())
    }

    /// The microphones a call can use.
    #[must_use]
    pub fn input_devices(&self) -> Vec<AudioDevice> {
        audio::input_devices()
    }

    /// Logs out: the session ends, the token and the cache are forgotten,
    /// the phone unregisters and its credentials go.
    pub async fn log_out(&self) -> Result<()> {
        self.shared.stop_player(None);
        let phone = self.shared.phone_slot().take();
        let Some(session) = self.shared.session.lock().await.take() else { return Ok(()) };
        if let Some(phone) = phone {
            phone.stop(session.signed_in.api(), self.keyring().await, &session.account.email);
        }
        self.shared.set_snapshot(None);
        if let Some(cache) = self.shared.cache().await {
            cache.forget(&session.account).await?;
        }
        session.signed_in.log_out().await
    }

    fn snapshot(&self) -> Result<Arc<SyncSnapshot>> {
        self.shared.current().ok_or_else(ended)
    }

    /// The users, groups and numbers the history can be filtered by.
    pub fn directory(&self) -> Result<Directory> {
        Ok(view::directory(&*self.snapshot()?))
    }

    /// Rows `offset..offset + count` of `app`'s history under `filter`,
    /// fetching pages from the service until they are loaded (or there are
    /// no more). Offline, the cached history is shown.
    pub async fn history(
        &self,
        app: AppContext,
        filter: HistoryFilter,
        offset: u32,
        count: u32,
    ) -> Result<HistoryWindow> {
        let filter = filter.normalized();
        let mut query = filter.query()?;
        let snapshot = self.snapshot()?;
        let cache = self.shared.cache().await;
        let mut guard = self.shared.session.lock().await;
        let session = guard.as_mut().ok_or_else(ended)?;
        let key = (app, filter);
        if !session.histories.contains_key(&key) {
            // One filtered history per app is kept: the one on screen.
            session.histories.retain(|(a, f), _| *a != app || f.is_empty());
            session.histories.insert(key.clone(), History::new(&snapshot, app));
        }
        let wanted = offset.saturating_add(count) as usize;
        loop {
            let history = session.histories.get_mut(&key).ok_or_else(ended)?;
            if history.is_complete() || history.calls().len() >= wanted {
                break;
            }
            query.app = Some(app);
            query.cursor = history.next_cursor().map(str::to_owned);
            query.limit = Some(PAGE);
            match session.signed_in.forget_if_ended(session.signed_in.api().calls(&query).await) {
                Ok(page) => {
                    if key.1.is_empty()
                        && let Some(cache) = &cache
                        && let Err(error) = cache.save_calls(&session.account, app, &page.calls).await
                    {
                        tracing::warn!(%error, "calls were not cached");
                    }
                    history.extend(page);
                }
                Err(offline @ ClientError::Offline { .. }) => {
                    let cached = match &cache {
                        Some(cache) if key.1.is_empty() && history.calls().is_empty() => {
                            cache.history(&session.account, app, &snapshot).await.ok()
                        }
                        _ => None,
                    };
                    let Some(cached) = cached.filter(|h| !h.calls().is_empty()) else { return Err(offline) };
                    *history = cached;
                    session.from_cache = true;
                }
                Err(error) => return Err(error),
            }
        }
        let loaded = session.histories[&key].calls().len();
        let (start, end) = ((offset as usize).min(loaded), wanted.min(loaded));
        let contacts: Vec<ContactId> =
            session.histories[&key].calls()[start..end].iter().filter_map(|call| call.call.contact).collect();
        session.learn_contacts(&contacts, cache.as_ref()).await;
        let history = &session.histories[&key];
        let calls = history.calls();
        let name = |call: &CallOut| call.call.contact.and_then(|id| session.contacts.get(&id).cloned());
        Ok(HistoryWindow {
            offset: u32::try_from(start).unwrap_or(u32::MAX),
            calls: calls[start..end].iter().map(|call| view::row(call, &snapshot, name(call))).collect(),
            loaded: u32::try_from(calls.len()).unwrap_or(u32::MAX),
            complete: history.is_complete(),
        })
    }

    /// A call as the service and the local rules both show it in `app`:
    /// from a loaded history, else fetched and decided again.
    async fn call_out(&self, app: AppContext, id: CallId) -> Result<CallOut> {
        let snapshot = self.snapshot()?;
        let guard = self.shared.session.lock().await;
        let session = guard.as_ref().ok_or_else(ended)?;
        let cached = session.histories.iter().filter(|((a, _), _)| *a == app).find_map(|(_, h)| h.call(id));
        if let Some(call) = cached {
            return Ok(call.clone());
        }
        let api = session.signed_in.api().clone();
        drop(guard);
        let fetched = api.call(id, app).await?;
        let viewer = snapshot.viewer(app);
        if !viewer.can_see(&fetched.call) {
            return Err(ClientError::NotFound { detail: "You may not see this call.".into() });
        }
        Ok(CallOut::stamp(&viewer, fetched.call))
    }

    /// An opened call: parties, who rang, its recordings with what the user
    /// may do with them, and why it was recorded.
    pub async fn call_details(&self, app: AppContext, id: i64) -> Result<CallDetails> {
        let call = self.call_out(app, CallId(id)).await?;
        let contact = match call.call.contact {
            Some(contact) => self.contact_name(contact).await,
            None => None,
        };
        Ok(view::details(&call, &*self.snapshot()?, contact))
    }

    async fn contact_name(&self, id: ContactId) -> Option<String> {
        let mut guard = self.shared.session.lock().await;
        let session = guard.as_mut()?;
        if let Some(name) = session.contacts.get(&id) {
            return Some(name.clone());
        }
        let contact = session.signed_in.api().contact(id).await.ok()?;
        session.contacts.insert(id, contact.name.clone());
        Some(contact.name)
    }

    /// A one-call history for the player and the download, decided from the
    /// current snapshot, so they need no lock on the histories.
    async fn one_call(&self, app: AppContext, id: CallId) -> Result<(crate::Api, History)> {
        let call = self.call_out(app, id).await?;
        let api = self.shared.api().await?;
        let mut history = History::new(&*self.snapshot()?, app);
        history.extend(CallPage { calls: vec![call], next_cursor: None });
        Ok((api, history))
    }

    /// Opens the `kind` recording of call `id` on the chosen output and
    /// plays it; the ui then gets [`AppEvent::Player`] as it moves.
    pub async fn play(&self, app: AppContext, id: i64, kind: RecordingKind) -> Result<PlayerState> {
        let call = CallId(id);
        self.shared.stop_player(None);
        let (api, history) = self.one_call(app, call).await?;
        let data = history.call(call).ok_or_else(ended)?.call.clone();
        let device = self.settings().output_device;
        let player = Player::open(&api, &history, call, kind, device.as_deref()).await?;
        player.play();
        let ticker = Task(tokio::spawn(tick(Arc::downgrade(&self.shared))));
        let mut playing = self.shared.playing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *playing = Some(Playing { app, call, data, kind, player, _ticker: ticker });
        playing.as_ref().map(Playing::state).ok_or_else(ended)
    }

    /// The waveform of the `kind` recording of call `id`, in `buckets` bars
    /// (0–255), for the player; only when the user may play it.
    pub async fn waveform(
        &self,
        app: AppContext,
        id: i64,
        kind: RecordingKind,
        buckets: usize,
    ) -> Result<Vec<u8>> {
        let call = CallId(id);
        let (api, history) = self.one_call(app, call).await?;
        if !history.may_play(call, kind) {
            return Err(ClientError::Forbidden { detail: "You may not play this recording.".into() });
        }
        let recording = history.recording(call, kind)?.id;
        Ok(api.peaks(recording, app, buckets).await?.peaks)
    }

    /// Play, pause, seek, speed or stop the open recording.
    pub fn player(&self, command: PlayerCommand) -> Option<PlayerState> {
        let mut playing = self.shared.playing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let open = playing.as_ref()?;
        match command {
            PlayerCommand::Play => open.player.play(),
            PlayerCommand::Pause => open.player.pause(),
            PlayerCommand::Seek { position_ms } => open.player.seek(position_ms),
            PlayerCommand::Speed { speed } => open.player.set_speed(speed),
            PlayerCommand::Stop => {
                *playing = None;
                return None;
            }
        }
        Some(open.state())
    }

    /// Downloads the `kind` recording of call `id` to `destination` (the
    /// path the user chose), all or nothing, with [`AppEvent::Download`]
    /// progress; stops and leaves nothing when the right is withdrawn.
    pub async fn download(
        &self,
        app: AppContext,
        id: i64,
        kind: RecordingKind,
        destination: &Path,
    ) -> Result<u64> {
        let call = CallId(id);
        let (api, history) = self.one_call(app, call).await?;
        let checked = history.call(call).ok_or_else(ended)?.call.clone();
        let shared = Arc::clone(&self.shared);
        let still_allowed = move || match shared.current() {
            Some(snapshot) if snapshot.viewer(app).may_download(&checked, kind) => Ok(()),
            _ => Err(ClientError::Forbidden {
                detail: "Your right to download this recording was withdrawn; nothing was saved.".into(),
            }),
        };
        let events = self.shared.events.clone();
        let progress = move |p: download::Progress| {
            let _ = events.send(AppEvent::Download { call: id, written: p.written, total: p.total });
        };
        download::download(&api, &history, call, kind, destination, still_allowed, progress).await
    }

    /// The analytics of calls started in `from..to` (ms), as the service
    /// sums what the user may see in the `analytics` context (SPEC §4.3).
    pub async fn analytics(&self, from: i64, to: i64) -> Result<Analytics> {
        // The service answers such a range with no calls; a person picked the dates the wrong way round.
        if from > to {
            return Err(ClientError::Invalid { detail: "The period ends before it starts.".into() });
        }
        let api = self.shared.api().await?;
        let summary = api.analytics(from, to).await?;
        Ok(view::analytics(&summary, &*self.snapshot()?))
    }

    /// Everything the admin screens show (admins only: the service refuses
    /// anyone else, and the ui shows the screens only to admins).
    pub async fn admin(&self) -> Result<AdminData> {
        let api = self.api().await?;
        let settings: earshot_policy::CompanySettings = api.get("/settings").await?;
        let users: Vec<earshot_api::AdminUser> = api.get("/users").await?;
        let users = users
            .into_iter()
            .map(|user| AdminUserView {
                effective: earshot_policy::effective_settings(
                    user.user.role,
                    &user.user.settings,
                    &settings,
                    AppContext::Dashboard,
                ),
                user,
            })
            .collect();
        // What a user's unset values mean for each role (D1), for the form.
        let unset = [Role::Admin, Role::Supervisor, Role::Analyst, Role::Agent]
            .into_iter()
            .map(|role| UnsetMeaning {
                role,
                effective: earshot_policy::effective_settings(
                    role,
                    &earshot_policy::UserSettings::default(),
                    &settings,
                    AppContext::Dashboard,
                ),
            })
            .collect();
        Ok(AdminData {
            unset,
            users,
            groups: api.get("/groups").await?,
            numbers: api.get("/numbers").await?,
            contacts: api.get("/contacts").await?,
            settings,
        })
    }

    /// Applies an admin's change; the service checks it and says what is wrong.
    pub async fn admin_change(&self, change: AdminChange) -> Result<()> {
        let api = self.api().await?;
        match change {
            AdminChange::Settings { settings } => api.put("/settings", &settings).await,
            AdminChange::User { id, user } => api.write("/users", id, &user).await,
            AdminChange::Group { id, group } => api.write("/groups", id, &group).await,
            AdminChange::Number { id, number } => api.write("/numbers", id, &number).await,
            AdminChange::Contact { id, contact } => api.write("/contacts", id, &contact).await,
            AdminChange::Delete { what, id } => match what.as_str() {
                "users" | "groups" | "numbers" | "contacts" => api.delete(&format!("/{what}/{id}")).await,
                _ => Err(ClientError::Invalid { detail: format!("{what:?} cannot be deleted.") }),
            },
            AdminChange::LegalHold { call, held } => {
                api.put(&format!("/calls/{call}/legal-hold"), &earshot_api::LegalHoldIn { held }).await
            }
            AdminChange::DeleteContactRecordings { contact } => {
                api.delete(&format!("/contacts/{contact}/recordings")).await
            }
        }
    }

    /// The audit log, newest first: 100 entries before `before` (an entry id).
    pub async fn audit(&self, before: Option<i64>) -> Result<Vec<AuditRow>> {
        let api = self.api().await?;
        let path = before
            .map_or_else(|| "/audit?limit=100".to_owned(), |id| format!("/audit?limit=100&before={id}"));
        let entries: Vec<earshot_api::AuditEntry> = api.get(&path).await?;
        Ok(view::audit_rows(entries, &*self.snapshot()?))
    }

    async fn api(&self) -> Result<crate::Api> {
        self.shared.api().await
    }

    /// The outputs the player can use.
    #[must_use]
    pub fn output_devices(&self) -> Vec<AudioDevice> {
        audio::output_devices()
    }

    /// Plays a test sound on `speaker` (an output's id; the default when
    /// `None`), for Settings.
    ///
    /// # Errors
    /// When the speaker cannot be used.
    pub async fn test_speaker(&self, speaker: Option<String>) -> Result<()> {
        tokio::task::spawn_blocking(move || crate::device_test::play_test_sound(speaker.as_deref()))
            .await
            .map_err(|error| ClientError::Protocol(error.to_string()))?
    }

    /// A test recording: three seconds from `microphone`, played back on
    /// `speaker`; how loud it was.
    ///
    /// # Errors
    /// When the microphone or the speaker cannot be used.
    pub async fn test_microphone(
        &self,
        microphone: Option<String>,
        speaker: Option<String>,
    ) -> Result<crate::device_test::MicrophoneTest> {
        tokio::task::spawn_blocking(move || {
            crate::device_test::test_microphone(microphone.as_deref(), speaker.as_deref(), 3.0)
        })
        .await
        .map_err(|error| ClientError::Protocol(error.to_string()))?
    }

    /// Reports `microphone`'s level (its id; the default when `None`) as
    /// [`AppEvent::MicrophoneLevel`] ten times a second, instead of any
    /// microphone it reported before, until [`Self::stop_level_meter`].
    ///
    /// # Errors
    /// When there is no microphone, or it cannot be opened.
    pub async fn start_level_meter(&self, microphone: Option<String>) -> Result<()> {
        self.stop_level_meter().await;
        let events = self.shared.events.clone();
        let meter = tokio::task::spawn_blocking(move || {
            crate::device_test::LevelMeter::start(microphone.as_deref(), move |levels| {
                let _ = events.send(AppEvent::MicrophoneLevel {
                    peak_dbfs: levels.peak_dbfs,
                    rms_dbfs: levels.rms_dbfs,
                });
            })
        })
        .await
        .map_err(|error| ClientError::Protocol(error.to_string()))??;
        *self.meter.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(meter);
        Ok(())
    }

    /// Stops the level meter, if it runs.
    pub async fn stop_level_meter(&self) {
        let meter = self.meter.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(meter) = meter {
            // Closing a stream waits for the sound server: off the runtime.
            let _ = tokio::task::spawn_blocking(move || drop(meter)).await;
        }
    }

    fn settings_path(&self) -> PathBuf {
        self.data_dir().join("settings.json")
    }

    /// The app's own settings (defaults when none were saved).
    #[must_use]
    pub fn settings(&self) -> AppSettings {
        std::fs::read(self.settings_path())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Keeps the app's own settings (a call's sound from the next call on).
    pub fn save_settings(&self, settings: &AppSettings) -> Result<()> {
        if let Some(phone) = self.shared.phone_slot().as_ref() {
            phone.set_audio(settings.call_audio.clone());
        }
        let path = self.settings_path();
        std::fs::create_dir_all(self.data_dir())
            .and_then(|()| std::fs::write(&path, serde_json::to_vec_pretty(settings).unwrap_or_default()))
            .map_err(|source| ClientError::File { path, source })
    }
}

/// Who each number and extension is: colleagues by extension (from the
/// synced directory) and the company's contacts by their numbers.
async fn names_by_number(shared: &Shared, api: &crate::Api) -> HashMap<String, String> {
    let mut names = colleagues_by_extension(shared);
    match api.get::<Vec<earshot_api::ContactOut>>("/contacts").await {
        Ok(contacts) => {
            for contact in contacts {
                for number in contact.numbers {
                    names.entry(number).or_insert_with(|| contact.name.clone());
                }
            }
        }
        Err(error) => tracing::debug!(%error, "no contact names for the phone"),
    }
    names
}

/// The phone's directory: everyone else with an extension, and whether
/// they take calls now.
fn directory(snapshot: &SyncSnapshot) -> Vec<crate::softphone::Colleague> {
    snapshot
        .users
        .iter()
        .filter(|user| user.id != snapshot.me.id)
        .filter_map(|user| {
            Some(crate::softphone::Colleague {
                name: user.name.clone(),
                extension: user.extension.clone()?,
                available: user.available,
            })
        })
        .collect()
}

/// The colleagues' names by extension, from the last snapshot.
fn colleagues_by_extension(shared: &Shared) -> HashMap<String, String> {
    let users = shared.current().map(|snapshot| snapshot.users.clone()).unwrap_or_default();
    users.into_iter().filter_map(|user| Some((user.extension?, user.name))).collect()
}

impl Shared {
    fn phone_slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<SoftPhone>>> {
        self.phone.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The signed-in session's connection.
    async fn api(&self) -> Result<crate::Api> {
        Ok(self.session.lock().await.as_ref().ok_or_else(ended)?.signed_in.api().clone())
    }

    async fn cache(&self) -> Option<Cache> {
        let mut cache = self.cache.lock().await;
        if cache.is_none() {
            match Cache::open(&self.data_dir.join("cache.db")).await {
                Ok(opened) => *cache = Some(opened),
                Err(error) => tracing::warn!(%error, "working without the local cache"),
            }
        }
        cache.clone()
    }

    fn current(&self) -> Option<Arc<SyncSnapshot>> {
        self.snapshot.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn set_snapshot(&self, snapshot: Option<SyncSnapshot>) {
        let available = snapshot
            .as_ref()
            .and_then(|s| s.users.iter().find(|u| u.id == s.me.id))
            .is_none_or(|me| me.available);
        let colleagues = snapshot.as_ref().map(directory).unwrap_or_default();
        *self.snapshot.write().unwrap_or_else(std::sync::PoisonError::into_inner) = snapshot.map(Arc::new);
        if let Some(phone) = self.phone_slot().as_ref() {
            phone.set_available(available);
            phone.set_directory(colleagues);
        }
    }

    /// Closes the player; with `why`, the ui is told it stopped for that reason.
    fn stop_player(&self, why: Option<String>) {
        let closed = self.playing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let (Some(playing), Some(why)) = (closed, why) {
            let mut state = playing.state();
            state.status.playing = false;
            state.status.error = Some(why);
            let _ = self.events.send(AppEvent::Player { state });
        }
    }

    /// Fetches the snapshot again and re-decides everything cached (SPEC §7).
    async fn resync(&self) -> Result<()> {
        let api = self.api().await?;
        let snapshot = api.sync().await?;
        let cache = self.cache().await;
        let mut guard = self.session.lock().await;
        let Some(session) = guard.as_mut() else { return Ok(()) };
        let mut removed = Vec::new();
        for ((app, filter), history) in &mut session.histories {
            let outcome = history.apply(&snapshot);
            if filter.is_empty()
                && let Some(cache) = &cache
            {
                let _ = cache.remove_calls(&session.account, *app, &outcome.removed).await;
            }
            removed.extend(outcome.removed.iter().map(|id| id.0));
        }
        // Rights that widened can show calls no page brought: the histories
        // are fetched again as the ui asks for them.
        session.histories.clear();
        session.from_cache = false;
        if let Some(cache) = &cache {
            let _ = cache.save_snapshot(&session.account, &snapshot).await;
        }
        let revoked = self
            .playing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|p| !snapshot.viewer(p.app).may_play(&p.data, p.kind));
        self.set_snapshot(Some(snapshot));
        drop(guard);
        if revoked {
            self.stop_player(Some("Your right to play this recording was withdrawn.".into()));
        }
        removed.sort_unstable();
        removed.dedup();
        let _ = self.events.send(AppEvent::HistoryChanged { removed });
        Ok(())
    }

    /// A call was added or changed: it takes its place in the histories
    /// that show it.
    async fn call_changed(&self, id: CallId) {
        let mut guard = self.session.lock().await;
        let Some(session) = guard.as_mut() else { return };
        let apps: Vec<AppContext> = {
            let mut apps: Vec<AppContext> = session.histories.keys().map(|(app, _)| *app).collect();
            apps.sort_by_key(|app| app.as_str());
            apps.dedup();
            apps
        };
        for app in apps {
            // Filtered lists are fetched again; the full one takes the call in place.
            session.histories.retain(|(a, f), _| *a != app || f.is_empty());
            let Ok(call) = session.signed_in.api().call(id, app).await else { continue };
            if let Some(history) = session.histories.get_mut(&(app, HistoryFilter::default())) {
                history.upsert(call);
            }
        }
        let _ = self.events.send(AppEvent::HistoryChanged { removed: Vec::new() });
    }
}

impl Playing {
    fn state(&self) -> PlayerState {
        PlayerState { call: self.call.0, kind: self.kind.as_str().to_owned(), status: self.player.status() }
    }
}

/// Sends the player's state to the ui whenever it changes.
async fn tick(shared: std::sync::Weak<Shared>) {
    let mut last = None;
    loop {
        tokio::time::sleep(PLAYER_TICK).await;
        let Some(shared) = shared.upgrade() else { return };
        let state = shared
            .playing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(Playing::state);
        let Some(state) = state else { return };
        if last.as_ref() != Some(&state) {
            last = Some(state.clone());
            let _ = shared.events.send(AppEvent::Player { state });
        }
    }
}

/// Follows the push feed for the session's life.
async fn follow(shared: std::sync::Weak<Shared>, api: crate::Api, mut version: i64) {
    let mut feed = events::follow(api);
    while let Some(item) = feed.recv().await {
        let Some(shared) = shared.upgrade() else { return };
        let result = match item {
            Feed::Connected { version: now } => {
                let _ = shared.events.send(AppEvent::Connection { online: true, message: None });
                if let Some(phone) = shared.phone_slot().as_ref() {
                    phone.reconnect();
                }
                let stale = now != version
                    || shared.session.lock().await.as_ref().is_some_and(|session| session.from_cache);
                version = now;
                if stale { shared.resync().await } else { Ok(()) }
            }
            Feed::Resync => shared.resync().await,
            Feed::Change(Pushed { version: now, change }) => {
                version = now;
                match change {
                    change if change.changes_rights() => shared.resync().await,
                    Change::Call { call } => {
                        shared.call_changed(call).await;
                        Ok(())
                    }
                    Change::RecordingState { state, .. } => {
                        let state = match state {
                            earshot_policy::RecordingState::Recording => CallRecording::Recording,
                            earshot_policy::RecordingState::Paused => CallRecording::Paused,
                            earshot_policy::RecordingState::Off => CallRecording::Off,
                        };
                        if let Some(phone) = shared.phone_slot().as_ref() {
                            phone.recording_changed(state);
                        }
                        Ok(())
                    }
                    Change::RecordingRefused { detail, .. } => {
                        if let Some(phone) = shared.phone_slot().as_ref() {
                            phone.recording_refused(&detail);
                        }
                        Ok(())
                    }
                    _ => Ok(()),
                }
            }
            Feed::Disconnected { reason, .. } => {
                let message = format!("Offline: {reason}. Showing what was last synced.");
                let _ = shared.events.send(AppEvent::Connection { online: false, message: Some(message) });
                // The service may be gone: the phone finds out now (a
                // REGISTER that goes unanswered for a few seconds says
                // "Phone offline"), not at its next refresh minutes away.
                if let Some(phone) = shared.phone_slot().as_ref() {
                    phone.service_lost();
                }
                Ok(())
            }
            Feed::SessionEnded { detail } => Err(ClientError::SessionEnded { detail }),
        };
        match result {
            Err(ClientError::SessionEnded { detail }) => {
                shared.stop_player(None);
                // The service revoked the device's credentials with the session.
                drop(shared.phone_slot().take());
                let session = shared.session.lock().await.take();
                if let Some(session) = &session {
                    let ended = ClientError::SessionEnded { detail: detail.clone() };
                    let _ = session.signed_in.forget_if_ended::<()>(Err(ended));
                }
                shared.set_snapshot(None);
                let _ = shared.events.send(AppEvent::SessionEnded { message: detail });
                // Dropping the session aborts this task: nothing awaits after it.
                drop(session);
                return;
            }
            Err(error) => tracing::warn!(%error, "re-sync failed; the next change tries again"),
            Ok(()) => {}
        }
    }
}
