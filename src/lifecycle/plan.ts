import { API_SERVER_PORT, DEFAULT_POD_SUBNET, DEFAULT_SERVICE_SUBNET } from '../kube/kubeadm-config.js';
import { nodeImageRef } from '../image/components.js';
import { resourceNames } from '../profile/name.js';
import type { ClusterPlan } from '../providers/types.js';
import type { StartRequest } from './start.js';

/**
 * The cluster a new start makes: one control-plane node publishing the API server and the user's
 * ports on 127.0.0.1, and `nodes - 1` workers. The steps and the provider work on the list.
 */
export function planCluster(
  req: StartRequest,
  opts: { apiServerPort: number; env: NodeJS.ProcessEnv; labels: Record<string, string> },
): ClusterPlan {
  const names = resourceNames(req.profile);
  return {
    profile: req.profile,
    kubernetesVersion: req.kubernetesVersion,
    image: nodeImageRef(req.kubernetesVersion),
    apiServerPort: opts.apiServerPort,
    cpus: req.cpus,
    memoryBytes: req.memoryBytes,
    env: proxyEnv(opts.env),
    labels: opts.labels,
    nodes: [
      {
        name: names.node(0),
        role: 'control-plane',
        ports: [
          {
            hostIp: '127.0.0.1',
            hostPort: opts.apiServerPort,
            containerPort: API_SERVER_PORT,
            protocol: 'tcp',
          },
          ...req.ports.map((p) => ({ hostIp: '127.0.0.1', ...p })),
        ],
      },
      ...Array.from({ length: Math.max(0, req.nodes - 1) }, (_, i) => ({
        name: names.node(i + 1),
        role: 'worker' as const,
        ports: [],
      })),
    ],
  };
}

/** The same plan with the API server on another host port (the one picked was taken meanwhile). */
export function withApiServerPort(plan: ClusterPlan, port: number): ClusterPlan {
  return {
    ...plan,
    apiServerPort: port,
    nodes: plan.nodes.map((n) => ({
      ...n,
      ports: n.ports.map((p) =>
        p.hostPort === plan.apiServerPort && p.containerPort === API_SERVER_PORT
          ? { ...p, hostPort: port }
          : p,
      ),
    })),
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
