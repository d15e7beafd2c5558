import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import {
  kubeconfigPath,
  removeEntry,
  removeKubeconfigEntry,
  upsertEntry,
  writeKubeconfigEntry,
} from '../../src/kube/kubeconfig.js';
import { sampleEntry } from '../helpers/kubeconfig.js';
import { MinilabError } from '../../src/errors.js';

const entry = sampleEntry;

const existing = `# the user's own comment
apiVersion: v1
kind: Config
clusters:
  - name: prod
    cluster:
      server: https://prod.example:6443
      insecure-skip-tls-verify: true
      extensions:
        - name: x
          extension: { any: thing }
users:
  - name: prod-admin
    user:
      exec:
        apiVersion: client.authentication.k8s.io/v1
        command: aws
        args: [eks, get-token]
contexts:
  - name: prod
    context: { cluster: prod, user: prod-admin, namespace: web }
current-context: prod
preferences: { colors: true }
`;

type Config = {
  clusters: { name: string; cluster: Record<string, unknown> }[];
  users: { name: string }[];
  contexts: { name: string }[];
  'current-context': string;
  preferences: Record<string, unknown>;
};

test('merging keeps every other entry and field, and switches context when asked', () => {
  const merged = upsertEntry(existing, entry('dev'), true);
  const c = parse(merged) as Config;
  assert.deepEqual(
    c.clusters.map((x) => x.name),
    ['prod', 'dev'],
  );
  assert.deepEqual(
    c.users.map((x) => x.name),
    ['prod-admin', 'dev'],
  );
  assert.deepEqual(
    c.contexts.map((x) => x.name),
    ['prod', 'dev'],
  );
  assert.equal(c['current-context'], 'dev');
  assert.deepEqual(c.preferences, { colors: true });
  assert.deepEqual((parse(existing) as Config).clusters[0], c.clusters[0], 'the other cluster is untouched');
  assert.match(merged, /# the user's own comment/);
  const noSwitch = parse(upsertEntry(existing, entry('dev'), false)) as Config;
  assert.equal(noSwitch['current-context'], 'prod');
});

test('merging is idempotent and updates the server in place', () => {
  const once = upsertEntry(existing, entry('dev'), true);
  assert.equal(upsertEntry(once, entry('dev'), true), once);
  const moved = parse(upsertEntry(once, entry('dev', 40001), true)) as Config;
  assert.equal(moved.clusters.length, 2);
  assert.equal(moved.clusters[1]?.cluster.server, 'https://127.0.0.1:40001');
});

test('removing takes out only its own entries and clears its current-context', () => {
  const merged = upsertEntry(existing, entry('dev'), true);
  const { text, removed } = removeEntry(merged, 'dev');
  assert.equal(removed, true);
  const c = parse(text) as Config;
  assert.deepEqual(
    c.clusters.map((x) => x.name),
    ['prod'],
  );
  assert.deepEqual(
    c.users.map((x) => x.name),
    ['prod-admin'],
  );
  assert.equal(c['current-context'], '');
  assert.equal(removeEntry(text, 'dev').removed, false, 'idempotent');
  const other = removeEntry(upsertEntry(existing, entry('dev'), false), 'dev');
  assert.equal((parse(other.text) as Config)['current-context'], 'prod');
});

test('malformed kubeconfigs are refused with a hint', () => {
  for (const bad of ['clusters: [unclosed', 'clusters: 3', '- a list']) {
    assert.throws(
      () => upsertEntry(bad, entry('dev'), true),
      (err: unknown) => err instanceof MinilabError && err.exitCode === 3 && Boolean(err.hint),
    );
  }
});

test('KUBECONFIG: the first file of the list is the one written', () => {
  assert.equal(kubeconfigPath({ KUBECONFIG: '/a/one:/b/two' }), '/a/one');
  assert.equal(kubeconfigPath({ KUBECONFIG: '', HOME: '/home/u' }), '/home/u/.kube/config');
});

test('files are written 0600, concurrently without losing entries, and malformed ones are left unchanged', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-kubeconfig-'));
  try {
    const file = join(dir, 'nested', 'config');
    await Promise.all(['a', 'b', 'c', 'd'].map((n) => writeKubeconfigEntry(file, entry(n), false)));
    const c = parse(await readFile(file, 'utf8')) as Config;
    assert.deepEqual(c.clusters.map((x) => x.name).sort(), ['a', 'b', 'c', 'd']);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal(await removeKubeconfigEntry(file, 'b'), true);
    assert.equal(await removeKubeconfigEntry(file, 'b'), false);
    assert.equal(await removeKubeconfigEntry(join(dir, 'absent'), 'b'), false);
    const bad = join(dir, 'bad');
    await writeFile(bad, 'clusters: [unclosed');
    await assert.rejects(writeKubeconfigEntry(bad, entry('x'), true), MinilabError);
    assert.equal(await readFile(bad, 'utf8'), 'clusters: [unclosed');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
