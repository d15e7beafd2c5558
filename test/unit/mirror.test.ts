import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hostsToml, mirrorName, mirrorServes, planPublish } from '../../src/cluster/mirror.js';
import { projectRoot } from '../../src/version.js';

const run = promisify(execFile);

/** A digest made of one character (letters beyond f mapped to hex digits, so that names read well). */
const hex = (c: string) =>
  ((({ m: '3', i: '4', g: '5', n: '6', o: '7' }) as Record<string, string>)[c] ?? c).repeat(64);
const d = (c: string) => `sha256:${hex(c)}`;

test('mirror names: the registry (its port after _) and the path make the repository; digests and refused names have none', () => {
  assert.deepEqual(mirrorName('docker.io/library/app:latest'), {
    registry: 'docker.io',
    repository: 'docker.io/library/app',
    tag: 'latest',
  });
  assert.deepEqual(mirrorName('localhost:5000/team/app:v1.2'), {
    registry: 'localhost:5000',
    repository: 'localhost_5000/team/app',
    tag: 'v1.2',
  });
  assert.equal(
    mirrorName('registry.k8s.io/e2e-test-images/agnhost:2.59')?.repository,
    'registry.k8s.io/e2e-test-images/agnhost',
  );
  assert.equal(mirrorName(`docker.io/library/app@${d('a')}`), undefined, 'by digest');
  assert.equal(mirrorName('Example.com/app:1'), undefined, 'upper case: distribution refuses it');
  assert.equal(mirrorName('[::1]:5000/app:1'), undefined, 'an IPv6 registry');
  assert.equal(mirrorName('docker.io/../etc:1'), undefined, 'no path component may leave the store');
  assert.equal(mirrorName('app:latest'), undefined, 'not normalized');
});

test("hosts.toml: the mirror first, under the registry's prefix, then the registry itself (no server line)", () => {
  const toml = hostsToml('docker.io');
  assert.match(toml, /^\[host\."http:\/\/127\.0\.0\.1:10550\/v2\/docker\.io"\]$/m);
  assert.match(toml, /capabilities = \["pull", "resolve"\]/);
  assert.match(toml, /override_path = true/);
  assert.doesNotMatch(toml, /^server/m);
});

test('publish plan: each image by repository, tag and target; one hosts.toml per registry; digests and refused names skipped', () => {
  const plan = planPublish([
    { ref: 'example.com/team/demo:latest', digest: d('m') },
    { ref: 'example.com/team/demo:v1', digest: d('m') },
    { ref: 'docker.io/library/app:1', digest: d('i') },
    { ref: `docker.io/library/app@${d('m')}`, digest: d('m') },
    { ref: 'Example.com/app:1', digest: d('m') },
  ]);
  assert.deepEqual(plan.args, [
    ...['image', 'example.com/team/demo', 'latest', hex('m')],
    ...['image', 'example.com/team/demo', 'v1', hex('m')],
    ...['image', 'docker.io/library/app', '1', hex('i')],
    ...['hosts', 'example.com', hostsToml('example.com')],
    ...['hosts', 'docker.io', hostsToml('docker.io')],
  ]);
  assert.deepEqual(plan.published, [
    'example.com/team/demo:latest',
    'example.com/team/demo:v1',
    'docker.io/library/app:1',
  ]);
  assert.deepEqual(plan.skipped, [`docker.io/library/app@${d('m')}`, 'Example.com/app:1']);
});

/** The node's script, run here against a temporary mirror and content store. */
const SCRIPT = join(projectRoot, 'images/node/files/usr/local/bin/minilab-mirror');

/** A temporary content store and mirror, with `put` writing blobs and `mirror` running the script on them. */
async function sandbox(t: { after: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-mirror-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const content = join(dir, 'content');
  const root = join(dir, 'mirror');
  await mkdir(content, { recursive: true });
  const env = { ...process.env, MINILAB_MIRROR_ROOT: root, MINILAB_CONTENT_DIR: content };
  const put = async (data: string | Buffer) => {
    const digest = createHash('sha256').update(data).digest('hex');
    await writeFile(join(content, digest), data);
    return digest;
  };
  /** An image manifest with a config and one layer of `fill` bytes. */
  const image = async (fill: number) => {
    const config = await put(`{"architecture":"amd64","os":"linux","fill":${fill}}`);
    const layer = await put(Buffer.alloc(4096, fill));
    const manifest = await put(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { digest: `sha256:${config}` },
        layers: [{ digest: `sha256:${layer}` }],
      }),
    );
    return { config, layer, manifest };
  };
  const mirror = (args: string[]) => run(SCRIPT, args, { env });
  const publish = (refs: { ref: string; digest: string }[]) => mirror(['publish', ...planPublish(refs).args]);
  const store = join(root, 'docker/registry/v2');
  const blob = (h: string) => join(store, 'blobs/sha256', h.slice(0, 2), h, 'data');
  const repo = (name: string) => join(store, 'repositories', name);
  return { dir, content, root, store, put, image, mirror, publish, blob, repo };
}

const read = (f: string) => readFile(f, 'utf8');

test('minilab-mirror publish: an index, the platform manifest containerd has, its config and layer, the tag; hard links; twice the same', async (t) => {
  const m = await sandbox(t);
  const img = await m.image(1);
  const index = await m.put(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ digest: `sha256:${img.manifest}` }, { digest: d('a') }],
    }),
  );
  for (let i = 0; i < 2; i++)
    await m.publish([{ ref: 'example.com/team/demo:latest', digest: `sha256:${index}` }]);
  const repo = m.repo('example.com/team/demo');
  assert.equal(await read(join(repo, '_manifests/tags/latest/current/link')), `sha256:${index}`);
  assert.equal(
    await read(join(repo, `_manifests/tags/latest/index/sha256/${index}/link`)),
    `sha256:${index}`,
  );
  assert.deepEqual(
    (await readdir(join(repo, '_manifests/revisions/sha256'))).sort(),
    [index, img.manifest].sort(),
    'the absent platform is left out',
  );
  for (const l of [img.config, img.layer])
    assert.equal(await read(join(repo, `_layers/sha256/${l}/link`)), `sha256:${l}`);
  for (const b of [index, img.manifest, img.config, img.layer])
    assert.equal((await stat(m.blob(b))).ino, (await stat(join(m.content, b))).ino, `${b}: a hard link`);
  assert.equal(await read(join(m.root, 'hosts/example.com/hosts.toml')), hostsToml('example.com'));
  const leftovers = (await readdir(m.root, { recursive: true })).filter((f) => f.includes('.tmp'));
  assert.deepEqual(leftovers, []);
  assert.equal((await m.mirror(['tags'])).stdout, `example.com/team/demo:latest sha256:${index}\n`);
});

test('minilab-mirror publish: a reloaded tag moves, and what no tag reaches any more is swept; what another tag reaches stays', async (t) => {
  const m = await sandbox(t);
  const [first, second] = [await m.image(1), await m.image(2)];
  await m.publish([
    { ref: 'docker.io/library/app:latest', digest: `sha256:${first.manifest}` },
    { ref: 'docker.io/library/keep:v1', digest: `sha256:${first.manifest}` },
    { ref: 'docker.io/library/gone:v1', digest: `sha256:${first.manifest}` },
  ]);
  await m.publish([{ ref: 'docker.io/library/app:latest', digest: `sha256:${second.manifest}` }]);
  const app = m.repo('docker.io/library/app');
  assert.equal(await read(join(app, '_manifests/tags/latest/current/link')), `sha256:${second.manifest}`);
  assert.deepEqual(
    await readdir(join(app, '_manifests/tags/latest/index/sha256')),
    [second.manifest],
    'tag history swept',
  );
  // the first build is still tagged (keep:v1, gone:v1): its blobs stay
  for (const b of Object.values(first)) await stat(m.blob(b));

  await m.publish([
    { ref: 'docker.io/library/keep:v1', digest: `sha256:${second.manifest}` },
    { ref: 'docker.io/library/gone:v1', digest: `sha256:${second.manifest}` },
  ]);
  for (const b of Object.values(first))
    await assert.rejects(stat(m.blob(b)), { code: 'ENOENT' }, `${b}: no tag reaches it`);
  for (const b of Object.values(second)) await stat(m.blob(b));
  for (const name of ['app', 'keep', 'gone']) {
    const revisions = join(m.repo(`docker.io/library/${name}`), '_manifests/revisions/sha256');
    assert.deepEqual(await readdir(revisions), [second.manifest], `${name}: only the tagged revision`);
  }
  const tags = (await m.mirror(['tags'])).stdout.trim().split('\n').sort();
  assert.deepEqual(
    tags,
    ['app:latest', 'gone:v1', 'keep:v1'].map((n) => `docker.io/library/${n} sha256:${second.manifest}`),
  );
});

test('minilab-mirror publish: loads at once wait for each other (a lock), and every tag lands', async (t) => {
  const m = await sandbox(t);
  const images = await Promise.all([1, 2, 3, 4].map((n) => m.image(n)));
  await Promise.all(
    images.map((img, n) =>
      m.publish([{ ref: `docker.io/library/app${n}:latest`, digest: `sha256:${img.manifest}` }]),
    ),
  );
  const tags = (await m.mirror(['tags'])).stdout.trim().split('\n').sort();
  assert.deepEqual(
    tags,
    images.map((img, n) => `docker.io/library/app${n}:latest sha256:${img.manifest}`),
  );
  assert.equal(await read(join(m.root, 'hosts/docker.io/hosts.toml')), hostsToml('docker.io'));
});

test('minilab-mirror publish fails, naming it, when the target is not in the content store', async (t) => {
  const m = await sandbox(t);
  await assert.rejects(
    m.publish([{ ref: 'docker.io/library/gone:1', digest: d('b') }]),
    /docker\.io\/library\/gone:1: sha256:b{64} is not in containerd's content store/,
  );
});

test('the mirror serves a reference when its tag points at the digest containerd has for it', () => {
  const tags = new Map([['docker.io/library/app:latest', d('n')]]);
  assert.equal(mirrorServes(tags, 'docker.io/library/app:latest', d('n')), true);
  assert.equal(mirrorServes(tags, 'docker.io/library/app:latest', d('o')), false, 'reloaded since');
  assert.equal(mirrorServes(tags, 'docker.io/library/app:1', d('n')), false);
});
