import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { imageArchive, layerFromDirectory, layerFromEntries, normalizeRef } from '../../src/image/archive.js';

async function readTar(stream: Readable): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const extract = tarStream.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, body, next) => {
      const chunks: Buffer[] = [];
      body.on('data', (c: unknown) => chunks.push(c as Buffer));
      body.on('end', () => {
        files.set(header.name, Buffer.concat(chunks));
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  stream.pipe(extract);
  await done;
  return files;
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('layers are reproducible: same inputs, same digest', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-archive-'));
  try {
    const src = join(dir, 'src');
    await mkdir(join(src, 'bin'), { recursive: true });
    await writeFile(join(src, 'bin', 'tool'), 'binary', { mode: 0o755 });
    await writeFile(join(src, 'a.txt'), 'a');
    const one = await layerFromDirectory(src, join(dir, 'one.tar'), 'usr/local');
    const two = await layerFromDirectory(src, join(dir, 'two.tar'), 'usr/local');
    assert.equal(one.digest, two.digest);
    const entries = await readTar((await import('node:fs')).createReadStream(one.path));
    assert.equal(entries.get('usr/local/bin/tool')?.toString(), 'binary');
    assert.equal(entries.get('usr/local/a.txt')?.toString(), 'a');
    assert.ok(entries.has('usr/local/bin'), 'directories are kept');
    const e1 = await layerFromEntries(
      [
        { type: 'file', name: '/etc/x', content: 'x' },
        { type: 'symlink', name: 'usr/bin/y', target: '/etc/x' },
      ],
      join(dir, 'e1.tar'),
    );
    const e2 = await layerFromEntries(
      [
        { type: 'symlink', name: 'usr/bin/y', target: '/etc/x' },
        { type: 'file', name: '/etc/x', content: 'x' },
      ],
      join(dir, 'e2.tar'),
    );
    assert.equal(e1.digest, e2.digest, 'entry order does not change the digest');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('image archives hold an OCI layout and a docker manifest over the same blobs', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-archive-'));
  try {
    const shared = await layerFromEntries(
      [{ type: 'file', name: 'usr/local/bin/kube', content: 'k' }],
      join(dir, 's.tar'),
    );
    const own = await layerFromEntries(
      [{ type: 'symlink', name: 'usr/local/bin/etcd', target: 'kube' }],
      join(dir, 'o.tar'),
    );
    const files = await readTar(
      imageArchive([
        { ref: 'registry.k8s.io/kube-apiserver:v1.36.5', layers: [shared], config: { entrypoint: ['/x'] } },
        { ref: 'registry.k8s.io/etcd:3.6.8-0', layers: [shared, own], config: {} },
      ]),
    );
    assert.equal(files.get('oci-layout')?.toString(), '{"imageLayoutVersion":"1.0.0"}');
    for (const [name, body] of files) {
      if (name.startsWith('blobs/sha256/') && body.length > 0)
        assert.equal(sha(body), `sha256:${name.split('/')[2]}`);
    }
    const sharedBlobs = [...files.keys()].filter((n) => n === `blobs/sha256/${shared.digest.slice(7)}`);
    assert.equal(sharedBlobs.length, 1, 'a shared layer is stored once');

    const index = JSON.parse(files.get('index.json')!.toString()) as {
      manifests: { digest: string; annotations: Record<string, string> }[];
    };
    assert.deepEqual(
      index.manifests.map((m) => m.annotations['io.containerd.image.name']),
      ['registry.k8s.io/kube-apiserver:v1.36.5', 'registry.k8s.io/etcd:3.6.8-0'],
    );
    const etcdManifest = JSON.parse(
      files.get(`blobs/sha256/${index.manifests[1]!.digest.slice(7)}`)!.toString(),
    ) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
    assert.deepEqual(
      etcdManifest.layers.map((l) => l.digest),
      [shared.digest, own.digest],
      'layers keep their order',
    );
    const config = JSON.parse(
      files.get(`blobs/sha256/${etcdManifest.config.digest.slice(7)}`)!.toString(),
    ) as {
      rootfs: { diff_ids: string[] };
      os: string;
    };
    assert.deepEqual(config.rootfs.diff_ids, [shared.digest, own.digest]);
    assert.equal(config.os, 'linux');

    const docker = JSON.parse(files.get('manifest.json')!.toString()) as {
      RepoTags: string[];
      Layers: string[];
    }[];
    assert.deepEqual(docker[1]?.RepoTags, ['registry.k8s.io/etcd:3.6.8-0']);
    assert.ok(docker[1]?.Layers.every((l) => files.has(l)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('references are normalized the way containerd stores them', () => {
  assert.equal(normalizeRef('busybox'), 'docker.io/library/busybox:latest');
  assert.equal(normalizeRef('me/app:1'), 'docker.io/me/app:1');
  assert.equal(normalizeRef('registry.k8s.io/pause:3.10.2'), 'registry.k8s.io/pause:3.10.2');
  assert.equal(normalizeRef('localhost:5000/x'), 'localhost:5000/x:latest');
  assert.equal(normalizeRef('minilab/node:v1.36.5'), 'docker.io/minilab/node:v1.36.5');
});

test('zstd layers keep the tar digest as diffID, unpack to the tar, and are marked zstd in the manifest', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-archive-'));
  try {
    const { zstdLayer, zstdModule } = await import('../../src/image/archive.js');
    const plain = await layerFromEntries(
      [{ type: 'file', name: 'bin/x', content: 'x'.repeat(10_000) }],
      join(dir, 'p.tar'),
    );
    const gz = await zstdLayer(plain, join(dir, 'p.tar.zst'));
    assert.equal(gz.diffId, plain.digest);
    assert.notEqual(gz.digest, plain.digest);
    assert.ok(gz.size < plain.size);
    // the module zstdLayer initialized: a second init would break it
    const zstd = await zstdModule();
    assert.deepEqual(Buffer.from(zstd.decompress(await readFile(gz.path))), await readFile(plain.path));
    // made once: a second call reads the kept file
    assert.deepEqual(await zstdLayer(plain, join(dir, 'p.tar.zst')), gz);
    const files = await readTar(imageArchive([{ ref: 'x:1', layers: [gz], config: {} }]));
    const index = JSON.parse(files.get('index.json')!.toString()) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(
      files.get(`blobs/sha256/${index.manifests[0]!.digest.slice(7)}`)!.toString(),
    ) as {
      config: { digest: string };
      layers: { mediaType: string; digest: string }[];
    };
    assert.equal(manifest.layers[0]?.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
    assert.equal(manifest.layers[0]?.digest, gz.digest);
    const config = JSON.parse(files.get(`blobs/sha256/${manifest.config.digest.slice(7)}`)!.toString()) as {
      rootfs: { diff_ids: string[] };
    };
    assert.deepEqual(config.rootfs.diff_ids, [plain.digest]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
