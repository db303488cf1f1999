// The shapes the app's Rust side hands the ui: generated from
// earshot-client's `app` types (generated.ts), plus the words the ui
// matches on.

export type { CallRow, HistoryView, LastLogin, Me, UiError } from './generated';
import type { UiError } from './generated';

export type AppContext = 'calling' | 'dashboard' | 'analytics';

/** A refusal from the Rust side: `code` is stable, `message` is for people. */
export function isAppError(value: unknown): value is UiError {
  return typeof value === 'object' && value !== null && 'code' in value && 'message' in value;
}
