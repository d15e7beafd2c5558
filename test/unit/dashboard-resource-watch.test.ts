import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse, type Server } from 'node:http';
import type { ClusterClients } from '../../src/dashboard/cluster.js';
import type { ResourceTable, ResourceTableRow } from '../../src/dashboard/model.js';
import { watchResource } from '../../src/dashboard/resources.js';
import { fakeApiClients } from '../helpers/dashboard-fake-api.js';

const COLUMNS = [
  { name: 'Name', type: 'string', format: 'name', description: '', priority: 0 },
  { name: 'IP', type: 'string', format: '', description: 'wide only', priority: 1 },
  { name: 'Status', type: 'string', format: '', description: '', priority: 0 },
];
const tableRow = (name: string, status: string) => ({
  cells: [name, '10.0.0.1', status],
  object: { kind: 'PartialObjectMetadata', metadata: { name, namespace: 'default', uid: `u-${name}` } },
});
const row = (name: string, status: string): ResourceTableRow => ({
  uid: `u-${name}`,
  name,
  namespace: 'default',
  cells: [name, status],
});
/** One watch event as the API server sends it with the Table rendering: a one-row Table. */
const event = (type: string, name: string, status: string) =>
  `${JSON.stringify({ type, object: { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: {}, rows: [tableRow(name, status)] } })}\n`;

/** What the fake API server does with the next watch: its events, then end or stay open. */
let watchPlan: { lines: string[]; end: boolean } = { lines: [], end: true };
let verbs = ['list', 'watch'];
let truncated = false;
const asked: string[] = [];
const open = new Set<ServerResponse>();
let api: Server;
let clients: ClusterClients;

before(async () => {
  api = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://api');
    asked.push(url.pathname + url.search);
    res.setHeader('Content-Type', 'application/json');
    if (url.pathname === '/api' || url.pathname === '/apis') {
      const items =
        url.pathname === '/apis'
          ? []
          : [
              {
                metadata: { name: '' },
                versions: [
                  {
                    version: 'v1',
                    resources: [
                      { resource: 'pods', responseKind: { kind: 'Pod' }, scope: 'Namespaced', verbs },
                    ],
                  },
                ],
              },
            ];
      return res.end(JSON.stringify({ kind: 'APIGroupDiscoveryList', items }));
    }
    if (url.pathname === '/api/v1/namespaces/default/pods' && url.searchParams.get('watch') === '1') {
      res.write(watchPlan.lines.join(''));
      if (watchPlan.end) return res.end();
      open.add(res);
      res.on('close', () => open.delete(res));
      return;
    }
    if (url.pathname === '/api/v1/namespaces/default/pods') {
      return res.end(
        JSON.stringify({
          kind: 'Table',
          apiVersion: 'meta.k8s.io/v1',
          metadata: { resourceVersion: '10', ...(truncated ? { continue: 'more' } : {}) },
          columnDefinitions: COLUMNS,
          rows: [tableRow('a', 'Pending'), tableRow('b', 'Running')],
        }),
      );
    }
    res.statusCode = 404;
    res.end(JSON.stringify({ kind: 'Status', code: 404, message: 'not found' }));
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  clients = fakeApiClients(api);
});

after(async () => {
  api.closeAllConnections();
  await new Promise<void>((resolve) => api.close(() => resolve()));
});

/** Runs a watch of the pods in "default" and notes what it sends. */
function watch(signal = new AbortController().signal, rereadMs = 5000, c = clients) {
  const sent: ({ table: ResourceTable } | { upsert: ResourceTableRow[]; remove: string[] })[] = [];
  const done = watchResource(
    c,
    { group: '', version: 'v1', resource: 'pods' },
    'default',
    'app=web',
    { table: (table) => sent.push({ table }), changes: (c) => sent.push(c) },
    signal,
    rereadMs,
  );
  return { sent, done };
}

test('a list, then its changes from a watch from its version, in the same Table columns, batched', async () => {
  verbs = ['list', 'watch'];
  truncated = false;
  asked.length = 0;
  watchPlan = {
    lines: [
      event('ADDED', 'c', 'Pending'),
      event('MODIFIED', 'a', 'Running'),
      event('DELETED', 'b', 'Running'),
    ],
    end: true,
  };
  const { sent, done } = watch();
  await done;
  assert.deepEqual(sent, [
    {
      table: {
        columns: [
          { name: 'Name', type: 'string', format: 'name', description: '' },
          { name: 'Status', type: 'string', format: '', description: '' },
        ],
        rows: [row('a', 'Pending'), row('b', 'Running')],
        truncated: false,
      },
    },
    { upsert: [row('c', 'Pending'), row('a', 'Running')], remove: ['u-b'] },
  ]);
  assert.deepEqual(
    asked.filter((p) => p.startsWith('/api/v1/')),
    [
      '/api/v1/namespaces/default/pods?limit=1000&includeObject=Metadata&labelSelector=app%3Dweb',
      '/api/v1/namespaces/default/pods?watch=1&resourceVersion=10&timeoutSeconds=300&includeObject=Metadata&labelSelector=app%3Dweb',
    ],
  );
});

test('a change shows while the watch stays open; stopping it ends the watch', async () => {
  watchPlan = { lines: [event('ADDED', 'c', 'Pending')], end: false };
  const stop = new AbortController();
  const { sent, done } = watch(stop.signal);
  const until = Date.now() + 5000;
  while (sent.length < 2 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(sent[1], { upsert: [row('c', 'Pending')], remove: [] });
  assert.equal(open.size, 1);
  stop.abort();
  await done;
  // The API server sees the watch's connection closed.
  while (open.size > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(open.size, 0);
});

test('an expired version (410 in the watch) ends the watch without sending what came with it', async () => {
  watchPlan = {
    lines: [
      event('ADDED', 'c', 'Pending'),
      `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } })}\n`,
    ],
    end: false,
  };
  const { sent, done } = watch();
  await done;
  assert.equal(sent.length, 1, 'the list only: the caller lists again');
  for (const res of open) res.end();
  open.clear();
});

test('a list cut at 1,000, or a kind that cannot be watched, is read again instead of watched', async () => {
  for (const [cut, v] of [
    [true, ['list', 'watch']],
    [false, ['list']],
  ] as const) {
    truncated = cut;
    verbs = [...v];
    asked.length = 0;
    const started = Date.now();
    // New clients: discovery is remembered per connection for a few seconds.
    const { sent, done } = watch(undefined, 100, fakeApiClients(api));
    await done;
    assert.ok(Date.now() - started >= 90);
    assert.equal(sent.length, 1);
    assert.equal(asked.filter((p) => p.includes('watch=1')).length, 0);
  }
  truncated = false;
  verbs = ['list', 'watch'];
});
