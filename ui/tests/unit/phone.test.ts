// The phone panel against the mock backend: every state a call goes
// through, the recording buttons, refusals, and the shortcuts.
import { describe, expect, it } from 'vitest';
import { render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import App from '../../src/App.svelte';
import { MockBackend } from '../../src/lib/mock-backend';
import './jsdom';

async function agent(email = 'ada@acme.demo') {
  const backend = new MockBackend(10);
  backend.phoneDelay = 30;
  await backend.logIn('http://127.0.0.1:8080', email, `demo-${email.split('@')[0]}`);
  const user = userEvent.setup();
  render(App, { backend });
  await screen.findByTestId('history-list');
  return { backend, user };
}

const callCard = () => screen.getByTestId('call');

describe('the phone', () => {
  it('is ready for an agent, and absent for a user without an extension', async () => {
    await agent();
    expect((await screen.findByTestId('phone-status')).textContent).toContain('Phone ready · extension 101');
  });

  it('is not there for a supervisor without a phone', async () => {
    await agent('sam@acme.demo');
    expect(screen.queryByTestId('phone')).toBeNull();
  });

  it('dials a typed number, rings, connects, pauses and resumes the recording, mutes, holds and hangs up', async () => {
    const { backend, user } = await agent();
    await user.type(await screen.findByTestId('dial-number'), '+44 7700 900123');
    await user.click(screen.getByTestId('dial'));
    expect(within(await screen.findByTestId('call')).getByText('+447700900123')).toBeTruthy();
    await waitFor(() => expect(screen.getByTestId('call-state').textContent).toBe('Ringing…'));
    await waitFor(() => expect(screen.getByTestId('recording-state').textContent).toContain('Recording'));
    expect((screen.getByTestId('dial-number') as HTMLInputElement).value).toBe('');
    expect(screen.getByTestId('call-quality').textContent).toContain('Excellent sound · MOS 4.3 · loss 0.4 % · jitter 3 ms · round trip 18 ms');

    await user.click(screen.getByTestId('pause-recording'));
    await waitFor(() => expect(screen.getByTestId('recording-state').textContent).toContain('Recording paused'));
    await user.click(screen.getByTestId('resume-recording'));
    await waitFor(() => expect(screen.getByTestId('recording-state').textContent?.trim()).toBe('Recording'));
    // The buttons send the same keys as the keypad (SPEC §6.2).
    expect(backend.keysSent.map((k) => k.keys)).toEqual(['#11#', '#12#']);

    await user.click(screen.getByTestId('mute'));
    await waitFor(() => expect(screen.getByTestId('mute').textContent).toBe('Unmute'));
    await user.click(screen.getByTestId('hold'));
    await waitFor(() => expect(screen.getByTestId('call-state').textContent).toMatch(/^On hold/));

    await user.click(screen.getByTestId('keypad'));
    await user.click(screen.getByTestId('call-key-5'));
    expect(backend.keysSent.at(-1)).toEqual({ call: 1, keys: '5' });

    await user.click(screen.getByTestId('hang-up'));
    await waitFor(() => expect(callCard().textContent).toContain('You hung up.'));
    await waitFor(() => expect(screen.queryByTestId('call')).toBeNull());
  });

  it('dials with the pad, and refuses what is not a number in words', async () => {
    const { user } = await agent();
    for (const key of ['1', '0', '2']) await user.click(await screen.findByTestId(`key-${key}`));
    expect((screen.getByTestId('dial-number') as HTMLInputElement).value).toBe('102');
    await user.clear(screen.getByTestId('dial-number'));
    await user.type(screen.getByTestId('dial-number'), 'call Bo{Enter}');
    expect((await screen.findByTestId('phone-error')).textContent).toBe('“call Bo” is not a number to call.');
  });

  it('shows a call ringing here with the caller, answers it, and holds the call in progress', async () => {
    const { backend, user } = await agent();
    await user.type(await screen.findByTestId('dial-number'), '102{Enter}');
    await waitFor(() => expect(screen.getByTestId('recording-state')).toBeTruthy());
    backend.incoming('+447700900123', 'Initrode Ltd');
    const banner = await screen.findByTestId('incoming-call');
    expect(banner.textContent).toContain('Initrode Ltd');
    expect(banner.textContent).toContain('+447700900123 · is calling you');
    await user.click(within(banner).getByTestId('answer'));
    await waitFor(() => expect(screen.getAllByTestId('call')).toHaveLength(2));
    await waitFor(() => expect(screen.getAllByTestId('call-state')[0].textContent).toMatch(/^On hold/));
  });

  it('declines a call with Alt+D, and answers one with Alt+A', async () => {
    const { backend, user } = await agent();
    await screen.findByTestId('phone');
    backend.incoming('103');
    await screen.findByTestId('incoming-call');
    await user.keyboard('{Alt>}d{/Alt}');
    await waitFor(() => expect(callCard().textContent).toContain('You declined the call.'));
    backend.incoming('104');
    await screen.findByTestId('incoming-call');
    await user.keyboard('{Alt>}a{/Alt}');
    await waitFor(() => expect(screen.queryByTestId('incoming-call')).toBeNull());
    await waitFor(() => expect(screen.getAllByTestId('recording-state')).toHaveLength(1));
  });

  it('shows why a pause was refused, and the recording goes on', async () => {
    const { backend, user } = await agent();
    backend.refuseRecording = 'You may not pause or resume recordings (recording control is off for you).';
    await user.type(await screen.findByTestId('dial-number'), '102{Enter}');
    await user.click(await screen.findByTestId('pause-recording'));
    expect((await screen.findByTestId('recording-refused')).textContent).toContain('recording control is off');
    expect(screen.getByTestId('recording-state').textContent?.trim()).toBe('Recording');
  });

  it('reminds the agent when a recording has stayed paused', async () => {
    const { backend, user } = await agent();
    await user.type(await screen.findByTestId('dial-number'), '102{Enter}');
    await user.click(await screen.findByTestId('pause-recording'));
    await waitFor(() => expect(screen.getByTestId('recording-state').textContent).toContain('paused'));
    expect(screen.queryByTestId('pause-reminder')).toBeNull();
    backend.phoneView!.calls[0].paused_since = Date.now() - 3 * 60_000;
    backend.emit({ type: 'phone', phone: structuredClone(backend.phoneView!) });
    expect((await screen.findByTestId('pause-reminder')).textContent).toContain('paused for 2 minutes');
  });

  it('folds away to a strip, and a call ringing opens it again', async () => {
    const { backend, user } = await agent();
    await user.click(await screen.findByTestId('phone-fold'));
    expect(screen.queryByTestId('dial-number')).toBeNull();
    backend.incoming('103');
    expect((await screen.findByTestId('incoming-call')).textContent).toContain('103');
    await user.click(screen.getByTestId('decline'));
    await user.click(await screen.findByTestId('phone-fold'));
    await user.click(screen.getByTestId('phone-unfold'));
    expect(screen.getByTestId('dial-number')).toBeTruthy();
  });

  it('sets and clears "Do not disturb"', async () => {
    const { backend, user } = await agent();
    await user.click(await screen.findByTestId('do-not-disturb'));
    await waitFor(() => expect(backend.phoneView?.available).toBe(false));
    expect(screen.getByText(/calls pass you by/)).toBeTruthy();
    await user.click(screen.getByTestId('do-not-disturb'));
    await waitFor(() => expect(backend.phoneView?.available).toBe(true));
  });

  it('keeps the numbers dialled last, to dial again', async () => {
    localStorage.clear();
    const { user } = await agent();
    await user.type(await screen.findByTestId('dial-number'), '+44 20 7123 4567{Enter}');
    await waitFor(() => expect(screen.getAllByTestId('recent-number').map((b) => b.textContent)).toEqual(['+442071234567']));
    await user.click(screen.getByTestId('hang-up'));
    await user.click(screen.getAllByTestId('recent-number')[0]);
    expect((screen.getByTestId('dial-number') as HTMLInputElement).value).toBe('+442071234567');
  });

  it('calls the other party of a call in the history back', async () => {
    const { backend, user } = await agent();
    const outside = backend.calls.find((c) => c.direction !== 'internal' && c.other_party.startsWith('+'))!;
    const row = screen.getAllByTestId('call-row').find((r) => r.textContent?.includes(outside.other_party));
    await user.click(row!);
    await user.click(await screen.findByTestId('call-back'));
    await waitFor(() => expect(within(screen.getByTestId('call')).getByText(outside.other_party)).toBeTruthy());
  });

  it('lists the colleagues with whether they take calls, finds one, and calls them', async () => {
    const { user } = await agent();
    const rows = () => screen.getAllByTestId('colleague').map((b) => b.textContent?.replace(/\s+/g, ' ').trim());
    await waitFor(() => expect(rows()).toEqual([
      'Bo Agent 102 Available',
      'Cy Agent 103 Do not disturb',
      'Sam Supervisor 110 Available',
    ]));
    await user.type(screen.getByTestId('directory-search'), 'cy');
    expect(rows()).toEqual(['Cy Agent 103 Do not disturb']);
    await user.clear(screen.getByTestId('directory-search'));
    await user.type(screen.getByTestId('directory-search'), '11');
    expect(rows()).toEqual(['Sam Supervisor 110 Available']);
    await user.clear(screen.getByTestId('directory-search'));
    await user.type(screen.getByTestId('directory-search'), 'nobody');
    expect(screen.getByTestId('directory').textContent).toContain('No colleague matches “nobody”.');
    await user.clear(screen.getByTestId('directory-search'));
    await user.click(screen.getAllByTestId('colleague')[0]);
    const call = await screen.findByTestId('call');
    expect(within(call).getByText('Bo Agent')).toBeTruthy();
    await waitFor(() => expect(screen.getAllByTestId('recent-number')[0].textContent).toBe('102'));
  });

  it('puts the number of a tel: link in the dial pad, and does not dial it', async () => {
    const { backend } = await agent();
    await screen.findByTestId('phone');
    backend.openLink('+442071234567');
    await waitFor(() => expect((screen.getByTestId('dial-number') as HTMLInputElement).value).toBe('+442071234567'));
    expect(screen.queryByTestId('call')).toBeNull();
    expect(backend.dialRequest).toBeNull();
  });

  it('says when the phone is offline', async () => {
    const { backend } = await agent();
    await screen.findByTestId('phone');
    backend.emit({
      type: 'phone',
      phone: { status: 'offline', detail: 'Phone offline: the service cannot be reached. Reconnecting…', extension: '101', available: true, calls: [], directory: [] },
    });
    await waitFor(() => expect(screen.getByTestId('phone-status').textContent).toContain('cannot be reached'));
    expect((screen.getByTestId('dial') as HTMLButtonElement).disabled).toBe(true);
  });
});
