import { API_SERVER_PORT, DEFAULT_POD_SUBNET, DEFAULT_SERVICE_SUBNET } from '../kube/kubeadm-config.js';
import { nodeImageRef } from '../image/components.js';
import { usageError } from '../errors.js';
import { resourceNames } from '../profile/name.js';
import type { ClusterPlan, PortMapping } from '../providers/types.js';
import { LOAD_BALANCER_COMMAND } from './load-balancer.js';
import type { StartRequest } from './start.js';

/**
 * The cluster a new start makes: `controlPlanes` control-plane nodes, the first publishing the
 * user's ports on 127.0.0.1, and the rest of `nodes` workers. One control plane publishes the API
 * server itself; several sit behind a load balancer that publishes it. The steps and the provider
 * work on the list.
 */
export function planCluster(
  req: StartRequest,
  opts: { apiServerPort: number; env: NodeJS.ProcessEnv; labels: Record<string, string> },
): ClusterPlan {
  const names = resourceNames(req.profile);
  const controlPlanes = Math.max(1, req.controlPlanes ?? 1);
  const api: PortMapping = {
    hostIp: '127.0.0.1',
    hostPort: opts.apiServerPort,
    containerPort: API_SERVER_PORT,
    protocol: 'tcp',
  };
  const ha = controlPlanes > 1;
  return {
    profile: req.profile,
    kubernetesVersion: req.kubernetesVersion,
    image: nodeImageRef(req.kubernetesVersion),
    apiServerPort: opts.apiServerPort,
    cpus: req.cpus,
    memoryBytes: req.memoryBytes,
    env: proxyEnv(opts.env),
    labels: opts.labels,
    ...(ha
      ? { loadBalancer: { name: names.loadBalancer, ports: [api], command: LOAD_BALANCER_COMMAND } }
      : {}),
    nodes: [
      ...Array.from({ length: controlPlanes }, (_, i) => ({
        name: names.controlPlane(i),
        role: 'control-plane' as const,
        ports: i > 0 ? [] : [...(ha ? [] : [api]), ...req.ports.map((p) => ({ hostIp: '127.0.0.1', ...p }))],
      })),
      ...Array.from({ length: Math.max(0, req.nodes - controlPlanes) }, (_, i) => ({
        name: names.node(i + 1),
        role: 'worker' as const,
        ports: [],
      })),
    ],
  };
}

/**
 * The cluster's shape from --nodes and --control-planes: nodes counts every node, control
 * planes included (so `--control-planes 3` alone is three control planes, `--control-planes 3
 * --nodes 4` adds a worker). An even number of control planes is refused: etcd's quorum is a
 * majority, so 2 members tolerate no failure (like 1) and 4 tolerate one (like 3).
 */
export function clusterShape(flags: { nodes?: number; controlPlanes?: number }): {
  nodes: number;
  controlPlanes: number;
} {
  const controlPlanes = flags.controlPlanes ?? 1;
  if (controlPlanes % 2 === 0) {
    throw usageError(
      `--control-planes ${controlPlanes} is an even number: etcd keeps a majority, so ${controlPlanes} members survive no more failures than ${controlPlanes - 1}`,
      `use --control-planes ${controlPlanes + 1} (survives ${controlPlanes / 2} stopped) or ${controlPlanes - 1}`,
    );
  }
  const nodes = flags.nodes ?? controlPlanes;
  if (nodes < controlPlanes) {
    throw usageError(
      `--nodes ${nodes} is fewer than --control-planes ${controlPlanes}: --nodes counts every node`,
      `e.g. --control-planes ${controlPlanes} --nodes ${controlPlanes + 1} for one worker besides them`,
    );
  }
  return { nodes, controlPlanes };
}

/** The same plan with the API server on another host port (the one picked was taken meanwhile). */
export function withApiServerPort(plan: ClusterPlan, port: number): ClusterPlan {
  const moved = <T extends { ports: PortMapping[] }>(n: T): T => ({
    ...n,
    ports: n.ports.map((p) =>
      p.hostPort === plan.apiServerPort && p.containerPort === API_SERVER_PORT ? { ...p, hostPort: port } : p,
    ),
  });
  return {
    ...plan,
    apiServerPort: port,
    loadBalancer: plan.loadBalancer && moved(plan.loadBalancer),
    nodes: plan.nodes.map(moved),
  };
}

/** HTTP(S)_PROXY passed into the nodes, with the cluster's own ranges added to NO_PROXY. */
export function proxyEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) {
    const value = env[key] ?? env[key.toLowerCase()];
    if (value) out[key] = value;
  }
  if (out.HTTP_PROXY || out.HTTPS_PROXY) {
    out.NO_PROXY = [
      out.NO_PROXY,
      'localhost',
      '127.0.0.1',
      DEFAULT_SERVICE_SUBNET,
      DEFAULT_POD_SUBNET,
      '.svc',
      '.cluster.local',
    ]
      .filter(Boolean)
      .join(',');
  }
  return out;
}
