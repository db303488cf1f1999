import { mount } from 'svelte';
import App from './App.svelte';
import { MockBackend } from './lib/mock-backend';
import { TauriBackend } from './lib/tauri-backend';
import './app.css';

// Inside the app Tauri injects its bridge; in a plain browser the mock serves.
const backend = '__TAURI_INTERNALS__' in window ? new TauriBackend() : new MockBackend();

mount(App, { target: document.getElementById('app')!, props: { backend } });
