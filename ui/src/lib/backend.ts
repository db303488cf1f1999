// The one interface the ui talks to (STYLE.md): the Tauri implementation in
// the app, a mock in component tests and browser previews.

import type { AppContext, HistoryView, LastLogin, Me } from './types';

export type { LastLogin };

export interface Backend {
  /** The server and e-mail used last, to fill the log-in form. */
  lastLogin(): Promise<LastLogin | null>;
  /** Signs in again with the token in the OS keyring, if there is one. */
  resume(): Promise<Me | null>;
  logIn(server: string, email: string, password: string): Promise<Me>;
  logOut(): Promise<void>;
  /** The history of `app`; `more` fetches the next page. */
  history(app: AppContext, more: boolean): Promise<HistoryView>;
}
