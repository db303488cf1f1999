//! The app's phone: `earshot_sip::phone` registered as the signed-in user's
//! extension with credentials the service issued to this device, each
//! call's sound through [`CallAudio`] (the sound card, echo cancellation,
//! noise suppression, gain control).
//!
//! It runs beside the session, not inside it: the phone's own task takes
//! the network's events and the ui's buttons, so an incoming call never
//! waits behind a slow history page. Every change is told to the ui as one
//! [`PhoneView`] (the registration and every call) on the app's event
//! stream.
//!
//! Credentials: `POST /devices` at log-in gives a SIP user and password of
//! this device's own, for as long as the session lasts; they are kept only
//! in the OS keyring (under the app's keyring service with `-sip`) and used
//! again when the app resumes the session. Log-out unregisters, forgets
//! them and ends the session, which revokes them at the service; a session
//! the service ends revokes them too, and the app returns to log-in.

use crate::api::Api;
use crate::call_audio::{AudioSettings, CallAudio, CallSound};
use crate::error::{ClientError, Result};
use crate::session::Keyring;
use crate::view::AppEvent;
use earshot_api::{DeviceCredentials, DeviceIn};
use earshot_policy::{Key, KeypadCode};
use earshot_sip::phone::{Account, CallKey, Phone, PhoneConfig, PhoneEvent};
use earshot_telephony::ua::{CallState, EndReason, RegistrationState};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use ts_rs::TS;

/// How long a key of the keypad sounds (RFC 4733 event), ms.
const KEY_MS: i64 = 160;
/// How long an ended call stays on screen, saying why.
const ENDED_SHOWN: Duration = Duration::from_secs(3);

/// Where the phone is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum PhoneStatus {
    /// Signing in to the service's registrar.
    Connecting,
    /// Registered: calls can come in.
    Ready,
    /// Not registered; trying again (the `detail` says why).
    Offline,
}

/// Where a call is, as the ui shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// We dialled; it has not rung yet.
    Dialing,
    /// It rings there.
    Ringing,
    /// It rings here.
    Incoming,
    /// Talking (or on hold).
    Connected,
    /// Over (`ended` says why).
    Ended,
}

/// Whether the call is being recorded, as the service pushes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum CallRecording {
    /// Audio is being recorded.
    Recording,
    /// Paused (`#11#`): nothing is being recorded.
    Paused,
    /// Not recorded.
    Off,
}

/// How a call sounds, from the phone's jitter buffer: what it lost, how
/// jittery it is, what delay it adds, and the E-model's MOS estimate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, TS)]
pub struct CallQuality {
    /// Packets lost (never came, or came too late to play), % of expected.
    pub loss_percent: f64,
    /// RFC 3550 interarrival jitter, ms.
    pub jitter_ms: f64,
    /// The delay the jitter buffer adds now, ms.
    pub buffer_ms: f64,
    /// The round-trip time to the service's media relay (RTCP), ms; none
    /// until its first report echoed ours (five seconds or so).
    pub round_trip_ms: Option<f64>,
    /// Estimated mean opinion score, 1–4.5 (G.107, the one-way delay taken
    /// as the buffer's, half the round trip and 40 ms for packetisation and
    /// the sound cards; 60 ms beyond the buffer before the round trip is
    /// known).
    pub mos: f64,
}

impl CallQuality {
    /// From the call's endpoint counters.
    #[must_use]
    pub fn of(stats: &earshot_telephony::endpoint::EndpointStats) -> Option<Self> {
        use earshot_telephony::quality;
        let jitter = &stats.jitter;
        let expected = jitter.received + jitter.lost;
        if expected < 50 {
            return None;
        }
        let loss_percent = (jitter.lost + jitter.late) as f64 * 100.0 / (expected + jitter.late) as f64;
        let buffer_ms = jitter.delay_ms.max(0.0);
        let round_trip_ms = stats.round_trip_ms;
        let beyond = round_trip_ms.map_or(quality::OTHER_DELAY_MS, |rtt| rtt / 2.0 + quality::LOCAL_DELAY_MS);
        let mos = quality::mos(loss_percent, buffer_ms + beyond);
        Some(Self { loss_percent, jitter_ms: jitter.jitter_ms, buffer_ms, round_trip_ms, mos })
    }
}

/// One call, as the ui shows it.
#[derive(Clone, Debug, PartialEq, Serialize, TS)]
pub struct CallView {
    /// Which call.
    pub id: u64,
    /// It rang here (we did not place it).
    pub incoming: bool,
    /// The other party's number or extension.
    pub number: String,
    /// Their name, when known.
    pub name: Option<String>,
    /// Where it is.
    pub status: CallStatus,
    /// We hold them.
    pub held: bool,
    /// They hold us.
    pub held_by_them: bool,
    /// Our microphone is muted.
    pub muted: bool,
    /// When it was answered (ms since the epoch).
    pub connected_at: Option<i64>,
    /// Why it ended, for a person.
    pub ended: Option<String>,
    /// A sound device problem the call goes on despite.
    pub audio_problem: Option<String>,
    /// Recorded, paused or not, once the service said (after answer).
    pub recording: Option<CallRecording>,
    /// Since when it is paused (ms since the epoch), for the reminder.
    pub paused_since: Option<i64>,
    /// Why the last pause or resume was refused (SPEC §6.2, D4, D5).
    pub refused: Option<String>,
    /// How it sounds (after the first second or so of audio).
    pub quality: Option<CallQuality>,
}

/// A colleague in the phone's directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct Colleague {
    /// Their name.
    pub name: String,
    /// The extension to dial.
    pub extension: String,
    /// Takes calls now (false: "Do not disturb": a call to them goes to
    /// voicemail or is missed, per the flow).
    pub available: bool,
}

/// The phone, as the ui shows it.
#[derive(Clone, Debug, PartialEq, Serialize, TS)]
pub struct PhoneView {
    /// Registered or not.
    pub status: PhoneStatus,
    /// Why not, for a person.
    pub detail: Option<String>,
    /// The extension it rings on.
    pub extension: String,
    /// Takes calls (false: "Do not disturb", kept by the service).
    pub available: bool,
    /// Every call, oldest first.
    pub calls: Vec<CallView>,
    /// The colleagues one can dial, by name (not oneself).
    pub directory: Vec<Colleague>,
}

struct Entry {
    view: CallView,
    sound: Option<CallSound>,
}

struct State {
    view: PhoneView,
    calls: BTreeMap<CallKey, Entry>,
    /// A recording state pushed before its call showed as connected here
    /// (the push and the SIP answer race), for the call that connects next.
    early_recording: Option<(CallRecording, std::time::Instant)>,
    /// The ringtone, while a call rings here.
    ringer: Option<crate::ringer::Ringer>,
    /// Since when a REGISTER sent because the service's push feed dropped
    /// has gone unanswered.
    probe: Option<std::time::Instant>,
}

/// How long a REGISTER sent when the push feed dropped may go unanswered
/// before the phone says it is offline (a UDP REGISTER only gives up after
/// 32 s; its retransmissions reach a service that came back before that).
const PROBE_WAIT: Duration = Duration::from_secs(3);
/// What the phone says while the service cannot be reached.
const UNREACHABLE: &str = "Phone offline: the service cannot be reached. Reconnecting…";

struct Inner {
    phone: Phone,
    state: Mutex<State>,
    events: broadcast::Sender<AppEvent>,
    audio: Mutex<AudioSettings>,
    /// Who a number or an extension is (colleagues, contacts).
    names: Mutex<std::collections::HashMap<String, String>>,
}

/// The app's phone. Dropping it hangs up and unregisters.
pub struct SoftPhone {
    inner: Arc<Inner>,
    _driver: crate::app::Task,
}

impl std::fmt::Debug for SoftPhone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftPhone").field("local", &self.inner.phone.local).finish_non_exhaustive()
    }
}

/// This device's SIP credentials, kept in the keyring.
#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    sip_user: String,
    password: String,
    extension: String,
    sip_host: Option<String>,
    sip_port: u16,
    /// The service's SIP over TLS port, when it serves TLS.
    #[serde(default)]
    sip_tls_port: Option<u16>,
}

impl From<DeviceCredentials> for Kept {
    fn from(c: DeviceCredentials) -> Self {
        Self {
            sip_user: c.sip_user,
            password: c.password,
            extension: c.extension,
            sip_host: c.sip_host,
            sip_port: c.sip_port,
            sip_tls_port: c.sip_tls_port,
        }
    }
}

/// Asks the service for this device's credentials and keeps them.
async fn issue(api: &Api, keyring: &Keyring, email: &str) -> Result<Kept> {
    let name = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "desktop".into());
    let credentials: DeviceCredentials = api.post_json("/devices", &DeviceIn { name }).await?;
    let kept = Kept::from(credentials);
    keyring.sip().save(api.server(), email, &serde_json::to_string(&kept).unwrap_or_default())?;
    Ok(kept)
}

/// The registrar's host: the SIP host the service named, else the API's host.
fn registrar_host(api: &Api, kept: &Kept) -> Result<String> {
    let host = match &kept.sip_host {
        Some(host) => host.clone(),
        None => reqwest::Url::parse(api.server())
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .ok_or_else(|| ClientError::Protocol(format!("no host in {}", api.server())))?,
    };
    Ok(host.trim_matches(['[', ']']).to_owned())
}

/// The environment variable naming a CA file (PEM) the service's SIP
/// certificate is checked against, instead of the system's anchors: for
/// a company whose service has a certificate of its own CA.
pub const CA_FILE_VARIABLE: &str = "EARSHOT_CA_FILE";

/// How the phone checks the service's certificate, when the service
/// serves SIP over TLS: the CA the admin named ([`CA_FILE_VARIABLE`]), or
/// the system's anchors; for the name the service's host.
fn tls_trust(host: &str) -> Result<earshot_sip::endpoint::TlsTrust> {
    use earshot_sip::endpoint::TlsTrust;
    let trust = match std::env::var_os(CA_FILE_VARIABLE).filter(|v| !v.is_empty()) {
        Some(path) => TlsTrust::from_file(std::path::Path::new(&path), Some(host.to_owned())),
        None => TlsTrust::system(Some(host.to_owned())),
    };
    trust.map_err(|error| ClientError::Phone { detail: error.to_string() })
}

/// The registrar's address: the SIP host the service named, else the API's
/// host, at its TLS port when it serves TLS.
async fn registrar(api: &Api, kept: &Kept) -> Result<SocketAddr> {
    let host = registrar_host(api, kept)?;
    tokio::net::lookup_host((host.as_str(), kept.sip_tls_port.unwrap_or(kept.sip_port)))
        .await
        .ok()
        .and_then(|mut found| found.next())
        .ok_or_else(|| ClientError::Offline {
            server: host,
            reason: "its SIP address does not resolve".into(),
        })
}

/// Our address as the registrar sees it: the one the system routes to it from.
fn local_ip_towards(registrar: SocketAddr) -> IpAddr {
    let any: SocketAddr = if registrar.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0_u16; 8], 0).into() };
    std::net::UdpSocket::bind(any)
        .and_then(|socket| socket.connect(registrar).and_then(|()| socket.local_addr()))
        .map_or(any.ip(), |local| local.ip())
}

impl SoftPhone {
    /// Starts the phone of `email` signed in through `api`: credentials
    /// from the service (`new_session`: just logged in) or the keyring,
    /// registration, and its events on `events`.
    ///
    /// # Errors
    /// When the service gives no credentials (no extension, SIP off) or the
    /// phone cannot listen.
    pub async fn start(
        api: &Api,
        keyring: &Keyring,
        email: &str,
        new_session: bool,
        audio: AudioSettings,
        events: broadcast::Sender<AppEvent>,
    ) -> Result<Self> {
        let stored = if new_session { None } else { keyring.sip().load(api.server(), email)? };
        let kept = match stored.and_then(|text| serde_json::from_str::<Kept>(&text).ok()) {
            Some(kept) => kept,
            None => issue(api, keyring, email).await?,
        };
        let registrar = registrar(api, &kept).await?;
        let tls = match kept.sip_tls_port {
            Some(_) => Some(tls_trust(&registrar_host(api, &kept)?)?),
            None => None,
        };
        let ip = local_ip_towards(registrar);
        let config = PhoneConfig {
            listen: SocketAddr::new(ip, 0),
            media_ip: ip,
            account: Some(Account {
                registrar,
                user: kept.extension.clone(),
                auth_user: Some(kept.sip_user.clone()),
                password: kept.password.clone(),
                expires_s: 300,
            }),
            user_agent: concat!("Earshot/", env!("CARGO_PKG_VERSION")).into(),
            tls,
        };
        let (phone, phone_events) =
            Phone::start(config).await.map_err(|error| ClientError::Phone { detail: error.to_string() })?;
        let view = PhoneView {
            status: PhoneStatus::Connecting,
            detail: None,
            extension: kept.extension,
            available: true,
            calls: Vec::new(),
            directory: Vec::new(),
        };
        let inner = Arc::new(Inner {
            phone,
            state: Mutex::new(State {
                view,
                calls: BTreeMap::new(),
                early_recording: None,
                ringer: None,
                probe: None,
            }),
            events,
            audio: Mutex::new(audio),
            names: Mutex::default(),
        });
        let driver = crate::app::Task(tokio::spawn(drive(Arc::downgrade(&inner), phone_events)));
        inner.publish();
        Ok(Self { inner, _driver: driver })
    }

    /// Who numbers and extensions are (colleagues' extensions, contacts'
    /// numbers), to name the caller of a call that rings and the person
    /// dialled. A call already shown without a name gets its name now.
    pub fn set_names(&self, names: std::collections::HashMap<String, String>) {
        *self.inner.names.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = names;
        let named = {
            let mut state = self.inner.lock();
            let mut named = false;
            for entry in state.calls.values_mut().filter(|e| e.view.name.is_none()) {
                entry.view.name = self.inner.name_of(&entry.view.number);
                named |= entry.view.name.is_some();
            }
            named
        };
        if named {
            self.inner.publish();
        }
    }

    /// Shows whether the user takes calls (as the service keeps it).
    pub fn set_available(&self, available: bool) {
        let changed = {
            let mut state = self.inner.lock();
            std::mem::replace(&mut state.view.available, available) != available
        };
        if changed {
            self.inner.publish();
        }
    }

    /// The colleagues to show in the phone's directory.
    pub fn set_directory(&self, mut directory: Vec<Colleague>) {
        directory.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.extension.cmp(&b.extension)));
        let changed = {
            let mut state = self.inner.lock();
            std::mem::replace(&mut state.view.directory, directory) != state.view.directory
        };
        if changed {
            self.inner.publish();
        }
    }

    /// Tells the ui where the phone is, again.
    pub fn republish(&self) {
        self.inner.publish();
    }

    /// The phone now.
    #[must_use]
    pub fn view(&self) -> PhoneView {
        self.inner.lock().view.clone()
    }

    /// Dials `target`: a number (typed, pasted: spaces, dashes, dots and
    /// brackets are dropped) or an extension.
    ///
    /// # Errors
    /// When it is not a number, or the sound cannot be opened.
    pub fn dial(&self, target: &str) -> Result<u64> {
        let Some(number) = earshot_sip::phone::dialable(target) else {
            return Err(ClientError::Invalid {
                detail: format!("“{}” is not a number to call.", target.trim()),
            });
        };
        let (audio, sound) = CallAudio::open(&self.inner.audio_settings())?;
        let problem = sound.problem().map(|p| p.to_string());
        let key = self.inner.phone.dial(&number, Box::new(audio));
        let name = self.inner.name_of(&number);
        let view = CallView {
            id: key.0,
            incoming: false,
            number,
            name,
            status: CallStatus::Dialing,
            held: false,
            held_by_them: false,
            muted: false,
            connected_at: None,
            ended: None,
            audio_problem: problem,
            recording: None,
            paused_since: None,
            refused: None,
            quality: None,
        };
        self.inner.lock().calls.insert(key, Entry { view, sound: Some(sound) });
        self.inner.publish();
        Ok(key.0)
    }

    /// Answers a call that rings here; a call already connected is held
    /// (call waiting).
    ///
    /// # Errors
    /// When there is no such call ringing, or the sound cannot be opened.
    pub fn answer(&self, call: u64) -> Result<()> {
        let key = CallKey(call);
        self.ringing(key)?;
        let (audio, sound) = CallAudio::open(&self.inner.audio_settings())?;
        let others: Vec<CallKey> = {
            let mut state = self.inner.lock();
            if let Some(entry) = state.calls.get_mut(&key) {
                entry.view.audio_problem = sound.problem().map(|p| p.to_string());
                entry.sound = Some(sound);
            }
            state
                .calls
                .iter()
                .filter(|(k, e)| **k != key && e.view.status == CallStatus::Connected && !e.view.held)
                .map(|(k, _)| *k)
                .collect()
        };
        for other in others {
            self.inner.phone.hold(other, true);
        }
        self.inner.phone.answer(key, Box::new(audio));
        Ok(())
    }

    fn ringing(&self, key: CallKey) -> Result<()> {
        match self.inner.lock().calls.get(&key) {
            Some(entry) if entry.view.status == CallStatus::Incoming => Ok(()),
            _ => Err(ClientError::Phone { detail: "That call is no longer ringing.".into() }),
        }
    }

    /// Declines a call that rings here (busy).
    ///
    /// # Errors
    /// When there is no such call ringing.
    pub fn decline(&self, call: u64) -> Result<()> {
        let key = CallKey(call);
        self.ringing(key)?;
        self.inner.phone.decline(key, true);
        Ok(())
    }

    /// Hangs up (or stops dialling).
    pub fn hang_up(&self, call: u64) {
        self.inner.phone.hang_up(CallKey(call));
    }

    /// Holds the other party, or takes them off hold.
    pub fn hold(&self, call: u64, on: bool) {
        self.inner.phone.hold(CallKey(call), on);
    }

    /// Mutes or unmutes our microphone on `call`.
    pub fn mute(&self, call: u64, on: bool) {
        {
            let mut state = self.inner.lock();
            if let Some(entry) = state.calls.get_mut(&CallKey(call)) {
                if let Some(sound) = &entry.sound {
                    sound.set_muted(on);
                }
                entry.view.muted = on;
            }
        }
        self.inner.publish();
    }

    /// Sends keypad keys (`0`–`9`, `*`, `#`, `A`–`D`) as RFC 4733 events.
    ///
    /// # Errors
    /// When one is not a key.
    pub fn keys(&self, call: u64, keys: &str) -> Result<()> {
        let keys: Vec<Key> = keys
            .chars()
            .map(|c| {
                Key::from_char(c)
                    .ok_or_else(|| ClientError::Invalid { detail: format!("“{c}” is not a key.") })
            })
            .collect::<Result<_>>()?;
        for key in keys {
            self.inner.phone.press(CallKey(call), key, KEY_MS);
        }
        Ok(())
    }

    /// Pauses the call's recording: `#11#`, the same events as the keypad (SPEC §6.2).
    pub fn pause_recording(&self, call: u64) {
        self.press_code(call, KeypadCode::Pause);
    }

    /// Resumes (or starts) the call's recording: `#12#`.
    pub fn resume_recording(&self, call: u64) {
        self.press_code(call, KeypadCode::Resume);
    }

    /// Sends `code`'s keys (the policy's, so the phone and the service's
    /// detector agree on them).
    fn press_code(&self, call: u64, code: KeypadCode) {
        for key in code.keys() {
            self.inner.phone.press(CallKey(call), key, KEY_MS);
        }
    }

    /// The service pushed the recording state of this user's call: it is
    /// the call being talked on (connected, not held). (The push names the
    /// service's call, which the phone does not know by that name; a user
    /// talks on one call at a time.)
    pub fn recording_changed(&self, state: CallRecording) {
        let applied = self.on_active_call(|view| apply_recording(view, state));
        if !applied {
            self.inner.lock().early_recording = Some((state, std::time::Instant::now()));
        }
    }

    /// The service refused this user's pause or resume code, saying why.
    pub fn recording_refused(&self, detail: &str) {
        self.on_active_call(|view| view.refused = Some(detail.to_owned()));
    }

    /// Changes the call being talked on; false when there is none.
    fn on_active_call(&self, change: impl FnOnce(&mut CallView)) -> bool {
        {
            let mut state = self.inner.lock();
            let active = state
                .calls
                .values_mut()
                .filter(|e| e.view.status == CallStatus::Connected)
                .min_by_key(|e| e.view.held);
            let Some(entry) = active else { return false };
            change(&mut entry.view);
        }
        self.inner.publish();
        true
    }

    /// The service is back (its push feed reconnected), or may be gone (the
    /// feed dropped): register again at once rather than at the next
    /// refresh, in case it restarted or to find out it is unreachable.
    pub fn reconnect(&self) {
        self.inner.phone.register();
    }

    /// The service's push feed dropped: the service may be gone. The phone
    /// registers again at once, and says it is offline if that goes
    /// unanswered for [`PROBE_WAIT`], instead of ringing for calls that
    /// cannot come until its registration would have run out.
    pub fn service_lost(&self) {
        self.inner.lock().probe.get_or_insert_with(std::time::Instant::now);
        self.inner.phone.register();
    }

    /// Sets how calls sound from the next call on.
    pub fn set_audio(&self, audio: AudioSettings) {
        *self.inner.audio.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = audio;
    }

    /// Unregisters and hangs up (log-out), and forgets this device's credentials.
    pub fn stop(&self, api: &Api, keyring: &Keyring, email: &str) {
        self.inner.phone.stop();
        if let Err(error) = keyring.sip().forget(api.server(), email) {
            tracing::warn!(%error, "the device's SIP credentials were not removed from the keyring");
        }
    }
}

impl Drop for SoftPhone {
    fn drop(&mut self) {
        self.inner.phone.stop();
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The name of `number`, when it is someone's: as given, or with the
    /// `+` an E.164 number has (a trunk may leave it out).
    fn name_of(&self, number: &str) -> Option<String> {
        let names = self.names.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        names.get(number).or_else(|| names.get(&format!("+{number}"))).cloned()
    }

    fn audio_settings(&self) -> AudioSettings {
        self.audio.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Reads every connected call's quality; tells the ui when it moved.
    fn update_quality(&self) {
        let changed = {
            let mut state = self.lock();
            let mut changed = false;
            if state.probe.is_some_and(|since| since.elapsed() >= PROBE_WAIT)
                && matches!(state.view.status, PhoneStatus::Ready | PhoneStatus::Connecting)
            {
                state.view.status = PhoneStatus::Offline;
                state.view.detail = Some(UNREACHABLE.to_owned());
                changed = true;
            }
            for (key, entry) in &mut state.calls {
                if entry.view.status != CallStatus::Connected {
                    continue;
                }
                let stats = self.phone.stats(*key);
                if let Some(stats) = &stats {
                    // What the buffer holds, every 2 s, for whoever measures
                    // where a call's delay goes (docs/PERFORMANCE.md).
                    tracing::debug!(
                        call = key.0,
                        delay_ms = stats.jitter.delay_ms,
                        target_ms = stats.jitter.target_ms,
                        late = stats.jitter.late,
                        concealed = stats.jitter.concealed_frames,
                        "the call's jitter buffer"
                    );
                }
                let quality = stats.as_ref().and_then(CallQuality::of);
                if quality != entry.view.quality {
                    entry.view.quality = quality;
                    changed = true;
                }
            }
            changed
        };
        if changed {
            self.publish();
        }
    }

    /// Tells the ui where the phone is.
    fn publish(&self) {
        let view = {
            let mut state = self.lock();
            let calls = state.calls.values().map(|e| e.view.clone()).collect();
            state.view.calls = calls;
            // The ringtone plays while a call rings here, and only then.
            let ringing = state.calls.values().any(|e| e.view.status == CallStatus::Incoming);
            if ringing && state.ringer.is_none() {
                state.ringer = Some(crate::ringer::Ringer::start(self.audio_settings().ringer));
            } else if !ringing {
                state.ringer = None;
            }
            state.view.clone()
        };
        let _ = self.events.send(AppEvent::Phone { phone: view });
    }

    fn on_event(self: &Arc<Self>, event: PhoneEvent) {
        {
            let mut guard = self.lock();
            let state = &mut *guard;
            match event {
                PhoneEvent::Registration(registration) => {
                    // Answered (or given up on): no longer probing.
                    let answered = matches!(
                        registration,
                        RegistrationState::Registered { .. } | RegistrationState::Failed { .. }
                    );
                    let (status, detail) = match registration {
                        RegistrationState::Registered { .. } => (PhoneStatus::Ready, None),
                        RegistrationState::Registering => (PhoneStatus::Connecting, None),
                        RegistrationState::Unregistered => {
                            (PhoneStatus::Offline, Some("The phone is off.".into()))
                        }
                        RegistrationState::Failed { status, reason, .. } => {
                            let why = if status == 0 {
                                UNREACHABLE.to_owned()
                            } else {
                                format!(
                                    "Phone offline: the service refused it ({status} {reason}). Reconnecting…"
                                )
                            };
                            (PhoneStatus::Offline, Some(why))
                        }
                    };
                    if answered {
                        state.probe = None;
                    }
                    state.view.status = status;
                    state.view.detail = detail;
                }
                PhoneEvent::Incoming { call, from, name } => {
                    // A colleague or a contact by the number, else what the caller's phone says.
                    let name = self.name_of(&from).or(name);
                    let view = CallView {
                        id: call.0,
                        incoming: true,
                        number: from,
                        name,
                        status: CallStatus::Incoming,
                        held: false,
                        held_by_them: false,
                        muted: false,
                        connected_at: None,
                        ended: None,
                        audio_problem: None,
                        recording: None,
                        paused_since: None,
                        refused: None,
                        quality: None,
                    };
                    state.calls.insert(call, Entry { view, sound: None });
                }
                PhoneEvent::Call { call, state: call_state } => {
                    let Some(entry) = state.calls.get_mut(&call) else { return };
                    let view = &mut entry.view;
                    match call_state {
                        CallState::Dialing | CallState::Trying => view.status = CallStatus::Dialing,
                        CallState::Ringing | CallState::EarlyMedia => view.status = CallStatus::Ringing,
                        CallState::Incoming => view.status = CallStatus::Incoming,
                        CallState::Connected { hold } => {
                            if view.connected_at.is_none() {
                                view.connected_at = now_millis();
                                // The service may have said how it records before SIP said it answered.
                                if let Some((early, at)) = state.early_recording.take()
                                    && at.elapsed() < Duration::from_secs(5)
                                {
                                    apply_recording(view, early);
                                }
                            }
                            view.status = CallStatus::Connected;
                            view.held = hold.local;
                            view.held_by_them = hold.remote;
                        }
                        CallState::Ended(reason) => {
                            view.status = CallStatus::Ended;
                            view.ended = Some(ended_because(&reason));
                            entry.sound = None;
                            let weak = Arc::downgrade(self);
                            tokio::spawn(async move {
                                tokio::time::sleep(ENDED_SHOWN).await;
                                if let Some(inner) = weak.upgrade() {
                                    inner.lock().calls.remove(&call);
                                    inner.publish();
                                }
                            });
                        }
                    }
                }
                PhoneEvent::Key { .. } => return,
            }
        }
        self.publish();
    }
}

fn apply_recording(view: &mut CallView, state: CallRecording) {
    view.paused_since = match state {
        CallRecording::Paused => view.paused_since.or_else(now_millis),
        _ => None,
    };
    view.recording = Some(state);
    view.refused = None;
}

fn now_millis() -> Option<i64> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(now.as_millis()).ok()
}

/// Why a call ended, for a person.
fn ended_because(reason: &EndReason) -> String {
    match reason {
        EndReason::HungUp { by_us: true } => "You hung up.".into(),
        EndReason::HungUp { by_us: false } => "They hung up.".into(),
        EndReason::Refused { status: 486 | 600, .. } => "The line is busy.".into(),
        EndReason::Refused { status: 404 | 604, .. } => "That number does not exist.".into(),
        EndReason::Refused { status: 480, .. } => "Nobody answered.".into(),
        EndReason::Refused { status: 603, .. } => "The call was declined.".into(),
        EndReason::Refused { status: 488 | 606, .. } => {
            "The other phone cannot talk with this one (no common audio format).".into()
        }
        EndReason::Refused { status: 403, .. } => "You may not call that number.".into(),
        EndReason::Refused { status, reason } => format!("The call failed: {status} {reason}."),
        EndReason::Declined { .. } => "You declined the call.".into(),
        EndReason::Missed => "Missed call.".into(),
        EndReason::Cancelled => "Call cancelled.".into(),
        EndReason::Unreachable => "The call could not be connected: no answer from the network.".into(),
        _ => "The call ended.".into(),
    }
}

/// How often a call's quality is read again.
const QUALITY_EVERY: Duration = Duration::from_secs(2);

/// The phone's task: the network's events into the view, and each
/// connected call's quality every two seconds.
async fn drive(inner: std::sync::Weak<Inner>, mut events: tokio::sync::mpsc::UnboundedReceiver<PhoneEvent>) {
    let mut quality = tokio::time::interval(QUALITY_EVERY);
    quality.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return };
                let Some(strong) = inner.upgrade() else { return };
                strong.on_event(event);
            }
            _ = quality.tick() => {
                let Some(strong) = inner.upgrade() else { return };
                strong.update_quality();
            }
        }
    }
}
