import type { ContainerCreateOptions, ContainerInfo, ContainerInspectInfo } from 'dockerode';
import { Labels } from '../../labels.js';
import type { NodeState, NodeStatus, PortMapping } from '../types.js';
import type { ContainerSpec, PlainContainerSpec, ServiceSpec } from './types.js';

/**
 * The one place where minilab's node spec becomes Docker's container configuration, the way kind
 * and minikube run their nodes: privileged, unconfined, tmpfs /run and /tmp, /var on a volume,
 * ports published on loopback only, and labels recording what the node is.
 */
export function nodeCreateOptions(
  spec: ContainerSpec,
  /** What systemd in the node is told it runs in (the `container` variable). */
  containerEnv = 'docker',
): ContainerCreateOptions & { HostConfig: { CgroupnsMode?: string } } {
  const { exposed, bindings } = publish(spec.ports);
  const binds = [`${spec.varVolume}:/var`];
  if (spec.mountLibModules) binds.push('/lib/modules:/lib/modules:ro');
  for (const b of spec.binds ?? []) {
    const propagation = { None: '', HostToContainer: 'rslave', Bidirectional: 'rshared' }[
      b.propagation ?? 'None'
    ];
    const options = [...(b.readOnly ? ['ro'] : []), ...(propagation ? [propagation] : [])];
    binds.push(`${b.hostPath}:${b.containerPath}${options.length > 0 ? `:${options.join(',')}` : ''}`);
  }
  return {
    name: spec.name,
    Hostname: spec.hostname,
    Image: spec.image,
    Labels: { ...spec.labels, [Labels.role]: spec.role, [Labels.node]: spec.name },
    Env: Object.entries({ container: containerEnv, ...(spec.env ?? {}) }).map(([k, v]) => `${k}=${v}`),
    ExposedPorts: exposed,
    StopSignal: 'SIGRTMIN+3',
    Tty: true,
    HostConfig: {
      // The node gets its own cgroup namespace so systemd in it sees a clean hierarchy (kind does the same).
      Privileged: true,
      SecurityOpt: ['seccomp=unconfined', 'apparmor=unconfined'],
      Tmpfs: { '/run': 'rw', '/tmp': 'rw' },
      Binds: binds,
      CgroupnsMode: 'private',
      PortBindings: bindings,
      RestartPolicy: { Name: 'unless-stopped' },
      Init: false,
      NanoCpus: spec.cpus ? Math.round(spec.cpus * 1e9) : undefined,
      Memory: spec.memoryBytes,
      MemorySwap: spec.memoryBytes,
      Devices: [],
    },
    NetworkingConfig: {
      EndpointsConfig: { [spec.network]: endpoint([spec.hostname], spec.ipv4Address) },
    },
  };
}

/** The container on its network: known by its names there, at a fixed address when given one. */
function endpoint(aliases: string[], ipv4Address: string | undefined) {
  return { Aliases: aliases, ...(ipv4Address ? { IPAMConfig: { IPv4Address: ipv4Address } } : {}) };
}

/** Docker's form of published ports: the exposed set and the host bindings. */
function publish(ports: PortMapping[]) {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of ports) {
    const key = `${p.containerPort}/${p.protocol}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
  }
  return { exposed, bindings };
}

/**
 * A service container (load balancer, registry): the node image running only the command it is
 * given, unprivileged (it serves TCP and needs nothing of the host), restarted with the engine
 * like the nodes, and known on the cluster's network by its name.
 */
export function serviceCreateOptions(spec: ServiceSpec): ContainerCreateOptions {
  const { exposed, bindings } = publish(spec.ports);
  return {
    name: spec.name,
    Hostname: spec.name,
    Image: spec.image,
    Entrypoint: spec.command,
    Cmd: [],
    Env: spec.env && Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    Labels: { ...spec.labels, [Labels.role]: spec.role, [Labels.node]: spec.name },
    ExposedPorts: exposed,
    HostConfig: {
      PortBindings: bindings,
      Binds: spec.volume && [`${spec.volume.name}:${spec.volume.path}`],
      RestartPolicy: { Name: 'unless-stopped' },
      Init: true,
    },
    NetworkingConfig: { EndpointsConfig: { [spec.network]: endpoint([spec.name], spec.ipv4Address) } },
  };
}

const STATUSES: NodeStatus[] = ['created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead'];
function toStatus(s: string | undefined): NodeStatus {
  return STATUSES.find((x) => x === s) ?? 'dead';
}

export function nodeStateFromList(c: ContainerInfo): NodeState {
  const labels = c.Labels ?? {};
  const networks = c.NetworkSettings?.Networks ?? {};
  const ip = Object.values(networks).find((n) => n.IPAddress)?.IPAddress || undefined;
  const ports: PortMapping[] = (c.Ports ?? [])
    .filter((p) => p.PublicPort)
    .map((p) => ({
      hostIp: p.IP ?? '',
      hostPort: p.PublicPort,
      containerPort: p.PrivatePort,
      protocol: p.Type === 'udp' ? 'udp' : 'tcp',
    }));
  return {
    id: c.Id,
    name: (c.Names?.[0] ?? '').replace(/^\//, ''),
    profile: labels[Labels.profile] ?? '',
    role: labels[Labels.role] ?? '',
    image: c.Image,
    status: toStatus(c.State),
    running: c.State === 'running',
    ip,
    ports,
    labels,
  };
}

export function nodeStateFromInspect(c: ContainerInspectInfo): NodeState {
  const labels = c.Config?.Labels ?? {};
  const networks = c.NetworkSettings?.Networks ?? {};
  const ip = Object.values(networks).find((n) => n.IPAddress)?.IPAddress || undefined;
  const ports: PortMapping[] = [];
  for (const [key, binds] of Object.entries(c.NetworkSettings?.Ports ?? {})) {
    const [port, proto] = key.split('/');
    for (const b of binds ?? []) {
      ports.push({
        hostIp: b.HostIp,
        hostPort: Number(b.HostPort),
        containerPort: Number(port),
        protocol: proto === 'udp' ? 'udp' : 'tcp',
      });
    }
  }
  return {
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    profile: labels[Labels.profile] ?? '',
    role: labels[Labels.role] ?? '',
    image: c.Config?.Image ?? '',
    status: toStatus(c.State?.Status),
    running: Boolean(c.State?.Running),
    ip,
    ports,
    labels,
    startedAt: c.State?.StartedAt,
  };
}

/** A plain container (image builds, helpers): privileged ones run unconfined like nodes. */
export function plainCreateOptions(spec: PlainContainerSpec): ContainerCreateOptions {
  return {
    name: spec.name,
    Image: spec.image,
    Cmd: spec.cmd,
    Entrypoint: spec.entrypoint,
    Labels: spec.labels,
    HostConfig: {
      Privileged: spec.privileged ?? false,
      SecurityOpt: spec.privileged ? ['seccomp=unconfined', 'apparmor=unconfined'] : undefined,
      Binds: spec.binds,
      Tmpfs: spec.tmpfs,
    },
  };
}

/** Docker's label filter syntax: "key" for presence, "key=value" for a value. */
export function labelFilter(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => (v === '' ? k : `${k}=${v}`));
}
