import { HISTORY_MS, chartPoints, type UsageSample } from '../../src/dashboard/series.js';
import { bytes, cpu } from './format.js';

/**
 * The time a chart spans: up to `now` (or a later reading: the page's clock ticks every few
 * seconds), back to the first reading or HISTORY_MS, whichever is later, so a history of two
 * minutes fills the width rather than its last few pixels.
 */
export function span(samples: UsageSample[], now: number): { from: number; to: number; minutes: number } {
  const to = Math.max(now, samples.at(-1)?.at ?? 0);
  const from = Math.max(to - HISTORY_MS, samples[0]?.at ?? to - HISTORY_MS);
  return { from, to, minutes: Math.max(1, Math.round((to - from) / 60_000)) };
}

export type Measure = 'cpu' | 'memory';
/** An amount of CPU (cores) or memory (bytes), as a number or a Kubernetes quantity, in words. */
export const formatMeasure = (measure: Measure, n: string | number) =>
  measure === 'cpu' ? cpu(n) : bytes(n);
export const MEASURE_NAMES: Record<Measure, string> = { cpu: 'CPU', memory: 'Memory' };

/** What a chart shows, in words: its name for screen readers and its tooltip. */
export function describe(what: string, measure: Measure, samples: UsageSample[], minutes: number): string {
  const values = samples.map((s) => s[measure]);
  const last = values.at(-1);
  if (last === undefined) return `${MEASURE_NAMES[measure]} of ${what}: no readings yet`;
  return (
    `${MEASURE_NAMES[measure]} of ${what} over the last ${minutes} min: now ${formatMeasure(measure, last)}, ` +
    `peak ${formatMeasure(measure, Math.max(...values))} (${values.length} readings)`
  );
}

/**
 * Usage over the last minutes as a line in an inline SVG (no chart library): time left to right up
 * to `now`, 0 at the bottom and `max` (the node's allocatable amount, say) or the peak at the top.
 */
export function UsageChart(props: {
  what: string;
  measure: Measure;
  samples: UsageSample[];
  now: number;
  max?: number;
  width?: number;
  height?: number;
  class?: string;
}) {
  const width = props.width ?? 120;
  const height = props.height ?? 24;
  const { from, to, minutes } = span(props.samples, props.now);
  const label = describe(props.what, props.measure, props.samples, minutes);
  const points = chartPoints(
    props.samples.map((s) => [s.at, s[props.measure]] as const),
    { from, to, max: props.max, width, height: height - 1 },
  );
  return (
    <svg
      class={`chart chart-${props.measure} ${props.class ?? ''}`}
      viewBox={`0 -1 ${width} ${height}`}
      width={width}
      height={height}
      role="img"
      aria-label={label}
    >
      <title>{label}</title>
      <line class="chart-axis" x1="0" y1={height - 1} x2={width} y2={height - 1} />
      {points && <polyline points={points} />}
    </svg>
  );
}
