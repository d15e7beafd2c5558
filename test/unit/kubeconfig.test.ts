import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { lockKubeconfigFile } from '../../src/kube/kubeconfig-file.js';
import {
  checkKubeconfigFiles,
  kubeconfigFiles,
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

// ---- the file itself: links, owner and mode, kubectl's lock ----------------------------------

/** A temporary folder for one case, removed afterwards whatever happened. */
async function inTemp(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-kubeconfig-'));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const contexts = async (file: string) =>
  ((parse(await readFile(file, 'utf8')) as Config).contexts ?? []).map((c) => c.name);

test('a kubeconfig reached through a chain of links stays a link: the real file gets the entry, in its own folder', async () => {
  await inTemp(async (dir) => {
    // ~/.kube/config -> links/middle -> dotfiles/kube/config, both links relative, as dotfile managers make them.
    const real = join(dir, 'dotfiles', 'kube', 'config');
    const middle = join(dir, 'links', 'middle');
    const link = join(dir, 'home', '.kube', 'config');
    for (const d of [dirname(real), dirname(middle), dirname(link)]) await mkdir(d, { recursive: true });
    await writeFile(real, existing, { mode: 0o640 });
    await symlink('../dotfiles/kube/config', middle);
    await symlink('../../links/middle', link);

    assert.equal(await writeKubeconfigEntry(link, entry('dev'), true), link);
    assert.ok((await lstat(link)).isSymbolicLink(), 'the link is still a link');
    assert.equal(await readlink(link), '../../links/middle');
    assert.equal(await readlink(middle), '../dotfiles/kube/config');
    assert.deepEqual(await contexts(real), ['prod', 'dev']);
    assert.match(await readFile(real, 'utf8'), /# the user's own comment/);
    assert.equal((await stat(real)).mode & 0o777, 0o640, 'the real file keeps its mode');
    for (const d of [dirname(real), dirname(middle), dirname(link)]) {
      assert.equal((await readdir(d)).length, 1, `no lock or temporary file left in ${d}`);
    }

    // delete's removal goes through the same links.
    assert.equal(await removeKubeconfigEntry(link, 'dev'), true);
    assert.ok((await lstat(link)).isSymbolicLink());
    assert.deepEqual(await contexts(real), ['prod']);

    // A dangling link: the file it points at is made (0600), the link stays.
    const dangling = join(dir, 'home', '.kube', 'new');
    await symlink('../../dotfiles/kube/new-config', dangling);
    await writeKubeconfigEntry(dangling, entry('dev'), true);
    assert.ok((await lstat(dangling)).isSymbolicLink());
    assert.deepEqual(await contexts(join(dir, 'dotfiles', 'kube', 'new-config')), ['dev']);
    assert.equal((await stat(join(dir, 'dotfiles', 'kube', 'new-config'))).mode & 0o777, 0o600);

    // A link into a missing folder, and a loop: one line naming the file, nothing made.
    const broken = join(dir, 'home', '.kube', 'broken');
    await symlink('../../nowhere/config', broken);
    await assert.rejects(
      writeKubeconfigEntry(broken, entry('dev'), true),
      (err: unknown) =>
        err instanceof MinilabError &&
        err.exitCode === 3 &&
        err.message ===
          `kubeconfig ${broken} is a link to ${join(dir, 'nowhere', 'config')}, whose folder ${join(dir, 'nowhere')} does not exist` &&
        Boolean(err.hint?.includes(`create ${join(dir, 'nowhere')}`)),
    );
    assert.equal(existsSync(join(dir, 'nowhere')), false);
    const [a, b] = [join(dir, 'loop-a'), join(dir, 'loop-b')];
    await symlink(b, a);
    await symlink(a, b);
    for (const attempt of [
      () => writeKubeconfigEntry(a, entry('dev'), true),
      () => checkKubeconfigFiles([a]),
    ]) {
      await assert.rejects(attempt, (err: unknown) => err instanceof MinilabError && err.exitCode === 3);
    }
    assert.equal(await readlink(a), b);
  });
});

test("an existing kubeconfig keeps its owner and mode, through a link too; a non-root writer keeps another user's owner", async () => {
  await inTemp(async (dir) => {
    const file = join(dir, 'config');
    await writeFile(file, existing, { mode: 0o640 });
    await chown(file, 1000, 1000);
    await chmod(file, 0o640);
    const link = join(dir, 'link');
    await symlink(file, link);
    await writeKubeconfigEntry(file, entry('a'), true);
    // As `sudo -E minilab start` runs: an existing file stays its owner's even in a folder of root's.
    await writeKubeconfigEntry(link, entry('b'), true, { env: { SUDO_UID: '1001', SUDO_GID: '1001' } });
    const after = await stat(file);
    assert.deepEqual([after.uid, after.gid, after.mode & 0o7777], [1000, 1000, 0o640]);
    assert.deepEqual(await contexts(file), ['prod', 'a', 'b']);

    // A user (uid 1000) writing a file of uid 2000 they may write: only root gives files away, so it is
    // written in place, as kubectl does, and stays 2000's.
    const shared = join(dir, 'shared');
    await mkdir(shared);
    await chown(shared, 1000, 1000);
    await chmod(dir, 0o755);
    const other = join(shared, 'config');
    await writeFile(other, existing, { mode: 0o666 });
    await chmod(other, 0o666);
    await chown(other, 2000, 2000);
    const module = new URL('../../src/kube/kubeconfig.js', import.meta.url).href;
    const script = `const k = await import(${JSON.stringify(module)});
      await k.writeKubeconfigEntry(${JSON.stringify(other)}, ${JSON.stringify(entry('user'))}, true);`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      uid: 1000,
      gid: 1000,
      encoding: 'utf8',
    });
    assert.equal(child.status, 0, child.stderr);
    const written = await stat(other);
    assert.deepEqual([written.uid, written.gid, written.mode & 0o777], [2000, 2000, 0o666]);
    assert.deepEqual(await contexts(other), ['prod', 'user']);
    assert.deepEqual(await readdir(shared), ['config'], 'no lock or temporary file left');
  });
});

test("under sudo, a new kubeconfig and ~/.kube in the invoking user's home are theirs; elsewhere root's", async () => {
  await inTemp(async (dir) => {
    const home = join(dir, 'home', 'user');
    await mkdir(home, { recursive: true });
    await chown(home, 1000, 1000);
    const env = { HOME: home, SUDO_UID: '1000', SUDO_GID: '1001' };
    const [file] = kubeconfigFiles(env) as [string];
    await writeKubeconfigEntry(kubeconfigFiles(env), entry('dev'), true, { env });
    const folder = await stat(join(home, '.kube'));
    assert.deepEqual([folder.uid, folder.gid, folder.mode & 0o777], [1000, 1001, 0o700]);
    const made = await stat(file);
    assert.deepEqual([made.uid, made.gid, made.mode & 0o777], [1000, 1001, 0o600]);
    assert.deepEqual(await contexts(file), ['dev']);

    // A folder that is not the user's (root's /root), and a run without sudo: root's, as before.
    const rootHome = join(dir, 'root');
    await writeKubeconfigEntry(join(rootHome, '.kube', 'config'), entry('dev'), true, {
      env: { SUDO_UID: '1000', SUDO_GID: '1001' },
    });
    assert.equal((await stat(join(rootHome, '.kube', 'config'))).uid, 0);
    const plain = join(home, 'plain', 'config');
    await writeKubeconfigEntry(plain, entry('dev'), true, { env: { HOME: home } });
    assert.equal((await stat(plain)).uid, 0);
  });
});

test('a lock held by kubectl (an empty <file>.lock): minilab waits for it, then writes', async () => {
  await inTemp(async (dir) => {
    const file = join(dir, 'config');
    await writeFile(file, existing, { mode: 0o600 });
    // What client-go's lockFile makes: O_CREATE|O_EXCL, mode 0, nothing written.
    await (await open(`${file}.lock`, 'wx', 0)).close();
    let settled = false;
    const writing = writeKubeconfigEntry(file, entry('dev'), true, { lockTimeoutMs: 10_000 }).finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(settled, false, 'still waiting while the lock is held');
    assert.equal(await readFile(file, 'utf8'), existing, 'nothing written under another holder');
    await unlink(`${file}.lock`);
    await writing;
    assert.deepEqual(await contexts(file), ['prod', 'dev']);
    assert.deepEqual(await readdir(dir), ['config']);
  });
});

test('a lock never released: a timeout naming the lock file and its holder, which is left in place', async () => {
  await inTemp(async (dir) => {
    const file = join(dir, 'config');
    const lock = `${file}.lock`;
    await writeFile(file, existing, { mode: 0o600 });
    const dead = spawnSync(process.execPath, ['-e', '']).pid as number;
    const holders: [string, () => Promise<void>, RegExp][] = [
      ['kubectl', () => writeFile(lock, '', { mode: 0 }), /\(empty, as kubectl leaves its lock\)$/],
      [
        'a crashed minilab',
        () => writeFile(lock, `minilab pid ${dead} on ${hostname()}\n`),
        new RegExp(`written by minilab pid ${dead}, which is no longer running: the lock is stale\\)$`),
      ],
      ['an older minilab', () => mkdir(lock), /a folder: the lock format of an earlier minilab\)$/],
    ];
    for (const [who, make, says] of holders) {
      await make();
      const started = Date.now();
      await assert.rejects(
        writeKubeconfigEntry(file, entry('dev'), true, { lockTimeoutMs: 300 }),
        (err: unknown) => {
          assert.ok(err instanceof MinilabError, who);
          assert.equal(err.exitCode, 5);
          assert.ok(
            err.message.startsWith(`kubeconfig ${file} is still locked after 300ms: ${lock} exists (`),
          );
          assert.match(err.message, says);
          assert.ok(!err.message.includes('\n'));
          const rm = who === 'an older minilab' ? `rm -r ${lock}` : `rm ${lock}`;
          assert.ok(err.hint?.includes(`the lock is stale: remove it (${rm})`), err.hint);
          return true;
        },
      );
      assert.ok(Date.now() - started >= 300, `${who}: waited for the lock`);
      assert.ok(existsSync(lock), `${who}: another program's lock is not removed`);
      assert.equal(await readFile(file, 'utf8'), existing);
      await rm(lock, { recursive: true });
    }
  });
});

test("minilab's lock is kubectl's: a file made with O_EXCL that kubectl cannot take, and a second minilab waits for", async () => {
  await inTemp(async (dir) => {
    const file = join(dir, 'config');
    const release = await lockKubeconfigFile(file, 1000);
    const lock = await lstat(`${file}.lock`);
    assert.ok(lock.isFile());
    assert.match(
      await readFile(`${file}.lock`, 'utf8'),
      new RegExp(`^minilab pid ${process.pid} on ${hostname()} `),
    );
    // What kubectl's lockFile does: O_CREATE|O_EXCL on <file>.lock.
    await assert.rejects(open(`${file}.lock`, 'wx', 0), { code: 'EEXIST' });
    await assert.rejects(
      lockKubeconfigFile(file, 100),
      new RegExp(`written by minilab pid ${process.pid}, still running\\)$`),
    );
    await release();
    assert.deepEqual(await readdir(dir), []);
    // A lock someone else removed and took again is theirs: the release leaves it.
    const again = await lockKubeconfigFile(file, 1000);
    await unlink(`${file}.lock`);
    await writeFile(`${file}.lock`, '');
    await again();
    assert.ok(existsSync(`${file}.lock`));
  });
});
