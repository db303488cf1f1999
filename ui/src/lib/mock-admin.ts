// The mock backend's company, for the admin screens' tests and previews.
import type { AdminData, AdminUserView, CompanySettings, Role, UserSettings } from './types';

const company: CompanySettings = {
  record_inbound: true, record_outbound: true, record_internal: false, agent_recording_control: false,
  agent_call_visibility: 'own_and_missed', agent_recording_playback: 'own_only', agent_can_download: false,
  paused_audio: 'silence',
  recording_retention_days: null,
};

function user(id: number, name: string, role: Role, settings: UserSettings, groups: number[]): AdminUserView {
  const email = `${name.split(' ')[0].toLowerCase()}@acme.demo`;
  const source = (own: unknown) =>
    role === 'admin' ? 'role' : own !== null && own !== undefined ? 'user' : role === 'agent' ? 'company' : 'not_configured';
  return {
    user: {
      id, company: 1, name, email, role, extension: String(100 + id), groups, settings,
      disabled: false, has_sip_password: true, caller_id: null,
    },
    effective: {
      call_visibility: { value: settings.call_visibility ?? (role === 'agent' ? company.agent_call_visibility : 'own_and_missed'), source: source(settings.call_visibility) },
      recording_playback: { value: settings.recording_playback ?? (role === 'agent' ? company.agent_recording_playback : 'none'), source: source(settings.recording_playback) },
      can_download: { value: settings.can_download ?? false, source: source(settings.can_download) },
      recording_control: { value: settings.recording_control ?? company.agent_recording_control, source: settings.recording_control === null ? 'company' : 'user' },
    },
  } as AdminUserView;
}

const none: UserSettings = { recording_control: null, call_visibility: null, recording_playback: null, can_download: null };

export function mockAdmin(): AdminData {
  return {
    settings: { ...company },
    unset: (['admin', 'supervisor', 'analyst', 'agent'] as const).map((role) => ({
      role,
      effective: user(0, 'x', role, none, []).effective,
    })),
    users: [
      user(1, 'Alex Admin', 'admin', none, []),
      user(2, 'Sam Supervisor', 'supervisor', { ...none, call_visibility: 'all', recording_playback: 'all_available', can_download: true }, [1]),
      user(3, 'Nia Analyst', 'analyst', none, []),
      user(4, 'Ada Agent', 'agent', none, [1]),
      user(5, 'Bo Agent', 'agent', { ...none, call_visibility: 'via_groups' }, [1, 2]),
    ],
    groups: [
      { id: 1, company: 1, name: 'Support', members: [2, 4, 5] },
      { id: 2, company: 1, name: 'Sales', members: [5] },
    ],
    numbers: [
      {
        id: 1, company: 1, e164: '+442071230001', name: 'Support line',
        flow: [
          { type: 'record', enabled: true },
          {
            type: 'menu', prompt: { text: 'For sales press 1, for support press 2.' }, timeout_s: 5,
            options: { '1': [{ type: 'ring_group', group: 2, strategy: 'simultaneous', timeout_s: 20 }], '2': [{ type: 'ring_group', group: 1, strategy: 'round_robin', timeout_s: 20 }] },
            timeout: [{ type: 'voicemail' }],
          },
          { type: 'voicemail' },
        ],
      },
    ],
    contacts: [
      { id: 7, name: 'Globex Ltd', numbers: ['+15550000100'] },
      { id: 8, name: 'Monarch Travel', numbers: ['+15550000544', '+15550000545'] },
    ],
  };
}
