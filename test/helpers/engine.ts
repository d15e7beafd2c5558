import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../src/runtime/engine.js';
import { imageArchive, layerFromEntries } from '../../src/image/archive.js';

/** Every resource a test run makes carries this label, so cleanup finds it even after a failure. */
export const TEST_LABEL = 'io.minilab.test';
export const runId = randomBytes(4).toString('hex');
export const testLabels = { [TEST_LABEL]: runId };

export const connect = () => Engine.connect(process.env.DOCKER_HOST, 10_000);

/** Removes every container, volume and network labelled by this test run; returns what was left before. */
export async function cleanupTestResources(
  engine: Engine,
  label = `${TEST_LABEL}=${runId}`,
): Promise<string[]> {
  const [key, value] = label.split('=') as [string, string];
  const selector = { [key]: value };
  const removed: string[] = [];
  for (const c of await engine.listContainers(selector)) {
    await engine.remove(c.id);
    removed.push(`container ${c.name}`);
  }
  for (const v of await engine.listVolumes(selector)) {
    await engine.removeVolume(v);
    removed.push(`volume ${v}`);
  }
  for (const n of await engine.listNetworks(selector)) {
    await engine.removeNetwork(n);
    removed.push(`network ${n}`);
  }
  return removed;
}

/** A tiny image made from the host's static busybox, written as an image archive and loaded. */
export async function loadBusyboxImage(engine: Engine, ref: string, cmd: string[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-test-image-'));
  try {
    const tools = [
      'sh',
      'sleep',
      'cat',
      'echo',
      'ls',
      'tty',
      'mkdir',
      'true',
      'false',
      'hostname',
      'wc',
      'stty',
    ];
    const layer = await layerFromEntries(
      [
        { type: 'host-file', name: 'bin/busybox', path: '/bin/busybox', mode: 0o755 },
        ...tools.map((t) => ({ type: 'symlink' as const, name: `bin/${t}`, target: 'busybox' })),
        ...['tmp', 'run', 'var', 'etc', 'proc', 'sys', 'dev'].map((d) => ({
          type: 'directory' as const,
          name: d,
        })),
      ],
      join(dir, 'layer.tar'),
    );
    await engine.loadImage(imageArchive([{ ref, layers: [layer], config: { cmd, labels: testLabels } }]));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
