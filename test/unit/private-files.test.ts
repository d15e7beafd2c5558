import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, writeSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { layerFromEntries } from '../../src/image/archive.js';
import type { KubeconfigEntry } from '../../src/kube/kubeconfig.js';
import { kubectlFor, withKubeconfigFile } from '../../src/kube/kubectl.js';
import { openPrivateLog, privateDir, writePrivateFile } from '../../src/private-files.js';
import type { Node } from '../../src/providers/types.js';

const mode = async (path: string) => ((await stat(path)).mode & 0o777).toString(8);

/** A temporary MINILAB_HOME, removed after fn. */
async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'minilab-private-'));
  try {
    await fn(join(root, 'home'));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** Every folder from `path` up to (not including) `home`. */
const foldersUpTo = (home: string, path: string): string[] =>
  path === home || !path.startsWith(home) ? [] : [path, ...foldersUpTo(home, dirname(path))];

test("the kubectl cache under MINILAB_HOME is its user's alone: folders 0700, the program 0700", async () => {
  await withHome(async (home) => {
    const node = {
      name: 'p-control-plane',
      async copyOut(): Promise<Readable> {
        const pack = tarStream.pack();
        pack.entry({ name: 'kubectl', mode: 0o755 }, '#!/bin/sh\necho kubectl\n');
        pack.finalize();
        return pack as unknown as Readable;
      },
    } as unknown as Node;
    const bin = await kubectlFor(node, home, 'v1.37.2');
    assert.equal(await readFile(bin, 'utf8'), '#!/bin/sh\necho kubectl\n');
    assert.equal(await mode(bin), '700');
    for (const dir of [home, ...foldersUpTo(home, dirname(bin))]) assert.equal(await mode(dir), '700', dir);
  });
});

test('node image layers in the cache are 0600 in 0700 folders', async () => {
  await withHome(async (home) => {
    const out = join(home, 'cache', 'layers', 'key', 'etc.tar');
    await layerFromEntries([{ type: 'file', name: 'etc/x', content: 'x' }], out);
    assert.equal(await mode(out), '600');
    for (const dir of [home, ...foldersUpTo(home, dirname(out))]) assert.equal(await mode(dir), '700', dir);
  });
});

test('what an earlier version left readable is made private; a planted link is not written through', async () => {
  await withHome(async (home) => {
    const cache = join(home, 'cache');
    await mkdir(cache, { recursive: true });
    await chmod(cache, 0o755);
    await privateDir(cache);
    assert.equal(await mode(cache), '700');

    const file = join(home, 'inspect.json');
    await writeFile(file, 'old');
    await chmod(file, 0o644);
    await writePrivateFile(file, 'new');
    assert.equal(await mode(file), '600');
    assert.equal(await readFile(file, 'utf8'), 'new');

    const elsewhere = join(home, 'elsewhere');
    await writeFile(elsewhere, 'theirs');
    await symlink(elsewhere, join(home, 'link'));
    await assert.rejects(writePrivateFile(join(home, 'link'), 'mine'), { code: 'ELOOP' });
    assert.equal(await readFile(elsewhere, 'utf8'), 'theirs');
  });
});

test("a service forwarder's log is 0600, appended to, and made 0600 if it was not", async () => {
  await withHome(async (home) => {
    await privateDir(join(home, 'services'));
    const log = join(home, 'services', 'default.web.log');
    await writeFile(log, 'earlier\n');
    await chmod(log, 0o644);
    const fd = openPrivateLog(log);
    writeSync(fd, 'later\n');
    closeSync(fd);
    assert.equal(await mode(log), '600');
    assert.equal(await readFile(log, 'utf8'), 'earlier\nlater\n');
  });
});

const ENTRY: KubeconfigEntry = {
  name: 'p',
  server: 'https://127.0.0.1:6443',
  certificateAuthorityData: 'Q0E=',
  clientCertificateData: 'Q0VSVA==',
  clientKeyData: 'S0VZ',
};

test("minilab kubectl's kubeconfig is 0600 in a 0700 folder while kubectl runs, and gone after, however it ends", async () => {
  let seen = '';
  const code = await withKubeconfigFile(ENTRY, async (file) => {
    seen = file;
    assert.equal(await mode(file), '600');
    assert.equal(await mode(dirname(file)), '700');
    assert.match(await readFile(file, 'utf8'), /S0VZ/, 'it holds the admin key');
    return 0;
  });
  assert.equal(code, 0);
  assert.ok(seen && !existsSync(dirname(seen)), 'the folder is gone after kubectl ended');

  await assert.rejects(
    withKubeconfigFile(ENTRY, async (file) => {
      seen = file;
      throw new Error('kubectl could not start');
    }),
    /could not start/,
  );
  assert.ok(!existsSync(dirname(seen)), 'and after kubectl failed to start');
});
