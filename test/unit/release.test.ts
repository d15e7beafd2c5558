import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MinilabError } from '../../src/errors.js';
import {
  downloadVerified,
  ensureReleaseBinaries,
  ensureReleaseComponents,
  releaseFileUrl,
  validateReleaseUrl,
} from '../../src/image/release.js';
import { runCli } from '../helpers/cli.js';

const VERSION = 'v1.36.5';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

// A kubeadm that answers the two questions the build asks it.
const FAKE_KUBEADM = `#!/bin/sh
case "$1" in
  version) echo ${VERSION} ;;
  config) for i in kube-apiserver:${VERSION} kube-controller-manager:${VERSION} kube-scheduler:${VERSION} \\
      kube-proxy:${VERSION} coredns/coredns:v1.12.4 pause:3.10.1 etcd:3.6.5-0; do echo registry.example/$i; done ;;
esac
`;
const binaries: Record<string, string> = {
  kubeadm: FAKE_KUBEADM,
  kubelet: 'fake kubelet\n',
  kubectl: 'fake kubectl\n',
};

/** The fake release tree: path -> body. Anything else is a 404. */
const files = new Map<string, string>();
for (const [name, body] of Object.entries(binaries)) {
  const path = `/release/${VERSION}/bin/linux/amd64/${name}`;
  files.set(path, body);
  files.set(`${path}.sha256`, `${sha256(body)}\n`);
}
// A kubeadm whose image list carries shell text, as a tampered mirror could serve.
const HOSTILE_IMAGE = 'registry.example/pause:3.10.1;reboot';
const hostile = { ...binaries, kubeadm: FAKE_KUBEADM.replace('done ;;', `done; echo '${HOSTILE_IMAGE}' ;;`) };
for (const [name, body] of Object.entries(hostile)) {
  const path = `/hostile/${VERSION}/bin/linux/amd64/${name}`;
  files.set(path, body);
  files.set(`${path}.sha256`, `${sha256(body)}\n`);
}
const badPath = `/bad/${VERSION}/bin/linux/amd64/kubelet`;
files.set(badPath, 'tampered kubelet\n');
files.set(`${badPath}.sha256`, `${sha256('fake kubelet\n')}\n`);
const stallPath = `/stall/${VERSION}/bin/linux/amd64/kubelet`;
files.set(`${stallPath}.sha256`, `${sha256('fake kubelet\n')}\n`);

const requests: string[] = [];
let server: Server;
let base: string;
let cacheDir: string;

before(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '/';
    requests.push(path);
    if (path.startsWith('/hang')) return; // never answers
    if (path === stallPath) {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('a few bytes, then nothing'); // and never the rest
      return;
    }
    const body = files.get(path);
    if (body === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-length': Buffer.byteLength(body) }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  cacheDir = await mkdtemp(join(tmpdir(), 'minilab-release-'));
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(cacheDir, { recursive: true, force: true });
});

/** Runs fn expecting a MinilabError and returns it. */
async function failure(fn: () => Promise<unknown>): Promise<MinilabError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof MinilabError, `a MinilabError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a failure');
}

test('release binaries are downloaded, verified, cached, and not requested again', async () => {
  const dir = join(cacheDir, 'ok');
  const progress: string[] = [];
  const before = requests.length;
  const got = await ensureReleaseBinaries(VERSION, {
    baseUrl: `${base}/release`,
    cacheDir: dir,
    arch: 'amd64',
    progress: (d) => progress.push(d),
  });
  assert.equal(requests.length - before, 6, 'three binaries and three checksums');
  for (const [name, body] of Object.entries(binaries)) {
    const file = got[name as keyof typeof got];
    assert.equal(file.path, join(dir, VERSION, name));
    assert.equal(file.sha256, sha256(body));
    assert.equal(await readFile(file.path, 'utf8'), body);
    assert.ok(((await stat(file.path)).mode & 0o111) !== 0, `${name} is executable`);
  }
  assert.ok(
    progress.some((p) => /^kubelet [\d.]+\/[\d.]+ MB$/.test(p)),
    `bytes/total reported: ${progress.join(' | ')}`,
  );
  assert.deepEqual(
    (await readdir(join(dir, VERSION))).sort(),
    ['kubeadm', 'kubeadm.sha256', 'kubectl', 'kubectl.sha256', 'kubelet', 'kubelet.sha256'],
    'no temporary files left',
  );

  const again = await ensureReleaseBinaries(VERSION, {
    baseUrl: `${base}/release`,
    cacheDir: dir,
    arch: 'amd64',
  });
  assert.equal(requests.length - before, 6, 'the second call makes no request');
  assert.deepEqual(again, got);
});

test('release components come from the downloaded kubeadm', async () => {
  const source = {
    baseUrl: `${base}/release`,
    cacheDir: join(cacheDir, 'components'),
    arch: 'amd64',
    localPathProvisioner: 'v0.0.30',
  };
  const c = await ensureReleaseComponents(VERSION, source);
  assert.equal(c.dir, join(source.cacheDir, VERSION));
  assert.deepEqual(
    { ...c.info, images: c.info.images.length },
    {
      kubernetes: VERSION,
      etcd: '3.6.5-0',
      coredns: 'v1.12.4',
      pause: '3.10.1',
      localPathProvisioner: 'v0.0.30',
      images: 7,
    },
  );
  assert.ok(c.info.images.includes(`registry.example/kube-apiserver:${VERSION}`));
  assert.equal((await ensureReleaseComponents(VERSION, source)).key, c.key, 'same inputs, same key');
  const other = await ensureReleaseComponents(VERSION, { ...source, localPathProvisioner: 'v0.0.31' });
  assert.notEqual(other.key, c.key);
});

test("a kubeadm image list naming anything but image references is refused: it would reach the node's scripts", async () => {
  const err = await failure(() =>
    ensureReleaseComponents(VERSION, {
      baseUrl: `${base}/hostile`,
      cacheDir: join(cacheDir, 'hostile'),
      arch: 'amd64',
      localPathProvisioner: 'v0.0.30',
    }),
  );
  assert.equal(err.exitCode, 3);
  assert.ok(err.message.endsWith(`names "${HOSTILE_IMAGE}", not an image reference`), err.message);
  assert.ok(err.hint);
});

test('downloaded binaries are kept for this user alone: folders 0700, programs 0700, digests 0600', async () => {
  const dir = join(cacheDir, 'modes');
  await ensureReleaseBinaries(VERSION, { baseUrl: `${base}/release`, cacheDir: dir, arch: 'amd64' });
  const mode = async (path: string) => ((await stat(path)).mode & 0o777).toString(8);
  assert.equal(await mode(dir), '700');
  assert.equal(await mode(join(dir, VERSION)), '700');
  for (const name of ['kubeadm', 'kubelet', 'kubectl']) {
    assert.equal(await mode(join(dir, VERSION, name)), '700', name);
    assert.equal(await mode(join(dir, VERSION, `${name}.sha256`)), '600', `${name}.sha256`);
  }
});

test('a checksum mismatch names the file and both digests, and keeps nothing', async () => {
  const dir = join(cacheDir, 'bad', VERSION);
  const err = await failure(() => downloadVerified(`${base}${badPath}`, join(dir, 'kubelet')));
  assert.equal(err.exitCode, 3);
  assert.match(err.message, /checksum mismatch for kubelet/);
  assert.ok(err.message.includes(`expected sha256 ${sha256('fake kubelet\n')}`), err.message);
  assert.ok(err.message.includes(`got ${sha256('tampered kubelet\n')}`), err.message);
  assert.ok(err.hint);
  assert.deepEqual(await readdir(dir), [], 'nothing half-downloaded in the cache');
});

test('a missing release is a not-found error naming the URL', async () => {
  const err = await failure(() =>
    ensureReleaseBinaries('v1.99.0', {
      baseUrl: `${base}/release`,
      cacheDir: join(cacheDir, 'missing'),
      arch: 'amd64',
    }),
  );
  assert.equal(err.exitCode, 4);
  const url = releaseFileUrl(`${base}/release`, 'v1.99.0', 'amd64', 'kubeadm');
  assert.ok(err.message.includes(url), err.message);
  assert.match(err.message, /HTTP 404/);
  assert.match(err.hint ?? '', /--release-url/);
});

test('a server that does not answer, or stops sending, times out; nothing is kept', async () => {
  const hang = await failure(() =>
    downloadVerified(`${base}/hang`, join(cacheDir, 'hang', 'kubelet'), { stallTimeoutMs: 200 }),
  );
  assert.equal(hang.exitCode, 5);
  assert.match(hang.message, /^timed out after 200ms waiting for http:\/\/127\.0\.0\.1:\d+\/hang/);

  const dir = join(cacheDir, 'stall', VERSION);
  const stall = await failure(() =>
    downloadVerified(`${base}${stallPath}`, join(dir, 'kubelet'), { stallTimeoutMs: 300 }),
  );
  assert.equal(stall.exitCode, 5);
  assert.ok(stall.message.includes(stallPath), stall.message);
  assert.deepEqual(await readdir(dir), [], 'the partial download is removed');
});

test('an unreachable server is an environment error naming the URL', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const err = await failure(() =>
    ensureReleaseBinaries(VERSION, {
      baseUrl: `http://127.0.0.1:${port}/release`,
      cacheDir: join(cacheDir, 'unreachable'),
      arch: 'amd64',
    }),
  );
  assert.equal(err.exitCode, 3);
  assert.match(
    err.message,
    new RegExp(`^cannot download http://127\\.0\\.0\\.1:${port}/release/.*: ECONNREFUSED$`),
  );
  assert.match(err.hint ?? '', /MINILAB_RELEASE_URL/);
});

test('release URLs are checked at the edge', async () => {
  assert.equal(validateReleaseUrl('https://127.0.0.1:8080/mirror/'), 'https://127.0.0.1:8080/mirror');
  for (const bad of ['ftp://127.0.0.1/release', 'not a url', '', 'http://127.0.0.1:8080/mirror']) {
    assert.throws(
      () => validateReleaseUrl(bad),
      (e: unknown) => e instanceof MinilabError && e.exitCode === 2,
    );
  }
  const env = { ...process.env, DOCKER_HOST: 'unix:///nonexistent.sock' };
  const noSource = await runCli(['image', 'build', '--release-url', `${base}/release`], env);
  assert.equal(noSource.code, 2, noSource.stderr);
  assert.match(noSource.stderr, /--release-url applies only to --source release/);
  const badUrl = await runCli(['image', 'build', '--source', 'release', '--release-url', 'ftp://x'], env);
  assert.equal(badUrl.code, 2, badUrl.stderr);
  assert.match(badUrl.stderr, /invalid release URL "ftp:\/\/x"/);
  // The binaries and their digests come from one server: over plain http both could be swapped.
  const seen = requests.length;
  const plain = await runCli(
    ['image', 'build', '--source', 'release', '--release-url', `${base}/release`],
    env,
  );
  assert.equal(plain.code, 2, plain.stderr);
  assert.match(
    plain.stderr,
    /^error: release URL "http:\/\/127\.0\.0\.1:\d+\/release" is plain http: .*\nhint: .*https/,
  );
  assert.equal(plain.stderr.trim().split('\n').length, 2, 'one line and a hint');
  const plainEnv = await runCli(['image', 'build', '--source', 'release'], {
    ...env,
    MINILAB_RELEASE_URL: `${base}/release`,
  });
  assert.equal(plainEnv.code, 2, plainEnv.stderr);
  assert.match(plainEnv.stderr, /is plain http/);
  assert.equal(requests.length, seen, 'nothing was asked of the server');
  const badEnv = await runCli(['image', 'build', '--source', 'release'], {
    ...env,
    MINILAB_RELEASE_URL: 'nope',
  });
  assert.equal(badEnv.code, 2, badEnv.stderr);
  const badSource = await runCli(['image', 'build', '--source', 'binaries'], env);
  assert.equal(badSource.code, 2, badSource.stderr);
});
