import type { NodeRole, PortMapping, ServiceRole } from '../types.js';

/** The Docker provider's own view of a node container, before translate.ts turns it into Docker's. */
export interface ContainerSpec {
  name: string;
  hostname: string;
  image: string;
  profile: string;
  role: NodeRole;
  network: string;
  varVolume: string;
  ports: PortMapping[];
  cpus?: number;
  memoryBytes?: number;
  env?: Record<string, string>;
  labels: Record<string, string>;
  /** A fixed address on the network (kept across engine restarts), or the engine's choice. */
  ipv4Address?: string;
  /** Mount the host's /lib/modules read-only (only where it exists). */
  mountLibModules: boolean;
  /** Extra read-only or read-write bind mounts, host path -> container path. */
  binds?: {
    hostPath: string;
    containerPath: string;
    readOnly?: boolean;
    propagation?: 'None' | 'HostToContainer' | 'Bidirectional';
  }[];
}

/**
 * A service container beside the nodes (the load balancer of several control planes, the registry
 * add-on): unprivileged, on the cluster's network.
 */
export interface ServiceSpec {
  name: string;
  role: ServiceRole;
  image: string;
  network: string;
  ports: PortMapping[];
  command: string[];
  env?: Record<string, string>;
  /** A named volume mounted read-write at `path` (its data outlives the container's restarts). */
  volume?: { name: string; path: string };
  labels: Record<string, string>;
  ipv4Address?: string;
}

/** A plain (non-node) container: image builds and short-lived helpers. */
export interface PlainContainerSpec {
  name: string;
  image: string;
  cmd?: string[];
  entrypoint?: string[];
  labels: Record<string, string>;
  privileged?: boolean;
  binds?: string[];
  tmpfs?: Record<string, string>;
}
