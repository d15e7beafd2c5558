import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import getPort from 'get-port';
import { HttpError } from '../../src/dashboard/errors.js';
import type { ProfileEntry } from '../../src/dashboard/model.js';
import { ProfileSessions, type ProfileView } from '../../src/dashboard/profiles.js';
import { createGuard } from '../../src/dashboard/security.js';
import { startServer } from '../../src/dashboard/server.js';
import { openProfile } from '../../src/dashboard/index.js';
import type { KubeconfigEntry } from '../../src/kube/kubeconfig.js';

/**
 * Sessions over profiles named `names` (the first the initial one); every view opened and closed is
 * noted in `events`, and a listing waits for `release()` when `held`.
 */
function sessions(names: string[], times: ConstructorParameters<typeof ProfileSessions>[1] = {}) {
  const events: string[] = [];
  let listed = names;
  let held: { release: () => void; waiting: Promise<void> } | undefined;
  const entries = () => listed.map((name): ProfileEntry => ({ name, status: 'running', driver: 'docker' }));
  const s = new ProfileSessions(
    {
      initial: names[0] as string,
      list: async () => {
        events.push('list');
        if (held) await held.waiting;
        return entries();
      },
      open: (name): ProfileView => {
        events.push(`open:${name}`);
        return {
          cluster: {
            state: { state: 'connected' },
            snapshot: () => [],
            subscribe: () => () => undefined,
            clients: () => undefined,
          },
          info: async () => ({ profile: name, apiServer: '' }),
          close: async () => void events.push(`close:${name}`),
        };
      },
    },
    times,
  );
  return {
    s,
    events,
    setListed: (next: string[]) => (listed = next),
    hold: () => {
      let release!: () => void;
      held = { release: () => release(), waiting: new Promise<void>((r) => (release = r)) };
      return held.release;
    },
  };
}

const status = (err: unknown) => (err instanceof HttpError ? err.status : err);

test('a profile asked for while the dashboard stops is refused, not started after close()', async () => {
  const { s, events, hold } = sessions(['dev', 'b']);
  await s.view('dev');
  const release = hold();
  const pending = s.view('b');
  await new Promise((resolve) => setImmediate(resolve));
  await s.close();
  release();
  await assert.rejects(pending, (err) => status(err) === 503);
  assert.equal(s.started('b'), undefined);
  assert.deepEqual(events, ['open:dev', 'list', 'close:dev']);
  // And anything asked afterwards, the initial profile included.
  await assert.rejects(s.view(''), (err) => status(err) === 503);
});

test('requests for one profile at once start it once', async () => {
  const { s, events } = sessions(['dev', 'b']);
  const [one, two] = await Promise.all([s.view('b'), s.view('b')]);
  assert.equal(one, two);
  assert.deepEqual(
    events.filter((e) => e.startsWith('open')),
    ['open:b'],
  );
  await s.close();
  assert.deepEqual(
    events.filter((e) => e.startsWith('close')),
    ['close:b'],
  );
});

test('a profile gone from a fresh listing loses its view and its streams; the initial one stays', async () => {
  const { s, events, setListed } = sessions(['dev', 'b']);
  await s.view('dev');
  await s.view('b');
  const ended: string[] = [];
  s.attach('b', () => ended.push('b'));
  s.attach('dev', () => ended.push('dev'));
  setListed([]);
  await s.list(true);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(ended, ['b']);
  assert.ok(events.includes('close:b'));
  assert.equal(s.started('b'), undefined);
  assert.ok(s.started('dev'));
  await assert.rejects(s.view('b'), (err) => status(err) === 404);
  await s.close();
  assert.deepEqual(ended, ['b', 'dev']);
});

test("another profile's view no page streams goes after the idle time; one streamed stays", async () => {
  let now = 0;
  const { s, events } = sessions(['dev', 'b', 'c'], { now: () => now, idleMs: 60_000 });
  await s.view('dev');
  await s.view('b');
  await s.view('c');
  const detach = s.attach('c', () => undefined);
  now = 59_000;
  await s.sweep();
  assert.ok(s.started('b'));
  now = 60_000;
  await s.sweep();
  assert.equal(s.started('b'), undefined, 'b: opened, never streamed, idle for a minute');
  assert.ok(s.started('c'), 'c: a page streams it');
  assert.ok(s.started('dev'), 'the initial profile stays');
  detach();
  now = 119_000;
  await s.sweep();
  assert.ok(s.started('c'), 'c: idle since its stream ended, 59 s ago');
  now = 120_000;
  await s.sweep();
  assert.equal(s.started('c'), undefined);
  assert.deepEqual(
    events.filter((e) => e.startsWith('close')),
    ['close:b', 'close:c'],
  );
  await s.close();
});

test('the sweep runs by itself while another profile is open', async () => {
  const { s } = sessions(['dev', 'b'], { idleMs: 0, sweepMs: 20 });
  await s.view('b');
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(s.started('b'), undefined);
  await s.close();
});

test('an API path the server does not serve starts no view', async () => {
  const { s, events } = sessions(['dev', 'b']);
  const dir = await mkdtemp(join(tmpdir(), 'minilab-dashboard-profiles-'));
  const guard = createGuard(await getPort({ host: '127.0.0.1' }));
  const server = await startServer({ guard, profiles: s, assetsDir: dir }, guard.port);
  const get = (path: string) =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: guard.port,
          path,
          headers: {
            host: `127.0.0.1:${guard.port}`,
            authorization: `Bearer ${guard.token}`,
            'x-minilab-profile': 'b',
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end();
    });
  try {
    assert.equal(await get('/api/nothing'), 404);
    assert.equal(await get('/api/info/'), 404);
    assert.deepEqual(events, []);
    assert.equal(await get('/api/info'), 200);
    assert.deepEqual(events, ['list', 'open:b']);
  } finally {
    await server.close();
    await s.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("a profile's API server is the one of its last credentials read, none while none could be", async () => {
  const entry = (server: string): KubeconfigEntry => ({
    name: 'b',
    server,
    certificateAuthorityData: '',
    clientCertificateData: '',
    clientKeyData: '',
  });
  const reads: Promise<KubeconfigEntry>[] = [
    Promise.reject(new Error('profile "b" is stopped')),
    // Still refused: nothing listens there, the view keeps trying.
    Promise.resolve(entry('https://127.0.0.1:9')),
  ];
  const view = openProfile('b', () => reads.shift() ?? Promise.resolve(entry('https://127.0.0.1:9')));
  try {
    assert.deepEqual(await view.info(), { profile: 'b', apiServer: '' });
    // The first retry is a second later.
    const until = Date.now() + 5000;
    while ((await view.info()).apiServer === '' && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual(await view.info(), { profile: 'b', apiServer: 'https://127.0.0.1:9' });
  } finally {
    await view.close?.();
  }
});
