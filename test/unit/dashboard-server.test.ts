import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import getPort from 'get-port';
import { createGuard, launchUrl, type Guard } from '../../src/dashboard/security.js';
import { peerIsThisUser, type Connection } from '../../src/dashboard/peer.js';
import { startServer, type DashboardServer } from '../../src/dashboard/server.js';
import type { ProfileView } from '../../src/dashboard/profiles.js';
import { profilesOf } from '../helpers/dashboard-fake-api.js';
import type { LiveEvent } from '../../src/dashboard/cluster.js';
import type { Row } from '../../src/dashboard/model.js';
import { canOpenBrowser, openDashboard, type Opener } from '../../src/dashboard/browser.js';
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
const cluster: ProfileView['cluster'] = {
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

/** A second profile's cluster: connected, with a node of its own. */
const otherCluster: ProfileView['cluster'] = {
  state: { state: 'connected' },
  snapshot: () => [{ ...node, uid: 'o1', name: 'other-control-plane' }],
  subscribe: () => () => undefined,
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
        answers += 1;
        if (res.headers['set-cookie']) setCookies.push(...res.headers['set-cookie']);
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

/** The session header the page sends. */
const auth = () => `Bearer ${guard.token}`;

/** A request written as raw bytes: targets no HTTP client would send. */
function rawGet(target: string, port = guard.port): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () =>
      socket.write(
        `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${auth()}\r\nConnection: close\r\n\r\n`,
      ),
    );
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.on('error', reject);
    socket.on('end', () => {
      const [head = '', body = ''] = text.split('\r\n\r\n');
      const [status = '', ...lines] = head.split('\r\n');
      const headers: Answer['headers'] = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      answers += 1;
      if (headers['set-cookie']) setCookies.push(String(headers['set-cookie']));
      resolve({ status: Number(status.split(' ')[1]), headers, body });
    });
  });
}

/** Who the server takes a launch request from; the real check unless a test says otherwise. */
let peerIsUser: (c: Connection) => Promise<boolean> = (c) => peerIsThisUser(c);
/** Every Set-Cookie header any answer in this file carried, out of how many answers. */
const setCookies: string[] = [];
let answers = 0;

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
      profiles: profilesOf(cluster, { other: otherCluster }),
      // A trailing slash, as the default (a URL turned into a path) has.
      assetsDir: join(dir, 'web') + '/',
      peerIsUser: (c) => peerIsUser(c),
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

test('without the token no data is served; the page and its assets (no data in them) are', async () => {
  for (const path of ['/api/info', '/api/stream', '/api/port-forwards', `/api/info?token=${guard.token}`]) {
    const r = await call(path);
    assert.equal(r.status, 401, path);
    assert.match(r.body, /token/);
  }
  // A cookie holding the token is no credential either.
  const cookie = await call('/api/info', {
    headers: { cookie: `minilab-dashboard-${guard.port}=${guard.token}` },
  });
  assert.equal(cookie.status, 401);
  const page = await call('/');
  assert.equal(page.status, 200);
  assert.match(page.body, /<title>dash<\/title>/);
  assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
  assert.match(String(page.headers['content-security-policy']), /frame-ancestors 'none'/);
  const asset = await call('/assets/app-1234.js');
  assert.equal(asset.status, 200);
  assert.match(String(asset.headers['content-type']), /javascript/);
  const info = await call('/api/info', { headers: { authorization: auth() } });
  assert.equal(info.status, 200);
});

test('the launch link: refused to another user, then traded once for the token in a same-origin fragment', async () => {
  const path = new URL(launchUrl(guard)).pathname;
  assert.doesNotMatch(path, new RegExp(guard.token));
  // Another local user read the code in the browser's command line: refused, and the code stays good.
  peerIsUser = async () => false;
  const stranger = await call(path);
  peerIsUser = (c) => peerIsThisUser(c);
  assert.equal(stranger.status, 403);
  assert.equal(stranger.headers.location, undefined);
  assert.doesNotMatch(stranger.body, new RegExp(guard.token));
  // This test's own connection is the user's (the real check, from /proc/net/tcp).
  const first = await call(path);
  assert.equal(first.status, 303);
  assert.equal(first.headers.location, `/#token=${guard.token}`);
  assert.equal(first.headers['set-cookie'], undefined);
  const again = await call(path);
  assert.equal(again.status, 410);
  assert.equal(again.headers.location, undefined);
});

test('a foreign Host header is refused, token or not', async () => {
  const r = await call('/api/info', { headers: { host: 'rebound.example:80', authorization: auth() } });
  assert.equal(r.status, 403);
});

test('a malformed request target is a 400, and the server keeps serving', async () => {
  for (const target of ['//', 'http://[', '//:99']) {
    const r = await rawGet(target);
    assert.equal(r.status, 400, target);
    assert.match(r.body, /malformed request target/, target);
  }
  const info = await call('/api/info', { headers: { authorization: auth() } });
  assert.equal(info.status, 200);
});

test('no target sends the browser off this origin (protocol-relative or backslash paths)', async () => {
  for (const target of [
    `//evil.example/launch/${guard.launch.code}`,
    `/\\evil.example/launch/${guard.launch.code}`,
    '//evil.example/',
    '/\\evil.example',
  ]) {
    const r = await rawGet(target);
    assert.equal(r.status, 400, target);
    assert.equal(r.headers.location, undefined, target);
  }
  // A path that looks like a host is a path here (with nothing at it), not a way out.
  const r = await rawGet('/.//evil.example');
  assert.equal(r.status, 404);
  assert.equal(r.headers.location, undefined);
});

test('malformed percent-encoding is a 400, not a 502', async () => {
  for (const path of ['/%zz.js', '/assets/%E0%A4%A.js', '/assets/%.css']) {
    const r = await call(path, { headers: { authorization: auth() } });
    assert.equal(r.status, 400, path);
    assert.match(JSON.parse(r.body).error, /percent-encoding/);
  }
});

test('files outside the web UI are never served', async () => {
  for (const path of ['/../secret.txt', '/assets/..%2f..%2fsecret.txt', '/%2e%2e/secret.txt']) {
    const r = await call(path, { headers: { authorization: auth() } });
    assert.notEqual(r.status, 200, path);
    assert.doesNotMatch(r.body, /not for the web/);
  }
});

test('the event stream starts with the cluster state and a snapshot, then sends changes', async () => {
  const done = call('/api/stream', {
    headers: { authorization: auth() },
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

test('a request names its profile in a header: each profile its own stream and info; unknown names refused', async () => {
  const firstEvents = (body: string) => body.includes('event: snapshot');
  const stream = (headers: Record<string, string> = {}) =>
    call('/api/stream', { headers: { authorization: auth(), ...headers }, until: firstEvents });
  assert.match((await stream()).body, /dev-control-plane/);
  const other = await stream({ 'x-minilab-profile': 'other' });
  assert.match(other.body, /other-control-plane/);
  assert.doesNotMatch(other.body, /dev-control-plane/);
  const info = await call('/api/info', { headers: { authorization: auth(), 'x-minilab-profile': 'other' } });
  assert.deepEqual(JSON.parse(info.body), { profile: 'other', apiServer: 'https://other.invalid:6443' });

  const profiles = await call('/api/profiles', { headers: { authorization: auth() } });
  assert.deepEqual(JSON.parse(profiles.body), {
    initial: 'dev',
    profiles: [
      { name: 'dev', status: 'running', driver: 'docker' },
      { name: 'other', status: 'running', driver: 'docker' },
    ],
  });
  const unknown = await call('/api/info', {
    headers: { authorization: auth(), 'x-minilab-profile': 'gone' },
  });
  assert.equal(unknown.status, 404);
  assert.match(JSON.parse(unknown.body).error, /no profile "gone".*minilab profile list/);
  const invalid = await call('/api/info', {
    headers: { authorization: auth(), 'x-minilab-profile': '../x' },
  });
  assert.equal(invalid.status, 400);
  // The token guards the list of profiles as every other call.
  assert.equal((await call('/api/profiles')).status, 401);
});

test('actions need the dashboard origin, and say so when the cluster is away', async () => {
  const body = JSON.stringify({ namespace: 'default', name: 'web', replicas: 2 });
  const json = { authorization: auth(), 'content-type': 'application/json' };
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
  const headers = { authorization: auth(), origin: `http://127.0.0.1:${guard.port}` };
  const form = await call('/api/scale', {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'replicas=2',
  });
  assert.equal(form.status, 415);
  const unknown = await call('/api/nothing', { headers });
  assert.equal(unknown.status, 404);
  const info = await call('/api/info', { headers });
  assert.deepEqual(JSON.parse(info.body), { profile: 'dev', apiServer: 'https://dev.invalid:6443' });
});

test('a browser is opened only where one can show', () => {
  assert.equal(canOpenBrowser({}, 'linux'), false);
  assert.equal(canOpenBrowser({ DISPLAY: ':0' }, 'linux'), true);
  assert.equal(canOpenBrowser({ WAYLAND_DISPLAY: 'wayland-0' }, 'linux'), true);
  assert.equal(canOpenBrowser({}, 'darwin'), true);
  assert.equal(canOpenBrowser({}, 'win32'), true);
});

/** A kubeconfig entry of a cluster that is not there: the dashboard serves and keeps retrying. */
const entry = {
  name: 'dev',
  server: 'https://127.0.0.1:1',
  certificateAuthorityData: '',
  clientCertificateData: '',
  clientKeyData: '',
};

test('a taken --port is an environment error with a hint; a missing web build too', async () => {
  const taken = await startDashboard({
    profile: 'dev',
    port: guard.port,
    resolve: async () => entry,
    listProfiles: async () => [],
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
    startDashboard({
      profile: 'dev',
      resolve: async () => entry,
      listProfiles: async () => [],
      assetsDir: join(dir, 'nothing'),
    }),
    (err: unknown) => err instanceof MinilabError && /npm run build/.test(err.hint ?? ''),
  );
});

/** An opener that records what it is given, does what a browser does with it, then exits with `code`. */
function recordingOpener(visit: (target: string) => Promise<void>, code = 0) {
  const targets: string[] = [];
  const open: Opener = async (target) => {
    targets.push(target);
    await visit(target);
    const child = new EventEmitter();
    setImmediate(() => child.emit('exit', code));
    return child;
  };
  return { targets, open };
}

/** Follows one redirect the way a browser does; returns where it ended up. */
async function follow(url: string): Promise<string> {
  const u = new URL(url);
  const r = await new Promise<Answer>((resolve, reject) => {
    const req = request(url, { headers: { host: u.host } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' }));
    });
    req.on('error', reject);
    req.end();
  });
  return r.status === 303 ? new URL(String(r.headers.location), url).href : url;
}

test('Linux: the opener gets a one-time launch URL without the token, which lands the browser logged in', async () => {
  const dashboard = await startDashboard({
    profile: 'dev',
    resolve: async () => entry,
    listProfiles: async () => [],
    assetsDir: join(dir, 'web'),
  });
  try {
    const token = new URL(dashboard.url).hash.replace('#token=', '');
    assert.ok(token.length >= 40);
    let landed = '';
    const opener = recordingOpener(async (target) => void (landed = await follow(target)));
    const failures: string[] = [];
    const dispose = await openDashboard(dashboard, (r) => failures.push(r), {
      open: opener.open,
      platform: 'linux',
    });
    assert.deepEqual(opener.targets, [dashboard.launchUrl]);
    for (const arg of opener.targets)
      assert.ok(!arg.includes(token), `the token in the opener's argument ${arg}`);
    // The browser's request came from this user (the real /proc check): it lands on the page, token in the fragment.
    assert.equal(landed, `http://127.0.0.1:${dashboard.port}/#token=${token}`);
    await dispose();
    assert.deepEqual(failures, []);
  } finally {
    await dashboard.close();
  }
});

test('elsewhere: the opener gets a file URL of a 0600 page in a private folder; the page is gone after', async () => {
  const dashboard = {
    url: `http://127.0.0.1:${guard.port}/#token=${guard.token}`,
    launchUrl: launchUrl(guard),
  };
  const opener = recordingOpener(async () => undefined);
  const dispose = await openDashboard(dashboard, (r) => assert.fail(r), {
    open: opener.open,
    platform: 'darwin',
    parent: dir,
  });
  const [target = ''] = opener.targets;
  assert.match(target, /^file:\/\//);
  assert.ok(!target.includes(guard.token));
  assert.ok(!target.includes(guard.launch.code));
  const file = fileURLToPath(target);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal((await stat(dirname(file))).mode & 0o777, 0o700);
  const page = await readFile(file, 'utf8');
  assert.ok(page.includes(`content="0;url=${dashboard.url}"`));
  await dispose();
  assert.equal(existsSync(file), false);
});

test('an opener that fails is reported, not thrown', async () => {
  const failures: string[] = [];
  const dispose = await openDashboard(
    { url: 'http://127.0.0.1:1/#token=x', launchUrl: 'http://127.0.0.1:1/launch/y' },
    (r) => failures.push(r),
    { platform: 'linux', open: recordingOpener(async () => undefined, 3).open },
  );
  await new Promise((r) => setImmediate(r));
  await dispose();
  assert.deepEqual(failures, ['the system opener exited with code 3']);
});

test('no answer in this file set a cookie', () => {
  assert.ok(answers > 30, `only ${answers} answers seen`);
  assert.deepEqual(setCookies, []);
});
