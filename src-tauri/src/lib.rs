//! The Earshot desktop app's Tauri shell, kept thin (STYLE.md): state is set
//! up once in [`run`], and each command only hands the ui's request to
//! [`earshot_client::app::App`], where the app's behaviour lives and is
//! tested without a window. Paths in `tauri.conf.json` (at the repository
//! root, linked here) are relative to this crate.

use earshot_client::app::{App, HistoryView, LastLogin, Me, UiError};
use earshot_client::{Keyring, KeyringBackend};
use earshot_policy::AppContext;
use tauri::Manager as _;

#[tauri::command]
fn last_login(app: tauri::State<'_, App>) -> Option<LastLogin> {
    app.last_login()
}

#[tauri::command]
async fn resume(app: tauri::State<'_, App>) -> Result<Option<Me>, UiError> {
    Ok(app.resume().await?)
}

#[tauri::command]
async fn log_in(
    app: tauri::State<'_, App>,
    server: String,
    email: String,
    password: String,
) -> Result<Me, UiError> {
    Ok(app.log_in(&server, &email, &password).await?)
}

#[tauri::command]
async fn log_out(app: tauri::State<'_, App>) -> Result<(), UiError> {
    Ok(app.log_out().await?)
}

#[tauri::command]
async fn history(
    app: tauri::State<'_, App>,
    app_context: AppContext,
    more: bool,
) -> Result<HistoryView, UiError> {
    Ok(app.history(app_context, more).await?)
}

/// Runs the app.
///
/// # Panics
/// When the window system cannot be reached (Tauri cannot start).
pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EARSHOT_LOG").unwrap_or_else(|_| "info".into()),
        )
        .init();
    tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            // A second start brings the running app forward instead.
            if let Some(window) = app.get_webview_window("main") {
                let _ = window.unminimize();
                let _ = window.set_focus();
            }
        }))
        .setup(|app| {
            // The desktop's Secret Service keeps tokens across log-ins; a
            // session without one falls back to the kernel keyring.
            let backend = KeyringBackend::detect_and_install();
            tracing::info!(?backend, "tokens are kept in the OS keyring");
            let data_dir = app.path().app_data_dir()?;
            let server = std::env::var("EARSHOT_SERVER").ok();
            app.manage(App::new(data_dir, Keyring::new("earshot")).with_default_server(server));
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![last_login, resume, log_in, log_out, history])
        .run(tauri::generate_context!())
        .expect("Earshot could not start its window");
}
