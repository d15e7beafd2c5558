import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageHistory, chartPoints } from '../../src/dashboard/series.js';

const MIN = 60_000;
const reading = (cpu: number, memory = 0) => ({ cpu, memory });

test('a history keeps each series within its window and drops a series with nothing left in it', () => {
  const h = new UsageHistory(10 * MIN);
  h.record(0, [
    ['node-a', reading(0.1, 100)],
    ['pod/gone', reading(0.5)],
  ]);
  h.record(5 * MIN, [['node-a', reading(0.2, 200)]]);
  h.record(11 * MIN, [['node-a', reading(0.3, 300)]]);
  // The reading at 0 is older than 10 minutes before 11: gone, and the pod read only then with it.
  assert.deepEqual(h.of('node-a'), [
    { at: 5 * MIN, cpu: 0.2, memory: 200 },
    { at: 11 * MIN, cpu: 0.3, memory: 300 },
  ]);
  assert.deepEqual(h.of('pod/gone'), []);
  assert.deepEqual(Object.keys(h.all()), ['node-a']);
});

test('a reading within 10 s after the last, or not a number, is not kept; what is handed out is a copy', () => {
  const h = new UsageHistory(10 * MIN);
  h.record(2000, [['a', reading(1)]]);
  h.record(2000, [['a', reading(2)]]);
  h.record(1000, [['a', reading(3)]]);
  h.record(13_000, [['a', reading(Number.NaN)]]);
  assert.deepEqual(
    h.of('a').map((s) => s.cpu),
    [1],
  );
  h.of('a').push({ at: 9999, cpu: 9, memory: 9 });
  assert.equal(h.of('a').length, 1);
});

test('readers that read more often than metrics-server scrapes add a point per 10 s at most', () => {
  // The sampler every 15 s and two pages every 15 s, each at its own offset, for 15 minutes.
  const h = new UsageHistory(15 * MIN);
  for (let t = 0; t < 15 * MIN; t += 15_000) {
    for (const offset of [0, 4000, 9000]) h.record(t + offset, [['ns/p', reading(1)]]);
  }
  const at = h.of('ns/p').map((s) => s.at);
  assert.ok(at.length <= 90, `${at.length} points`);
  assert.ok(at.length >= 60, `${at.length} points`);
  assert.ok(at.every((t, i) => i === 0 || t - (at[i - 1] as number) >= 10_000));
});

test('chart points: time left to right over the frame, 0 at the bottom, max or the peak at the top', () => {
  const frame = { from: 0, to: 100, width: 200, height: 50 };
  assert.equal(
    chartPoints(
      [
        [0, 0],
        [50, 1],
        [100, 2],
      ],
      { ...frame, max: 4 },
    ),
    '0,50 100,37.5 200,25',
  );
  // Without a max the peak is the top; points outside the frame are left out.
  assert.equal(
    chartPoints(
      [
        [-10, 9],
        [25, 1],
        [100, 2],
      ],
      frame,
    ),
    '50,25 200,0',
  );
  // A value above the given max raises the top rather than leaving the chart.
  assert.equal(chartPoints([[100, 8]], { ...frame, max: 4 }), '200,0');
  assert.equal(chartPoints([[10, 0]], frame), '20,50');
  assert.equal(chartPoints([], frame), '');
});
