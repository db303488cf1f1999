// How times, lengths and names read in the ui.

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const time = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

export const when = (ms: number) => dateTime.format(ms);
const sameYear = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
const otherYear = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
/** A list's date: "24 Nov, 14:05" this year, "24 Nov 2025" before. */
export const short = (ms: number) =>
  (new Date(ms).getFullYear() === new Date().getFullYear() ? sameYear : otherYear).format(ms);
export const clock = (ms: number) => time.format(ms);

/** `m:ss`, or `h:mm:ss` past an hour; `—` for nothing. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export const directionLabel: Record<string, string> = { inbound: 'Inbound', outbound: 'Outbound', internal: 'Internal' };
export const statusLabel: Record<string, string> = {
  answered: 'Answered',
  missed: 'Missed',
  voicemail: 'Voicemail',
  unanswered: 'Not answered',
};
export const directionIcon: Record<string, string> = { inbound: '↙', outbound: '↗', internal: '⇄' };

/** A `yyyy-mm-dd` date input's value as local midnight, ms. */
export function dayStart(value: string): number | undefined {
  if (!value) return undefined;
  const [y, m, d] = value.split('-').map(Number);
  return new Date(y, m - 1, d).getTime();
}
