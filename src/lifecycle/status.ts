import { kubeconfigFiles, readKubeconfigEntry } from '../kube/kubeconfig.js';
import { Labels } from '../labels.js';
import type { Node } from '../providers/types.js';
import { controlPlane, credentials } from './nodes.js';
import type { LifecycleContext } from './types.js';

export type LayerState = 'running' | 'stopped' | 'unknown';

export interface NodeStatus {
  name: string;
  role: string;
  container: string;
  ip?: string;
  kubelet: LayerState;
}

export interface ClusterStatus {
  profile: string;
  kubernetesVersion: string;
  /** The container runtime the control-plane node runs (node images from before it was built here: absent). */
  runtime?: { containerd: string; runc: string };
  /** The control-plane node (kept for scripts written against one node). */
  node: { name: string; container: string; ip?: string };
  nodes: NodeStatus[];
  /** The load balancer in front of several control planes (the API endpoint), when there is one. */
  loadBalancer?: { name: string; container: string; ip?: string };
  /** Running when every node's kubelet runs. */
  kubelet: LayerState;
  apiServer: { state: LayerState; url: string };
  kubeconfig: { state: 'configured' | 'stale' | 'missing'; path: string; context: string; current: boolean };
}

/** Bits of the status exit code (added to 16), one per layer that is down. */
export const StatusBits = { container: 1, kubelet: 2, apiServer: 4, kubeconfig: 8 } as const;
export const STATUS_BASE = 16;

/** systemd's word for the kubelet unit, by exec in the node. */
function kubeletUnitState(node: Node): Promise<LayerState> {
  return node
    .exec(['systemctl', 'is-active', 'kubelet'], { timeoutMs: 5000 })
    .then((r): LayerState => (r.stdout.trim() === 'active' ? 'running' : 'stopped'))
    .catch((): LayerState => 'unknown');
}

/**
 * A node's kubelet: its /healthz through the API server's node proxy, which dials the kubelet at
 * that moment (no exec in the node, and no lag such as a node lease's); when the proxy cannot
 * say (no credentials, the API server or the kubelet not answering), systemd's word by exec.
 */
async function kubeletState(
  node: Node,
  api: Promise<((path: string) => Promise<true | string>) | undefined>,
): Promise<LayerState> {
  if (!node.state.running) return 'stopped';
  const health = await api;
  if (health && (await health(`/api/v1/nodes/${encodeURIComponent(node.name)}/proxy/healthz`)) === true)
    return 'running';
  return kubeletUnitState(node);
}

function runtimeOf(node: Node): Pick<ClusterStatus, 'runtime'> {
  const containerd = node.state.labels[Labels.containerd];
  const runc = node.state.labels[Labels.runc];
  return containerd && runc ? { runtime: { containerd, runc } } : {};
}

export async function clusterStatus(ctx: LifecycleContext, profile: string): Promise<ClusterStatus> {
  const found = await controlPlane(ctx.provider, profile);
  const { node, nodes } = found;
  const { host, port } = ctx.provider.apiEndpoint(nodes);
  const url = `https://${host}:${port}`;
  const config = await ctx.profiles.read(profile).catch(() => undefined);
  // What kubectl sees now: the merged view of the files in $KUBECONFIG.
  const files = kubeconfigFiles(ctx.env);
  const context = config?.kubeconfig?.context ?? profile;
  const entryRead = readKubeconfigEntry(files, context).catch(() => undefined);
  /** The profile's admin as the kubeconfig has it, when it names this server (no exec in the node). */
  const admin = entryRead.then((e) =>
    e?.server === url && e.credentials ? { name: profile, server: url, ...e.credentials } : undefined,
  );
  /**
   * /readyz as the profile's admin: with the kubeconfig's credentials; else, or when they are
   * refused (a cluster made again on the same port), with the node's admin.conf.
   */
  const apiServerState = async (): Promise<LayerState> => {
    if (!node.state.running) return 'stopped';
    const a = await admin;
    if (a && (await ctx.kube.health(a, '/readyz')) === true) return 'running';
    return credentials(ctx.provider, found)
      .then((e) => ctx.kube.health(e, '/readyz'))
      .then((r): LayerState => (r === true ? 'running' : 'stopped'))
      .catch((): LayerState => 'stopped');
  };
  const kubeletApi = admin.then((a) => (a ? (path: string) => ctx.kube.health(a, path) : undefined));
  const [kubelets, apiServer, entry, lb] = await Promise.all([
    Promise.all(nodes.map((n) => kubeletState(n, kubeletApi))),
    apiServerState(),
    entryRead,
    ctx.provider.loadBalancer(profile),
  ]);
  const each = nodes.map((n, i): NodeStatus => ({
    name: n.name,
    role: n.role,
    container: n.state.status,
    ip: n.state.ip,
    kubelet: kubelets[i] ?? 'unknown',
  }));
  return {
    profile,
    kubernetesVersion: node.state.labels[Labels.version] ?? config?.kubernetesVersion ?? '',
    ...runtimeOf(node),
    node: { name: node.name, container: node.state.status, ip: node.state.ip },
    nodes: each,
    ...(lb ? { loadBalancer: { name: lb.name, container: lb.state.status, ip: lb.state.ip } } : {}),
    kubelet: each.every((n) => n.kubelet === 'running')
      ? 'running'
      : each.some((n) => n.kubelet === 'unknown')
        ? 'unknown'
        : 'stopped',
    apiServer: { state: apiServer, url },
    kubeconfig: {
      state: !entry ? 'missing' : entry.server === url ? 'configured' : 'stale',
      path: entry?.path ?? config?.kubeconfig?.path ?? (files[0] as string),
      context,
      current: entry?.current ?? false,
    },
  };
}

export function statusExitCode(s: ClusterStatus): number {
  let bits = 0;
  if ([...s.nodes, ...(s.loadBalancer ? [s.loadBalancer] : [])].some((n) => n.container !== 'running'))
    bits |= StatusBits.container;
  if (s.kubelet !== 'running') bits |= StatusBits.kubelet;
  if (s.apiServer.state !== 'running') bits |= StatusBits.apiServer;
  if (s.kubeconfig.state !== 'configured') bits |= StatusBits.kubeconfig;
  return bits === 0 ? 0 : STATUS_BASE + bits;
}
