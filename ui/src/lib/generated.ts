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
 * Spans paused by `#11#`, `[start_ms, end_ms]`.
 */
paused_spans: Array<[number, number]>, 
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
file_name: string, };
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
trace: Array<TraceLine>, };
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
 * Position, ms.
 */
position_ms: number, 
/**
 * Length, ms.
 */
duration_ms: number, 
/**
 * Playing now.
 */
playing: boolean, 
/**
 * Played to the end.
 */
ended: boolean, 
/**
 * 0.5 to 2.
 */
speed: number, 
/**
 * Why it stopped, when it did not end normally.
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
export type OutputDevice = { 
/**
 * Stable id, to choose it again.
 */
id: string, 
/**
 * What to show.
 */
name: string, 
/**
 * The system's default output.
 */
is_default: boolean, };
export type AppSettings = { 
/**
 * The output device's id; the system default when `None`.
 */
output_device: string | null, 
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
message: string, };
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
export type UiError = { 
/**
 * From [`ClientError::code`].
 */
code: string, 
/**
 * For the user.
 */
message: string, };
