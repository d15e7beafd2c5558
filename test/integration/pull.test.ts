import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { MinilabError } from '../../src/errors.js';
import { imageConfigJson, layerFromEntries } from '../../src/image/archive.js';
import type { DockerEngine } from '../../src/providers/docker/engine.js';
import { connect, runId } from '../helpers/engine.js';

// The Docker engine treats registries on 127.0.0.0/8 as insecure (plain HTTP) by default, so a
// tiny registry served by this test stands in for a real one: no traffic leaves the machine.
const digest = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let engine: DockerEngine;
let server: Server;
let registry: string;
let dir: string;
const pulled: string[] = [];

before(async () => {
  engine = await connect();
  dir = await mkdtemp(join(tmpdir(), 'minilab-pull-'));
  const layer = await layerFromEntries(
    [{ type: 'file', name: 'hello.txt', content: `hello from ${runId}\n` }],
    join(dir, 'layer.tar'),
  );
  const config = imageConfigJson({ ref: 'x', layers: [layer], config: { cmd: ['/hello.txt'] } });
  const gz = gzipSync(await readFile(layer.path));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: digest(config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digest(gz), size: gz.length },
      ],
    }),
  );
  const blobs = new Map([
    [digest(config), config],
    [digest(gz), gz],
  ]);
  server = createServer((req, res) => {
    const url = req.url ?? '/';
    const send = (body: Buffer, type: string, d?: string) => {
      res.writeHead(200, {
        'content-type': type,
        'content-length': body.length,
        ...(d ? { 'docker-content-digest': d } : {}),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (url === '/v2/') return send(Buffer.from('{}'), 'application/json');
    const m = /^\/v2\/minilab-test\/tiny\/(manifests|blobs)\/(.+)$/.exec(url);
    if (m?.[1] === 'manifests' && (m[2] === 'v1' || m[2] === digest(manifest)))
      return send(manifest, 'application/vnd.oci.image.manifest.v1+json', digest(manifest));
    const blob = m?.[1] === 'blobs' ? blobs.get(m[2] ?? '') : undefined;
    if (blob) return send(blob, 'application/octet-stream', m?.[2]);
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  for (const ref of pulled) await engine.images.remove(ref);
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

test('pullImage pulls an image from a registry into the engine', async () => {
  const ref = `${registry}/minilab-test/tiny:v1`;
  pulled.push(ref);
  const progress: string[] = [];
  await engine.images.pull(ref, (d) => progress.push(d));
  const info = await engine.images.info(ref);
  assert.ok(info, `${ref} is in the engine`);
  assert.ok(info.tags.includes(ref));
});

test("a registry's refusal is a MinilabError carrying the engine's message", async () => {
  const ref = `${registry}/minilab-test/missing:v1`;
  try {
    await engine.images.pull(ref);
    assert.fail('the pull should fail');
  } catch (err) {
    assert.ok(err instanceof MinilabError, String(err));
    assert.ok(err.message.startsWith(`the Docker engine could not pull ${ref}: `), err.message);
    assert.match(err.message, /manifest unknown|not found/i);
    assert.ok([3, 4].includes(err.exitCode), `exit code ${err.exitCode}`);
    assert.match(err.hint ?? '', /registry/);
  }
});
