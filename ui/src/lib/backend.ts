// The one interface the ui talks to (STYLE.md): the Tauri implementation in
// the app, a mock in component tests and browser previews.

import type {
  AdminChange,
  AdminData,
  Analytics,
  AuditRow,
  AppContext,
  AppEvent,
  AppSettings,
  CallDetails,
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
  RecordingKind,
} from './types';

export interface Backend {
  /** Tells the app something was shown (the first history rows), for its start-up log. */
  shown(what: string): void;
  /** The server and e-mail used last, to fill the log-in form. */
  lastLogin(): Promise<LastLogin | null>;
  /** Signs in again with the token in the OS keyring, if there is one. */
  resume(): Promise<Me | null>;
  logIn(server: string, email: string, password: string): Promise<Me>;
  logOut(): Promise<void>;
  /** Users, groups and numbers to filter by. */
  directory(): Promise<Directory>;
  /** Rows `offset..offset+count` of the history under `filter`. */
  history(app: AppContext, filter: HistoryFilter, offset: number, count: number): Promise<HistoryWindow>;
  callDetails(app: AppContext, id: number): Promise<CallDetails>;
  play(app: AppContext, id: number, kind: RecordingKind): Promise<PlayerState>;
  /** The recording's loudness in `buckets` bars, 0–255, for the player's waveform. */
  waveform(app: AppContext, id: number, kind: RecordingKind, buckets: number): Promise<number[]>;
  player(command: PlayerCommand): Promise<PlayerState | null>;
  /** Asks where to save, then downloads; `null` when the user cancelled. */
  download(app: AppContext, id: number, kind: RecordingKind, fileName: string): Promise<number | null>;
  /** Totals of the calls started in `from..to` (ms) the user may see in analytics. */
  analytics(from: number, to: number): Promise<Analytics>;
  /** Everything the admin screens show (admins only). */
  admin(): Promise<AdminData>;
  /** Applies an admin's change; refusals carry the service's words. */
  adminChange(change: AdminChange): Promise<void>;
  /** The audit log, newest first, 100 entries before `before`. */
  audit(before: number | null): Promise<AuditRow[]>;
  outputDevices(): Promise<AudioDevice[]>;
  inputDevices(): Promise<AudioDevice[]>;
  /** The number a `tel:`/`sip:` link asked for, once (null: none). */
  takeDialRequest(): Promise<string | null>;
  /** Plays a test sound on `speaker` (an output's id; the default when null). */
  testSpeaker(speaker: string | null): Promise<void>;
  /** Records three seconds from `microphone`, plays them back on `speaker`: how loud. */
  testMicrophone(microphone: string | null, speaker: string | null): Promise<MicrophoneTest>;
  /** Reports `microphone`'s level as `microphone_level` events, ten a second, until stopped. */
  startLevelMeter(microphone: string | null): Promise<void>;
  stopLevelMeter(): Promise<void>;
  /** The phone and its calls; `null` when the user has no phone (no extension). */
  phone(): Promise<PhoneView | null>;
  /** Dials a number or extension (typed or pasted); the call's id. */
  dial(target: string): Promise<number>;
  /** Answers a call ringing here; a call in progress is put on hold. */
  answer(call: number): Promise<void>;
  decline(call: number): Promise<void>;
  hangUp(call: number): Promise<void>;
  hold(call: number, on: boolean): Promise<void>;
  mute(call: number, on: boolean): Promise<void>;
  /** Keypad keys, sent as RFC 4733 events. */
  sendKeys(call: number, keys: string): Promise<void>;
  /** Pause (`#11#`) or resume (`#12#`) the call's recording: the same events as the keypad. */
  recording(call: number, paused: boolean): Promise<void>;
  /** Available for calls, or "Do not disturb" (kept by the service). */
  setAvailable(available: boolean): Promise<void>;
  settings(): Promise<AppSettings>;
  saveSettings(settings: AppSettings): Promise<void>;
  /** Calls `handler` with each event the app sends; returns the unsubscribe. */
  onEvent(handler: (event: AppEvent) => void): () => void;
}
