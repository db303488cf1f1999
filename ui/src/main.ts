import { mount } from 'svelte';
import App from './App.svelte';
import { MockBackend } from './lib/mock-backend';
import { TauriBackend } from './lib/tauri-backend';
import './app.css';

// Inside the app Tauri injects its bridge; in a plain browser the mock serves.
// `?calls=N` sizes the mock's history (browser tests scroll 100,000 calls).
const calls = Number(new URLSearchParams(location.search).get('calls') ?? 40);
const backend = '__TAURI_INTERNALS__' in window ? new TauriBackend() : new MockBackend(calls);
// The mock's far end is driven from browser tests (a call ringing here).
if (backend instanceof MockBackend) (window as unknown as { earshotMock: MockBackend }).earshotMock = backend;

mount(App, { target: document.getElementById('app')!, props: { backend } });
