/**
 * Kubernetes quantities read and shown the way the dashboard prints them. Pure, with no imports:
 * the server sums pod usage with it and the web UI (web/) formats every figure with it.
 */

/** Decimal suffixes as powers of ten; binary ones as factors. */
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** value × 10^exponent, dividing for a negative one: "250m" is then exactly 0.25, as the literal. */
const scaled = (value: number, exponent: number) =>
  exponent < 0 ? value / 10 ** -exponent : value * 10 ** exponent;

/**
 * A quantity ("16318768Ki", "250m", "2", "1e3") as a number of base units (cores, bytes); NaN if
 * it is none. metrics-server gives CPU in nanocores ("171943271n").
 */
export function quantity(q: string): number {
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:[eE]([+-]?\d+)|([A-Za-z]*))$/.exec(q.trim());
  if (!m) return NaN;
  const value = Number(m[1]);
  if (m[2] !== undefined) return scaled(value, Number(m[2]));
  const suffix = m[3] ?? '';
  const exponent = DECIMAL[suffix];
  if (exponent !== undefined) return scaled(value, exponent);
  return value * (BINARY[suffix] ?? NaN);
}

const amount = (q: string | number) => (typeof q === 'number' ? q : quantity(q));

/** Bytes (a quantity, or a number of bytes) as "512 KiB", "300 MiB", "1.5 GiB". */
export function bytes(q: string | number): string {
  const n = amount(q);
  if (!Number.isFinite(n)) return String(q);
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${Math.round(n / 2 ** 20)} MiB`;
  return `${Math.round(n / 2 ** 10)} KiB`;
}

/** CPU (a quantity, or a number of cores) as "1.5 cores" or, below one core, millicores ("237m"). */
export function cpu(q: string | number): string {
  const n = amount(q);
  if (!Number.isFinite(n)) return String(q);
  return n >= 1 ? `${+n.toFixed(2)} cores` : `${Math.round(n * 1000)}m`;
}

/** " (12%)": `used` as a share of `total`; nothing when either is not a quantity. */
export function percent(used: string, total: string): string {
  const u = quantity(used);
  const t = quantity(total);
  return Number.isFinite(u) && Number.isFinite(t) && t > 0 ? ` (${Math.round((u / t) * 100)}%)` : '';
}
