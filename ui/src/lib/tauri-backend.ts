import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import type { Backend } from './backend';
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

/** The Rust side of the app, through Tauri commands (src-tauri/src/lib.rs). */
export class TauriBackend implements Backend {
  shown(what: string): void {
    void invoke('shown', { what });
  }
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
  directory(): Promise<Directory> {
    return invoke('directory');
  }
  history(app: AppContext, filter: HistoryFilter, offset: number, count: number): Promise<HistoryWindow> {
    return invoke('history', { appContext: app, filter, offset, count });
  }
  callDetails(app: AppContext, id: number): Promise<CallDetails> {
    return invoke('call_details', { appContext: app, id });
  }
  play(app: AppContext, id: number, kind: RecordingKind): Promise<PlayerState> {
    return invoke('play', { appContext: app, id, kind });
  }
  waveform(app: AppContext, id: number, kind: RecordingKind, buckets: number): Promise<number[]> {
    return invoke('waveform', { appContext: app, id, kind, buckets });
  }
  player(command: PlayerCommand): Promise<PlayerState | null> {
    return invoke('player', { command });
  }
  download(app: AppContext, id: number, kind: RecordingKind, fileName: string): Promise<number | null> {
    return invoke('download', { appContext: app, id, kind, fileName });
  }
  analytics(from: number, to: number): Promise<Analytics> {
    return invoke('analytics', { from, to });
  }
  admin(): Promise<AdminData> {
    return invoke('admin');
  }
  adminChange(change: AdminChange): Promise<void> {
    return invoke('admin_change', { change });
  }
  audit(before: number | null): Promise<AuditRow[]> {
    return invoke('audit', { before });
  }
  outputDevices(): Promise<AudioDevice[]> {
    return invoke('output_devices');
  }
  inputDevices(): Promise<AudioDevice[]> {
    return invoke('input_devices');
  }
  takeDialRequest(): Promise<string | null> {
    return invoke('take_dial_request');
  }
  testSpeaker(speaker: string | null): Promise<void> {
    return invoke('test_speaker', { speaker });
  }
  testMicrophone(microphone: string | null, speaker: string | null): Promise<MicrophoneTest> {
    return invoke('test_microphone', { microphone, speaker });
  }
  startLevelMeter(microphone: string | null): Promise<void> {
    return invoke('start_level_meter', { microphone });
  }
  stopLevelMeter(): Promise<void> {
    return invoke('stop_level_meter');
  }
  phone(): Promise<PhoneView | null> {
    return invoke('phone');
  }
  dial(target: string): Promise<number> {
    return invoke('dial', { target });
  }
  answer(call: number): Promise<void> {
    return invoke('answer', { call });
  }
  decline(call: number): Promise<void> {
    return invoke('decline', { call });
  }
  hangUp(call: number): Promise<void> {
    return invoke('hang_up', { call });
  }
  hold(call: number, on: boolean): Promise<void> {
    return invoke('hold', { call, on });
  }
  mute(call: number, on: boolean): Promise<void> {
    return invoke('mute', { call, on });
  }
  sendKeys(call: number, keys: string): Promise<void> {
    return invoke('send_keys', { call, keys });
  }
  recording(call: number, paused: boolean): Promise<void> {
    return invoke('recording', { call, paused });
  }
  setAvailable(available: boolean): Promise<void> {
    return invoke('set_available', { available });
  }
  settings(): Promise<AppSettings> {
    return invoke('settings');
  }
  saveSettings(settings: AppSettings): Promise<void> {
    return invoke('save_settings', { settings });
  }
  onEvent(handler: (event: AppEvent) => void): () => void {
    const stop = listen<AppEvent>('earshot', (event) => handler(event.payload));
    return () => void stop.then((unlisten) => unlisten());
  }
}
