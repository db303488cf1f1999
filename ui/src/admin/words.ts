// What the company and user settings mean, in the admin screens' words
// (SPEC §3, §4.2, §5, D1–D5).
import type { CallVisibility, PausedAudio, RecordingPlayback, SettingSource } from '../lib/types';

export const visibilityText: Record<CallVisibility, string> = {
  own_and_missed: 'Own calls, and missed calls that rang them',
  via_groups: '… and calls that rang their groups',
  groups_and_numbers: '… and calls to their numbers and group numbers',
  all: 'Every call of the company',
};
export const playbackText: Record<RecordingPlayback, string> = {
  none: 'No recordings (no player)',
  own_only: 'Recordings of their own calls, and voicemails that rang them',
  all_available: 'Every recording of a call they can see',
};
export const pausedText: Record<PausedAudio, string> = {
  silence: 'Silence: the timeline is kept',
  skip: 'Skip: the paused span is cut out',
};
export const sourceText: Record<SettingSource, string> = {
  role: 'admin: unrestricted',
  user: 'own value',
  company: 'company default',
  not_configured: 'not configured',
};

export type SettingInfo = { key: string; label: string; help: string };
export const companySettings: SettingInfo[] = [
  { key: 'record_inbound', label: 'Record inbound calls', help: 'Unless a number’s call flow has a record step, which then decides.' },
  { key: 'record_outbound', label: 'Record outbound calls', help: 'Calls users place to outside numbers.' },
  { key: 'record_internal', label: 'Record internal calls', help: 'Calls between users.' },
  { key: 'agent_recording_control', label: 'Users may pause recordings (#11# / #12#)', help: 'The company default of “recording control”; a user’s own value overrides it. Never changes a recording a call flow decided.' },
  { key: 'agent_call_visibility', label: 'Calls agents see', help: 'Agents without a value of their own. Supervisors and analysts never follow this outside analytics (D1).' },
  { key: 'agent_recording_playback', label: 'Recordings agents may play', help: 'Agents without a value of their own; in analytics it applies to supervisors and analysts too (D2).' },
  { key: 'agent_can_download', label: 'Agents may download recordings', help: 'Only recordings they may play.' },
  { key: 'paused_audio', label: 'Paused spans in recordings', help: 'What a span paused by #11# becomes in the file.' },
  { key: 'recording_retention_days', label: 'Keep recordings and voicemails', help: 'Older ones are deleted by the service (the calls stay, marked “recording deleted”), except on calls under a legal hold. Each deletion is in the audit log.' },
];

import type { AdminChange } from '../lib/types';
/** Sends an admin's change; resolves to the refusal's words, or '' when applied. */
export type Save = (change: AdminChange, done?: string) => Promise<string>;
