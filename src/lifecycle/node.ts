import { existsSync } from 'node:fs';
import getPort from 'get-port';
import { MinilabError } from '../errors.js';
import { resourceNames } from '../profile/name.js';
import type { Engine } from '../runtime/engine.js';
import { Labels, ownedLabels } from '../runtime/labels.js';
import type { NodeState, PortMapping } from '../runtime/types.js';
import { API_SERVER_PORT } from '../kube/kubeadm-config.js';
import { nodeShell } from './context.js';

export interface NodeRequest {
  profile: string;
  image: string;
  kubernetesVersion: string;
  cpus?: number;
  memoryBytes?: number;
  ports: { hostPort: number; containerPort: number; protocol: 'tcp' | 'udp' }[];
  extraLabels: Record<string, string>;
  env?: Record<string, string>;
}

/** What this run created, so a failed start removes exactly that and nothing else. */
export interface Created {
  network: boolean;
  volume: boolean;
  container: boolean;
}

const portTaken = (err: unknown) =>
  /port is already allocated|address already in use/i.test(String((err as Error)?.message));

/**
 * Creates the profile's network, /var volume and control-plane container, publishing the API
 * server on a free loopback port (picked again if another process takes it first).
 */
export async function createNode(engine: Engine, req: NodeRequest, created: Created): Promise<NodeState> {
  const names = resourceNames(req.profile);
  created.network = (
    await engine.ensureNetwork(names.network, ownedLabels(req.profile, 'network', req.extraLabels))
  ).created;
  created.volume = (
    await engine.ensureVolume(names.varVolume(), ownedLabels(req.profile, 'volume', req.extraLabels))
  ).created;
  const userPorts: PortMapping[] = req.ports.map((p) => ({ hostIp: '127.0.0.1', ...p }));
  for (let attempt = 1; ; attempt++) {
    const apiPort = await getPort({ host: '127.0.0.1' });
    const labels = {
      ...ownedLabels(req.profile, 'node', req.extraLabels),
      [Labels.apiServerPort]: String(apiPort),
      [Labels.version]: req.kubernetesVersion,
    };
    await engine.createNode({
      name: names.node(),
      hostname: names.node(),
      image: req.image,
      profile: req.profile,
      role: 'control-plane',
      network: names.network,
      varVolume: names.varVolume(),
      ports: [
        { hostIp: '127.0.0.1', hostPort: apiPort, containerPort: API_SERVER_PORT, protocol: 'tcp' },
        ...userPorts,
      ],
      cpus: req.cpus,
      memoryBytes: req.memoryBytes,
      labels,
      env: req.env,
      mountLibModules: existsSync('/lib/modules'),
    });
    created.container = true;
    try {
      await engine.start(names.node());
      break;
    } catch (err) {
      await engine.remove(names.node());
      created.container = false;
      if (!portTaken(err)) throw err;
      const takenUserPort = userPorts.find((p) => String((err as Error).message).includes(`:${p.hostPort}`));
      if (takenUserPort) {
        throw new MinilabError('environment', `host port ${takenUserPort.hostPort} is already in use`, {
          hint: `free it, or choose another with --ports HOST:${takenUserPort.containerPort}`,
          cause: err,
        });
      }
      if (attempt >= 3) throw err;
    }
  }
  const state = await engine.inspect(names.node());
  if (!state?.ip) throw new MinilabError('clusterFailed', `node ${names.node()} has no IP address`);
  return state;
}

/** Waits for the node's systemd to finish booting and containerd to answer. */
export async function waitForBoot(engine: Engine, node: string): Promise<void> {
  await nodeShell(
    engine,
    node,
    `for i in $(seq 1 300); do
       if [ -S /run/containerd/containerd.sock ] && ctr --timeout 2s version >/dev/null 2>&1; then exit 0; fi
       sleep 0.1
     done
     echo "containerd did not answer within 30 s" >&2
     systemctl is-system-running || true
     systemctl --failed --no-legend || true
     exit 1`,
    'waiting for the node to boot (systemd, containerd)',
    { timeoutMs: 60_000, logCommand: 'journalctl -b --no-pager -n 30' },
  );
}

/** The API server's host port, from the node's labels (kept even while stopped). */
export function apiServerPort(node: NodeState): number {
  const port = Number(node.labels[Labels.apiServerPort]);
  if (!port) throw new MinilabError('unexpected', `node ${node.name} has no API server port label`);
  return port;
}

/**
 * A clear error when the node container no longer runs (stopped, killed, out of memory); else
 * undefined. `settleMs` gives the engine time to notice: a command in a dying node can fail a
 * moment before the engine reports the container as exited.
 */
export async function nodeStopped(
  engine: Engine,
  node: string,
  opts: { cause?: unknown; settleMs?: number } = {},
): Promise<MinilabError | undefined> {
  const deadline = Date.now() + (opts.settleMs ?? 0);
  for (;;) {
    const state = await engine.inspect(node).catch(() => undefined);
    if (!state) return undefined;
    // A container the engine is restarting (its restart policy) has not stopped for good.
    if (!state.running && state.status !== 'restarting') {
      return new MinilabError('clusterFailed', `the node container ${node} stopped (${state.status})`, {
        hint: 'was it stopped, killed or out of memory? run the command again',
        cause: opts.cause,
      });
    }
    if (Date.now() >= deadline) return undefined;
    // A node that still runs a command is alive: the failure had another cause.
    const alive = await engine
      .exec(node, ['true'], { timeoutMs: 2000 })
      .then((r) => r.exitCode === 0)
      .catch(() => false);
    if (alive) return undefined;
    await new Promise((r) => setTimeout(r, 250));
  }
}
