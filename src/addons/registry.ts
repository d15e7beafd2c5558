import { randomBytes } from 'node:crypto';
import getPort, { portNumbers } from 'get-port';
import { MinilabError } from '../errors.js';
import { waitUntil } from '../kube/wait.js';
import { Labels } from '../labels.js';
import { mirrorHost, mirrorPrefix } from '../cluster/mirror.js';
import { writeFilesScript } from '../lifecycle/kubeadm.js';
import { syncFirewall } from '../lifecycle/steps/firewall.js';
import type { LifecycleContext } from '../lifecycle/types.js';
import { resourceNames } from '../profile/name.js';
import { providerFailure } from '../providers/errors.js';
import { runInNode } from '../providers/run.js';
import type { Node } from '../providers/types.js';
import type { Addon, BesideCluster } from './types.js';

/**
 * The registry add-on: distribution's registry (v3.1, the same binary the node image carries for
 * its mirror of loaded images) in a container of its own beside the nodes, as kind's local
 * registry recipe and `k3d registry create` run one, made by minilab with no manual step:
 *
 * - the host pushes to it at 127.0.0.1:PORT (published on loopback only; Docker and containerd
 *   speak plain HTTP to a loopback registry without being told);
 * - every node pulls the same names: a hosts.toml in /etc/containerd/certs.d for 127.0.0.1:PORT
 *   (and localhost:PORT) sends containerd to the container by its name on the cluster's network,
 *   so `kubectl create deployment app --image=127.0.0.1:PORT/app` runs what the host pushed;
 * - its storage is a volume: kept by stop/start and engine restarts, removed by disable and delete.
 *
 * Not a pod: a pod's port cannot be published on the host after the node container is made.
 */
const NAME = 'registry';
const PORT = 5000;
const DATA = '/var/lib/registry';
const CONFIG = '/etc/minilab/registry.yml';
/** The host ports tried first (5000, the registry's own, then the next ones), before any free one. */
const PREFERRED = portNumbers(5000, 5099);
/** The first line of each hosts.toml this add-on writes: how disable finds them. */
const MARK = '# written by minilab: the registry add-on';

/** distribution's configuration: filesystem storage on the volume, deletes allowed, HTTP on 5000. */
export function registryConfig(secret: string): string {
  return `# distribution's registry, the registry add-on of a minilab cluster (src/addons/registry.ts)
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${DATA}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: :${PORT}
  # signs upload state between requests
  secret: ${secret}
  headers:
    X-Content-Type-Options: [nosniff]
`;
}

/**
 * containerd's hosts.toml for one of the registry's host names: pulls go to its container, by name
 * on the cluster's network, and what it lacks to the node's mirror of loaded images (an image
 * `minilab image load` put in the nodes under that name, which these files would hide otherwise).
 */
export function registryHostsToml(container: string, hostName: string): string {
  return `${MARK} (pulls of ${hostName}/... go to its container, then the node's mirror)
[host."http://${container}:${PORT}"]
  capabilities = ["pull", "resolve"]
${mirrorHost(mirrorPrefix(hostName))}`;
}

/** The names a user tags with: the published address, and localhost (kind's recipe uses it). */
const hostNames = (port: number) => [`127.0.0.1:${port}`, `localhost:${port}`];

/** The registry's port on the host, as its container's label records it. */
export function publishedPort(registry: Node): number {
  const port = Number(registry.state.labels[Labels.registryPort]);
  if (!port) {
    throw new MinilabError('unexpected', `the registry container ${registry.name} publishes no port`, {
      hint: `minilab addons disable registry -p ${registry.profile} && minilab addons enable registry -p ${registry.profile}`,
    });
  }
  return port;
}

/** Writes the hosts.toml files that send a node's pulls of these host names to the registry. */
async function configureNode(node: Node, registry: Node, port: number): Promise<void> {
  const files = Object.fromEntries(
    hostNames(port).map((h) => [
      `/etc/containerd/certs.d/${h}/hosts.toml`,
      registryHostsToml(registry.name, h),
    ]),
  );
  await runInNode(node, writeFilesScript(files), `configuring ${node.name} to pull from the registry`);
}

/** Removes every hosts.toml this add-on wrote in a node (whatever port it had). */
async function unconfigureNode(node: Node): Promise<number> {
  const out = await runInNode(
    node,
    `for f in /etc/containerd/certs.d/*/hosts.toml; do
  [ -f "$f" ] && head -n 1 "$f" | grep -qF '${MARK}' && rm -rf "$(dirname "$f")" && echo "$f"
done; true`,
    `removing the registry's configuration from ${node.name}`,
  );
  return out.split('\n').filter((l) => l !== '').length;
}

/**
 * The container: started again if stopped (its port guarded anew), or made with a free port on the
 * host that no other profile's registry has either (a stopped one holds none, but will again).
 */
async function ensureContainer(ctx: LifecycleContext, profile: string, nodes: Node[]): Promise<Node> {
  const all = await ctx.provider.services('registry');
  const found = all.find((r) => r.profile === profile);
  if (found) {
    if (!found.state.running) {
      await ctx.provider.startNode(found);
      await syncFirewall(ctx, profile);
    }
    return found;
  }
  const image = nodes[0]?.state.image;
  if (!image) throw new MinilabError('unexpected', 'no running node to take the node image from');
  const exclude = all.map((r) => Number(r.state.labels[Labels.registryPort]));
  for (let attempt = 1; ; attempt++) {
    const hostPort = await getPort({ host: '127.0.0.1', port: PREFERRED, exclude });
    try {
      const made = await ctx.provider.addService({
        profile,
        name: resourceNames(profile).registry,
        role: 'registry',
        image,
        ports: [{ hostIp: '127.0.0.1', hostPort, containerPort: PORT, protocol: 'tcp' }],
        command: [
          '/bin/sh',
          '-c',
          `printf '%s' "$MINILAB_REGISTRY_CONFIG" > ${CONFIG} && exec /usr/local/bin/registry serve ${CONFIG}`,
        ],
        env: {
          MINILAB_REGISTRY_CONFIG: registryConfig(randomBytes(16).toString('hex')),
          // no OpenTelemetry exporter (its default sends traces to localhost:4318)
          OTEL_TRACES_EXPORTER: 'none',
          OTEL_SDK_DISABLED: 'true',
          GOGC: '50',
        },
        dataPath: DATA,
        labels: { ...ctx.extraLabels, [Labels.registryPort]: String(hostPort) },
      });
      await syncFirewall(ctx, profile);
      return made;
    } catch (err) {
      if (!providerFailure(err, 'port-taken') || attempt >= 3) throw err;
    }
  }
}

/** Whether the registry answers on the host, and from a node by the name containerd uses. */
async function answers(registry: Node, port: number, node: Node | undefined): Promise<true | string> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/v2/`, { signal: AbortSignal.timeout(2000) });
    if (res.status !== 200) return `127.0.0.1:${port}/v2/ answers ${res.status}`;
  } catch (err) {
    return `127.0.0.1:${port} does not answer (${(err as Error).message})`;
  }
  if (!node) return true;
  const r = await node.exec(
    ['busybox', 'wget', '-q', '-O', '/dev/null', `http://${registry.name}:${PORT}/v2/`],
    {
      timeoutMs: 5000,
    },
  );
  return r.exitCode === 0 || `${node.name} cannot reach ${registry.name}:${PORT} (${r.stderr.trim()})`;
}

export const registryBeside: BesideCluster = {
  async up(ctx, { profile, nodes }) {
    const registry = await ctx.reporter.step('Starting the registry container', () =>
      ensureContainer(ctx, profile, nodes),
    );
    const port = publishedPort(registry);
    await Promise.all(nodes.map((n) => configureNode(n, registry, port)));
    await waitUntil('the registry to answer', 60_000, () => answers(registry, port, nodes[0]), {
      intervalMs: 200,
      hint: `minilab logs shows the node; the registry's own log is that of the container ${registry.name}`,
    });
    return [
      `push images to 127.0.0.1:${port}/NAME, and run them under that name: docker tag app 127.0.0.1:${port}/app && docker push 127.0.0.1:${port}/app && kubectl create deployment app --image=127.0.0.1:${port}/app`,
    ];
  },
  async join(ctx, profile, node) {
    const [registry] = await ctx.provider.services('registry', profile);
    if (registry) await configureNode(node, registry, publishedPort(registry));
  },
  async status(ctx, profile) {
    const [registry] = await ctx.provider.services('registry', profile);
    if (!registry)
      return `its container is missing (minilab addons enable registry -p ${profile} makes it again)`;
    const where = `127.0.0.1:${publishedPort(registry)}`;
    return registry.state.running ? where : `${where}, stopped (minilab start -p ${profile} starts it)`;
  },
  async down(ctx, { profile, nodes }) {
    let removed = 0;
    for (const n of nodes) removed += await unconfigureNode(n);
    const [registry] = await ctx.provider.services('registry', profile);
    if (registry) {
      const gone = await ctx.provider.deleteNode(registry);
      removed += gone.containers.length + gone.volumes.length;
    }
    return removed;
  },
};

export const registry: Addon = {
  name: NAME,
  description: 'an image registry the host pushes to at 127.0.0.1:PORT and every node pulls from',
  images: () => [],
  beside: registryBeside,
};
