//! Measures the time from pressing play to the first audio taken by the
//! output device, for the longest recording the user may play
//! (docs/PERFORMANCE.md; `src-tauri/benches/app.sh` imports a 60-minute one).
//!
//! ```text
//! cargo run --release -p earshot-client --example first_audio -- SERVER EMAIL PASSWORD [RUNS]
//! ```
//!
//! "Pressing play" is [`Player::open`] (the local right, the first 256 KiB
//! range, the WAV header, the output stream) plus [`Player::play`]; "first
//! audio" is the position moving, which happens when the device callback
//! has consumed samples. Device latency after that (PulseAudio's own buffer)
//! is not included.
#![allow(clippy::print_stdout)]

use earshot_api::CallsQuery;
use earshot_client::{Api, History, Player};
use earshot_policy::{AppContext, RecordingKind};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, email, password, rest @ ..] = args.as_slice() else {
        return Err("usage: first_audio SERVER EMAIL PASSWORD [RUNS]".into());
    };
    let runs: usize = rest.first().map_or(Ok(5), |r| r.parse())?;
    let (api, _session) = Api::log_in(server, email, password).await?;
    let snapshot = api.sync().await?;
    let app = AppContext::Dashboard;
    let mut history = History::new(&snapshot, app);
    let mut cursor = None;
    loop {
        let query = CallsQuery {
            app: Some(app),
            has_recording: Some(true),
            cursor,
            limit: Some(200),
            ..CallsQuery::default()
        };
        let page = api.calls(&query).await?;
        cursor = page.next_cursor.clone();
        history.extend(page);
        if cursor.is_none() {
            break;
        }
    }
    let longest = history
        .calls()
        .iter()
        .filter(|c| history.may_play(c.call.id, RecordingKind::Call))
        .max_by_key(|c| c.call.recording.as_ref().map_or(0, |r| r.duration_ms))
        .ok_or("no recording this user may play")?;
    let call = longest.call.id;
    let minutes = longest.call.recording.as_ref().map_or(0, |r| r.duration_ms) / 60_000;
    println!("recording of call {call}: {minutes} min");
    let mut firsts = Vec::new();
    for run in 1..=runs {
        let pressed = Instant::now();
        let player = Player::open(&api, &history, call, RecordingKind::Call, None).await?;
        let opened = pressed.elapsed();
        player.play();
        while player.status().position_ms == 0 {
            if pressed.elapsed() > Duration::from_secs(10) {
                return Err("no audio within 10 s".into());
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        let first = pressed.elapsed();
        println!("run {run}: opened in {} ms, first audio at {} ms", opened.as_millis(), first.as_millis());
        firsts.push(first);
        drop(player);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    firsts.sort();
    println!("median first audio: {} ms over {runs} runs", firsts[firsts.len() / 2].as_millis());
    Ok(())
}
