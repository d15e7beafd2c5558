// Quantities are read and shown by the same code on the server (which sums pod usage with it).
export { bytes, cpu, percent } from '../../src/dashboard/quantity.js';

/** "5s", "3m", "2h10m", "4d" — the way kubectl prints ages. */
export function age(iso: string, now: number): string {
  if (!iso) return '';
  const s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 && h < 10 ? `${h}h${m % 60}m` : `${h}h`;
  return `${Math.floor(h / 24)}d`;
}
