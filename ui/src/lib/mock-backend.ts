// A backend in memory, for component tests, Playwright and running the ui in
// a plain browser (`npm run dev`). It plays by the same contract as the
// Rust side, with made-up calls; it decides nothing that matters.

import type { Backend, } from './backend';
import { mockAdmin } from './mock-admin';
import type {
  AdminChange,
  AdminData,
  Analytics,
  AuditRow,
  AppContext,
  AppEvent,
  AppSettings,
  CallDetails,
  CallRow,
  Directory,
  HistoryFilter,
  HistoryWindow,
  LastLogin,
  Me,
  AudioDevice,
  MicrophoneTest,
  PlayerCommand,
  PlayerState,
  PhoneView,
  CallView,
  RecordingKind,
} from './types';

const USERS = ['Ada Agent', 'Bo Agent', 'Cy Agent', 'Sam Supervisor'];
const DAY = 86_400_000;
/** The phone's directory as Ada sees it: colleagues with an extension. */
const DIRECTORY = [
  { name: 'Bo Agent', extension: '102', available: true },
  { name: 'Cy Agent', extension: '103', available: false },
  { name: 'Sam Supervisor', extension: '110', available: true },
];

export class MockBackend implements Backend {
  me: Me | null = null;
  last: LastLogin | null = { server: 'http://127.0.0.1:8080', email: 'ada@acme.demo' };
  calls: CallRow[];
  appSettings: AppSettings = {
    output_device: null,
    call_audio: { microphone: null, speaker: null, ringer: null, echo_cancellation: true, noise_suppression: true, gain_control: true },
    pause_reminder_min: 2,
    theme: 'system',
  };
  /** The phone of an agent (extension 101); `null` for users without one. */
  phoneView: PhoneView | null = null;
  /** How long the mock's far end takes to ring and to answer, ms. */
  phoneDelay = 300;
  /** Keys sent, in order, per call. */
  keysSent: { call: number; keys: string }[] = [];
  /** When set, the service refuses pause and resume codes with these words (D4). */
  refuseRecording: string | null = null;
  private nextCall = 1;
  downloads: { id: number; fileName: string }[] = [];
  company: AdminData = mockAdmin();
  changes: AdminChange[] = [];
  /** Calls under a legal hold, and calls whose recordings were deleted on request. */
  held = new Set<number>();
  erased = new Set<number>();
  /** What the next `download` answers: a path chosen, or `null` (cancelled). */
  saveAs: string | null = '/tmp/recording.wav';
  private handlers = new Set<(event: AppEvent) => void>();
  private playing: PlayerState | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(count = 40, now = Date.UTC(2026, 10, 24, 14, 0)) {
    this.calls = Array.from({ length: count }, (_, i) => ({
      id: count - i,
      direction: (['inbound', 'outbound', 'internal'] as const)[i % 3],
      status: (['answered', 'missed', 'answered', 'voicemail'] as const)[i % 4],
      started_at: now - i * 37 * 60_000,
      duration_ms: i % 4 === 1 ? null : 60_000 + (i % 50) * 1_000,
      other_party: i % 3 === 2 ? USERS[i % 4] : `+4477009${String(10_000 + (i % 90_000)).padStart(5, '0')}`,
      contact: i % 3 === 1 && i % 2 === 0 ? 'Initrode Ltd' : null,
      number: i % 3 === 2 ? null : '+442070000010',
      has_recording: i % 2 === 0,
      can_play: i % 4 === 0,
      can_download: i % 8 === 0,
    }));
  }

  emit(event: AppEvent) {
    for (const handler of this.handlers) handler(event);
  }
  onEvent(handler: (event: AppEvent) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  shownLog: string[] = [];
  shown(what: string): void {
    this.shownLog.push(what);
  }
  async lastLogin(): Promise<LastLogin | null> {
    return this.last;
  }
  async resume(): Promise<Me | null> {
    return this.me;
  }
  async logIn(server: string, email: string, password: string): Promise<Me> {
    const who = email.split('@')[0];
    if (password !== `demo-${who}`) {
      throw { code: 'log_in_refused', message: 'The e-mail address or password is wrong.' };
    }
    const [name, role] =
      who === 'admin' ? ['Alex Admin', 'admin'] : who === 'sam' ? ['Sam Supervisor', 'supervisor'] : ['Ada Agent', 'agent'];
    this.last = { server, email };
    this.me = { server, email, name, role, company: 'Acme Support' };
    this.phoneView = role === 'agent' ? { status: 'ready', detail: null, extension: '101', available: true, calls: [], directory: DIRECTORY.map((c) => ({ ...c })) } : null;
    return this.me;
  }
  async logOut(): Promise<void> {
    this.me = null;
    this.phoneView = null;
  }

  // ------------------------------------------------------------ the phone
  private publishPhone() {
    if (this.phoneView) this.emit({ type: 'phone', phone: structuredClone(this.phoneView) });
  }
  private call(id: number): CallView {
    const call = this.phoneView?.calls.find((c) => c.id === id);
    if (!call) throw { code: 'phone', message: 'That call is over.' };
    return call;
  }
  private end(call: CallView, why: string) {
    call.status = 'ended';
    call.ended = why;
    this.publishPhone();
    setTimeout(() => {
      if (!this.phoneView) return;
      this.phoneView.calls = this.phoneView.calls.filter((c) => c.id !== call.id);
      this.publishPhone();
    }, 3 * this.phoneDelay);
  }
  private connect(call: CallView) {
    call.status = 'connected';
    call.connected_at = Date.now();
    call.recording = 'recording';
    call.quality = { loss_percent: 0.4, jitter_ms: 3.2, buffer_ms: 24, round_trip_ms: 18, mos: 4.3 };
    this.publishPhone();
  }
  async phone(): Promise<PhoneView | null> {
    return this.phoneView ? structuredClone(this.phoneView) : null;
  }
  /** A number a `tel:`/`sip:` link asked for (`openLink`), until taken. */
  dialRequest: string | null = null;
  /** What the app does with a link: the number waits, and the ui is told. */
  openLink(number: string) {
    this.dialRequest = number;
    this.emit({ type: 'dial_request', number });
  }
  async takeDialRequest(): Promise<string | null> {
    const asked = this.dialRequest;
    this.dialRequest = null;
    return asked;
  }
  /** The devices tried from Settings, in order: `speaker:ID` or `microphone:ID`. */
  devicesTried: string[] = [];
  async testSpeaker(speaker: string | null): Promise<void> {
    this.devicesTried.push(`speaker:${speaker ?? 'default'}`);
    await new Promise((done) => setTimeout(done, 20));
  }
  async testMicrophone(microphone: string | null): Promise<MicrophoneTest> {
    this.devicesTried.push(`microphone:${microphone ?? 'default'}`);
    await new Promise((done) => setTimeout(done, 20));
    // The headset hears a voice; the laptop's default microphone is muted.
    return microphone === null ? { peak_dbfs: -120, rms_dbfs: -120, heard: false } : { peak_dbfs: -10.25, rms_dbfs: -27.25, heard: true };
  }
  /** The microphone the level meter listens to (undefined: none). */
  meterOn: string | null | undefined = undefined;
  private meterTimer: ReturnType<typeof setInterval> | null = null;
  private meterStep = 0;
  async startLevelMeter(microphone: string | null): Promise<void> {
    await this.stopLevelMeter();
    this.meterOn = microphone;
    // The headset hears someone talking (a level that comes and goes); the
    // laptop's default microphone is muted.
    this.meterTimer = setInterval(() => {
      const talking = microphone !== null && this.meterStep++ % 10 < 7;
      const rms = microphone === null ? -120 : talking ? -24 - (this.meterStep % 3) * 3 : -58;
      this.emit({ type: 'microphone_level', peak_dbfs: rms + 12, rms_dbfs: rms });
    }, 100);
  }
  async stopLevelMeter(): Promise<void> {
    if (this.meterTimer) clearInterval(this.meterTimer);
    this.meterTimer = null;
    this.meterOn = undefined;
  }
  async inputDevices(): Promise<AudioDevice[]> {
    return [
      { id: 'alsa:default', name: 'Default microphone', is_default: true },
      { id: 'alsa:hw:CARD=Headset,DEV=0', name: 'USB headset', is_default: false },
    ];
  }
  async dial(target: string): Promise<number> {
    if (!this.phoneView) throw { code: 'phone', message: 'The phone is not ready.' };
    const number = target.replace(/[\s\-.()/]/g, '');
    if (!/^\+?[0-9*#]{1,20}$/.test(number)) throw { code: 'invalid', message: `“${target.trim()}” is not a number to call.` };
    const name = this.phoneView.directory.find((c) => c.extension === number)?.name ?? null;
    const call: CallView = {
      id: this.nextCall++, incoming: false, number, name, status: 'dialing', held: false, held_by_them: false,
      muted: false, connected_at: null, ended: null, audio_problem: null, recording: null, paused_since: null, refused: null,
      quality: null,
    };
    this.phoneView.calls.push(call);
    this.publishPhone();
    setTimeout(() => {
      if (call.status !== 'dialing') return;
      call.status = 'ringing';
      this.publishPhone();
      setTimeout(() => call.status === 'ringing' && this.connect(call), this.phoneDelay);
    }, this.phoneDelay);
    return call.id;
  }
  async setAvailable(available: boolean): Promise<void> {
    if (!this.phoneView) throw { code: 'phone', message: 'The phone is not ready.' };
    this.phoneView.available = available;
    this.publishPhone();
  }
  /** A call rings here (for tests and previews). */
  incoming(number: string, name: string | null = null): number {
    if (!this.phoneView) throw new Error('no phone');
    const call: CallView = {
      id: this.nextCall++, incoming: true, number, name, status: 'incoming', held: false, held_by_them: false,
      muted: false, connected_at: null, ended: null, audio_problem: null, recording: null, paused_since: null, refused: null,
      quality: null,
    };
    this.phoneView.calls.push(call);
    this.publishPhone();
    return call.id;
  }
  async answer(id: number): Promise<void> {
    const call = this.call(id);
    if (call.status !== 'incoming') throw { code: 'phone', message: 'That call is no longer ringing.' };
    for (const other of this.phoneView!.calls) if (other !== call && other.status === 'connected') other.held = true;
    this.connect(call);
  }
  async decline(id: number): Promise<void> {
    this.end(this.call(id), 'You declined the call.');
  }
  async hangUp(id: number): Promise<void> {
    this.end(this.call(id), 'You hung up.');
  }
  async hold(id: number, on: boolean): Promise<void> {
    this.call(id).held = on;
    this.publishPhone();
  }
  async mute(id: number, on: boolean): Promise<void> {
    this.call(id).muted = on;
    this.publishPhone();
  }
  async sendKeys(id: number, keys: string): Promise<void> {
    this.call(id);
    this.keysSent.push({ call: id, keys });
  }
  async recording(id: number, paused: boolean): Promise<void> {
    const call = this.call(id);
    this.keysSent.push({ call: id, keys: paused ? '#11#' : '#12#' });
    setTimeout(() => {
      if (this.refuseRecording) call.refused = this.refuseRecording;
      else {
        call.refused = null;
        call.recording = paused ? 'paused' : 'recording';
        call.paused_since = paused ? Date.now() : null;
      }
      this.publishPhone();
    }, this.phoneDelay / 3);
  }
  async directory(): Promise<Directory> {
    return {
      users: USERS.map((name, i) => ({ id: i + 1, name })),
      groups: [{ id: 1, name: 'Support' }, { id: 2, name: 'Sales' }],
      numbers: [{ id: 1, name: 'Support line (+442070000010)' }],
    };
  }
  /** The last filter's matches: the real app keeps its loaded history in
   * Rust and slices it per window; filtering 100,000 rows in JavaScript on
   * every window would measure the mock instead of the list. */
  private matched: { key: string; calls: CallRow[] } | null = null;
  matching(filter: HistoryFilter): CallRow[] {
    const key = `${this.calls.length}:${JSON.stringify(filter)}`;
    if (this.matched?.key !== key) this.matched = { key, calls: this.filtered(filter) };
    return this.matched.calls;
  }
  private filtered(filter: HistoryFilter): CallRow[] {
    const search = filter.search?.trim();
    return this.calls.filter(
      (c) =>
        (!filter.direction || c.direction === filter.direction) &&
        (!filter.status || c.status === filter.status) &&
        (filter.from === undefined || c.started_at >= filter.from) &&
        (filter.to === undefined || c.started_at < filter.to) &&
        (filter.has_recording === undefined || c.has_recording === filter.has_recording) &&
        (!search || c.other_party.includes(search)),
    );
  }
  async history(_app: AppContext, filter: HistoryFilter, offset: number, count: number): Promise<HistoryWindow> {
    if (!this.me) throw { code: 'session_ended', message: 'Please sign in.' };
    const calls = this.matching(filter);
    return { offset, calls: calls.slice(offset, offset + count), loaded: calls.length, complete: true };
  }
  async callDetails(_app: AppContext, id: number): Promise<CallDetails> {
    const row = this.calls.find((c) => c.id === id);
    if (!row) throw { code: 'not_found', message: 'This call is not in your history.' };
    const recorded = row.has_recording;
    // Some recordings are past the retention (ids 6, 26, 46…: never playable ones), and those deleted on request.
    const deleted = this.erased.has(row.id)
      ? 'Deleted on 2026-11-24 by Alex Admin, on request.'
      : row.id % 20 === 6
        ? 'Deleted on 2026-11-20: the company keeps recordings for a limited time.'
        : null;
    return {
      row,
      answered_at: row.duration_ms === null ? null : row.started_at + 8_000,
      ended_at: row.started_at + 8_000 + (row.duration_ms ?? 0),
      number_name: row.number ? 'Support line' : null,
      contact: row.direction === 'inbound' ? { id: 7, name: 'Globex Ltd' } : null,
      parties: ['Ada Agent'],
      rang: ['Ada Agent', 'Bo Agent'],
      recordings: recorded
        ? [
            {
              kind: row.status === 'voicemail' ? 'voicemail' : 'call',
              duration_ms: row.duration_ms ?? 30_000,
              size_bytes: 1_000_000,
              // Every other playable call's paused audio was cut out (`skip`).
              paused_spans: [row.id % 8 === 4 ? [10_000, 10_000, 8_000] : [10_000, 18_000, 0]],
              can_play: row.can_play && !deleted,
              can_download: row.can_download && !deleted,
              file_name: `2026-11-24 1400 ${row.direction} ${row.other_party}.wav`,
              deleted,
            },
          ]
        : [],
      trace: recorded
        ? [
            { at: row.started_at, text: 'Recorded: the company setting “record_inbound” is on for inbound calls.' },
            { at: row.started_at + 18_000, text: 'Ada Agent paused the recording (#11#).' },
            { at: row.started_at + 26_000, text: 'Ada Agent resumed the recording (#12#).' },
          ]
        : [],
      legal_hold: this.held.has(row.id) ? 'On legal hold since 2026-11-24 (Alex Admin)' : null,
    };
  }
  async play(_app: AppContext, id: number, kind: RecordingKind): Promise<PlayerState> {
    const row = this.calls.find((c) => c.id === id);
    if (!row?.can_play) throw { code: 'forbidden', message: 'You may not play this recording.' };
    this.stopTimer();
    this.playing = {
      call: id, kind, position_ms: 0, duration_ms: row.duration_ms ?? 30_000,
      playing: true, ended: false, speed: 1, error: null,
    };
    this.timer = setInterval(() => this.tick(), 100);
    return { ...this.playing };
  }
  private tick() {
    const p = this.playing;
    if (!p || !p.playing) return;
    p.position_ms = Math.min(p.duration_ms, p.position_ms + 100 * p.speed);
    if (p.position_ms >= p.duration_ms) Object.assign(p, { playing: false, ended: true });
    this.emit({ type: 'player', state: { ...p } });
  }
  private stopTimer() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
  async waveform(_app: AppContext, id: number, _kind: RecordingKind, buckets: number): Promise<number[]> {
    if (!this.calls.find((c) => c.id === id)?.can_play) throw { code: 'forbidden', message: 'You may not play this recording.' };
    return Array.from({ length: buckets }, (_, i) => Math.round(120 + 100 * Math.sin(i / 3) * Math.sin(i / 17)));
  }
  async player(command: PlayerCommand): Promise<PlayerState | null> {
    const p = this.playing;
    if (!p) return null;
    switch (command.do) {
      case 'play': p.playing = true; p.ended = false; break;
      case 'pause': p.playing = false; break;
      case 'seek': p.position_ms = Math.min(command.position_ms, p.duration_ms); break;
      case 'speed': p.speed = Math.min(2, Math.max(0.5, command.speed)); break;
      case 'stop': this.stopTimer(); this.playing = null; return null;
    }
    return { ...p };
  }
  async download(_app: AppContext, id: number, _kind: RecordingKind, fileName: string): Promise<number | null> {
    if (this.saveAs === null) return null;
    this.downloads.push({ id, fileName });
    this.emit({ type: 'download', call: id, written: 500_000, total: 1_000_000 });
    this.emit({ type: 'download', call: id, written: 1_000_000, total: 1_000_000 });
    return 1_000_000;
  }
  async analytics(from: number, to: number): Promise<Analytics> {
    const calls = this.calls.filter((c) => c.started_at >= from && c.started_at < to);
    const count = (list: CallRow[]) => {
      const n = (f: (c: CallRow) => boolean) => list.filter(f).length;
      return {
        inbound: n((c) => c.direction === 'inbound'), outbound: n((c) => c.direction === 'outbound'),
        internal: n((c) => c.direction === 'internal'), answered: n((c) => c.status === 'answered'),
        missed: n((c) => c.status === 'missed'), voicemail: n((c) => c.status === 'voicemail'),
        unanswered: n((c) => c.status === 'unanswered'),
      };
    };
    const days = new Map<string, CallRow[]>();
    for (const c of calls) {
      const day = new Date(c.started_at).toISOString().slice(0, 10);
      days.set(day, [...(days.get(day) ?? []), c]);
    }
    const answered = calls.filter((c) => c.status === 'answered');
    const talk = answered.reduce((n, c) => n + (c.duration_ms ?? 0), 0);
    const line = (name: string, list: CallRow[]) => ({
      name, calls: list.length, answered: list.filter((c) => c.status === 'answered').length,
      talk_ms: list.reduce((n, c) => n + (c.duration_ms ?? 0), 0), recorded: list.filter((c) => c.has_recording).length,
    });
    return {
      from, to, total: line('All calls', calls),
      answered_rate: calls.length ? answered.length / calls.length : null,
      average_talk_ms: answered.length ? Math.round(talk / answered.length) : null,
      recorded_share: answered.length ? answered.filter((c) => c.has_recording).length / answered.length : null,
      calls: count(calls),
      per_day: [...days].sort(([a], [b]) => a.localeCompare(b)).map(([day, list]) => ({ day, calls: count(list) })),
      per_user: [line('Ada Agent', calls.filter((_, i) => i % 2 === 0)), line('Bo Agent', calls.filter((_, i) => i % 2 === 1))],
      per_group: [line('Support', calls)],
    };
  }
  async admin(): Promise<AdminData> {
    if (this.me?.role !== 'admin') throw { code: 'forbidden', message: 'Only admins may do this.' };
    return structuredClone(this.company);
  }
  async adminChange(change: AdminChange): Promise<void> {
    if (change.kind === 'contact' && change.contact.numbers.some((n) => !/^\+[1-9][0-9]{6,14}$/.test(n))) {
      throw { code: 'service', message: 'numbers: must be E.164, e.g. +442071234567' };
    }
    this.changes.push(change);
    if (change.kind === 'settings') this.company.settings = { ...change.settings };
    if (change.kind === 'legal_hold') {
      if (change.held) this.held.add(change.call);
      else this.held.delete(change.call);
    }
    if (change.kind === 'delete_contact_recordings') {
      // The mock's inbound calls are all with contact 7 (see callDetails).
      for (const call of this.calls) {
        if (call.direction === 'inbound' && call.has_recording && !this.held.has(call.id)) this.erased.add(call.id);
      }
    }
    if (change.kind === 'contact' && change.id === null) {
      this.company.contacts.push({ id: 100 + this.changes.length, ...change.contact });
    }
  }
  async audit(before: number | null): Promise<AuditRow[]> {
    const start = before ?? 251;
    return Array.from({ length: Math.min(100, start - 1) }, (_, i) => ({
      id: start - 1 - i, at: Date.UTC(2026, 10, 24, 14) - i * 600_000,
      user: i % 25 === 5 ? 'Earshot (retention)' : i % 25 === 11 ? 'Alex Admin' : 'Sam Supervisor',
      action: i % 25 === 5 ? 'delete' : i % 25 === 11 ? 'hold' : i % 3 ? 'play' : 'download',
      call: 1000 - i,
      recording: i % 25 === 11 && i % 2 ? null : 500 - i,
      // Now and then a call no longer kept (past retention): no summary.
      ...(i % 50 === 7
        ? { call_direction: null, call_started_at: null, call_with: null }
        : {
            call_direction: i % 4 ? 'inbound' : 'internal',
            call_started_at: Date.UTC(2026, 10, 20, 9) - i * 3_600_000,
            call_with: i % 4 ? `+1555010${String(i % 100).padStart(2, '0')}` : 'Ada Agent and Bo Agent',
          }),
      remote_addr: '127.0.0.1', user_agent: 'earshot-desktop/0.1.0',
    }));
  }
  async outputDevices(): Promise<AudioDevice[]> {
    return [
      { id: 'alsa:default', name: 'Default output', is_default: true },
      { id: 'alsa:pulse', name: 'PulseAudio', is_default: false },
    ];
  }
  async settings(): Promise<AppSettings> {
    return { ...this.appSettings };
  }
  async saveSettings(settings: AppSettings): Promise<void> {
    this.appSettings = { ...settings };
  }
}

/** Days ago, for date filters in tests. */
export const daysAgo = (n: number, now = Date.UTC(2026, 10, 24, 14, 0)) => now - n * DAY;
