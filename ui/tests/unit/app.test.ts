// Component tests: the ui against the mock backend, in jsdom.
import { describe, expect, it } from 'vitest';
import { render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import App from '../../src/App.svelte';
import Details from '../../src/components/Details.svelte';
import { MockBackend } from '../../src/lib/mock-backend';
import './jsdom';

async function signedIn(backend = new MockBackend(40), email = 'ada@acme.demo') {
  await backend.logIn('http://127.0.0.1:8080', email, `demo-${email.split('@')[0]}`);
  const user = userEvent.setup();
  render(App, { backend });
  await screen.findByTestId('history-list');
  return { backend, user };
}

const renderedIds = () => screen.queryAllByTestId('call-row').map((row) => Number(row.dataset.callId));

describe('log-in', () => {
  it('shows the refusal, then the history after a right password', async () => {
    const backend = new MockBackend(5);
    const user = userEvent.setup();
    render(App, { backend });
    const email = await screen.findByLabelText('E-mail');
    expect((screen.getByLabelText('Server') as HTMLInputElement).value).toBe('http://127.0.0.1:8080');
    await user.clear(email);
    await user.type(email, 'ada@acme.demo');
    await user.type(screen.getByLabelText('Password'), 'wrong');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('alert')).toHaveProperty('textContent', 'The e-mail address or password is wrong.');
    await user.type(screen.getByLabelText('Password'), 'demo-ada');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    await screen.findByTestId('history-list');
    expect(screen.getByText('Ada Agent · Acme Support')).toBeTruthy();
  });

  it('goes back to log-in, saying why, when the session ends', async () => {
    const { backend } = await signedIn();
    backend.emit({ type: 'session_ended', message: 'Your session was revoked by an administrator.' });
    expect(await screen.findByText('Your session was revoked by an administrator.')).toBeTruthy();
    expect(screen.getByLabelText('Password')).toBeTruthy();
  });
});

describe('history', () => {
  it('renders only the rows on screen of 100,000 calls, newest first', async () => {
    await signedIn(new MockBackend(100_000));
    await waitFor(() => expect(renderedIds().length).toBeGreaterThan(10));
    const ids = renderedIds();
    expect(ids.length).toBeLessThan(60);
    expect(ids[0]).toBe(100_000);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
  });

  it('names the contact of an outside number, with the number', async () => {
    await signedIn(new MockBackend(40), 'sam@acme.demo');
    const row = screen.getAllByTestId('call-row').find((r) => r.textContent?.includes('Initrode Ltd'));
    expect(row?.querySelector('.party .number')?.textContent).toMatch(/^\+4477009/);
  });

  it('filters by direction, status, recording and text', async () => {
    const { backend, user } = await signedIn();
    await user.selectOptions(screen.getByTestId('filter-direction'), 'inbound');
    await waitFor(() => expect(renderedIds().length).toBe(backend.matching({ direction: 'inbound' }).length));
    await user.selectOptions(screen.getByTestId('filter-recording'), 'true');
    const expected = backend.matching({ direction: 'inbound', has_recording: true }).map((c) => c.id);
    await waitFor(() => expect(renderedIds()).toEqual(expected));
    await user.click(screen.getByRole('button', { name: 'Clear filters' }));
    await user.type(screen.getByTestId('filter-search'), '10012');
    await waitFor(() => expect(renderedIds()).toEqual(backend.matching({ search: '10012' }).map((c) => c.id)), {
      timeout: 2000,
    });
  });

  it('shows an empty state when nothing matches', async () => {
    const { user } = await signedIn();
    await user.type(screen.getByTestId('filter-search'), 'no such number');
    expect(await screen.findByText('No call you may see matches these filters.', {}, { timeout: 2000 })).toBeTruthy();
  });

  it('asks again when the history changed, and closes a call that is gone', async () => {
    const { backend, user } = await signedIn();
    await user.click(screen.getAllByTestId('call-row')[0]);
    await screen.findByTestId('call-details');
    const first = backend.calls[0].id;
    backend.calls = backend.calls.slice(1);
    backend.emit({ type: 'history_changed', removed: [first] });
    await waitFor(() => expect(renderedIds()[0]).toBe(backend.calls[0].id));
    expect(screen.queryByTestId('call-details')).toBeNull();
  });

  it('moves through calls with the keyboard', async () => {
    const { user } = await signedIn();
    screen.getByTestId('history-list').focus();
    await user.keyboard('{ArrowDown}{ArrowDown}');
    const details = await screen.findByTestId('call-details');
    expect(within(details).getByRole('heading', { level: 2 }).textContent).toContain(
      screen.getAllByTestId('call-row')[2].querySelector('.party')!.textContent!,
    );
    await user.keyboard('{Escape}');
    expect(screen.queryByTestId('call-details')).toBeNull();
  });
});

describe('history keyboard', () => {
  it('keeps the focus in the list when the chosen row scrolls away', async () => {
    const { user } = await signedIn(new MockBackend(100_000));
    const list = screen.getByTestId('history-list');
    await user.click(screen.getAllByTestId('call-row')[1]);
    expect(document.activeElement).toBe(list);
    await user.keyboard('{End}');
    await waitFor(() => expect(screen.getAllByTestId('call-row').some((r) => r.dataset.callId === '1')).toBe(true));
    expect(document.activeElement).toBe(list);
    await user.keyboard('{Home}');
    await waitFor(() => expect(screen.getAllByTestId('call-row')[0].dataset.callId).toBe('100000'));
  });
});

describe('call details', () => {
  it('shows the player and download only where allowed, and the trace', async () => {
    const backend = new MockBackend(40);
    await backend.logIn('s', 'ada@acme.demo', 'demo-ada');
    const playable = backend.calls.find((c) => c.can_play && c.can_download)!;
    const { unmount } = render(Details, { backend, app: 'calling', id: playable.id, onclose() {}, oncontact() {} });
    await screen.findByTestId('play');
    expect(screen.getByTestId('download')).toBeTruthy();
    expect(screen.getByTestId('trace').textContent).toContain('record_inbound');
    unmount();

    const locked = backend.calls.find((c) => c.has_recording && !c.can_play)!;
    render(Details, { backend, app: 'calling', id: locked.id, onclose() {}, oncontact() {} });
    await screen.findByText('You may not play this recording.');
    expect(screen.queryByTestId('play')).toBeNull();
    expect(screen.queryByTestId('download')).toBeNull();
  });

  it('shows where a recording was paused: a silent stretch, or a cut and how long it was', async () => {
    const backend = new MockBackend(400);
    await backend.logIn('s', 'ada@acme.demo', 'demo-ada');
    const playable = backend.calls.filter((c) => c.can_play && c.status !== 'voicemail');
    const silent = playable.find((c) => c.id % 8 !== 4)!;
    const { unmount } = render(Details, { backend, app: 'calling', id: silent.id, onclose() {}, oncontact() {} });
    const span = await screen.findByTestId('paused-span');
    expect(span.getAttribute('title')).toBe('Paused by #11# for 0:08');
    expect(span.classList.contains('cut')).toBe(false);
    unmount();
    const cut = playable.find((c) => c.id % 8 === 4)!;
    render(Details, { backend, app: 'calling', id: cut.id, onclose() {}, oncontact() {} });
    const marker = await screen.findByTestId('paused-span');
    expect(marker.getAttribute('title')).toBe('Paused by #11# for 0:08: cut out here');
    expect(marker.classList.contains('cut')).toBe(true);
  });

  it('plays, shows the position, and stops when the right is withdrawn', async () => {
    const backend = new MockBackend(40);
    await backend.logIn('s', 'ada@acme.demo', 'demo-ada');
    const call = backend.calls.find((c) => c.can_play)!;
    const user = userEvent.setup();
    render(Details, { backend, app: 'calling', id: call.id, onclose() {}, oncontact() {} });
    await user.click(await screen.findByTestId('play'));
    await waitFor(() => expect(screen.getByTestId('player-position').textContent).toMatch(/^0:0[1-9]/), {
      timeout: 3000,
    });
    backend.emit({
      type: 'player',
      state: { call: call.id, kind: 'call', position_ms: 1200, duration_ms: 60_000, playing: false, ended: false, speed: 1, error: 'Your right to play this recording was withdrawn.' },
    });
    expect(await screen.findByTestId('player-error')).toHaveProperty('textContent', 'Your right to play this recording was withdrawn.');
    await backend.player({ do: 'stop' });
  });

  it('downloads with the proposed name, and does nothing when the dialog is cancelled', async () => {
    const backend = new MockBackend(40);
    await backend.logIn('s', 'ada@acme.demo', 'demo-ada');
    const call = backend.calls.find((c) => c.can_download)!;
    const user = userEvent.setup();
    render(Details, { backend, app: 'calling', id: call.id, onclose() {}, oncontact() {} });
    await user.click(await screen.findByTestId('download'));
    expect(await screen.findByRole('status')).toHaveProperty('textContent', 'Saved 977 KB.');
    expect(backend.downloads).toEqual([{ id: call.id, fileName: expect.stringMatching(/\.wav$/) }]);
    backend.saveAs = null;
    await user.click(screen.getByTestId('download'));
    await waitFor(() => expect(screen.queryByRole('status')).toBeNull());
    expect(backend.downloads.length).toBe(1);
  });
});

describe('recordings kept only as long as they should be', () => {
  it('shows a deleted recording as deleted, when and why, with no player or download', async () => {
    const backend = new MockBackend(400);
    await backend.logIn('s', 'admin@acme.demo', 'demo-admin');
    const call = backend.calls.find((c) => c.has_recording && c.id % 20 === 6)!;
    render(Details, { backend, app: 'dashboard', id: call.id, onclose() {}, oncontact() {} });
    expect((await screen.findByTestId('recording-deleted')).textContent).toBe(
      'Deleted on 2026-11-20: the company keeps recordings for a limited time.',
    );
    expect(screen.queryByTestId('play')).toBeNull();
    expect(screen.queryByTestId('download')).toBeNull();
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('lets an admin place and lift a legal hold, and no one else', async () => {
    const backend = new MockBackend(40);
    await backend.logIn('s', 'admin@acme.demo', 'demo-admin');
    const call = backend.calls.find((c) => c.has_recording && c.id % 20 !== 6)!;
    const user = userEvent.setup();
    const { unmount } = render(Details, { backend, app: 'dashboard', admin: true, id: call.id, onclose() {}, oncontact() {} });
    await user.click(await screen.findByRole('button', { name: 'Place a legal hold' }));
    expect((await screen.findByText(/On legal hold since/)).textContent).toContain('cannot be deleted');
    expect(backend.changes.at(-1)).toEqual({ kind: 'legal_hold', call: call.id, held: true });
    await user.click(screen.getByRole('button', { name: 'Lift the legal hold' }));
    await waitFor(() => expect(screen.queryByText(/On legal hold since/)).toBeNull());
    unmount();
    render(Details, { backend, app: 'dashboard', id: call.id, onclose() {}, oncontact() {} });
    await screen.findByTestId('trace');
    expect(screen.queryByTestId('legal-hold-toggle')).toBeNull();
  });

  it('sets how long recordings are kept, and deletes a contact’s recordings on request', async () => {
    const { backend, user } = await signedIn(new MockBackend(5), 'admin@acme.demo');
    await user.click(screen.getByTestId('nav-admin'));
    const form = await screen.findByTestId('company-settings');
    expect(within(form).getByText('Kept forever.')).toBeTruthy();
    await user.click(within(form).getByRole('checkbox', { name: /for a limited time/ }));
    const days = within(form).getByRole('spinbutton', { name: /Days kept/ });
    await user.clear(days);
    await user.type(days, '90');
    await user.click(within(form).getByRole('button', { name: 'Save settings' }));
    await waitFor(() => expect(JSON.stringify(backend.changes)).toContain('"recording_retention_days":90'));

    await user.click(await screen.findByTestId('admin-tab-contacts'));
    const contact = backend.company.contacts[0];
    await user.click(await screen.findByText(contact.name));
    window.confirm = () => true;
    await user.click(await screen.findByTestId('delete-contact-recordings'));
    await waitFor(() => expect(backend.changes.at(-1)).toEqual({ kind: 'delete_contact_recordings', contact: contact.id }));
  });
});

describe('settings', () => {
  it('keeps the microphone, the call speaker, the ringer and the audio processing switches', async () => {
    const { backend, user } = await signedIn();
    await user.click(screen.getByTestId('nav-settings'));
    await user.selectOptions(await screen.findByTestId('microphone'), 'alsa:hw:CARD=Headset,DEV=0');
    await user.selectOptions(screen.getByTestId('ringer'), 'alsa:pulse');
    await user.click(screen.getByTestId('noise-suppression'));
    await waitFor(() =>
      expect(backend.appSettings.call_audio).toEqual({
        microphone: 'alsa:hw:CARD=Headset,DEV=0',
        speaker: null,
        ringer: 'alsa:pulse',
        echo_cancellation: true,
        noise_suppression: false,
        gain_control: true,
      }),
    );
  });

  it('plays a test sound and makes a test recording, and says what it heard', async () => {
    const { backend, user } = await signedIn();
    await user.click(screen.getByTestId('nav-settings'));
    await user.click(await screen.findByTestId('test-speaker'));
    await waitFor(() => expect(screen.getByTestId('device-test').textContent).toContain('Did you hear two tones?'));
    // The default microphone (muted, in the mock) hears nothing; the headset hears a voice.
    await user.click(screen.getByTestId('test-microphone'));
    await waitFor(() => expect(screen.getByTestId('device-test').textContent).toContain('Heard nothing'));
    await user.selectOptions(screen.getByTestId('microphone'), 'alsa:hw:CARD=Headset,DEV=0');
    await user.click(screen.getByTestId('test-microphone'));
    await waitFor(() => expect(screen.getByTestId('device-test').textContent).toBe(
      'Heard you: loudest at -10 dBFS, and played it back as your callers will hear it.',
    ));
    expect(backend.devicesTried).toEqual(['speaker:default', 'microphone:default', 'microphone:alsa:hw:CARD=Headset,DEV=0']);
  });

  it('shows the chosen microphone’s level live, and stops listening when Settings closes', async () => {
    const { backend, user } = await signedIn();
    await user.click(screen.getByTestId('nav-settings'));
    // The default microphone (muted, in the mock) is silent.
    await waitFor(() => expect(screen.getByTestId('mic-level-text').textContent).toContain('Silent'));
    expect(backend.meterOn).toBeNull();
    // The headset hears someone: the meter moves.
    await user.selectOptions(screen.getByTestId('microphone'), 'alsa:hw:CARD=Headset,DEV=0');
    await waitFor(() => expect(screen.getByTestId('mic-level-text').textContent).toMatch(/^-\d+ dBFS$/));
    expect(backend.meterOn).toBe('alsa:hw:CARD=Headset,DEV=0');
    const meter = screen.getByRole('meter', { name: 'Microphone level' });
    expect(Number(meter.getAttribute('aria-valuenow'))).toBeGreaterThan(-40);
    await user.click(screen.getByTestId('nav-history'));
    await waitFor(() => expect(backend.meterOn).toBeUndefined());
  });

  it('keeps the output device and the theme', async () => {
    const { backend, user } = await signedIn();
    await user.click(screen.getByTestId('nav-settings'));
    await user.selectOptions(await screen.findByTestId('output-device'), 'alsa:pulse');
    await user.click(screen.getByLabelText('Dark'));
    await waitFor(() => expect(backend.appSettings).toMatchObject({ output_device: 'alsa:pulse', theme: 'dark' }));
    expect(document.documentElement.dataset.theme).toBe('dark');
  });
});

describe('analytics', () => {
  it('shows the totals of the calls in the period', async () => {
    const { backend, user } = await signedIn(new MockBackend(40, Date.now()));
    await user.click(screen.getByTestId('nav-analytics'));
    const calls = await screen.findByTestId('analytics-calls');
    const expected = (await backend.analytics(Date.now() - 30 * 86_400_000, Date.now())).total.calls;
    expect(calls.textContent).toBe(String(expected));
    expect(screen.getByRole('img', { name: 'Calls per day by direction' })).toBeTruthy();
  });
});

describe('admin', () => {
  it('is offered to admins only', async () => {
    await signedIn(new MockBackend(5), 'sam@acme.demo');
    expect(screen.queryByTestId('nav-admin')).toBeNull();
  });

  it('shows where each user right comes from (D1)', async () => {
    const { user } = await signedIn(new MockBackend(5), 'admin@acme.demo');
    await user.click(screen.getByTestId('nav-admin'));
    await user.click(await screen.findByTestId('admin-tab-users'));
    const table = await screen.findByTestId('users');
    const row = (name: string) => within(table).getByText(name).closest('tr')!;
    expect(row('Nia Analyst').textContent).toContain('not configured');
    expect(row('Ada Agent').textContent).toContain('company default');
    expect(row('Sam Supervisor').textContent).toContain('own value');
    expect(row('Alex Admin').textContent).toContain('admin: unrestricted');
  });

  it('edits a call flow and saves the whole tree', async () => {
    const { backend, user } = await signedIn(new MockBackend(5), 'admin@acme.demo');
    await user.click(screen.getByTestId('nav-admin'));
    await user.click(await screen.findByTestId('admin-tab-numbers'));
    await user.click((await screen.findAllByTestId('number-row'))[0]);
    const editor = await screen.findByTestId('flow-editor');
    const top = within(editor).getByRole('list', { name: 'Call flow' });
    expect(top.querySelectorAll(':scope > li.step').length).toBe(3);
    expect(within(editor).getByRole('list', { name: 'Key 1' })).toBeTruthy();
    await user.selectOptions(within(editor).getByLabelText('Add a step to Call flow'), 'announce');
    expect(top.querySelectorAll(':scope > li.step').length).toBe(4);
    await user.click(within(editor).getByRole('button', { name: 'Remove step 1 of Call flow' }));
    await user.click(within(editor).getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(backend.changes.length).toBe(1));
    const change = backend.changes[0];
    expect(change.kind).toBe('number');
    if (change.kind !== 'number') return;
    expect(change.number.flow.map((s) => s.type)).toEqual(['menu', 'voicemail', 'announce']);
    expect(backend.company.numbers[0].flow.length).toBe(3);
  });

  it('names the call of each audit line, or says it is no longer kept', async () => {
    const { user } = await signedIn(new MockBackend(5), 'admin@acme.demo');
    await user.click(screen.getByTestId('nav-admin'));
    await user.click(await screen.findByTestId('admin-tab-audit'));
    const table = await screen.findByTestId('audit');
    const rows = await within(table).findAllByRole('row');
    expect(rows[1].textContent).toContain('internal');
    expect(rows[1].textContent).toContain('Ada Agent and Bo Agent');
    expect(rows[2].textContent).toContain('+155501001');
    expect(rows[2].textContent).toContain('#999');
    expect(rows[8].textContent).toContain('#993 (no longer kept)');
  });

  it('shows the service’s words when a change is refused', async () => {
    const { backend, user } = await signedIn(new MockBackend(5), 'admin@acme.demo');
    await user.click(screen.getByTestId('nav-admin'));
    await user.click(await screen.findByTestId('admin-tab-contacts'));
    await user.click(screen.getByRole('button', { name: 'New contact' }));
    const form = await screen.findByTestId('contact-form');
    await user.type(within(form).getByLabelText('Name'), 'Initech');
    await user.type(within(form).getByRole('textbox', { name: /Numbers/ }), 'not a number');
    await user.click(within(form).getByRole('button', { name: 'Add contact' }));
    expect((await within(form).findByRole('alert')).textContent).toContain('E.164');
    expect(backend.company.contacts.some((c) => c.name === 'Initech')).toBe(false);
  });
});

describe('admin user form', () => {
  it('says what an unset right means for the role chosen (D1)', async () => {
    const { user } = await signedIn(new MockBackend(5), 'admin@acme.demo');
    await user.click(screen.getByTestId('nav-admin'));
    await user.click(await screen.findByTestId('admin-tab-users'));
    await user.click(within(await screen.findByTestId('users')).getByText('Ada Agent'));
    const visibility = (await screen.findByTestId('user-visibility')) as HTMLSelectElement;
    expect(visibility.options[0].textContent).toBe('Company default (own and missed)');
    await user.selectOptions(within(screen.getByTestId('user-form')).getByLabelText('Role'), 'supervisor');
    expect(visibility.options[0].textContent).toBe('Not configured: own and missed');
  });
});
