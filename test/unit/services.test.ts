import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  listForwards,
  processFingerprint,
  readForward,
  recordForward,
  stopForwards,
  type ServiceForward,
} from '../../src/profile/services.js';

const withDir = async (fn: (dir: string) => Promise<void>) => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-services-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

const sleeper = () => spawn('sleep', ['30'], { stdio: 'ignore' });

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

const forward = (pid: number, service: string) => ({
  pid,
  url: 'http://127.0.0.1:40000',
  namespace: 'default',
  service,
  startedAt: new Date().toISOString(),
});

test("a process's fingerprint: its start time, this boot, its command line", async () => {
  const child = sleeper();
  try {
    const f = await processFingerprint(child.pid!);
    assert.equal(f?.cmdline, 'sleep\0' + '30\0');
    assert.match(f?.startTime ?? '', /^\d+$/);
    assert.equal(f?.bootId, (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim());
    assert.notDeepEqual(await processFingerprint(process.pid), f);
  } finally {
    child.kill();
  }
  await once(child, 'exit');
  assert.equal(await processFingerprint(child.pid!), undefined, 'a process gone has none');
});

test('a record whose PID now belongs to another process is not signalled, and is removed', async () => {
  await withDir(async (dir) => {
    const child = sleeper();
    try {
      // The PID given to another process: the same PID, another start time.
      await recordForward(dir, forward(child.pid!, 'reused'));
      const file = join(dir, 'services', 'default.reused.json');
      const rec = JSON.parse(await readFile(file, 'utf8')) as ServiceForward;
      assert.ok(rec.process, 'the record carries a fingerprint');
      await writeFile(file, JSON.stringify({ ...rec, process: { ...rec.process, startTime: '1' } }));
      // A record without a fingerprint (written before them) is not trusted either.
      await writeFile(join(dir, 'services', 'default.old.json'), JSON.stringify(forward(child.pid!, 'old')));

      assert.deepEqual(await stopForwards(dir), []);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(running(child), 'the other process was left running');
      assert.deepEqual(await readdir(join(dir, 'services')), [], 'the stale records are gone');
      assert.equal(await readForward(dir, 'default', 'reused'), undefined);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

test('a record of a running forwarder is listed, and stopped with SIGTERM', async () => {
  await withDir(async (dir) => {
    const child = sleeper();
    const exited = once(child, 'exit');
    await recordForward(dir, forward(child.pid!, 'echo'));
    assert.deepEqual(
      (await listForwards(dir)).map((f) => [f.service, f.pid]),
      [['echo', child.pid]],
    );
    const stopped = await stopForwards(dir, { namespace: 'default', service: 'echo' });
    assert.deepEqual(
      stopped.map((f) => f.service),
      ['echo'],
    );
    const [, signal] = (await exited) as [number | null, NodeJS.Signals | null];
    assert.equal(signal, 'SIGTERM');
    assert.deepEqual(await listForwards(dir), []);
  });
});

const servicesModule = new URL('../../src/profile/services.js', import.meta.url).href;
const forwardModule = new URL('../../src/kube/forward.js', import.meta.url).href;

/** A background forwarder (serveForward as `service --url` runs it), with no cluster behind it. */
const FORWARDER = `
const { serveForward } = await import(process.env.FORWARD_MODULE);
const entry = { name: 'x', server: 'https://127.0.0.1:9', certificateAuthorityData: '', clientCertificateData: '', clientKeyData: '' };
await serveForward(
  entry,
  { profile: 'p', dir: process.env.PROFILE_DIR, namespace: 'default', service: 'echo' },
  { namespace: 'default', service: 'echo', servicePort: 80, pod: 'echo-1', podPort: 8080 },
  { background: true, onServing: () => undefined },
);
`;

/** A process that records itself as a forwarder, then ends on an uncaught error or normally. */
const RECORDS_ITSELF = `
const { recordOwnForward } = await import(process.env.SERVICES_MODULE);
await recordOwnForward(process.env.PROFILE_DIR, { url: 'http://127.0.0.1:40000', namespace: 'default', service: 'echo' });
console.log('recorded');
if (process.env.END === 'error') setTimeout(() => { throw new Error('the forwarder failed'); }, 50);
`;

const runChild = (script: string, dir: string, env: Record<string, string> = {}) =>
  spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: {
      ...process.env,
      PROFILE_DIR: dir,
      FORWARD_MODULE: forwardModule,
      SERVICES_MODULE: servicesModule,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

const recordOf = async (dir: string, pid: number) => {
  for (let i = 0; i < 300; i++) {
    const f = await readForward(dir, 'default', 'echo');
    if (f?.pid === pid) return f;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail('the forwarder did not record itself');
};

for (const how of ['SIGTERM from service --stop', 'SIGINT'] as const) {
  test(`a background forwarder removes its record when it ends on ${how}`, async () => {
    await withDir(async (dir) => {
      const child = runChild(FORWARDER, dir);
      const exited = once(child, 'exit');
      try {
        const rec = await recordOf(dir, child.pid!);
        assert.deepEqual(rec.process, await processFingerprint(child.pid!));
        if (how === 'SIGINT') child.kill('SIGINT');
        else assert.equal((await stopForwards(dir)).length, 1);
        const [code] = (await exited) as [number | null];
        assert.equal(code, 0, 'it stopped through its own handler');
        assert.equal(await readForward(dir, 'default', 'echo'), undefined);
      } finally {
        child.kill('SIGKILL');
      }
    });
  });
}

for (const end of ['error', 'normal'] as const) {
  test(`a recorded forwarder's record is removed when it exits (${end} end)`, async () => {
    await withDir(async (dir) => {
      const child = runChild(RECORDS_ITSELF, dir, { END: end });
      let [stdout, stderr] = ['', ''];
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, end === 'error' ? 1 : 0, stderr);
      assert.equal(stdout, 'recorded\n');
      if (end === 'error') assert.match(stderr, /the forwarder failed/);
      assert.deepEqual(await readdir(join(dir, 'services')), []);
    });
  });
}
