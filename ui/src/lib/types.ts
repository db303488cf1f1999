// The shapes the app's Rust side hands the ui (src-tauri/src/dto.rs).
// FIXME(issue 5): generate these from the Rust DTOs (ts-rs) instead of
// keeping them by hand.

export type AppContext = 'calling' | 'dashboard' | 'analytics';
export type Direction = 'inbound' | 'outbound' | 'internal';
export type CallStatus = 'answered' | 'missed' | 'voicemail' | 'unanswered';

export interface Me {
  server: string;
  email: string;
  name: string;
  role: 'admin' | 'supervisor' | 'analyst' | 'agent';
  company: string;
}

export interface CallRow {
  id: number;
  direction: Direction;
  status: CallStatus;
  started_at: number;
  duration_ms: number | null;
  other_party: string;
  number: string | null;
  has_recording: boolean;
  can_play: boolean;
  can_download: boolean;
}

export interface HistoryView {
  calls: CallRow[];
  complete: boolean;
}

/** A refusal from the Rust side: `code` is stable, `message` is for people. */
export interface AppError {
  code: string;
  message: string;
}

export function isAppError(value: unknown): value is AppError {
  return typeof value === 'object' && value !== null && 'code' in value && 'message' in value;
}
