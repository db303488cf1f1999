// Generated from earshot-client's `app` types by ts-rs; do not edit.
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
export type HistoryView = { 
/**
 * Newest first.
 */
calls: Array<CallRow>, 
/**
 * Every page is here.
 */
complete: boolean, };
export type UiError = { 
/**
 * From [`ClientError::code`].
 */
code: string, 
/**
 * For the user.
 */
message: string, };
