//! The Earshot desktop app's Tauri shell, kept thin (STYLE.md): state is set
//! up once in [`run`], each command only hands the ui's request to
//! [`earshot_client::app::App`], where the app's behaviour lives and is
//! tested without a window, and the app's events are forwarded to the ui as
//! they come. Done here is only what a window can do: the native save
//! dialog, and desktop notifications when the window is not in front.
//! Paths in `tauri.conf.json` (at the repository root, linked here) are
//! relative to this crate.

use earshot_client::app::App;
use earshot_client::device_test::MicrophoneTest;
use earshot_client::softphone::{CallStatus, PhoneView};
use earshot_client::view::{
    AdminChange, AdminData, Analytics, AppEvent, AppSettings, AuditRow, CallDetails, Directory,
    HistoryFilter, HistoryWindow, LastLogin, Me, PlayerCommand, PlayerState, UiError,
};
use earshot_client::{AudioDevice, Keyring, KeyringBackend};
use earshot_policy::{AppContext, RecordingKind};
use tauri::{Emitter as _, Manager as _};
use tauri_plugin_dialog::DialogExt as _;
use tauri_plugin_notification::NotificationExt as _;

/// When the app started, for the start-up times it logs (docs/PERFORMANCE.md).
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// The one event name the ui listens to; the payload says what happened.
const EVENT: &str = "earshot";

type Reply<T> = Result<T, UiError>;

/// The ui says it showed something (the first history rows): logged with
/// the time since the app started, so start-up is measured, not guessed.
#[tauri::command]
fn shown(what: String) {
    let since_start_ms = STARTED.get().map(|started| started.elapsed().as_millis());
    tracing::info!(target: "earshot::timing", %what, since_start_ms, "shown");
}

#[tauri::command]
fn last_login(app: tauri::State<'_, App>) -> Option<LastLogin> {
    app.last_login()
}

#[tauri::command]
async fn resume(app: tauri::State<'_, App>) -> Reply<Option<Me>> {
    Ok(app.resume().await?)
}

#[tauri::command]
async fn log_in(app: tauri::State<'_, App>, server: String, email: String, password: String) -> Reply<Me> {
    Ok(app.log_in(&server, &email, &password).await?)
}

#[tauri::command]
async fn log_out(app: tauri::State<'_, App>) -> Reply<()> {
    Ok(app.log_out().await?)
}

#[tauri::command]
fn directory(app: tauri::State<'_, App>) -> Reply<Directory> {
    Ok(app.directory()?)
}

#[tauri::command]
async fn history(
    app: tauri::State<'_, App>,
    app_context: AppContext,
    filter: HistoryFilter,
    offset: u32,
    count: u32,
) -> Reply<HistoryWindow> {
    Ok(app.history(app_context, filter, offset, count).await?)
}

#[tauri::command]
async fn call_details(app: tauri::State<'_, App>, app_context: AppContext, id: i64) -> Reply<CallDetails> {
    Ok(app.call_details(app_context, id).await?)
}

#[tauri::command]
async fn play(
    app: tauri::State<'_, App>,
    app_context: AppContext,
    id: i64,
    kind: RecordingKind,
) -> Reply<PlayerState> {
    Ok(app.play(app_context, id, kind).await?)
}

#[tauri::command]
async fn waveform(
    app: tauri::State<'_, App>,
    app_context: AppContext,
    id: i64,
    kind: RecordingKind,
    buckets: usize,
) -> Reply<Vec<u8>> {
    Ok(app.waveform(app_context, id, kind, buckets).await?)
}

#[tauri::command]
fn player(app: tauri::State<'_, App>, command: PlayerCommand) -> Option<PlayerState> {
    app.player(command)
}

/// Asks where to save (the native dialog, proposing `file_name`), then
/// downloads there. `None` when the user cancelled.
#[tauri::command]
async fn download(
    window: tauri::WebviewWindow,
    app: tauri::State<'_, App>,
    app_context: AppContext,
    id: i64,
    kind: RecordingKind,
    file_name: String,
) -> Reply<Option<u64>> {
    let dialog = window
        .dialog()
        .file()
        .set_parent(&window)
        .set_title("Save recording")
        .set_file_name(&file_name)
        .add_filter("WAV audio", &["wav"]);
    let chosen = tauri::async_runtime::spawn_blocking(move || dialog.blocking_save_file()).await;
    let Some(path) = chosen.ok().flatten().and_then(|path| path.into_path().ok()) else { return Ok(None) };
    let written = app.download(app_context, id, kind, &path).await?;
    let name = path.file_name().map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    notify_unless_seen(window.app_handle(), "Recording saved", &name);
    Ok(Some(written))
}

/// A desktop notification, when the user is not looking at the window (a
/// long download finished, the session ended). Where no notification
/// service runs, nothing is shown and the window still says it.
fn notify_unless_seen(app: &tauri::AppHandle, title: &str, body: &str) {
    let focused = app.get_webview_window("main").and_then(|window| window.is_focused().ok());
    if focused == Some(true) {
        return;
    }
    if let Err(error) = app.notification().builder().title(title).body(body).show() {
        tracing::debug!(%error, "no notification shown");
    }
}

/// A call ringing here: a desktop notification with who calls, once per
/// call, when the window is not in front.
fn ring_notice(app: &tauri::AppHandle, phone: &PhoneView, announced: &mut std::collections::HashSet<u64>) {
    announced.retain(|id| phone.calls.iter().any(|c| c.id == *id && c.status == CallStatus::Incoming));
    for call in phone.calls.iter().filter(|c| c.status == CallStatus::Incoming) {
        if announced.insert(call.id) {
            let who = call.name.clone().unwrap_or_else(|| call.number.clone());
            notify_unless_seen(app, "Incoming call", &who);
        }
    }
}

#[tauri::command]
async fn analytics(app: tauri::State<'_, App>, from: i64, to: i64) -> Reply<Analytics> {
    Ok(app.analytics(from, to).await?)
}

#[tauri::command]
async fn admin(app: tauri::State<'_, App>) -> Reply<AdminData> {
    Ok(app.admin().await?)
}

#[tauri::command]
async fn admin_change(app: tauri::State<'_, App>, change: AdminChange) -> Reply<()> {
    Ok(app.admin_change(change).await?)
}

#[tauri::command]
async fn audit(app: tauri::State<'_, App>, before: Option<i64>) -> Reply<Vec<AuditRow>> {
    Ok(app.audit(before).await?)
}

#[tauri::command]
fn output_devices(app: tauri::State<'_, App>) -> Vec<AudioDevice> {
    app.output_devices()
}

#[tauri::command]
fn input_devices(app: tauri::State<'_, App>) -> Vec<AudioDevice> {
    app.input_devices()
}

#[tauri::command]
async fn start_level_meter(app: tauri::State<'_, App>, microphone: Option<String>) -> Reply<()> {
    Ok(app.start_level_meter(microphone).await?)
}

#[tauri::command]
async fn stop_level_meter(app: tauri::State<'_, App>) -> Reply<()> {
    app.stop_level_meter().await;
    Ok(())
}

#[tauri::command]
async fn test_speaker(app: tauri::State<'_, App>, speaker: Option<String>) -> Reply<()> {
    Ok(app.test_speaker(speaker).await?)
}

#[tauri::command]
async fn test_microphone(
    app: tauri::State<'_, App>,
    microphone: Option<String>,
    speaker: Option<String>,
) -> Reply<MicrophoneTest> {
    Ok(app.test_microphone(microphone, speaker).await?)
}

#[tauri::command]
fn take_dial_request(app: tauri::State<'_, App>) -> Option<String> {
    app.take_dial_request()
}

#[tauri::command]
fn phone(app: tauri::State<'_, App>) -> Option<PhoneView> {
    app.phone_view()
}

#[tauri::command]
fn dial(app: tauri::State<'_, App>, target: String) -> Reply<u64> {
    Ok(app.dial(&target)?)
}

#[tauri::command]
fn answer(app: tauri::State<'_, App>, call: u64) -> Reply<()> {
    Ok(app.answer(call)?)
}

#[tauri::command]
fn decline(app: tauri::State<'_, App>, call: u64) -> Reply<()> {
    Ok(app.decline(call)?)
}

#[tauri::command]
fn hang_up(app: tauri::State<'_, App>, call: u64) -> Reply<()> {
    Ok(app.hang_up(call)?)
}

#[tauri::command]
fn hold(app: tauri::State<'_, App>, call: u64, on: bool) -> Reply<()> {
    Ok(app.hold(call, on)?)
}

#[tauri::command]
fn mute(app: tauri::State<'_, App>, call: u64, on: bool) -> Reply<()> {
    Ok(app.mute(call, on)?)
}

#[tauri::command]
fn send_keys(app: tauri::State<'_, App>, call: u64, keys: String) -> Reply<()> {
    Ok(app.send_keys(call, &keys)?)
}

#[tauri::command]
async fn set_available(app: tauri::State<'_, App>, available: bool) -> Reply<()> {
    Ok(app.set_available(available).await?)
}

#[tauri::command]
fn recording(app: tauri::State<'_, App>, call: u64, paused: bool) -> Reply<()> {
    let done = if paused { app.pause_recording(call) } else { app.resume_recording(call) };
    Ok(done?)
}

#[tauri::command]
fn settings(app: tauri::State<'_, App>) -> AppSettings {
    app.settings()
}

#[tauri::command]
fn save_settings(app: tauri::State<'_, App>, settings: AppSettings) -> Reply<()> {
    Ok(app.save_settings(&settings)?)
}

/// Runs the app.
///
/// # Panics
/// When the window system cannot be reached (Tauri cannot start).
pub fn run() {
    STARTED.get_or_init(std::time::Instant::now);
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EARSHOT_LOG").unwrap_or_else(|_| "info".into()),
        )
        .init();
    tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            // A second start brings the running app forward instead, with
            // the number of the `tel:`/`sip:` link it was started for.
            app.state::<App>().open_links(&argv);
            if let Some(window) = app.get_webview_window("main") {
                let _ = window.unminimize();
                let _ = window.set_focus();
            }
        }))
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .setup(|app| {
            // The desktop's Secret Service keeps tokens across log-ins; a
            // session without one falls back to the kernel keyring. Asking
            // D-Bus takes a moment: the window does not wait for it.
            let detecting = std::thread::spawn(KeyringBackend::detect_and_install);
            let data_dir = app.path().app_data_dir()?;
            let server = std::env::var("EARSHOT_SERVER").ok();
            let state = App::new(data_dir, Keyring::new("earshot"))
                .with_default_server(server)
                .with_keyring_detection(detecting);
            let mut events = state.events();
            // Started for a `tel:`/`sip:` link: its number waits for the ui.
            state.open_links(&std::env::args().skip(1).collect::<Vec<_>>());
            app.manage(state);
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                let mut announced = std::collections::HashSet::new();
                loop {
                    match events.recv().await {
                        Ok(event) => {
                            if let AppEvent::SessionEnded { message } = &event {
                                notify_unless_seen(&handle, "Signed out of Earshot", message);
                            }
                            if let AppEvent::Phone { phone } = &event {
                                ring_notice(&handle, phone, &mut announced);
                            }
                            let _ = handle.emit(EVENT, event);
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "the ui missed app events");
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            });
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            shown,
            last_login,
            resume,
            log_in,
            log_out,
            directory,
            history,
            call_details,
            play,
            waveform,
            player,
            download,
            analytics,
            admin,
            admin_change,
            audit,
            output_devices,
            input_devices,
            test_speaker,
            test_microphone,
            start_level_meter,
            stop_level_meter,
            take_dial_request,
            phone,
            dial,
            answer,
            decline,
            hang_up,
            hold,
            mute,
            send_keys,
            recording,
            set_available,
            settings,
            save_settings
        ])
        .run(tauri::generate_context!())
        .expect("Earshot could not start its window");
}
