import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { MinilabError } from '../../src/errors.js';
import type { DockerClient } from '../../src/providers/docker/client.js';
import { DOCKER_DIALECT } from '../../src/providers/docker/dialect.js';
import type { Containers } from '../../src/providers/docker/containers.js';
import type { Exec } from '../../src/providers/docker/exec.js';
import { DockerImages } from '../../src/providers/docker/images.js';

type LoadImage = (body: Readable, opts: { abortSignal?: AbortSignal }) => Promise<Readable>;

/** DockerImages over a fake engine whose image-load endpoint is `loadImage`. */
const imagesWith = (loadImage: LoadImage, stallMs?: number) =>
  new DockerImages(
    { docker: { loadImage }, dialect: DOCKER_DIALECT } as unknown as DockerClient,
    {} as Containers,
    {} as Exec,
    stallMs,
  );

test('image load: an engine error in its progress answer is reported even when split across chunks', async () => {
  let received = '';
  const images = imagesWith(async (body) => {
    received = await text(body);
    return Readable.from([
      '{"stream":"Loading layer"}\n{"errorDetail":{"message":"no space left',
      ' on device"},"error":"x"}\n',
    ]);
  });
  await assert.rejects(
    images.load(Readable.from(['archive bytes'])),
    (err: unknown) =>
      err instanceof MinilabError && /could not load an image: no space left on device/.test(err.message),
  );
  assert.equal(received, 'archive bytes', 'the engine got the whole archive');
});

test('image load: an engine that stops moving is aborted after the stall limit, with the request', async () => {
  let aborted = false;
  const images = imagesWith(
    (_body, opts) =>
      new Promise((_, reject) => {
        // Reads nothing and never answers, until the request is aborted.
        opts.abortSignal?.addEventListener('abort', () => {
          aborted = true;
          reject(new Error('aborted'));
        });
      }),
    200,
  );
  await assert.rejects(
    images.load(new Readable({ read() {} })),
    (err: unknown) =>
      err instanceof MinilabError &&
      err.exitCode === 5 &&
      /stopped moving for 200ms while trying to load an image/.test(err.message),
  );
  assert.ok(aborted, 'the request to the engine was aborted');
});

test('image load: a source that cannot be read ends the load with its own error instead of hanging', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-images-'));
  try {
    const images = imagesWith(async (body) => {
      await text(body).catch(() => undefined);
      return Readable.from(['{"stream":"Loaded"}\n']);
    }, 60_000);
    await assert.rejects(images.load(createReadStream(dir)), /EISDIR/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
