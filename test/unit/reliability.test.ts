// The reliability cases that need no cluster: kubeconfig lists as kubectl edits them, writes from
// many processes at once, malformed files left alone, the profile lock leaving nothing behind,
// waits that stop at a verdict, and flag values refused at the edge.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import {
  checkKubeconfigFiles,
  findEntry,
  kubeconfigFiles,
  planRemove,
  planUpsert,
  readKubeconfigEntry,
  removeKubeconfigEntry,
  writeKubeconfigEntry,
} from '../../src/kube/kubeconfig.js';
import { sampleEntry } from '../helpers/kubeconfig.js';
import { waitUntil } from '../../src/kube/wait.js';
import { lockProfile, profileLocked } from '../../src/profile/lock.js';
import { parseCpus, parsePort } from '../../src/cli/commands/lifecycle.js';
import { MinilabError } from '../../src/errors.js';
import { projectRoot } from '../../src/version.js';

const entry = sampleEntry;

/** Unusual but valid: comments, flow style, anchors and aliases, extensions, exec users, unicode. */
const FOREIGN = `# mine
apiVersion: v1
kind: Config
preferences: { colors: true }
clusters:
  - name: prod
    cluster:
      server: https://prod.example.invalid:6443
      tls-server-name: api.prod.internal
      proxy-url: socks5://127.0.0.1:1080
      extensions:
        - name: x.example.com
          extension: { any: [thing, 1, true] }
  - name: unicode-集群
    cluster: { server: "https://[::1]:8443", insecure-skip-tls-verify: true }
users:
  - name: prod-admin
    user:
      exec: { apiVersion: client.authentication.k8s.io/v1, command: aws, args: [eks, get-token] }
  - name: anchored
    user: &basic { username: admin, password: not-a-real-password }
  - name: aliased
    user: *basic
contexts:
  - name: prod
    context: { cluster: prod, user: prod-admin, namespace: web }
current-context: prod
`;

type Doc = {
  clusters?: { name: string; cluster: { server: string } }[];
  users?: { name: string }[];
  contexts?: { name: string }[];
  'current-context'?: string;
};
const names = (doc: Doc | undefined, key: 'clusters' | 'users' | 'contexts') =>
  (doc?.[key] ?? []).map((i) => i.name);
const texts = (files: Record<string, string | undefined>) => new Map(Object.entries(files));

test('KUBECONFIG: the files in order, without empty entries and repeats; ~/.kube/config otherwise', () => {
  assert.deepEqual(kubeconfigFiles({ KUBECONFIG: '/a::/b:/a: ' }), ['/a', '/b']);
  assert.deepEqual(kubeconfigFiles({ KUBECONFIG: '', HOME: '/home/u' }), ['/home/u/.kube/config']);
});

test('a new entry goes where kubectl puts one: the only file, else the first that exists, else the last', () => {
  const one = planUpsert(['/x'], texts({ '/x': undefined }), entry('dev'), true);
  assert.deepEqual([...one.writes.keys()], ['/x']);
  const firstExisting = planUpsert(
    ['/missing', '/b', '/c'],
    texts({ '/missing': undefined, '/b': FOREIGN, '/c': 'apiVersion: v1\n' }),
    entry('dev'),
    true,
  );
  assert.deepEqual([...firstExisting.writes.keys()], ['/b']);
  assert.equal(firstExisting.file, '/b');
  const b = parse(firstExisting.writes.get('/b') as string) as Doc;
  assert.deepEqual(names(b, 'clusters'), ['prod', 'unicode-集群', 'dev']);
  assert.equal(b['current-context'], 'dev');
  const none = planUpsert(['/p', '/q'], texts({}), entry('dev'), false);
  assert.deepEqual([...none.writes.keys()], ['/q'], 'no file exists: the last one');
  assert.equal((parse(none.writes.get('/q') as string) as Doc)['current-context'], 'dev');
});

test('an entry already defined in a later file is updated there; the current context follows kubectl', () => {
  const later = `clusters:\n- name: dev\n  cluster:\n    server: https://127.0.0.1:1\ncurrent-context: other\n`;
  const plan = planUpsert(['/a', '/b'], texts({ '/a': FOREIGN, '/b': later }), entry('dev', 2), false);
  const a = parse(plan.writes.get('/a') as string) as Doc;
  const b = parse(plan.writes.get('/b') as string) as Doc;
  assert.deepEqual(names(a, 'clusters'), ['prod', 'unicode-集群'], 'not added again in the first file');
  assert.deepEqual(names(a, 'users'), ['prod-admin', 'anchored', 'aliased', 'dev']);
  assert.deepEqual(names(a, 'contexts'), ['prod', 'dev']);
  assert.equal(b.clusters?.[0]?.cluster.server, 'https://127.0.0.1:2');
  assert.equal(a['current-context'], 'prod', 'without switching, the current context stays');
  assert.equal(b['current-context'], 'other', 'a later current-context is never the one kubectl uses');
  const view = findEntry(['/a', '/b'], plan.writes, 'dev');
  assert.deepEqual(view, {
    server: 'https://127.0.0.1:2',
    path: '/b',
    current: false,
    credentials: {
      certificateAuthorityData: 'Q0E=',
      clientCertificateData: 'Q0VSVA==',
      clientKeyData: 'S0VZ',
    },
  });
  const switched = planUpsert(['/a', '/b'], texts({ '/a': FOREIGN, '/b': later }), entry('dev'), true);
  assert.equal((parse(switched.writes.get('/a') as string) as Doc)['current-context'], 'dev');
  assert.equal(switched.writes.get('/b') !== undefined, true);
  assert.equal((parse(switched.writes.get('/b') as string) as Doc)['current-context'], 'other');
});

test('removing takes each entry from the file kubectl finds it in, and clears the current context it set', () => {
  const a = planUpsert(['/a', '/b'], texts({ '/a': FOREIGN, '/b': '' }), entry('dev'), true).writes.get('/a');
  const plan = planRemove(['/a', '/b'], texts({ '/a': a, '/b': '' }), 'dev');
  assert.equal(plan.removed, true);
  assert.deepEqual([...plan.writes.keys()], ['/a']);
  const doc = parse(plan.writes.get('/a') as string) as Doc;
  const original = parse(FOREIGN) as Doc;
  assert.deepEqual({ ...doc, 'current-context': 'prod' }, original, 'everything else is as it was');
  assert.equal(doc['current-context'], '');
  assert.match(plan.writes.get('/a') as string, /^# mine/);
  const again = planRemove(['/a', '/b'], texts({ '/a': plan.writes.get('/a'), '/b': '' }), 'dev');
  assert.deepEqual([again.removed, again.writes.size], [false, 0], 'removing twice changes nothing');
});

test('the user entries keep their meaning, comments and long lines through add and remove', () => {
  const long = `${FOREIGN}# ${'a long comment '.repeat(10)}\n`.replace(
    'namespace: web',
    `namespace: web, extensions: [{ name: n, extension: { note: "${'word '.repeat(30)}" } }]`,
  );
  const added = planUpsert(['/f'], texts({ '/f': long }), entry('dev'), false).writes.get('/f') as string;
  const removed = planRemove(['/f'], texts({ '/f': added }), 'dev').writes.get('/f') as string;
  assert.deepEqual(parse(removed), parse(long));
  assert.match(removed, /&basic/);
  assert.match(removed, /\*basic/);
  assert.ok(
    removed.split('\n').some((l) => l.includes(`note: "${'word '.repeat(30)}"`)),
    'a long value stays on its line',
  );
});

test('malformed kubeconfigs anywhere in the list are refused and left byte for byte', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-reliability-'));
  try {
    const good = join(dir, 'good');
    await writeFile(good, FOREIGN, { mode: 0o600 });
    for (const bad of [
      'clusters: [unclosed',
      'clusters: 3',
      '- a list',
      'users:\n\t- name: tab',
      'contexts: {a: 1}',
      'a: b: c',
    ]) {
      const file = join(dir, 'bad');
      await writeFile(file, bad, { mode: 0o644 });
      for (const files of [[file], [good, file], [join(dir, 'missing'), file]]) {
        await assert.rejects(
          writeKubeconfigEntry(files, entry('dev'), true),
          (err: unknown) =>
            err instanceof MinilabError &&
            err.exitCode === 3 &&
            err.message.startsWith(`kubeconfig ${file}`) &&
            /left it unchanged/.test(err.hint ?? ''),
          `${JSON.stringify(bad)} in ${files.length} file(s)`,
        );
        await assert.rejects(removeKubeconfigEntry(files, 'prod'), MinilabError);
        await assert.rejects(checkKubeconfigFiles(files), MinilabError);
        assert.equal(await readFile(file, 'utf8'), bad);
        assert.equal((await stat(file)).mode & 0o777, 0o644);
        assert.equal(await readFile(good, 'utf8'), FOREIGN);
        assert.equal(existsSync(join(dir, 'missing')), false);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Writes and removes entries from separate processes at once, as concurrent minilab commands do. */
function writer(files: string[], name: string, action: 'write' | 'remove'): Promise<number> {
  const module = join(projectRoot, 'dist', 'src', 'kube', 'kubeconfig.js');
  const script = `
    const k = await import(${JSON.stringify(module)});
    const files = ${JSON.stringify(files)};
    const e = { name: ${JSON.stringify(name)}, server: 'https://127.0.0.1:1', certificateAuthorityData: 'Q0E=', clientCertificateData: 'Q0VSVA==', clientKeyData: 'S0VZ' };
    if (${JSON.stringify(action)} === 'write') await k.writeKubeconfigEntry(files, e, true);
    else await k.removeKubeconfigEntry(files, e.name);`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' });
    child.on('close', (code) => resolve(code ?? 1));
  });
}

test('twelve processes writing one kubeconfig (and a list) at once lose nothing and corrupt nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-reliability-'));
  try {
    const file = join(dir, 'kube', 'config');
    await mkdir(join(dir, 'kube'), { mode: 0o700 });
    await writeFile(file, FOREIGN, { mode: 0o600 });
    const other = join(dir, 'other');
    await writeFile(other, 'apiVersion: v1\nkind: Config\n', { mode: 0o600 });
    const profiles = Array.from({ length: 12 }, (_, i) => `p${i}`);
    // Half of them write through a list whose first file is missing: the same file is written.
    const listOf = (i: number) => (i % 2 === 0 ? [file] : [join(dir, 'missing'), file, other]);
    const codes = await Promise.all(profiles.map((p, i) => writer(listOf(i), p, 'write')));
    assert.deepEqual(
      codes,
      profiles.map(() => 0),
    );
    let doc = parse(await readFile(file, 'utf8')) as Doc;
    assert.deepEqual(names(doc, 'clusters').sort(), ['prod', 'unicode-集群', ...profiles].sort());
    assert.deepEqual(names(doc, 'users').length, 3 + profiles.length);
    assert.deepEqual(names(doc, 'contexts').length, 1 + profiles.length);
    assert.ok(profiles.includes(doc['current-context'] as string), 'the last writer is current');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal(await readFile(other, 'utf8'), 'apiVersion: v1\nkind: Config\n');
    assert.equal(existsSync(join(dir, 'missing')), false);

    // Half are removed while the others are written again.
    const mixed = await Promise.all(profiles.map((p, i) => writer(listOf(i), p, i < 6 ? 'remove' : 'write')));
    assert.deepEqual(
      mixed,
      profiles.map(() => 0),
    );
    doc = parse(await readFile(file, 'utf8')) as Doc;
    assert.deepEqual(names(doc, 'clusters').sort(), ['prod', 'unicode-集群', ...profiles.slice(6)].sort());
    assert.deepEqual(
      (await readdir(dir)).sort(),
      ['kube', 'other'],
      'no lock or temporary file is left beside the files',
    );
    assert.deepEqual(await readdir(join(dir, 'kube')), ['config']);
    const view = await readKubeconfigEntry([join(dir, 'missing'), file], 'p7');
    assert.equal(view?.path, file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the profile lock leaves no file behind and can be checked without creating any', async () => {
  const home = join(await mkdtemp(join(tmpdir(), 'minilab-reliability-')), 'home');
  try {
    assert.equal(await profileLocked(home, 'p'), false);
    assert.equal(existsSync(home), false, 'checking creates nothing');
    const release = await lockProfile(home, 'p', { timeoutMs: 1000, purpose: 'minilab start -p p' });
    assert.equal(await profileLocked(home, 'p'), true);
    assert.match(await readFile(join(home, 'locks', 'p.holder'), 'utf8'), /^minilab start -p p \(pid \d+\)$/);
    assert.equal((await stat(join(home, 'locks', 'p.holder'))).mode & 0o777, 0o600);
    await release();
    assert.equal(await profileLocked(home, 'p'), false);
    assert.deepEqual(await readdir(join(home, 'locks')), [], 'no holder file or lock left');
  } finally {
    await rm(join(home, '..'), { recursive: true, force: true });
  }
});

test('a wait ends at once when a check gives a verdict (a MinilabError), and names what it waited for', async () => {
  let calls = 0;
  const started = Date.now();
  await assert.rejects(
    waitUntil('the API server', 60_000, async () => {
      calls++;
      if (calls < 3) throw new Error('connection refused');
      throw new MinilabError('clusterFailed', 'the node container x stopped (exited)');
    }),
    /the node container x stopped/,
  );
  assert.equal(calls, 3);
  assert.ok(Date.now() - started < 5000);
  await assert.rejects(
    waitUntil('CoreDNS', 300, async () => 'CoreDNS pods ready: 0/1'),
    (err: unknown) => err instanceof MinilabError && err.exitCode === 5 && /CoreDNS.*0\/1/.test(err.message),
  );
});

test('a wait ends at its deadline even when a check never answers (a server that accepts and stays silent)', async () => {
  let calls = 0;
  await assert.rejects(
    waitUntil('the API server', 300, async () => {
      calls++;
      if (calls === 1) return 'not ready';
      return new Promise<true>(() => undefined);
    }),
    (err: unknown) =>
      err instanceof MinilabError &&
      err.exitCode === 5 &&
      /waiting for the API server \(last: not ready; the last check had not answered\)/.test(err.message),
  );
  assert.equal(calls, 2, 'the hung check was the second');
});

test('--cpus and --ports values are refused at the edge with a hint', () => {
  assert.equal(parseCpus('2'), 2);
  for (const bad of ['0', 'two', '1.5', '-1', '']) {
    assert.throws(
      () => parseCpus(bad),
      (err: unknown) => err instanceof MinilabError && err.exitCode === 2 && Boolean(err.hint),
      bad,
    );
  }
  const one = parsePort('8080:80');
  assert.deepEqual(parsePort('8080:80/udp', one).length, 2, 'the same port over UDP is another binding');
  assert.throws(
    () => parsePort('8080:81', one),
    (err: unknown) =>
      err instanceof MinilabError && /8080\/tcp is given twice/.test(err.message) && Boolean(err.hint),
  );
});
