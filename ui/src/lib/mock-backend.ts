import type { Backend, LastLogin } from './backend';
import type { AppContext, CallRow, HistoryView, Me } from './types';

/** A backend in memory, for component tests and for running the ui in a browser. */
export class MockBackend implements Backend {
  me: Me | null = null;
  last: LastLogin | null = { server: 'http://127.0.0.1:8080', email: 'ada@acme.demo' };
  calls: CallRow[];

  constructor(calls = 40) {
    const now = Date.UTC(2026, 10, 24, 14, 0);
    this.calls = Array.from({ length: calls }, (_, i) => ({
      id: calls - i,
      direction: (['inbound', 'outbound', 'internal'] as const)[i % 3],
      status: (['answered', 'missed', 'answered', 'voicemail'] as const)[i % 4],
      started_at: now - i * 37 * 60_000,
      duration_ms: i % 4 === 1 ? null : 60_000 + i * 1_000,
      other_party: i % 3 === 2 ? 'Bo Agent' : `+4477009001${String(i).padStart(2, '0')}`,
      number: i % 3 === 2 ? null : '+44 20 7000 0010',
      has_recording: i % 2 === 0,
      can_play: i % 4 === 0,
      can_download: i % 8 === 0,
    }));
  }

  async lastLogin(): Promise<LastLogin | null> {
    return this.last;
  }
  async resume(): Promise<Me | null> {
    return this.me;
  }
  async logIn(server: string, email: string, password: string): Promise<Me> {
    if (password !== 'demo-ada') {
      throw { code: 'log_in_refused', message: 'The e-mail address or password is wrong.' };
    }
    this.last = { server, email };
    this.me = { server, email, name: 'Ada Agent', role: 'agent', company: 'Acme Support' };
    return this.me;
  }
  async logOut(): Promise<void> {
    this.me = null;
  }
  async history(_app: AppContext, more: boolean): Promise<HistoryView> {
    void more;
    return { calls: this.calls, complete: true };
  }
}
