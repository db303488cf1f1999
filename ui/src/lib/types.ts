// The shapes the app's Rust side hands the ui: generated from
// earshot-client's `view` types (generated.ts), plus the words the ui
// matches on.

export type * from './generated';
import type { UiError } from './generated';

export type AppContext = 'calling' | 'dashboard' | 'analytics';
export type RecordingKind = 'call' | 'voicemail';

/** A refusal from the Rust side: `code` is stable, `message` is for people. */
export function isAppError(value: unknown): value is UiError {
  return typeof value === 'object' && value !== null && 'code' in value && 'message' in value;
}

/** What to show for any failure. */
export function messageOf(error: unknown): string {
  return isAppError(error) ? error.message : String(error);
}
