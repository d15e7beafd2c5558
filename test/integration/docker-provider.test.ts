import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { DockerEngine } from '../../src/providers/docker/engine.js';
import { DockerProvider } from '../../src/providers/docker/provider.js';
import { cleanupTestResources, connect, loadBusyboxImage, runId, testLabels } from '../helpers/engine.js';
import { providerContract } from '../helpers/provider-contract.js';

const image = `minilab-test/busybox:${runId}`;
let engine: DockerEngine;

/** The engine and the test image, ready once for the file's own cases and the contract's. */
const ready = (async () => {
  engine = await connect();
  await loadBusyboxImage(engine, image, [
    '/bin/sh',
    '-c',
    'trap "exit 0" TERM; while true; do sleep 1; done',
  ]);
})();

after(async () => {
  await ready;
  await engine.images.remove(image);
});

test('the image store knows a loaded image archive under its tag, and nothing of an absent one', async () => {
  await ready;
  const provider = new DockerProvider(engine);
  const info = await provider.images.info(image);
  assert.ok(info?.tags.includes(image));
  assert.equal(await provider.images.info(`minilab-test/absent:${runId}`), undefined);
});

test('networks and volumes are created once and report whether this call created them', async () => {
  await ready;
  const labels = { ...testLabels, 'io.minilab.managed': 'true' };
  const name = `minilab-it-${runId}-net`;
  assert.deepEqual(await engine.networks.ensure(name, labels), { created: true });
  assert.deepEqual(await engine.networks.ensure(name, labels), { created: false });
  assert.deepEqual(await engine.volumes.ensure(`${name}-vol`, labels), { created: true });
  assert.deepEqual(await engine.volumes.ensure(`${name}-vol`, labels), { created: false });
  assert.equal(await engine.networks.remove(name), 'removed');
  assert.equal(await engine.networks.remove(name), 'absent');
  assert.equal(await engine.volumes.remove(`${name}-vol`), 'removed');
  assert.equal(await engine.volumes.remove(`${name}-vol`), 'absent');
});

test('a missing container is "absent", not an error, for stop and remove', async () => {
  await ready;
  await engine.containers.stop(`it-${runId}-nothing`);
  assert.equal(await engine.containers.remove(`it-${runId}-nothing`), 'absent');
});

providerContract('docker', async () => {
  await ready;
  return {
    provider: new DockerProvider(engine),
    image,
    profile: `it-${runId}`,
    labels: testLabels,
    cleanup: () => cleanupTestResources(engine),
  };
});
