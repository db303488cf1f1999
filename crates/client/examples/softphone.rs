//! The app's phone without its window: the same `App`, `SoftPhone` and
//! call audio (cpal, sonora, the jitter buffer) the desktop app runs, driven
//! by lines on stdin, telling what happens on stdout. The call-audio
//! benchmark (`crates/client/benches/call_audio.py`) runs two of them, each
//! on its own PulseAudio sinks (`PULSE_SOURCE`, `PULSE_SINK`), and a person
//! can use it as a terminal phone.
//!
//! ```text
//! keyctl session - cargo run --release -p earshot-client --example softphone -- \
//!     SERVER EMAIL PASSWORD [--microphone ID] [--speaker ID] [--ringer ID] [--no-processing | --processing aec,ns,agc] [--auto-answer MS]
//! ```
//!
//! Device ids are as the app's settings list them (`pulseaudio:NAME` with a
//! PulseAudio server); the system's default devices otherwise.
//!
//! Commands (one a line): `dial NUMBER`, `answer`, `hangup`, `mute on|off`,
//! `hold on|off`, `keys DIGITS`, `pause`, `resume`, `quit`. Each event is
//! printed as `<ms since the epoch> <event> [detail]`: `ready`, `offline`,
//! `incoming NUMBER`, `ringing`, `connected`, `answering`, `recording STATE`,
//! `ended REASON`, and `error TEXT` for a command the phone refused.
//!
//! It keeps its token and SIP credentials in the kernel keyring (run it in
//! a `keyctl session`) and its files in a fresh temporary folder.
#![allow(clippy::print_stdout)]

use earshot_client::app::App;
use earshot_client::softphone::{CallStatus, PhoneStatus, PhoneView};
use earshot_client::view::AppEvent;
use earshot_client::{Keyring, KeyringBackend};
use std::collections::HashMap;
use std::io::Write as _;
use std::time::Duration;
use tokio::io::AsyncBufReadExt as _;

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

fn say(event: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{} {event}", now_ms());
    let _ = out.flush();
}

/// What changed between two views of the phone, as event lines.
fn changes(before: &PhoneView, after: &PhoneView) -> Vec<String> {
    let mut lines = Vec::new();
    if before.status != after.status {
        match after.status {
            PhoneStatus::Ready => lines.push("ready".to_owned()),
            PhoneStatus::Offline => {
                lines.push(format!("offline {}", after.detail.as_deref().unwrap_or_default()));
            }
            PhoneStatus::Connecting => {}
        }
    }
    let old: HashMap<u64, _> = before.calls.iter().map(|c| (c.id, c)).collect();
    for call in &after.calls {
        let was = old.get(&call.id);
        if was.is_none_or(|w| w.status != call.status) {
            match call.status {
                CallStatus::Incoming => lines.push(format!("incoming {}", call.number)),
                CallStatus::Ringing => lines.push("ringing".to_owned()),
                CallStatus::Connected => lines.push("connected".to_owned()),
                CallStatus::Ended => {
                    lines.push(format!("ended {}", call.ended.as_deref().unwrap_or_default()));
                }
                CallStatus::Dialing => {}
            }
        }
        if call.recording.is_some() && was.is_none_or(|w| w.recording != call.recording) {
            lines.push(format!(
                "recording {:?}",
                call.recording.unwrap_or(earshot_client::softphone::CallRecording::Off)
            ));
        }
        if let Some(problem) = &call.audio_problem
            && was.is_none_or(|w| w.audio_problem.as_ref() != Some(problem))
        {
            lines.push(format!("audio-problem {problem}"));
        }
    }
    lines
}

/// The call a command is about: the newest one not over.
fn current(app: &App) -> Option<u64> {
    app.phone_view()?.calls.iter().rev().find(|c| c.status != CallStatus::Ended).map(|c| c.id)
}

fn run(app: &App, line: &str) -> Result<bool, String> {
    let mut words = line.split_whitespace();
    let command = words.next().unwrap_or_default();
    let argument = words.next().unwrap_or_default();
    let call = || current(app).ok_or_else(|| "no call".to_owned());
    let on = argument == "on";
    let result = match command {
        "" => Ok(()),
        "dial" => app.dial(argument).map(|_| ()),
        "answer" => app.answer(call()?),
        "hangup" => app.hang_up(call()?),
        "mute" => app.mute(call()?, on),
        "hold" => app.hold(call()?, on),
        "keys" => app.send_keys(call()?, argument),
        "pause" => app.pause_recording(call()?),
        "resume" => app.resume_recording(call()?),
        "quit" => return Ok(false),
        other => return Err(format!("unknown command {other:?}")),
    };
    result.map(|()| true).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, email, password, options @ ..] = args.as_slice() else {
        return Err("usage: softphone SERVER EMAIL PASSWORD [--microphone ID] [--speaker ID] [--ringer ID] [--no-processing | --processing aec,ns,agc] [--auto-answer MS]".into());
    };
    let mut auto_answer = None;
    let mut processing = None;
    let (mut microphone, mut speaker, mut ringer) = (None, None, None);
    let mut options = options.iter();
    while let Some(option) = options.next() {
        match option.as_str() {
            "--no-processing" => processing = Some("none"),
            // Which of echo cancellation, noise suppression and gain control: "aec,ns".
            "--processing" => processing = Some(options.next().ok_or("--processing aec,ns,agc")?.as_str()),
            "--microphone" => microphone = Some(options.next().ok_or("--microphone ID")?.clone()),
            "--speaker" => speaker = Some(options.next().ok_or("--speaker ID")?.clone()),
            "--ringer" => ringer = Some(options.next().ok_or("--ringer ID")?.clone()),
            "--auto-answer" => {
                auto_answer = Some(Duration::from_millis(options.next().ok_or("--auto-answer MS")?.parse()?));
            }
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    // What the phone logs (EARSHOT_LOG, e.g. "info"), on stderr.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("EARSHOT_LOG"))
        .with_writer(std::io::stderr)
        .init();
    KeyringBackend::Kernel.install();
    let dir = tempfile::tempdir()?;
    let app = std::sync::Arc::new(App::new(
        dir.path().to_owned(),
        Keyring::new(format!("earshot-softphone-{}", std::process::id())),
    ));
    let mut settings = app.settings();
    if let Some(processing) = processing {
        settings.call_audio.set_processing(processing)?;
    }
    settings.call_audio.microphone = microphone;
    settings.call_audio.speaker = speaker;
    settings.call_audio.ringer = ringer;
    app.save_settings(&settings)?;
    let mut events = app.events();
    app.log_in(server, email, password).await?;
    app.save_settings(&settings)?;
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut seen = PhoneView {
        status: PhoneStatus::Connecting,
        detail: None,
        extension: String::new(),
        available: true,
        calls: Vec::new(),
        directory: Vec::new(),
    };
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(AppEvent::Phone { phone }) => {
                    for line in changes(&seen, &phone) {
                        say(&line);
                        if line.starts_with("incoming")
                            && let Some(delay) = auto_answer
                        {
                            let app = std::sync::Arc::clone(&app);
                            tokio::spawn(async move {
                                tokio::time::sleep(delay).await;
                                say("answering");
                                if let Err(e) = run(&app, "answer") {
                                    say(&format!("error {e}"));
                                }
                            });
                        }
                    }
                    seen = phone;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            line = stdin.next_line() => match line? {
                Some(line) => match run(&app, &line) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => say(&format!("error {e}")),
                },
                None => break,
            },
        }
    }
    if let Some(call) = current(&app) {
        let _ = app.hang_up(call);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    app.log_out().await?;
    Ok(())
}
