import { MinilabError } from '../errors.js';
import type { KubeconfigEntry } from '../kube/kubeconfig.js';
import { runInNode } from '../providers/run.js';
import type { Node, Provider } from '../providers/types.js';

/** How many etcd members (one per control plane) must run for etcd, and so the API server, to answer. */
export const etcdQuorum = (members: number) => Math.floor(members / 2) + 1;

/** Said when a cluster is left with an even number of control planes; undefined for an odd one. */
export function evenControlPlanesWarning(controlPlanes: number): string | undefined {
  return controlPlanes % 2 === 0
    ? `${controlPlanes} control planes survive no more failures than ${controlPlanes - 1}: etcd keeps a majority`
    : undefined;
}

/** A profile's nodes, the control plane first. */
export async function clusterNodes(provider: Provider, profile: string): Promise<Node[]> {
  const nodes = await provider.listNodes(profile);
  return [...nodes].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}
const rank = (n: Node) => (n.role === 'control-plane' ? 0 : 1);

/**
 * The profile's nodes and a control-plane node to work through (the first one running, so a
 * highly available cluster answers with one of them stopped), or a not-found error naming the fix.
 */
export async function controlPlane(
  provider: Provider,
  profile: string,
): Promise<{ node: Node; nodes: Node[] }> {
  const nodes = await clusterNodes(provider, profile);
  const cps = nodes.filter((n) => n.role === 'control-plane');
  const node = cps.find((n) => n.state.running) ?? cps[0];
  if (!node) {
    throw new MinilabError('notFound', `profile "${profile}" has no cluster`, {
      hint: `create it with: minilab start -p ${profile}`,
    });
  }
  return { node, nodes };
}

/** Like controlPlane, but the node must be running. */
export async function runningControlPlane(
  provider: Provider,
  profile: string,
): Promise<{ node: Node; nodes: Node[] }> {
  const found = await controlPlane(provider, profile);
  if (!found.node.state.running) {
    throw new MinilabError('environment', `the cluster of profile "${profile}" is stopped`, {
      hint: `start it with: minilab start -p ${profile}`,
    });
  }
  return found;
}

/**
 * The admin credentials kubeadm wrote in the control-plane node, pointed at the API endpoint the
 * provider publishes on the host: how every command reaches the API server.
 */
export async function credentials(
  provider: Provider,
  found: { node: Node; nodes: Node[] },
  file = '/etc/kubernetes/admin.conf',
): Promise<KubeconfigEntry> {
  const { host, port } = provider.apiEndpoint(found.nodes);
  // yaml loads here, not with this module: stop and node stop import it and never parse (27 ms)
  const [text, { parse }] = await Promise.all([
    runInNode(found.node, `cat ${file}`, 'reading the admin kubeconfig'),
    import('yaml'),
  ]);
  const c = parse(text) as {
    clusters?: { cluster?: Record<string, string> }[];
    users?: { user?: Record<string, string> }[];
  };
  const cluster = c.clusters?.[0]?.cluster;
  const user = c.users?.[0]?.user;
  if (
    !cluster?.['certificate-authority-data'] ||
    !user?.['client-certificate-data'] ||
    !user['client-key-data']
  ) {
    throw new MinilabError('clusterFailed', 'the node admin kubeconfig lacks its certificates');
  }
  return {
    name: found.node.profile,
    server: `https://${host}:${port}`,
    certificateAuthorityData: cluster['certificate-authority-data'],
    clientCertificateData: user['client-certificate-data'],
    clientKeyData: user['client-key-data'],
  };
}

/**
 * A clear error when a node no longer runs (stopped, killed, out of memory); else undefined.
 * `settleMs` gives the provider time to notice: a command in a dying node can fail a moment
 * before the node is reported as exited.
 */
export async function nodeStopped(
  node: Node,
  opts: { cause?: unknown; settleMs?: number } = {},
): Promise<MinilabError | undefined> {
  const deadline = Date.now() + (opts.settleMs ?? 0);
  for (;;) {
    const state = await node.refresh().catch(() => undefined);
    if (!state) return undefined;
    // A node the provider is restarting (its restart policy) has not stopped for good.
    if (!state.running && state.status !== 'restarting') {
      return new MinilabError('clusterFailed', `the node container ${node.name} stopped (${state.status})`, {
        hint: 'was it stopped, killed or out of memory? run the command again',
        cause: opts.cause,
      });
    }
    if (Date.now() >= deadline) return undefined;
    // A node that still runs a command is alive: the failure had another cause.
    const alive = await node
      .exec(['true'], { timeoutMs: 2000 })
      .then((r) => r.exitCode === 0)
      .catch(() => false);
    if (alive) return undefined;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Run in a node before it halts, in one exec. The kubelet stops first, so it restarts nothing
 * while the node halts. Then kube-apiserver and CoreDNS are killed at once: on SIGTERM neither
 * ends in time (the API server was still running after 30 s, measured, not traced why; CoreDNS
 * serves on for its 5 s lameduck), so both were killed at the scopes' 1 s stop timeout anyway,
 * and etcd with them, still waiting for the API server's streams. With its client gone, etcd
 * stops cleanly on the halt's SIGTERM in about 60 ms; every other pod keeps its 1 s. By process
 * name (pkill takes milliseconds where asking crictl for the containers took 150 ms): a process
 * of that name in a user's pod is stateless too. A worker has no API server: pkill finds none.
 */
const BEFORE_HALT = [
  'sh',
  '-c',
  'systemctl stop kubelet; pkill -KILL -x kube-apiserver; pkill -KILL -x coredns; true',
];

/** Stops one running node: the steps above inside it, then the node itself (its systemd halts). */
export async function haltNode(provider: Provider, node: Node): Promise<void> {
  await node.exec(BEFORE_HALT, { timeoutMs: 15_000 }).catch(() => undefined);
  await provider.stopNode(node, 15);
}
