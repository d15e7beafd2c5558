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

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
const DECIMAL: Record<string, number> = { k: 1e3, M: 1e6, G: 1e9, T: 1e12, m: 1e-3 };

/** A Kubernetes quantity ("16318768Ki", "250m", "2") as a number of base units. */
export function quantity(q: string): number {
  const m = /^([0-9.]+)([A-Za-z]*)$/.exec(q.trim());
  if (!m) return NaN;
  const unit = m[2] ?? '';
  return Number(m[1]) * (BINARY[unit] ?? DECIMAL[unit] ?? (unit === '' ? 1 : NaN));
}

export function bytes(q: string): string {
  const n = quantity(q);
  if (!Number.isFinite(n)) return q;
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  return `${Math.round(n / 2 ** 20)} MiB`;
}

export function cpu(q: string): string {
  const n = quantity(q);
  if (!Number.isFinite(n)) return q;
  return n >= 1 ? `${+n.toFixed(2)} cores` : `${Math.round(n * 1000)}m`;
}

export function percent(used: string, total: string): string {
  const u = quantity(used);
  const t = quantity(total);
  return Number.isFinite(u) && Number.isFinite(t) && t > 0 ? ` (${Math.round((u / t) * 100)}%)` : '';
}
