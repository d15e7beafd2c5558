import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import getPort from 'get-port';
import { bytes, cpu, percent, quantity } from '../../src/dashboard/quantity.js';
import { podUsage } from '../../src/dashboard/summarize.js';
import { nodeMetrics, podMetrics } from '../../src/dashboard/actions.js';
import type { ClusterClients } from '../../src/dashboard/cluster.js';
import { connectedTo, fakeApiClients, profilesOf } from '../helpers/dashboard-fake-api.js';
import { createGuard, type Guard } from '../../src/dashboard/security.js';
import { startServer, type DashboardServer } from '../../src/dashboard/server.js';
import { UsageSampler } from '../../src/dashboard/sampler.js';

test('quantities in every form the API writes them, metrics-server nanocores included', () => {
  const close = (q: string, n: number) => assert.ok(Math.abs(quantity(q) - n) < 1e-9 * Math.abs(n), q);
  close('171943271n', 0.171943271);
  close('1500u', 0.0015);
  close('250m', 0.25);
  close('2', 2);
  close('1.5', 1.5);
  close('1435604Ki', 1435604 * 1024);
  close('1.5Gi', 1.5 * 2 ** 30);
  close('128M', 128e6);
  close('1e3', 1000);
  close('5E', 5e18);
  close('1Ei', 2 ** 60);
  for (const bad of ['', 'abc', '1e', '12Xi', '1..2', '--1']) assert.ok(Number.isNaN(quantity(bad)), bad);
});

test('usage is shown in millicores below a core, in KiB, MiB or GiB, and as a share of the allocatable', () => {
  assert.equal(cpu('171943271n'), '172m');
  assert.equal(cpu(0.0042), '4m');
  assert.equal(cpu('2'), '2 cores');
  assert.equal(cpu(1.256), '1.26 cores');
  assert.equal(bytes('1435604Ki'), '1.4 GiB');
  assert.equal(bytes(12 * 2 ** 20 + 1000), '12 MiB');
  assert.equal(bytes('300Ki'), '300 KiB');
  assert.equal(percent('171943271n', '2'), ' (9%)');
  assert.equal(percent('1Gi', '4Gi'), ' (25%)');
  // What is not a quantity is shown as it came, with no share.
  assert.equal(cpu('lots'), 'lots');
  assert.equal(percent('1Gi', ''), '');
});

const podMetric = (name: string, containers: [string, string][]): k8s.PodMetric => ({
  metadata: { name, namespace: 'kube-system', selfLink: '', creationTimestamp: '' },
  timestamp: '2026-01-01T00:00:00Z',
  window: '10s',
  containers: containers.map(([c, memory], i) => ({ name: `c${i}`, usage: { cpu: c, memory } })),
});

test("a pod's usage is the sum over its containers; a figure that is no quantity gives none", () => {
  const u = podUsage(
    podMetric('web', [
      ['1500000n', '1024Ki'],
      ['3m', '2Mi'],
    ]),
  );
  assert.equal(u?.namespace, 'kube-system');
  assert.equal(u?.name, 'web');
  assert.ok(Math.abs((u?.cpu ?? 0) - 0.0045) < 1e-12);
  assert.equal(u?.memory, 3 * 2 ** 20);
  assert.deepEqual(podUsage(podMetric('idle', [])), {
    namespace: 'kube-system',
    name: 'idle',
    cpu: 0,
    memory: 0,
  });
  assert.equal(podUsage(podMetric('odd', [['1m', 'much']])), undefined);
});

/** An API server that knows the metrics API when `metrics` says so; every path it was asked is kept. */
let metrics: 'none' | 'starting' | 'serving' = 'none';
const asked: string[] = [];
let api: Server;
let clients: ClusterClients;

const json = (body: unknown) => JSON.stringify(body);
const podList = {
  kind: 'PodMetricsList',
  apiVersion: 'metrics.k8s.io/v1beta1',
  metadata: {},
  items: [
    podMetric('kube-apiserver-dev-control-plane', [['51234567n', '204800Ki']]),
    podMetric('broken', [['x', '1Mi']]),
  ],
};

before(async () => {
  api = createServer((req, res) => {
    const path = req.url ?? '';
    asked.push(path);
    const groups = metrics === 'none' ? [] : [{ name: 'metrics.k8s.io', versions: [] }];
    res.setHeader('Content-Type', 'application/json');
    if (path === '/apis') return res.end(json({ kind: 'APIGroupList', apiVersion: 'v1', groups }));
    if (metrics === 'starting') {
      res.statusCode = 503;
      return res.end(
        json({ kind: 'Status', code: 503, message: 'the server is currently unable to handle the request' }),
      );
    }
    if (metrics === 'serving' && path === '/apis/metrics.k8s.io/v1beta1/nodes') {
      return res.end(
        json({
          items: [
            { metadata: { name: 'dev-control-plane' }, usage: { cpu: '237000000n', memory: '436224Ki' } },
          ],
        }),
      );
    }
    if (
      metrics === 'serving' &&
      (path === '/apis/metrics.k8s.io/v1beta1/pods' ||
        path === '/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods')
    ) {
      return res.end(json(podList));
    }
    res.statusCode = 404;
    res.end(json({ kind: 'Status', code: 404, message: 'the server could not find the requested resource' }));
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  clients = fakeApiClients(api);
});

after(async () => {
  api.closeAllConnections();
  await new Promise<void>((resolve) => api.close(() => resolve()));
});

test('without a metrics API, usage is missing (the add-on would bring it) and nothing else is asked', async () => {
  metrics = 'none';
  asked.length = 0;
  assert.deepEqual(await podMetrics(clients, ''), {
    available: false,
    reason: 'the cluster has no metrics API (metrics-server is not installed)',
    missing: true,
  });
  assert.deepEqual((await nodeMetrics(clients)).available, false);
  assert.deepEqual(asked, ['/apis', '/apis']);
});

test('a metrics API that does not answer yet is not missing, and says why', async () => {
  metrics = 'starting';
  const answer = await podMetrics(clients, 'kube-system');
  assert.equal(answer.available, false);
  assert.equal(!answer.available && answer.missing, false);
  assert.match(
    !answer.available ? answer.reason : '',
    /^the metrics API is not available: metrics-server does not answer \(it may still be starting\)$/,
  );
});

test('pod usage for all namespaces or one, summed per pod; node usage as the API gives it', async () => {
  metrics = 'serving';
  asked.length = 0;
  const all = await podMetrics(clients, '');
  const one = await podMetrics(clients, 'kube-system');
  assert.deepEqual(asked, [
    '/apis',
    '/apis/metrics.k8s.io/v1beta1/pods',
    '/apis',
    '/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods',
  ]);
  const expected = {
    available: true,
    pods: [
      {
        namespace: 'kube-system',
        name: 'kube-apiserver-dev-control-plane',
        cpu: 0.051234567,
        memory: 204800 * 1024,
      },
    ],
  };
  assert.deepEqual(all, expected);
  assert.deepEqual(one, expected);
  assert.deepEqual(await nodeMetrics(clients), {
    available: true,
    nodes: [{ name: 'dev-control-plane', cpu: '237000000n', memory: '436224Ki' }],
  });
});

test('the sampler keeps node and pod readings; without a metrics API it records nothing', async () => {
  let now = 1_000_000;
  const sampler = new UsageSampler(
    () => clients,
    60_000,
    () => now,
  );
  try {
    metrics = 'none';
    await sampler.sample();
    assert.deepEqual(sampler.nodes.all(), {});
    metrics = 'serving';
    now += 15_000;
    await sampler.sample();
    assert.deepEqual(sampler.nodes.of('dev-control-plane'), [{ at: now, cpu: 0.237, memory: 436224 * 1024 }]);
    assert.deepEqual(
      sampler.pods.of('kube-system/kube-apiserver-dev-control-plane').map((s) => s.at),
      [now],
    );
  } finally {
    sampler.stop();
  }
});

test('the sampler reads again every interval once started, and never after it stopped', async () => {
  let reads = 0;
  const sampler = new UsageSampler(() => {
    reads++;
    return undefined;
  }, 20);
  sampler.start();
  await new Promise((resolve) => setTimeout(resolve, 150));
  sampler.stop();
  const stopped = reads;
  assert.ok(stopped >= 3 && stopped <= 9, `${stopped} reads in 150 ms at one per 20 ms`);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(reads, stopped);
});

test('the pod usage endpoint is guarded like every API call and checks its namespace', async () => {
  metrics = 'serving';
  const dir = await mkdtemp(join(tmpdir(), 'minilab-dashboard-usage-'));
  let now = 5_000_000;
  const sampler = new UsageSampler(
    () => clients,
    60_000,
    () => now,
  );
  const guard: Guard = createGuard(await getPort({ host: '127.0.0.1' }));
  const server: DashboardServer = await startServer(
    {
      guard,
      profiles: profilesOf(connectedTo(clients), {}, sampler),
      assetsDir: dir,
    },
    guard.port,
  );
  const get = (path: string, headers: Record<string, string>) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: guard.port,
          path,
          headers: { host: `127.0.0.1:${guard.port}`, ...headers },
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  const auth = { authorization: `Bearer ${guard.token}` };
  try {
    asked.length = 0;
    assert.equal((await get('/api/metrics/pods', {})).status, 401);
    assert.equal((await get('/api/metrics/pods', { ...auth, host: 'rebound.example' })).status, 403);
    const bad = await get('/api/metrics/pods?namespace=..%2Fnodes', auth);
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.body).error, /invalid namespace/);
    assert.deepEqual(asked, [], 'nothing reached the API server');
    const ok = await get('/api/metrics/pods?namespace=kube-system', auth);
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body).pods[0].name, 'kube-apiserver-dev-control-plane');
    assert.equal(asked.at(-1), '/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods');

    // What the page read is kept: the node answer carries each node's readings, a pod's its own.
    const nodes = JSON.parse((await get('/api/metrics/nodes', auth)).body);
    assert.deepEqual(
      nodes.history['dev-control-plane'].map((s: { cpu: number }) => s.cpu),
      [0.237],
    );
    now += 15_000;
    const pod = JSON.parse(
      (await get('/api/metrics/pod?namespace=kube-system&name=kube-apiserver-dev-control-plane', auth)).body,
    );
    assert.equal(pod.available, true);
    // The pods read above, and again now by this call.
    assert.deepEqual(
      pod.history.map((s: { at: number; memory: number }) => [s.at, s.memory]),
      [
        [now - 15_000, 204800 * 1024],
        [now, 204800 * 1024],
      ],
    );
    assert.equal((await get('/api/metrics/pod?namespace=kube-system', auth)).status, 400);
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
