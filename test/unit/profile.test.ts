import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateProfileName } from '../../src/profile/name.js';
import { ProfileStore, minilabHome } from '../../src/profile/store.js';
import { lockProfile } from '../../src/profile/lock.js';
import { MinilabError } from '../../src/errors.js';

test('profile names follow DNS label rules', () => {
  for (const ok of ['minilab', 'dev-1', 'a', '0abc', 'x'.repeat(63)])
    assert.equal(validateProfileName(ok), ok);
  for (const bad of ['', 'Dev', 'a.b', '../x', '-a', 'a-', 'a_b', 'x'.repeat(64), 'a b']) {
    assert.throws(
      () => validateProfileName(bad),
      (err: unknown) => err instanceof MinilabError && err.exitCode === 2 && Boolean(err.hint),
      `expected "${bad}" to be refused`,
    );
  }
});

test('MINILAB_HOME overrides the state directory', () => {
  assert.equal(minilabHome({ MINILAB_HOME: '/x/y' }), '/x/y');
  assert.match(minilabHome({}), /\.minilab$/);
});

test('profile store writes atomically with mode 0600, lists and removes', async () => {
  const home = await mkdtemp(join(tmpdir(), 'minilab-unit-'));
  try {
    const store = new ProfileStore(home);
    assert.deepEqual(await store.list(), []);
    assert.equal(await store.read('a'), undefined);
    const config = {
      name: 'a',
      kubernetesVersion: 'v1.36.5',
      ports: [],
      createdAt: new Date(0).toISOString(),
    };
    await store.write(config);
    await store.write({ ...config, cpus: 2 });
    assert.deepEqual(await store.read('a'), { ...config, cpus: 2 });
    assert.deepEqual(await store.list(), ['a']);
    const files = await readdir(store.dir('a'));
    assert.deepEqual(files, ['profile.json'], 'no temporary files are left behind');
    assert.equal((await stat(join(store.dir('a'), 'profile.json'))).mode & 0o777, 0o600);
    await store.remove('a');
    assert.deepEqual(await store.list(), []);
    await store.remove('a');
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

test('a corrupt profile file gives an environment error with a hint', async () => {
  const home = await mkdtemp(join(tmpdir(), 'minilab-unit-'));
  try {
    const store = new ProfileStore(home);
    await store.write({ name: 'b', kubernetesVersion: 'v1', ports: [], createdAt: '' });
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(store.dir('b'), 'profile.json'), '{not json');
    await assert.rejects(
      store.read('b'),
      (err: unknown) => err instanceof MinilabError && err.exitCode === 3,
    );
    assert.equal(await readFile(join(store.dir('b'), 'profile.json'), 'utf8'), '{not json', 'left unchanged');
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

test('the profile lock serializes holders and names who holds it', async () => {
  const home = await mkdtemp(join(tmpdir(), 'minilab-unit-'));
  try {
    const release = await lockProfile(home, 'p', { timeoutMs: 1000, purpose: 'minilab start' });
    const waits: string[] = [];
    await assert.rejects(
      lockProfile(home, 'p', { timeoutMs: 600, purpose: 'minilab stop', onWait: (h) => waits.push(h) }),
      (err: unknown) =>
        err instanceof MinilabError && err.exitCode === 5 && /minilab start/.test(err.message),
    );
    assert.equal(waits.length, 1);
    assert.match(waits[0] ?? '', /minilab start \(pid \d+\)/);
    const order: string[] = [];
    const second = lockProfile(home, 'p', { timeoutMs: 5000, purpose: 'second' }).then((r) => {
      order.push('second acquired');
      return r;
    });
    await new Promise((r) => setTimeout(r, 300));
    order.push('first released');
    await release();
    const release2 = await second;
    assert.deepEqual(order, ['first released', 'second acquired']);
    await release2();
    const other = await lockProfile(home, 'q', { timeoutMs: 100, purpose: 'other profile' });
    await other();
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});
