// Generated from earshot-client's `view` types by ts-rs; do not edit.
// After changing them: UPDATE_UI_TYPES=1 cargo test -p earshot-client ui_types

export type Me = { 
/**
 * The server.
 */
server: string, 
/**
 * E-mail.
 */
email: string, 
/**
 * Name.
 */
name: string, 
/**
 * Role (`admin`, `supervisor`, `analyst`, `agent`).
 */
role: string, 
/**
 * The company's name.
 */
company: string, };
export type LastLogin = { 
/**
 * The server.
 */
server: string, 
/**
 * E-mail.
 */
email: string, };
export type CallRow = { 
/**
 * The call's id.
 */
id: number, 
/**
 * `inbound`, `outbound` or `internal`.
 */
direction: string, 
/**
 * `answered`, `missed`, `voicemail` or `unanswered`.
 */
status: string, 
/**
 * When it started, ms since the epoch.
 */
started_at: number, 
/**
 * How long it was answered, when it was.
 */
duration_ms: number | null, 
/**
 * The external number, or the other user of an internal call.
 */
other_party: string, 
/**
 * The name of the contact the external number belongs to, when known.
 */
contact: string | null, 
/**
 * The company number used, E.164.
 */
number: string | null, 
/**
 * It has a recording or voicemail.
 */
has_recording: boolean, 
/**
 * The user may play it (a player is shown).
 */
can_play: boolean, 
/**
 * The user may download it.
 */
can_download: boolean, };
export type HistoryFilter = { 
/**
 * `inbound`, `outbound` or `internal`.
 */
direction?: string, 
/**
 * `answered`, `missed`, `voicemail` or `unanswered`.
 */
status?: string, 
/**
 * Started at or after, ms since the epoch.
 */
from?: number, 
/**
 * Started before, ms since the epoch.
 */
to?: number, 
/**
 * A user who was a party.
 */
user?: number, 
/**
 * The company number used.
 */
number?: number, 
/**
 * A group one of whose members was a party.
 */
group?: number, 
/**
 * The contact the call was with.
 */
contact?: number, 
/**
 * With (true) or without (false) a recording or voicemail.
 */
has_recording?: boolean, 
/**
 * Text in the external number or the contact's name.
 */
search?: string, };
export type HistoryWindow = { 
/**
 * Where `calls` start in the list.
 */
offset: number, 
/**
 * The rows.
 */
calls: Array<CallRow>, 
/**
 * Calls loaded so far (the list's length until `complete`).
 */
loaded: number, 
/**
 * Every page has been loaded.
 */
complete: boolean, };
export type Named = { 
/**
 * Id.
 */
id: number, 
/**
 * Name.
 */
name: string, };
export type Directory = { 
/**
 * Users.
 */
users: Array<Named>, 
/**
 * Groups.
 */
groups: Array<Named>, 
/**
 * Company numbers, named "Support line (+44…)".
 */
numbers: Array<Named>, };
export type RecordingView = { 
/**
 * `call` or `voicemail`.
 */
kind: string, 
/**
 * Length, ms.
 */
duration_ms: number, 
/**
 * Size of the WAV, bytes.
 */
size_bytes: number, 
/**
 * Spans paused by `#11#`, `[start_ms, end_ms, cut_ms]`: silent from
 * start to end, or (`paused_audio = skip`) cut out at start = end,
 * `cut_ms` long.
 */
paused_spans: Array<[number, number, number]>, 
/**
 * The player is shown.
 */
can_play: boolean, 
/**
 * The download button is shown.
 */
can_download: boolean, 
/**
 * The name a save dialog proposes.
 */
file_name: string, 
/**
 * When it is deleted: when, by whom and why, in words (no player then).
 */
deleted: string | null, };
export type TraceLine = { 
/**
 * When, ms since the epoch.
 */
at: number, 
/**
 * What happened, in words.
 */
text: string, };
export type CallDetails = { 
/**
 * As in the list.
 */
row: CallRow, 
/**
 * When it was answered.
 */
answered_at: number | null, 
/**
 * When it ended.
 */
ended_at: number | null, 
/**
 * The company number, named.
 */
number_name: string | null, 
/**
 * The contact, when known.
 */
contact: Named | null, 
/**
 * The users on the call.
 */
parties: Array<string>, 
/**
 * The users whose phones rang.
 */
rang: Array<string>, 
/**
 * The recording and the voicemail, those it has.
 */
recordings: Array<RecordingView>, 
/**
 * Why it was (not) recorded, oldest first; empty when recording was never decided.
 */
trace: Array<TraceLine>, 
/**
 * The legal hold on the call, in words ("On legal hold since … (Alex Admin)").
 */
legal_hold: string | null, };
export type PlayerState = { 
/**
 * The call.
 */
call: number, 
/**
 * `call` or `voicemail`.
 */
kind: string, 
/**
 * Position in the recording, ms.
 */
position_ms: number, 
/**
 * The recording's length, ms.
 */
duration_ms: number, 
/**
 * Playing (not paused, not ended).
 */
playing: boolean, 
/**
 * Played to the end.
 */
ended: boolean, 
/**
 * Speed, 0.5 to 2.
 */
speed: number, 
/**
 * Why it stopped, when it did not end normally (a revoked right, the server gone).
 */
error: string | null, };
export type Status = { 
/**
 * Position in the recording, ms.
 */
position_ms: number, 
/**
 * The recording's length, ms.
 */
duration_ms: number, 
/**
 * Playing (not paused, not ended).
 */
playing: boolean, 
/**
 * Played to the end.
 */
ended: boolean, 
/**
 * Speed, 0.5 to 2.
 */
speed: number, 
/**
 * Why it stopped, when it did not end normally (a revoked right, the server gone).
 */
error: string | null, };
export type PlayerCommand = { "do": "play" } | { "do": "pause" } | { "do": "seek", 
/**
 * Where.
 */
position_ms: number, } | { "do": "speed", 
/**
 * How fast.
 */
speed: number, } | { "do": "stop" };
export type AudioDevice = { 
/**
 * Stable id, to choose it again.
 */
id: string, 
/**
 * What to show.
 */
name: string, 
/**
 * The system's default one.
 */
is_default: boolean, };
export type ErrorCode = "offline" | "log_in_refused" | "session_ended" | "forbidden" | "not_found" | "service" | "keyring" | "file" | "invalid" | "protocol" | "no_microphone" | "no_speaker" | "microphone_failed" | "speaker_failed" | "phone";
export type PhoneStatus = "connecting" | "ready" | "offline";
export type CallStatus = "dialing" | "ringing" | "incoming" | "connected" | "ended";
export type CallRecording = "recording" | "paused" | "off";
export type CallQuality = { 
/**
 * Packets lost (never came, or came too late to play), % of expected.
 */
loss_percent: number, 
/**
 * RFC 3550 interarrival jitter, ms.
 */
jitter_ms: number, 
/**
 * The delay the jitter buffer adds now, ms.
 */
buffer_ms: number, 
/**
 * The round-trip time to the service's media relay (RTCP), ms; none
 * until its first report echoed ours (five seconds or so).
 */
round_trip_ms: number | null, 
/**
 * Estimated mean opinion score, 1–4.5 (G.107, the one-way delay taken
 * as the buffer's, half the round trip and 40 ms for packetisation and
 * the sound cards; 60 ms beyond the buffer before the round trip is
 * known).
 */
mos: number, };
export type CallView = { 
/**
 * Which call.
 */
id: number, 
/**
 * It rang here (we did not place it).
 */
incoming: boolean, 
/**
 * The other party's number or extension.
 */
number: string, 
/**
 * Their name, when known.
 */
name: string | null, 
/**
 * Where it is.
 */
status: CallStatus, 
/**
 * We hold them.
 */
held: boolean, 
/**
 * They hold us.
 */
held_by_them: boolean, 
/**
 * Our microphone is muted.
 */
muted: boolean, 
/**
 * When it was answered (ms since the epoch).
 */
connected_at: number | null, 
/**
 * Why it ended, for a person.
 */
ended: string | null, 
/**
 * A sound device problem the call goes on despite.
 */
audio_problem: string | null, 
/**
 * Recorded, paused or not, once the service said (after answer).
 */
recording: CallRecording | null, 
/**
 * Since when it is paused (ms since the epoch), for the reminder.
 */
paused_since: number | null, 
/**
 * Why the last pause or resume was refused (SPEC §6.2, D4, D5).
 */
refused: string | null, 
/**
 * How it sounds (after the first second or so of audio).
 */
quality: CallQuality | null, };
export type Colleague = { 
/**
 * Their name.
 */
name: string, 
/**
 * The extension to dial.
 */
extension: string, 
/**
 * Takes calls now (false: "Do not disturb": a call to them goes to
 * voicemail or is missed, per the flow).
 */
available: boolean, };
export type MicrophoneTest = { 
/**
 * The loudest sample, in dB below full scale.
 */
peak_dbfs: number, 
/**
 * The average level, in dB below full scale.
 */
rms_dbfs: number, 
/**
 * Whether it heard anything like a voice (the peak above −50 dBFS).
 */
heard: boolean, };
export type PhoneView = { 
/**
 * Registered or not.
 */
status: PhoneStatus, 
/**
 * Why not, for a person.
 */
detail: string | null, 
/**
 * The extension it rings on.
 */
extension: string, 
/**
 * Takes calls (false: "Do not disturb", kept by the service).
 */
available: boolean, 
/**
 * Every call, oldest first.
 */
calls: Array<CallView>, 
/**
 * The colleagues one can dial, by name (not oneself).
 */
directory: Array<Colleague>, };
export type AudioSettings = { 
/**
 * The microphone's id (`None`: the system's default).
 */
microphone: string | null, 
/**
 * The speaker's id (`None`: the system's default).
 */
speaker: string | null, 
/**
 * Where the ringtone plays: an output's id (`None`: the system's
 * default), which may be another than the call's speaker.
 */
ringer: string | null, 
/**
 * Cancel the speaker's echo in the microphone.
 */
echo_cancellation: boolean, 
/**
 * Suppress steady background noise.
 */
noise_suppression: boolean, 
/**
 * Bring the voice to an even level.
 */
gain_control: boolean, };
export type AppSettings = { 
/**
 * The output device's id; the system default when `None`.
 */
output_device: string | null, 
/**
 * How calls sound: microphone, speaker, processing.
 */
call_audio: AudioSettings, 
/**
 * After how many minutes a paused recording reminds the agent (0: never).
 */
pause_reminder_min: number, 
/**
 * `system`, `light` or `dark`.
 */
theme: Theme, };
export type Theme = "system" | "light" | "dark";
export type AppEvent = { "type": "history_changed", 
/**
 * `removed` calls are gone; the ui closes them if open.
 */
removed: Array<number>, } | { "type": "player", 
/**
 * Where it is.
 */
state: PlayerState, } | { "type": "download", 
/**
 * The call.
 */
call: number, 
/**
 * Bytes written.
 */
written: number, 
/**
 * Bytes in all, when known.
 */
total: number | null, } | { "type": "connection", 
/**
 * Connected now.
 */
online: boolean, 
/**
 * What happened, when offline.
 */
message: string | null, } | { "type": "session_ended", 
/**
 * The service's words.
 */
message: string, } | { "type": "phone", 
/**
 * The whole phone now.
 */
phone: PhoneView, } | { "type": "dial_request", 
/**
 * The number, cleaned.
 */
number: string, } | { "type": "microphone_level", 
/**
 * The loudest sample, dB below full scale.
 */
peak_dbfs: number, 
/**
 * The average level, dB below full scale.
 */
rms_dbfs: number, };
export type Breakdown = { 
/**
 * Inbound calls.
 */
inbound: number, 
/**
 * Outbound calls.
 */
outbound: number, 
/**
 * Internal calls.
 */
internal: number, 
/**
 * Answered calls.
 */
answered: number, 
/**
 * Missed calls.
 */
missed: number, 
/**
 * Calls that went to voicemail.
 */
voicemail: number, 
/**
 * Calls nobody answered (outbound and internal).
 */
unanswered: number, };
export type DayView = { 
/**
 * `YYYY-MM-DD` (UTC).
 */
day: string, 
/**
 * Its calls.
 */
calls: Breakdown, };
export type TotalsRow = { 
/**
 * The user or group.
 */
name: string, 
/**
 * Calls.
 */
calls: number, 
/**
 * Answered calls.
 */
answered: number, 
/**
 * Talk time, ms.
 */
talk_ms: number, 
/**
 * Answered calls recorded.
 */
recorded: number, };
export type Analytics = { 
/**
 * Range start, ms.
 */
from: number, 
/**
 * Range end (exclusive), ms.
 */
to: number, 
/**
 * Every call in the range, with the totals.
 */
total: TotalsRow, 
/**
 * Answered share of all calls.
 */
answered_rate: number | null, 
/**
 * Average talk time, ms.
 */
average_talk_ms: number | null, 
/**
 * Recorded share of answered calls.
 */
recorded_share: number | null, 
/**
 * By direction and status.
 */
calls: Breakdown, 
/**
 * Per UTC day.
 */
per_day: Array<DayView>, 
/**
 * Per user, most calls first.
 */
per_user: Array<TotalsRow>, 
/**
 * Per group, most calls first.
 */
per_group: Array<TotalsRow>, };
export type AdminUserView = { 
/**
 * As stored.
 */
user: AdminUser, 
/**
 * What applies in `calling` and `dashboard`.
 */
effective: EffectiveSettings, };
export type UnsetMeaning = { 
/**
 * The role.
 */
role: Role, 
/**
 * The effective values with nothing set.
 */
effective: EffectiveSettings, };
export type AdminData = { 
/**
 * Company settings (SPEC §3).
 */
settings: CompanySettings, 
/**
 * Users.
 */
users: Array<AdminUserView>, 
/**
 * What unset user settings mean, per role.
 */
unset: Array<UnsetMeaning>, 
/**
 * Groups with their members.
 */
groups: Array<GroupWithMembers>, 
/**
 * Numbers with their call flows.
 */
numbers: Array<Number>, 
/**
 * Contacts.
 */
contacts: Array<ContactOut>, };
export type AuditRow = { 
/**
 * The entry's id (the next page is before it).
 */
id: number, 
/**
 * When, ms since the epoch.
 */
at: number, 
/**
 * Who: a user's name, or "Earshot (retention)" for the service itself.
 */
user: string, 
/**
 * `play`, `download`, `delete`, `hold` or `release`.
 */
action: string, 
/**
 * The call.
 */
call: number, 
/**
 * Its direction (`inbound`, `outbound`, `internal`), when the call is still kept.
 */
call_direction: string | null, 
/**
 * When it started, ms since the epoch, when the call is still kept.
 */
call_started_at: number | null, 
/**
 * Who else was on it: the outside number, or the users of an internal call.
 */
call_with: string | null, 
/**
 * The recording; none for a hold on a call without one.
 */
recording: number | null, 
/**
 * From where.
 */
remote_addr: string | null, 
/**
 * With what.
 */
user_agent: string | null, };
export type AdminChange = { "kind": "settings", 
/**
 * Every setting.
 */
settings: CompanySettings, } | { "kind": "user", 
/**
 * Which, or a new one.
 */
id: number | null, 
/**
 * Every field.
 */
user: UserWrite, } | { "kind": "group", 
/**
 * Which, or a new one.
 */
id: number | null, 
/**
 * Name and members.
 */
group: GroupWrite, } | { "kind": "number", 
/**
 * Which, or a new one.
 */
id: number | null, 
/**
 * Number, name and flow.
 */
number: NumberWrite, } | { "kind": "contact", 
/**
 * Which, or a new one.
 */
id: number | null, 
/**
 * Name and numbers.
 */
contact: ContactWrite, } | { "kind": "delete", 
/**
 * `users`, `groups`, `numbers` or `contacts`.
 */
what: string, 
/**
 * Which.
 */
id: number, } | { "kind": "legal_hold", 
/**
 * Which call.
 */
call: number, 
/**
 * Hold, or lift the hold.
 */
held: boolean, } | { "kind": "delete_contact_recordings", 
/**
 * Which contact.
 */
contact: number, };
export type AdminUser = { 
/**
 * Disabled users can't log in; their sessions ended when they were disabled.
 */
disabled: boolean, 
/**
 * Whether a SIP password is set (the password itself is never shown).
 */
has_sip_password: boolean, 
/**
 * The company number this user's outbound calls show; unset means the
 * company's first number.
 */
caller_id: NumberId | null, 
/**
 * The user's id.
 */
id: UserId, 
/**
 * The company the user belongs to.
 */
company: CompanyId, 
/**
 * Display name.
 */
name: string, 
/**
 * Log-in e-mail address.
 */
email: string, 
/**
 * Role.
 */
role: Role, 
/**
 * SIP extension, when the user has a phone.
 */
extension: string | null, 
/**
 * Groups the user belongs to.
 */
groups: Array<GroupId>, 
/**
 * The user's own settings.
 */
settings: UserSettings, };
export type UserWrite = { 
/**
 * Display name.
 */
name: string, 
/**
 * Log-in e-mail address.
 */
email: string, 
/**
 * Role.
 */
role: Role, 
/**
 * SIP extension, 2 to 8 digits.
 */
extension: string | null, 
/**
 * Groups.
 */
groups: Array<GroupId>, 
/**
 * Own settings; unset means company default (agents) or not configured (D1).
 */
settings: UserSettings, 
/**
 * New log-in password; required when creating, kept when omitted on update.
 */
password: string | null, 
/**
 * New SIP password; kept when omitted.
 */
sip_password: string | null, 
/**
 * Disabled users can't log in; kept when omitted.
 */
disabled: boolean | null, 
/**
 * The company number (id) outbound calls show as caller ID; unset means
 * the company's first number.
 */
caller_id: NumberId | null, };
export type GroupWithMembers = { 
/**
 * Its members.
 */
members: Array<UserId>, 
/**
 * The group's id.
 */
id: GroupId, 
/**
 * The company the group belongs to.
 */
company: CompanyId, 
/**
 * Display name.
 */
name: string, };
export type GroupWrite = { 
/**
 * Display name.
 */
name: string, 
/**
 * Members.
 */
members: Array<UserId>, };
export type NumberWrite = { 
/**
 * The number, E.164.
 */
e164: string, 
/**
 * Display name.
 */
name: string, 
/**
 * The call flow.
 */
flow: Flow, };
export type ContactOut = { 
/**
 * Id.
 */
id: ContactId, 
/**
 * Name.
 */
name: string, 
/**
 * Phone numbers, E.164.
 */
numbers: Array<string>, };
export type ContactWrite = { 
/**
 * Name.
 */
name: string, 
/**
 * Phone numbers, E.164.
 */
numbers: Array<string>, };
export type CompanySettings = { 
/**
 * Record inbound calls (unless a call-flow `record` step decides).
 */
record_inbound: boolean, 
/**
 * Record outbound calls.
 */
record_outbound: boolean, 
/**
 * Record internal calls.
 */
record_internal: boolean, 
/**
 * Users may pause and start recordings with `#11#` / `#12#` (company value of `recording_control`, D4).
 */
agent_recording_control: boolean, 
/**
 * Which calls agents see.
 */
agent_call_visibility: CallVisibility, 
/**
 * Which recordings agents may play.
 */
agent_recording_playback: RecordingPlayback, 
/**
 * Agents may download the recordings they may play.
 */
agent_can_download: boolean, 
/**
 * What a paused span becomes in the recording file.
 */
paused_audio: PausedAudio, 
/**
 * Days call recordings and voicemails are kept, counted from the call's
 * start; `null`: forever. Older ones are deleted by the service (the
 * calls stay), except those of calls on legal hold.
 */
recording_retention_days: number | null, };
export type UserSettings = { 
/**
 * May pause and start recordings from the keypad (D4).
 */
recording_control: boolean | null, 
/**
 * Which calls the user sees.
 */
call_visibility: CallVisibility | null, 
/**
 * Which recordings the user may play.
 */
recording_playback: RecordingPlayback | null, 
/**
 * May download the recordings the user may play.
 */
can_download: boolean | null, };
export type CallVisibility = "own_and_missed" | "via_groups" | "groups_and_numbers" | "all";
export type RecordingPlayback = "none" | "own_only" | "all_available";
export type PausedAudio = "silence" | "skip";
export type EffectiveSettings = { 
/**
 * Which calls the user sees.
 */
call_visibility: Effective<CallVisibility>, 
/**
 * Which recordings the user may play.
 */
recording_playback: Effective<RecordingPlayback>, 
/**
 * May the user download what they may play.
 */
can_download: Effective<boolean>, 
/**
 * May the user pause and start recordings with keypad codes (D4).
 */
recording_control: Effective<boolean>, };
export type SettingSource = "role" | "user" | "company" | "not_configured";
export type Effective<T> = { 
/**
 * The value that applies.
 */
value: T, 
/**
 * Why this value applies.
 */
source: SettingSource, };
export type Role = "admin" | "supervisor" | "analyst" | "agent";
export type User = { 
/**
 * The user's id.
 */
id: UserId, 
/**
 * The company the user belongs to.
 */
company: CompanyId, 
/**
 * Display name.
 */
name: string, 
/**
 * Log-in e-mail address.
 */
email: string, 
/**
 * Role.
 */
role: Role, 
/**
 * SIP extension, when the user has a phone.
 */
extension: string | null, 
/**
 * Groups the user belongs to.
 */
groups: Array<GroupId>, 
/**
 * The user's own settings.
 */
settings: UserSettings, };
export type Group = { 
/**
 * The group's id.
 */
id: GroupId, 
/**
 * The company the group belongs to.
 */
company: CompanyId, 
/**
 * Display name.
 */
name: string, };
export type Number = { 
/**
 * The number's id.
 */
id: NumberId, 
/**
 * The company the number belongs to.
 */
company: CompanyId, 
/**
 * The number in E.164 form, e.g. `+442071234567`.
 */
e164: string, 
/**
 * Display name, e.g. "Support line".
 */
name: string, 
/**
 * What an inbound call to this number goes through.
 */
flow: Flow, };
export type Flow = Array<{ "type": "record", 
/**
 * Whether the call is recorded.
 */
enabled: boolean, } | { "type": "announce", 
/**
 * What to play.
 */
prompt: Prompt, } | { "type": "menu", 
/**
 * What to play.
 */
prompt: Prompt, 
/**
 * The branch for each key.
 */
options: { [key in Key]: Array<Step> }, 
/**
 * The branch taken when no key (or a key with no branch) arrives in time.
 */
timeout: Array<Step>, 
/**
 * Seconds to wait for a key.
 */
timeout_s: number, } | { "type": "ring_user", 
/**
 * The user to ring.
 */
user: UserId, 
/**
 * Seconds to ring before the flow goes on.
 */
timeout_s: number, } | { "type": "ring_group", 
/**
 * The group to ring.
 */
group: GroupId, 
/**
 * All at once, or one after another.
 */
strategy: RingStrategy, 
/**
 * Seconds to ring before the flow goes on.
 */
timeout_s: number, } | { "type": "voicemail", }>;
export type Step = { "type": "record", 
/**
 * Whether the call is recorded.
 */
enabled: boolean, } | { "type": "announce", 
/**
 * What to play.
 */
prompt: Prompt, } | { "type": "menu", 
/**
 * What to play.
 */
prompt: Prompt, 
/**
 * The branch for each key.
 */
options: { [key in Key]: Array<Step> }, 
/**
 * The branch taken when no key (or a key with no branch) arrives in time.
 */
timeout: Array<Step>, 
/**
 * Seconds to wait for a key.
 */
timeout_s: number, } | { "type": "ring_user", 
/**
 * The user to ring.
 */
user: UserId, 
/**
 * Seconds to ring before the flow goes on.
 */
timeout_s: number, } | { "type": "ring_group", 
/**
 * The group to ring.
 */
group: GroupId, 
/**
 * All at once, or one after another.
 */
strategy: RingStrategy, 
/**
 * Seconds to ring before the flow goes on.
 */
timeout_s: number, } | { "type": "voicemail", };
export type Prompt = { "text": string } | { "audio": string };
export type RingStrategy = "simultaneous" | "round_robin";
export type Key = string;
export type UserId = number;
export type GroupId = number;
export type NumberId = number;
export type CompanyId = number;
export type ContactId = number;
export type UiError = { 
/**
 * From [`ClientError::code`].
 */
code: ErrorCode, 
/**
 * For the user.
 */
message: string, };
