import { invoke } from '@tauri-apps/api/core';
import type { Backend, LastLogin } from './backend';
import type { AppContext, HistoryView, Me } from './types';

/** The Rust side of the app, through Tauri commands (src-tauri/src/lib.rs). */
export class TauriBackend implements Backend {
  lastLogin(): Promise<LastLogin | null> {
    return invoke('last_login');
  }
  resume(): Promise<Me | null> {
    return invoke('resume');
  }
  logIn(server: string, email: string, password: string): Promise<Me> {
    return invoke('log_in', { server, email, password });
  }
  logOut(): Promise<void> {
    return invoke('log_out');
  }
  history(app: AppContext, more: boolean): Promise<HistoryView> {
    return invoke('history', { appContext: app, more });
  }
}
