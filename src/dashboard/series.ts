/**
 * Usage over time: the readings of the metrics API kept for the last minutes, and the geometry of
 * the small charts that show them. Pure, with no imports: the server keeps the history and the web
 * UI (web/) draws it with the same code.
 */

/** One reading: when (ms since the epoch), CPU in cores, memory in bytes. */
export interface UsageSample {
  at: number;
  cpu: number;
  memory: number;
}

/** How far back the charts go. */
export const HISTORY_MS = 15 * 60_000;
/**
 * metrics-server (the add-on) scrapes every 10 s: a reading sooner than that after the last repeats
 * it. The server's sampler and every open page read usage (each every 15 s), so without this gap a
 * series held a point per reader and reading; with it, at most 90 per 15 minutes.
 */
export const MIN_GAP_MS = 10_000;

/**
 * Readings per series (a node's name, a pod's "namespace/name") within a sliding window: every
 * reading drops what is older than the window, and a series with nothing left (a pod gone for that
 * long) goes altogether, so memory stays bounded by the window and what exists.
 */
export class UsageHistory {
  private readonly series = new Map<string, UsageSample[]>();

  constructor(
    private readonly windowMs = HISTORY_MS,
    private readonly minGapMs = MIN_GAP_MS,
  ) {}

  /** Adds one reading of each series given at time `at`; one within the gap after the last is ignored. */
  record(at: number, readings: Iterable<readonly [string, { cpu: number; memory: number }]>): void {
    for (const [key, { cpu, memory }] of readings) {
      if (!Number.isFinite(cpu) || !Number.isFinite(memory)) continue;
      const samples = this.series.get(key);
      if (!samples) this.series.set(key, [{ at, cpu, memory }]);
      else if ((samples.at(-1)?.at ?? -Infinity) + this.minGapMs <= at) samples.push({ at, cpu, memory });
    }
    const since = at - this.windowMs;
    for (const [key, samples] of this.series) {
      const keep = samples.findIndex((s) => s.at >= since);
      if (keep < 0) this.series.delete(key);
      else if (keep > 0) samples.splice(0, keep);
    }
  }

  /** The readings of one series, oldest first (empty when there are none). */
  of(key: string): UsageSample[] {
    return [...(this.series.get(key) ?? [])];
  }

  /** Every series' readings. */
  all(): Record<string, UsageSample[]> {
    return Object.fromEntries([...this.series].map(([key, samples]) => [key, [...samples]]));
  }
}

export interface ChartFrame {
  /** The time at the left and right edges (ms since the epoch). */
  from: number;
  to: number;
  /** The value at the top edge (the bottom is 0); at least the largest value when not given. */
  max?: number;
  width: number;
  height: number;
}

/**
 * An SVG polyline's points for `values` (time, value) in a frame: time left to right, 0 at the
 * bottom, `max` at the top; points outside the time range are left out. Coordinates are rounded to
 * a tenth of a pixel (the string is part of the page).
 */
export function chartPoints(values: readonly (readonly [number, number])[], frame: ChartFrame): string {
  const shown = values.filter(([t, v]) => t >= frame.from && t <= frame.to && Number.isFinite(v));
  const top = Math.max(frame.max ?? 0, ...shown.map(([, v]) => v));
  const span = frame.to - frame.from;
  const round = (n: number) => Math.round(n * 10) / 10;
  return shown
    .map(([t, v]) => {
      const x = span > 0 ? ((t - frame.from) / span) * frame.width : frame.width;
      const y = top > 0 ? frame.height - (v / top) * frame.height : frame.height;
      return `${round(x)},${round(y)}`;
    })
    .join(' ');
}
