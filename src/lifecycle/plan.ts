import { customizeKubeadm } from '../config/kubeadm-patches.js';
import type { ConfigNode } from '../config/cluster-config.js';
import { API_SERVER_PORT } from '../kube/kubeadm-config.js';
import { nodeImageRef } from '../image/components.js';
import { usageError } from '../errors.js';
import { resourceNames } from '../profile/name.js';
import { proxied, proxyEnv } from '../providers/proxy.js';
import type { ClusterPlan, NodePlan, PortMapping } from '../providers/types.js';
import { DEFAULT_SETTINGS, type ClusterSettings } from './kubeadm.js';
import { LOAD_BALANCER_COMMAND } from './load-balancer.js';
import type { StartRequest } from './start.js';

/**
 * The nodes a start asks for, as a cluster config file lists them: from the file when there is
 * one, else `controlPlanes` control planes, the first publishing --ports, and the rest of `nodes`
 * workers.
 */
export function requestedNodes(req: StartRequest): ConfigNode[] {
  if (req.config) return req.config.nodes;
  const controlPlanes = Math.max(1, req.controlPlanes ?? 1);
  const node = (role: ConfigNode['role'], ports: StartRequest['ports'] = []): ConfigNode => ({
    role,
    labels: {},
    extraMounts: [],
    extraPortMappings: ports.map((p) => ({ ...p, listenAddress: '127.0.0.1' })),
  });
  return [
    ...Array.from({ length: controlPlanes }, (_, i) => node('control-plane', i === 0 ? req.ports : [])),
    ...Array.from({ length: Math.max(0, req.nodes - controlPlanes) }, () => node('worker')),
  ];
}

/** The subnets, kube-proxy mode and kubeadm changes of a start: a config file's, or minilab's defaults. */
export function settingsOf(req: StartRequest): ClusterSettings {
  const config = req.config;
  if (!config) return DEFAULT_SETTINGS;
  const customized =
    Object.keys(config.featureGates).length > 0 ||
    Object.keys(config.runtimeConfig).length > 0 ||
    config.kubeadmConfigPatches.length > 0;
  return {
    podSubnet: config.networking.podSubnet ?? DEFAULT_SETTINGS.podSubnet,
    serviceSubnet: config.networking.serviceSubnet ?? DEFAULT_SETTINGS.serviceSubnet,
    kubeProxyMode: config.networking.kubeProxyMode ?? DEFAULT_SETTINGS.kubeProxyMode,
    customize: customized ? (yaml) => customizeKubeadm(yaml, config) : DEFAULT_SETTINGS.customize,
  };
}

/**
 * The cluster a new start makes (see requestedNodes): control planes named PROFILE-control-plane,
 * -control-plane2, ..., workers PROFILE-worker1, ..., in the order they are asked for. One control
 * plane publishes the API server itself; several sit behind a load balancer that publishes it.
 * The steps and the provider work on the list.
 */
export function planCluster(
  req: StartRequest,
  opts: { apiServerPort: number; env: NodeJS.ProcessEnv; labels: Record<string, string> },
): ClusterPlan {
  const names = resourceNames(req.profile);
  const asked = requestedNodes(req);
  const controlPlanes = asked.filter((n) => n.role === 'control-plane').length;
  const api: PortMapping = {
    hostIp: '127.0.0.1',
    hostPort: opts.apiServerPort,
    containerPort: API_SERVER_PORT,
    protocol: 'tcp',
  };
  const ha = controlPlanes > 1;
  const nodes = asked.map((n, i): NodePlan => {
    const index = asked.slice(0, i).filter((m) => m.role === n.role).length;
    const first = n.role === 'control-plane' && index === 0;
    return {
      name: n.role === 'control-plane' ? names.controlPlane(index) : names.node(index + 1),
      role: n.role,
      ports: [
        ...(first && !ha ? [api] : []),
        ...n.extraPortMappings.map((p): PortMapping => ({
          hostIp: p.listenAddress,
          hostPort: p.hostPort,
          containerPort: p.containerPort,
          protocol: p.protocol,
        })),
      ],
      ...(n.extraMounts.length > 0 ? { mounts: n.extraMounts } : {}),
      ...(Object.keys(n.labels).length > 0 ? { labels: n.labels } : {}),
    };
  });
  const { serviceSubnet, podSubnet } = settingsOf(req);
  return {
    profile: req.profile,
    kubernetesVersion: req.kubernetesVersion,
    image: nodeImageRef(req.kubernetesVersion),
    apiServerPort: opts.apiServerPort,
    cpus: req.cpus,
    memoryBytes: req.memoryBytes,
    diskBytes: req.diskBytes,
    // The network's subnets join NO_PROXY once the provider has made the network.
    env: proxyEnv(opts.env, [
      ...nodes.map((n) => n.name),
      ...(ha ? [names.loadBalancer] : []),
      serviceSubnet,
      podSubnet,
    ]),
    labels: opts.labels,
    ...(ha
      ? { loadBalancer: { name: names.loadBalancer, ports: [api], command: LOAD_BALANCER_COMMAND } }
      : {}),
    nodes,
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

/**
 * The proxy environment of a node added to a running cluster: as a start's (planCluster), with
 * NO_PROXY naming `names` (every node, the new one, the load balancer) and the cluster's ranges
 * (`subnets`, from the control plane's manifests), waited for only when there is a proxy.
 */
export async function addedNodeProxyEnv(
  env: NodeJS.ProcessEnv,
  subnets: Promise<{ serviceSubnet: string; podSubnet: string }>,
  names: readonly string[],
): Promise<Record<string, string>> {
  if (!proxied(env)) return {};
  const { serviceSubnet, podSubnet } = await subnets;
  return proxyEnv(env, [...names, serviceSubnet, podSubnet]);
}
