import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  hostsToml,
  mirrorName,
  mirrorServes,
  planPublish,
  PUBLISH_SCRIPT,
} from '../../src/cluster/mirror.js';

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

/** A content store with one image: an index naming an amd64 manifest (present) and an arm64 one (absent). */
async function contentStore(dir: string) {
  const content = join(dir, 'content');
  await mkdir(content, { recursive: true });
  const put = async (data: string | Buffer) => {
    const digest = createHash('sha256').update(data).digest('hex');
    await writeFile(join(content, digest), data);
    return digest;
  };
  const config = await put('{"architecture":"amd64","os":"linux"}');
  const layer = await put(Buffer.alloc(4096, 1));
  const manifest = await put(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { digest: `sha256:${config}` },
      layers: [{ digest: `sha256:${layer}` }],
    }),
  );
  const index = await put(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ digest: `sha256:${manifest}` }, { digest: d('a') }],
    }),
  );
  return { content, config, layer, manifest, index };
}

test('the publish script links an index, the platform manifest containerd has, its config and layer, and the tag; hard links, twice the same', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-mirror-'));
  try {
    const c = await contentStore(dir);
    const [store, hosts] = [join(dir, 'store'), join(dir, 'hosts')];
    const plan = planPublish([{ ref: 'example.com/team/demo:latest', digest: `sha256:${c.index}` }]);
    for (let i = 0; i < 2; i++)
      await run('sh', ['-c', PUBLISH_SCRIPT, 'sh', store, c.content, hosts, ...plan.args]);
    const repo = join(store, 'repositories', 'example.com/team/demo');
    const read = (f: string) => readFile(f, 'utf8');
    assert.equal(await read(join(repo, '_manifests/tags/latest/current/link')), `sha256:${c.index}`);
    assert.equal(
      await read(join(repo, `_manifests/tags/latest/index/sha256/${c.index}/link`)),
      `sha256:${c.index}`,
    );
    for (const m of [c.index, c.manifest])
      assert.equal(await read(join(repo, `_manifests/revisions/sha256/${m}/link`)), `sha256:${m}`);
    for (const l of [c.config, c.layer])
      assert.equal(await read(join(repo, `_layers/sha256/${l}/link`)), `sha256:${l}`);
    assert.deepEqual(
      (await readdir(join(repo, '_manifests/revisions/sha256'))).sort(),
      [c.index, c.manifest].sort(),
      'the absent platform is left out',
    );
    for (const b of [c.index, c.manifest, c.config, c.layer]) {
      const data = join(store, 'blobs/sha256', b.slice(0, 2), b, 'data');
      assert.equal((await stat(data)).ino, (await stat(join(c.content, b))).ino, `${b}: a hard link`);
    }
    assert.equal(await read(join(hosts, 'example.com/hosts.toml')), hostsToml('example.com'));
    const leftovers = (await readdir(store, { recursive: true })).filter((f) => f.endsWith('.tmp'));
    assert.deepEqual(leftovers, []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the publish script fails, naming it, when the target is not in the content store', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-mirror-'));
  try {
    const c = await contentStore(dir);
    const plan = planPublish([{ ref: 'docker.io/library/gone:1', digest: d('b') }]);
    await assert.rejects(
      run('sh', [
        '-c',
        PUBLISH_SCRIPT,
        'sh',
        join(dir, 'store'),
        c.content,
        join(dir, 'hosts'),
        ...plan.args,
      ]),
      /docker\.io\/library\/gone:1: sha256:b{64} is not in containerd's content store/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the mirror serves a reference when its tag points at the digest containerd has for it', () => {
  const tags = new Map([['docker.io/library/app:latest', d('n')]]);
  assert.equal(mirrorServes(tags, 'docker.io/library/app:latest', d('n')), true);
  assert.equal(mirrorServes(tags, 'docker.io/library/app:latest', d('o')), false, 'reloaded since');
  assert.equal(mirrorServes(tags, 'docker.io/library/app:1', d('n')), false);
});
