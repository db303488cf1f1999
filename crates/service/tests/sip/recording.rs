//! Recordings of real calls checked as a listener would (SPEC §6): speech
//! where recording was on, exact silence (or a cut) where it was paused,
//! nothing said while paused anywhere in the file, codes refused or ignored
//! where the rules say so, and a crash that loses nothing.
//!
//! The agent's device and the caller play scripted tracks. While the
//! recording should be paused, each plays a pure tone of its own (1.7 kHz
//! agent, 2.3 kHz caller), so any leak of the paused span is audible in the
//! file as that tone.

use super::audio::{Heard, Track};
use super::support::{Peer, Service, Sipp};
use serde_json::{Value, json};

const AGENT_TONE: f64 = 1_700.0;
const CALLER_TONE: f64 = 2_300.0;

/// The agent: speaks, keys `#11#` at 3 s, plays a tone while paused, keys `#12#` at 7 s, speaks again.
fn agent_track() -> Track {
    Track::new()
        .speech(0, "agent-greeting", 2_500)
        .keys(3_000, "#11#", 250)
        .tone(4_500, AGENT_TONE, 2_000)
        .keys(7_000, "#12#", 250)
        .speech(8_500, "agent-solved", 2_500)
        .until(11_500)
}

/// The caller: speaks, tone while the agent has paused, speaks again.
fn caller_track() -> Track {
    Track::new()
        .speech(300, "caller-hello", 2_200)
        .tone(4_500, CALLER_TONE, 2_000)
        .speech(8_500, "caller-thanks", 2_500)
        .until(11_500)
}

/// Places the scripted inbound call to a number whose flow is `flow`
/// (ringing Ada), with Ada's settings; returns the stored call and what
/// Ada's app was told meanwhile.
async fn scripted_call(
    company: Value,
    ada_settings: Value,
    flow_prefix: Vec<Value>,
) -> (Service, Value, String) {
    scripted_call_on(Service::start().await, company, ada_settings, flow_prefix).await
}

/// [`scripted_call`] through `service`.
async fn scripted_call_on(
    service: Service,
    company: Value,
    ada_settings: Value,
    flow_prefix: Vec<Value>,
) -> (Service, Value, String) {
    call_on(service, company, ada_settings, flow_prefix, &agent_track(), &caller_track(), 12_000).await
}

/// The same call through `service` with these tracks, the caller staying `talk_ms`.
async fn call_on(
    service: Service,
    company: Value,
    ada_settings: Value,
    flow_prefix: Vec<Value>,
    agent_track: &Track,
    caller_track: &Track,
    talk_ms: u64,
) -> (Service, Value, String) {
    service.settings(company).await;
    let ada = service.agent("Ada", "101", ada_settings).await;
    let mut flow = flow_prefix;
    flow.push(json!({"type": "ring_user", "user": ada, "timeout_s": 10}));
    service.number("+15550100", Value::Array(flow)).await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, caller) = (dir.path().join("agent.pcap"), dir.path().join("caller.pcap"));
    agent_track.write_pcap(&agent);
    caller_track.write_pcap(&caller);
    let (mut device, port) = Sipp::device(&Peer { pcap: Some(&agent), ..Peer::default() });
    assert!(service.register("101", port));
    let pushed = service.listen("101@acme.test", "password-101").await;
    let mut call = Sipp::call(
        &service,
        "15550100",
        None,
        &Peer {
            scenario: "call.xml",
            pcap: Some(&caller),
            talk_ms,
            from: "+447700900123",
            ..Peer::default()
        },
    );
    assert!(call.wait(), "caller: {}\n{}", call.errors(), service.log());
    assert!(device.wait(), "device: {}", device.errors());
    let calls = service.wait_for_calls(1).await;
    let stored = calls[0].clone();
    let pushed = pushed.lock().unwrap().clone();
    (service, stored, pushed)
}

/// The `recording_state` values pushed to the app, in order.
fn pushed_states(pushed: &str) -> Vec<String> {
    pushed
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .filter(|change| change["kind"] == "recording_state")
        .map(|change| change["state"].as_str().unwrap().to_owned())
        .collect()
}

fn trace_events(call: &Value) -> Vec<String> {
    call["recording_trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["event"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_no_leak(heard: &Heard) {
    for (channel, tone) in [(0, AGENT_TONE), (1, CALLER_TONE), (0, CALLER_TONE), (1, AGENT_TONE)] {
        let share = heard.tone_share(channel, tone);
        assert!(
            share < 0.5,
            "the {tone} Hz tone said while paused is in channel {channel} (share {share:.2})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_2_pause_and_resume_leave_exact_silence_and_no_leak() {
    pause_and_resume(Service::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_recordings_in_s3_a_call_is_uploaded_at_hang_up_and_plays_from_the_store() {
    let s3 = crate::s3::S3Server::start().await;
    let service = pause_and_resume(Service::start_with_s3(&s3).await).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let metrics = loop {
        let metrics = service.metrics().await;
        if metrics.contains("earshot_recording_uploads_total 1") || std::time::Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(metrics.contains("earshot_recording_uploads_total 1"), "{metrics}\n{}", service.log());
    assert!(metrics.contains("earshot_recording_uploads_pending 0"), "{metrics}");
    let calls = service.calls().await;
    let recording = calls[0]["recording"]["id"].as_i64().unwrap();
    let company = std::fs::read_dir(s3.object("")).unwrap().next().unwrap().unwrap().path();
    let stored = std::fs::read_dir(&company).unwrap().next().unwrap().unwrap().path();
    assert!(service.download(recording).await == std::fs::read(stored).unwrap(), "played from the store");
    assert_eq!(
        std::fs::read_dir(service.dir.path().join("recordings").join(company.file_name().unwrap()))
            .unwrap()
            .count(),
        0
    );
}

/// The call of the test above; its checks hold wherever recordings are kept.
async fn pause_and_resume(service: Service) -> Service {
    let (service, call, pushed) = scripted_call_on(
        service,
        json!({"record_inbound": true, "paused_audio": "silence"}),
        json!({"recording_control": true}),
        vec![],
    )
    .await;
    assert_eq!(trace_events(&call), ["decided", "paused", "resumed"], "{call}");
    assert_eq!(pushed_states(&pushed), ["recording", "paused", "recording"], "{pushed}");
    let recording = &call["recording"];
    let spans = recording["paused_spans"].as_array().unwrap();
    assert_eq!(spans.len(), 1, "{recording}");
    let (start, end) =
        (spans[0]["start_ms"].as_u64().unwrap() as usize, spans[0]["end_ms"].as_u64().unwrap() as usize);
    // From the end of #11# (its last key from 3.75 s to 3.87 s) to the start
    // of #12# (7 s), give or take call set-up.
    assert!((3_500..4_300).contains(&start) && (6_500..7_300).contains(&end), "span {start}–{end}");
    let heard = Heard::read(&service.download(recording["id"].as_i64().unwrap()).await);
    assert_eq!(heard.channels, 2);
    // Left is the agent, right the caller; both spoke before and after the pause.
    assert!(heard.rms(0, 200, 2_400) > 300.0, "agent before: {}", heard.rms(0, 200, 2_400));
    assert!(heard.rms(1, 600, 2_400) > 300.0, "caller before: {}", heard.rms(1, 600, 2_400));
    assert!(heard.rms(0, end + 900, end + 3_000) > 300.0, "agent after");
    assert!(heard.rms(1, end + 900, end + 3_000) > 300.0, "caller after");
    // The paused span is silence to the sample, on both channels.
    let paused = &heard.frames[start * 8..end * 8];
    assert!(paused.iter().all(|f| *f == [0, 0]), "audio inside the paused span");
    assert_no_leak(&heard);
    assert!(heard.duration_ms() >= 11_000, "silence keeps the timeline: {} ms", heard.duration_ms());
    service
}

/// A call whose agent talks without a break while keying `#11#` (its keys
/// `gap_11` ms apart) and later `#12#` (`gap_12` apart), each key 180 ms,
/// and its file lined up with what the agent's track sent. Everything the
/// agent said up to the end of the `#11#` event is checked to be in the
/// file, as sent.
struct Exact {
    /// What the agent's track sent, as heard.
    sent: Vec<i16>,
    /// Where the pause must begin and end on the track's clock: the end of
    /// `#11#`'s last event, the start of `#12#`'s first.
    pause: usize,
    resume: usize,
    call: Value,
    heard: Heard,
    /// The file's first sample of the agent, and the track's sample it is.
    first: usize,
    track: usize,
}

impl Exact {
    /// The file's sample of the track's sample `i`.
    fn file(&self, i: usize) -> usize {
        self.first + i - self.track
    }
}

async fn exact_call(paused_audio: &str, gap_11: usize, gap_12: usize) -> Exact {
    let resume_at = 3_000 + 3 * gap_11 + 2_500;
    let end = resume_at + 3 * gap_12 + 3_000;
    let agent = Track::new()
        .talk(0, end)
        .keys_held(3_000, "#11#", gap_11, 180)
        .keys_held(resume_at, "#12#", gap_12, 180)
        .until(end);
    let caller = Track::new().speech(300, "caller-hello", 2_200).until(end);
    let spans = agent.key_spans();
    assert_eq!(spans.len(), 8);
    let (pause, resume) = (spans[3].1, spans[4].0);
    let (service, call, _) = call_on(
        Service::start().await,
        json!({"record_inbound": true, "paused_audio": paused_audio}),
        json!({"recording_control": true}),
        vec![],
        &agent,
        &caller,
        end as u64 + 500,
    )
    .await;
    assert_eq!(trace_events(&call), ["decided", "paused", "resumed"], "{call}");
    let heard = Heard::read(&service.download(call["recording"]["id"].as_i64().unwrap()).await);
    let sent = agent.heard();
    let (first, track) = line_up(&sent, &heard);
    assert_left_is(&heard, first, &sent, track, pause - track, "before the pause");
    Exact { sent, pause, resume, call, heard, first, track }
}

/// Where the file's left channel lines up with the agent's track: the
/// first sample the file holds of it (the recording starts when the call is
/// bridged, perhaps after the agent's first packets) and the track sample
/// it is. Returns (file index, track index) of that sample.
fn line_up(sent: &[i16], heard: &Heard) -> (usize, usize) {
    let first = heard.frames.iter().position(|f| f[0] != 0).expect("the agent in the file");
    let window: Vec<i16> = heard.frames[first..first + 320].iter().map(|f| f[0]).collect();
    let track =
        sent.windows(320).position(|w| w == window.as_slice()).expect("the file's start in the track");
    (first, track)
}

/// The left channel from `from` equals what the track sent from `sent_from`, for `count` samples.
fn assert_left_is(heard: &Heard, from: usize, sent: &[i16], sent_from: usize, count: usize, what: &str) {
    for i in 0..count {
        let (got, want) = (heard.frames[from + i][0], sent[sent_from + i]);
        assert_eq!(got, want, "{what}: sample {} of the file, {} of the track", from + i, sent_from + i);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_2_silence_starts_at_the_end_of_11_and_ends_at_the_start_of_12_to_the_sample() {
    // #11# keyed quickly, #12# slowly (2.9 s between keys, inside the 3 s limit).
    let exact = exact_call("silence", 300, 2_900).await;
    let Exact { sent, pause, resume, call, heard, .. } = &exact;
    let (pause, resume) = (*pause, *resume);
    let file = |i: usize| exact.file(i);
    // Nothing from there to the start of the #12# event, on either channel.
    let silent = &heard.frames[file(pause)..file(resume)];
    assert!(silent.iter().all(|f| *f == [0, 0]), "audio inside the paused span");
    // Everything from the start of the #12# event on.
    let rest = (heard.frames.len() - file(resume)).min(sent.len() - resume);
    assert!(rest > 16_000, "{rest} samples after the resume");
    assert_left_is(heard, file(resume), sent, resume, rest, "after the resume");
    let span = &call["recording"]["paused_spans"][0];
    assert_eq!(span["start_ms"], file(pause) as u64 / 8, "{span}");
    assert_eq!(span["end_ms"], file(resume) as u64 / 8, "{span}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_2_skip_cuts_from_the_end_of_11_to_the_start_of_12_to_the_sample() {
    // #11# keyed slowly (2.9 s between keys), #12# quickly.
    let exact = exact_call("skip", 2_900, 300).await;
    let Exact { sent, pause, resume, call, heard, .. } = &exact;
    let (pause, resume) = (*pause, *resume);
    let file = |i: usize| exact.file(i);
    // The sample after the end of #11# is the one said at the start of #12#.
    let rest = (heard.frames.len() - file(pause)).min(sent.len() - resume);
    assert!(rest > 16_000, "{rest} samples after the cut");
    assert_left_is(heard, file(pause), sent, resume, rest, "after the cut");
    // The span says where the cut is and how long it was.
    let span = &call["recording"]["paused_spans"][0];
    assert_eq!(span["start_ms"], file(pause) as u64 / 8, "{span}");
    assert_eq!(span["end_ms"], span["start_ms"], "{span}");
    assert_eq!(span["cut_ms"], (resume - pause) as u64 / 8, "{span}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_2_skip_cuts_the_paused_span_out() {
    let (service, call, _) = scripted_call(
        json!({"record_inbound": true, "paused_audio": "skip"}),
        json!({"recording_control": true}),
        vec![],
    )
    .await;
    assert_eq!(trace_events(&call), ["decided", "paused", "resumed"]);
    let heard = Heard::read(&service.download(call["recording"]["id"].as_i64().unwrap()).await);
    assert_no_leak(&heard);
    // About 12 s of call less about 4 s of pause.
    assert!((6_500..9_500).contains(&heard.duration_ms()), "{} ms", heard.duration_ms());
    assert!(heard.rms(0, 200, 2_400) > 300.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d4_codes_are_refused_without_recording_control() {
    let (service, call, pushed) = scripted_call(
        json!({"record_inbound": true, "agent_recording_control": false}),
        json!({"recording_control": false}),
        vec![],
    )
    .await;
    assert_eq!(trace_events(&call), ["decided", "refused", "refused"], "{call}");
    // Ada's app is told, with the reason in words.
    let refusals = pushed.matches("\"kind\":\"recording_refused\"").count();
    assert_eq!(refusals, 2, "{pushed}");
    assert!(pushed.contains("recording control is off for you"), "{pushed}");
    assert_eq!(call["recording_trace"][1]["event"]["reason"], "no_recording_control");
    let heard = Heard::read(&service.download(call["recording"]["id"].as_i64().unwrap()).await);
    assert!(call["recording"]["paused_spans"].as_array().unwrap().is_empty());
    // Never paused: what was said "while paused" is in the file.
    assert!(heard.tone_share(0, AGENT_TONE) > 0.5, "the agent's tone is recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d5_codes_cannot_change_a_call_flow_decision() {
    let (service, call, _) = scripted_call(
        json!({"record_inbound": false}),
        json!({"recording_control": true}),
        vec![json!({"type": "record", "enabled": true})],
    )
    .await;
    assert_eq!(call["decided_by"], "call_flow");
    assert_eq!(trace_events(&call), ["decided", "refused", "refused"], "{call}");
    assert_eq!(call["recording_trace"][1]["event"]["reason"], "decided_by_call_flow");
    let heard = Heard::read(&service.download(call["recording"]["id"].as_i64().unwrap()).await);
    assert!(heard.tone_share(1, CALLER_TONE) > 0.5, "recording went on through the codes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_2_hash_12_starts_a_recording_the_company_had_off() {
    let (service, call, _) =
        scripted_call(json!({"record_inbound": false}), json!({"recording_control": true}), vec![]).await;
    assert_eq!(call["decided_by"], "user");
    // #11# had nothing to pause (not in the trace); #12# started the recording.
    assert_eq!(trace_events(&call), ["decided", "started"], "{call}");
    let heard = Heard::read(&service.download(call["recording"]["id"].as_i64().unwrap()).await);
    // The recording starts at #12# (7.75 s in): only the last ~4 s, without the tones.
    assert!((3_000..5_500).contains(&heard.duration_ms()), "{} ms", heard.duration_ms());
    assert_no_leak(&heard);
    assert!(heard.rms(0, 700, 3_000) > 300.0, "the agent's closing speech is in it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_call_leaves_a_playable_recording_the_call_in_history_and_both_legs_ended() {
    crash_mid_call(Service::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_recordings_in_s3_a_crash_mid_call_is_repaired_then_uploaded_at_restart() {
    let s3 = crate::s3::S3Server::start().await;
    let service = crash_mid_call(Service::start_with_s3(&s3).await).await;
    // The repaired recording leaves this machine for the store once the call is stored.
    let spool = service.dir.path().join("recordings");
    let wavs = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|company| std::fs::read_dir(company.path()).into_iter().flatten().flatten())
            .map(|file| file.path())
            .filter(|path| path.extension().is_some_and(|e| e == "wav"))
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !wavs(&spool).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(wavs(&spool).is_empty(), "still on this machine: {:?}\n{}", wavs(&spool), service.log());
    let stored = wavs(&s3.object(""));
    assert_eq!(stored.len(), 1, "{stored:?}");
    let calls = service.calls().await;
    let recording = calls[0]["recording"]["id"].as_i64().unwrap();
    let from_store = service.download(recording).await;
    assert!(from_store == std::fs::read(&stored[0]).unwrap(), "the download is the stored object");
    assert!(Heard::read(&from_store).duration_ms() >= 6_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_while_a_voicemail_is_left_keeps_the_message_and_ends_the_callers_leg() {
    let (service, call) = crash_in_voicemail(9_000).await;
    assert_eq!(call["status"], "voicemail", "{call}");
    let voicemail = call["voicemail"]["id"].as_i64().expect("the message kept");
    let heard = Heard::read(&service.download(voicemail).await);
    assert_eq!(heard.channels, 1);
    assert!(heard.duration_ms() >= 3_000, "{} ms kept", heard.duration_ms());
    let loudest =
        (0..heard.duration_ms() / 500).map(|i| heard.rms(0, i * 500, i * 500 + 500)).fold(0.0, f64::max);
    assert!(loudest > 500.0, "the caller's words before the crash are in it (loudest RMS {loudest})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_the_greeting_ends_the_callers_leg_and_lists_a_missed_call() {
    let (_service, call) = crash_in_voicemail(2_500).await;
    assert_eq!(call["status"], "missed", "{call}");
    assert!(call["voicemail"].is_null(), "{call}");
}

/// A caller reaches voicemail (after ringing Ada for 1 s) and `earshotd` is
/// killed `kill_at_ms` into the call; the restarted service must end the
/// caller's leg, which never hangs up by itself. The call as stored.
async fn crash_in_voicemail(kill_at_ms: u64) -> (Service, Value) {
    let mut service = Service::start().await;
    service.voicemail_line().await;
    let dir = tempfile::tempdir().unwrap();
    let speech = dir.path().join("message.pcap");
    // The greeting and tone take about 4.5 s; the caller speaks from 5 s on.
    Track::new().speech(5_000, "caller-voicemail", 6_000).until(30_000).write_pcap(&speech);
    let mut caller = Sipp::call(
        &service,
        "15550100",
        None,
        &Peer {
            scenario: "call_until_bye.xml",
            pcap: Some(&speech),
            from: "+447700900123",
            ..Peer::default()
        },
    );
    tokio::time::sleep(std::time::Duration::from_millis(kill_at_ms)).await;
    service.kill();
    // A journal the crash left unreadable is set aside; it stops nothing.
    let journals = service.dir.path().join("calls-in-progress");
    std::fs::write(journals.join("broken.json"), b"{\"call\": tru").unwrap();
    service.launch().await;
    assert!(caller.wait(), "the caller's leg was not ended: {}\n{}", caller.errors(), service.log());
    assert!(journals.join("broken.json.failed").exists(), "{}", service.log());
    let pending = service.dir.path().join("legs-to-end");
    for _ in 0..50 {
        if std::fs::read_dir(&pending).map_or(0, Iterator::count) == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(std::fs::read_dir(&pending).map_or(0, Iterator::count), 0, "a leg kept after its BYE");
    let calls = service.wait_for_calls(1).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = calls[0].clone();
    (service, call)
}

/// Sealed at rest (issue 18, part 5): killed mid-call, the recording is
/// repaired and plays as the plain one does, and nothing on the disk is a WAV.
#[tokio::test]
async fn a_sealed_recording_survives_a_crash_mid_call_and_its_file_is_noise() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("recordings.key");
    std::fs::write(&key_file, [7_u8; 32]).unwrap();
    let service = crash_mid_call(Service::start_sealed(&key_file).await).await;
    let mut files = Vec::new();
    let mut dirs = vec![service.dir.path().join("recordings")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            if entry.path().is_dir() { dirs.push(entry.path()) } else { files.push(entry.path()) }
        }
    }
    assert!(!files.is_empty());
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        assert!(bytes.starts_with(b"ESHSEAL1"), "{} is sealed", file.display());
        assert!(!bytes.windows(4).any(|w| w == b"RIFF" || w == b"data"), "{} holds no WAV", file.display());
    }
}

async fn crash_mid_call(mut service: Service) -> Service {
    service.settings(json!({"record_inbound": true, "agent_recording_control": true})).await;
    let ada = service.agent("Ada", "101", json!({})).await;
    service.number("+15550100", json!([{"type": "ring_user", "user": ada}])).await;
    let dir = tempfile::tempdir().unwrap();
    let (speech, agent) = (dir.path().join("speech.pcap"), dir.path().join("agent.pcap"));
    Track::new().speech(0, "caller-voicemail", 6_000).until(30_000).write_pcap(&speech);
    // The agent pauses and resumes before the crash: the pause must survive it.
    Track::new()
        .speech(0, "agent-greeting", 2_000)
        .keys(2_500, "#11#", 250)
        .tone(3_700, AGENT_TONE, 1_000)
        .keys(5_000, "#12#", 250)
        .until(30_000)
        .write_pcap(&agent);
    let (mut device, port) = Sipp::device(&Peer { pcap: Some(&agent), talk_ms: 30_000, ..Peer::default() });
    assert!(service.register("101", port));
    // The carrier's caller never hangs up: it passes only if it gets a BYE.
    let mut caller = Sipp::call(
        &service,
        "15550100",
        None,
        &Peer {
            scenario: "call_until_bye.xml",
            pcap: Some(&speech),
            talk_ms: 30_000,
            from: "+447700900123",
            ..Peer::default()
        },
    );
    // Kill it well after the #12# (recordings are flushed every 100 ms).
    tokio::time::sleep(std::time::Duration::from_millis(9_500)).await;
    service.kill();
    service.launch().await;
    // Both far ends get their BYE from the restarted service (issue 18): the
    // carrier stops billing, the agent's phone hangs up.
    assert!(caller.wait(), "the carrier's leg was not ended: {}\n{}", caller.errors(), service.log());
    assert!(device.wait(), "the agent's leg was not ended: {}\n{}", device.errors(), service.log());
    let logged = || service.log().matches("ended a leg a crash left up").count();
    for _ in 0..50 {
        if logged() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(logged(), 2, "{}", service.log());
    let calls = service.wait_for_calls(1).await;
    let call = &calls[0];
    assert_eq!(call["status"], "answered");
    assert_eq!(call["parties"], json!([ada]));
    let recording = &call["recording"];
    let heard = Heard::read(&service.download(recording["id"].as_i64().unwrap()).await);
    assert!(heard.duration_ms() >= 6_000, "{} ms kept", heard.duration_ms());
    assert!(heard.rms(1, 200, 2_000) > 300.0, "the speech before the kill is playable");
    let spans = recording["paused_spans"].as_array().expect("paused spans");
    assert_eq!(spans.len(), 1, "the pause is kept: {recording}");
    let (start, end) =
        (spans[0]["start_ms"].as_u64().unwrap() as usize, spans[0]["end_ms"].as_u64().unwrap() as usize);
    // From the end of #11# (3.37 s into the agent's track) to the start of
    // #12# (5 s), give or take where the file begins.
    assert!((2_500..5_000).contains(&start) && (4_500..8_000).contains(&end), "span {start}–{end}");
    for channel in [0, 1] {
        assert!(heard.rms(channel, start, end) == 0.0, "channel {channel} is silent in the span");
    }
    assert_eq!(trace_events(call), ["decided", "paused", "resumed"], "the codes survive the crash: {call}");
    service
}
