import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DockerEngine } from '../../src/providers/docker/engine.js';
import type { Provider } from '../../src/providers/types.js';
import { cleanupTestResources, loadBusyboxImage, runId, testLabels } from './engine.js';
import { providerContract } from './provider-contract.js';

/**
 * The cases every engine speaking Docker's API passes (Docker, the podman service): its image
 * store, networks and volumes, absent containers, then the provider contract over it.
 */
export function engineApiCases(
  name: string,
  open: () => Promise<{ engine: DockerEngine; provider: Provider }>,
): void {
  const image = `minilab-test/busybox:${runId}`;
  /** The engine and the test image, ready once for these cases and the contract's. */
  const ready = (async () => {
    const opened = await open();
    await loadBusyboxImage(opened.engine, image, [
      '/bin/sh',
      '-c',
      'trap "exit 0" TERM; while true; do sleep 1; done',
    ]);
    return opened;
  })();

  after(async () => {
    const { engine } = await ready;
    await engine.images.remove(image);
  });

  test(`${name}: the image store knows a loaded image archive under its tag, and nothing of an absent one`, async () => {
    const { provider } = await ready;
    const info = await provider.images.info(image);
    assert.ok(info?.tags.includes(image), `tags: ${info?.tags.join(', ')}`);
    assert.equal(await provider.images.info(`minilab-test/absent:${runId}`), undefined);
  });

  test(`${name}: networks and volumes are created once and report whether this call created them`, async () => {
    const { engine } = await ready;
    const labels = { ...testLabels, 'io.minilab.managed': 'true' };
    const net = `minilab-it-${runId}-net`;
    assert.deepEqual(await engine.networks.ensure(net, labels), { created: true });
    assert.deepEqual(await engine.networks.ensure(net, labels), { created: false });
    assert.deepEqual(await engine.volumes.ensure(`${net}-vol`, labels), { created: true });
    assert.deepEqual(await engine.volumes.ensure(`${net}-vol`, labels), { created: false });
    assert.equal(await engine.networks.remove(net), 'removed');
    assert.equal(await engine.networks.remove(net), 'absent');
    assert.equal(await engine.volumes.remove(`${net}-vol`), 'removed');
    assert.equal(await engine.volumes.remove(`${net}-vol`), 'absent');
  });

  test(`${name}: a missing container is "absent", not an error, for stop and remove`, async () => {
    const { engine } = await ready;
    await engine.containers.stop(`it-${runId}-nothing`);
    assert.equal(await engine.containers.remove(`it-${runId}-nothing`), 'absent');
  });

  providerContract(name, async () => {
    const { engine, provider } = await ready;
    return {
      provider,
      image,
      profile: `it-${name}-${runId}`,
      labels: testLabels,
      cleanup: () => cleanupTestResources(engine),
    };
  });
}
