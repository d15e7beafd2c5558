import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerEngine } from '../../src/providers/docker/engine.js';
import { PodmanProvider } from '../../src/providers/podman/provider.js';
import { imageArchive, layerFromEntries } from '../../src/image/archive.js';

/** Every resource a test run makes carries this label, so cleanup finds it even after a failure. */
export const TEST_LABEL = 'io.minilab.test';
export const runId = randomBytes(4).toString('hex');
export const testLabels = { [TEST_LABEL]: runId };

export const connect = () => DockerEngine.connect(process.env, 10_000);

/** The podman service (started, as minilab starts it, when none runs), through its provider. */
export const connectPodman = () =>
  PodmanProvider.open({
    env: process.env,
    uid: process.getuid?.(),
    log: join(tmpdir(), 'minilab-test-podman-service.log'),
    timeoutMs: 10_000,
    start: true,
  });

/** Removes every container, volume and network labelled by this test run; returns what was left before. */
export async function cleanupTestResources(
  engine: DockerEngine,
  label = `${TEST_LABEL}=${runId}`,
): Promise<string[]> {
  const [key, value] = label.split('=') as [string, string];
  const selector = { [key]: value };
  const removed: string[] = [];
  for (const c of await engine.containers.list(selector)) {
    await engine.containers.remove(c.id);
    removed.push(`container ${c.name}`);
  }
  for (const v of await engine.volumes.list(selector)) {
    await engine.volumes.remove(v);
    removed.push(`volume ${v}`);
  }
  for (const n of await engine.networks.list(selector)) {
    await engine.networks.remove(n);
    removed.push(`network ${n}`);
  }
  return removed;
}

/** A tiny image made from the host's static busybox, written as an image archive and loaded. */
export async function loadBusyboxImage(engine: DockerEngine, ref: string, cmd: string[]): Promise<void> {
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
      // What minilab runs a node command under when it has a deadline (every node has it).
      'timeout',
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
    await engine.images.load(imageArchive([{ ref, layers: [layer], config: { cmd, labels: testLabels } }]));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Every container of a profile (nodes and load balancer), by name: its address on the cluster network. */
export async function profileAddresses(
  engine: DockerEngine,
  profile: string,
): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  for (const c of await engine.containers.list({ 'io.minilab.profile': profile })) {
    out[c.name] = (await engine.containers.inspect(c.id))?.ip;
  }
  return out;
}

/** Waits until every container of a profile runs again (their restart policy after an engine restart). */
export async function waitForProfileRunning(
  engine: DockerEngine,
  profile: string,
  count: number,
  timeoutMs: number,
): Promise<void> {
  const started = Date.now();
  for (;;) {
    const all = await engine.containers.list({ 'io.minilab.profile': profile }).catch(() => []);
    if (all.length === count && all.every((c) => c.running)) return;
    if (Date.now() - started > timeoutMs) {
      const states = all.map((c) => `${c.name} ${c.status}`).join(', ');
      throw new Error(`timed out waiting for the ${count} containers of ${profile} to run: ${states}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
