import { HISTORY_MS, chartPoints, type UsageSample } from '../../src/dashboard/series.js';
import { bytes, cpu } from './format.js';

const MINUTES = HISTORY_MS / 60_000;

export type Measure = 'cpu' | 'memory';
const format = (measure: Measure, n: number) => (measure === 'cpu' ? cpu(n) : bytes(n));
const NAMES: Record<Measure, string> = { cpu: 'CPU', memory: 'Memory' };

/** What a chart shows, in words: its name for screen readers and its tooltip. */
export function describe(what: string, measure: Measure, samples: UsageSample[]): string {
  const values = samples.map((s) => s[measure]);
  const last = values.at(-1);
  if (last === undefined) return `${NAMES[measure]} of ${what}: no readings yet`;
  return (
    `${NAMES[measure]} of ${what} over the last ${MINUTES} minutes: now ${format(measure, last)}, ` +
    `peak ${format(measure, Math.max(...values))} (${values.length} readings)`
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
  const label = describe(props.what, props.measure, props.samples);
  // The page's clock ticks every few seconds: a reading since then is the right edge.
  const to = Math.max(props.now, props.samples.at(-1)?.at ?? 0);
  const points = chartPoints(
    props.samples.map((s) => [s.at, s[props.measure]] as const),
    { from: to - HISTORY_MS, to, max: props.max, width, height: height - 1 },
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
