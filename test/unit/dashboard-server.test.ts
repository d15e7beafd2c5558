import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import getPort from 'get-port';
import { createGuard, type Guard } from '../../src/dashboard/security.js';
import { startServer, type DashboardServer, type ServerDeps } from '../../src/dashboard/server.js';
import type { LiveEvent } from '../../src/dashboard/cluster.js';
import type { Row } from '../../src/dashboard/model.js';
import { canOpenBrowser } from '../../src/dashboard/browser.js';
import { startDashboard } from '../../src/dashboard/index.js';
import { MinilabError } from '../../src/errors.js';

const node: Row = {
  kind: 'Node',
  uid: 'n1',
  name: 'dev-control-plane',
  namespace: '',
  created: '2026-01-01T00:00:00.000Z',
  ready: 'True',
  problems: [],
  roles: ['control-plane'],
  kubeletVersion: 'v1.36.0',
  internalIP: '10.0.0.2',
  osImage: 'Debian',
  capacity: { cpu: '2', memory: '1Gi', pods: '110' },
  allocatable: { cpu: '2', memory: '1Gi', pods: '110' },
};

let dir: string;
let guard: Guard;
let server: DashboardServer;
const listeners = new Set<(e: LiveEvent) => void>();
const cluster: ServerDeps['cluster'] = {
  state: {
    state: 'reconnecting',
    message: 'the API server is not reachable (econnrefused)',
    retryInMs: 1000,
  },
  snapshot: () => [node],
  subscribe: (l) => {
    listeners.add(l);
    return () => listeners.delete(l);
  },
  clients: () => undefined,
};

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(
  path: string,
  opts: {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    until?: (body: string) => boolean;
  } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: guard.port,
        path,
        method: opts.method ?? 'GET',
        headers: { host: `127.0.0.1:${guard.port}`, ...opts.headers },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
          if (opts.until?.(body)) {
            res.destroy();
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
          }
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

const cookie = () => `${guard.cookieName}=${guard.token}`;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'minilab-dashboard-unit-'));
  await mkdir(join(dir, 'web', 'assets'), { recursive: true });
  await writeFile(join(dir, 'web', 'index.html'), '<!doctype html><title>dash</title>');
  await writeFile(join(dir, 'web', 'assets', 'app-1234.js'), 'console.log(1)');
  await writeFile(join(dir, 'secret.txt'), 'not for the web');
  guard = createGuard(await getPort({ host: '127.0.0.1' }));
  server = await startServer(
    {
      guard,
      cluster,
      info: { profile: 'dev', apiServer: 'https://127.0.0.1:1' },
      // A trailing slash, as the default (a URL turned into a path) has.
      assetsDir: join(dir, 'web') + '/',
    },
    guard.port,
  );
});

after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

test('the server listens on the loopback address only', () => {
  const address = server.server.address();
  assert.ok(address && typeof address === 'object');
  assert.equal(address.address, '127.0.0.1');
  assert.equal(server.url, `http://127.0.0.1:${guard.port}/`);
});

test('without the token nothing is served, not even the page', async () => {
  for (const path of ['/', '/assets/app-1234.js', '/api/info', '/api/stream']) {
    const r = await call(path);
    assert.equal(r.status, 401, path);
    assert.match(r.body, /token/);
  }
});

test('the first URL trades its token for a cookie; the cookie then opens the page with a strict CSP', async () => {
  const first = await call(`/?token=${guard.token}`);
  assert.equal(first.status, 303);
  assert.equal(first.headers.location, '/');
  const setCookie = String(first.headers['set-cookie']);
  assert.match(setCookie, /HttpOnly/);
  assert.match(setCookie, /SameSite=Strict/);
  const page = await call('/', { headers: { cookie: cookie() } });
  assert.equal(page.status, 200);
  assert.match(page.body, /<title>dash<\/title>/);
  assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
  assert.match(String(page.headers['content-security-policy']), /frame-ancestors 'none'/);
  const asset = await call('/assets/app-1234.js', { headers: { cookie: cookie() } });
  assert.equal(asset.status, 200);
  assert.match(String(asset.headers['content-type']), /javascript/);
});

test('a foreign Host header is refused, token or not', async () => {
  const r = await call('/api/info', { headers: { host: 'rebound.example:80', cookie: cookie() } });
  assert.equal(r.status, 403);
});

test('files outside the web UI are never served', async () => {
  for (const path of ['/../secret.txt', '/assets/..%2f..%2fsecret.txt', '/%2e%2e/secret.txt']) {
    const r = await call(path, { headers: { cookie: cookie() } });
    assert.notEqual(r.status, 200, path);
    assert.doesNotMatch(r.body, /not for the web/);
  }
});

test('the event stream starts with the cluster state and a snapshot, then sends changes', async () => {
  const done = call('/api/stream', {
    headers: { cookie: cookie() },
    until: (body) => body.includes('event: changes'),
  });
  // Push a change once the client is subscribed.
  while (listeners.size === 0) await new Promise((r) => setTimeout(r, 10));
  for (const l of listeners) l({ type: 'changes', upsert: [], remove: ['n1'] });
  const r = await done;
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /text\/event-stream/);
  const events = r.body
    .split('\n\n')
    .filter((e) => e.startsWith('event:'))
    .map((e) => ({
      event: /^event: (\w+)/.exec(e)?.[1],
      data: JSON.parse(/\ndata: (.*)$/.exec(e)?.[1] ?? 'null'),
    }));
  assert.deepEqual(
    events.map((e) => e.event),
    ['cluster', 'snapshot', 'changes'],
  );
  assert.equal(events[0]?.data.state, 'reconnecting');
  assert.equal(events[1]?.data.rows[0].name, 'dev-control-plane');
  assert.deepEqual(events[2]?.data, { upsert: [], remove: ['n1'] });
});

test('actions need the dashboard origin, and say so when the cluster is away', async () => {
  const body = JSON.stringify({ namespace: 'default', name: 'web', replicas: 2 });
  const json = { cookie: cookie(), 'content-type': 'application/json' };
  const noOrigin = await call('/api/scale', { method: 'POST', headers: json, body });
  assert.equal(noOrigin.status, 403);
  const crossSite = await call('/api/scale', {
    method: 'POST',
    headers: { ...json, origin: 'https://evil.example' },
    body,
  });
  assert.equal(crossSite.status, 403);
  const ours = await call('/api/scale', {
    method: 'POST',
    headers: { ...json, origin: `http://127.0.0.1:${guard.port}` },
    body,
  });
  assert.equal(ours.status, 503);
  assert.match(JSON.parse(ours.body).error, /cluster is not reachable now: the API server is not reachable/);
});

test('bad input is refused before anything reaches the cluster', async () => {
  const headers = { cookie: cookie(), origin: `http://127.0.0.1:${guard.port}` };
  const form = await call('/api/scale', {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'replicas=2',
  });
  assert.equal(form.status, 415);
  const unknown = await call('/api/nothing', { headers });
  assert.equal(unknown.status, 404);
  const info = await call('/api/info', { headers });
  assert.deepEqual(JSON.parse(info.body), { profile: 'dev', apiServer: 'https://127.0.0.1:1' });
});

test('a browser is opened only where one can show', () => {
  assert.equal(canOpenBrowser({}, 'linux'), false);
  assert.equal(canOpenBrowser({ DISPLAY: ':0' }, 'linux'), true);
  assert.equal(canOpenBrowser({ WAYLAND_DISPLAY: 'wayland-0' }, 'linux'), true);
  assert.equal(canOpenBrowser({}, 'darwin'), true);
  assert.equal(canOpenBrowser({}, 'win32'), true);
});

test('a taken --port is an environment error with a hint; a missing web build too', async () => {
  const entry = {
    name: 'dev',
    server: 'https://127.0.0.1:1',
    certificateAuthorityData: '',
    clientCertificateData: '',
    clientKeyData: '',
  };
  const taken = await startDashboard({
    profile: 'dev',
    port: guard.port,
    resolve: async () => entry,
    assetsDir: join(dir, 'web'),
  }).then(
    () => assert.fail('started on a taken port'),
    (err: unknown) => err,
  );
  assert.ok(taken instanceof MinilabError);
  assert.equal(taken.kind, 'environment');
  assert.match(taken.message, new RegExp(`127\\.0\\.0\\.1:${guard.port}`));
  assert.match(taken.hint ?? '', /--port/);
  await assert.rejects(
    startDashboard({ profile: 'dev', resolve: async () => entry, assetsDir: join(dir, 'nothing') }),
    (err: unknown) => err instanceof MinilabError && /npm run build/.test(err.hint ?? ''),
  );
});
