import type { Readable, Writable } from 'node:stream';
import type { Reporter } from '../reporter.js';

/**
 * The seam between minilab and the infrastructure its nodes run on, cut where kind cuts it:
 * a Provider makes, lists, starts, stops and deletes a cluster's nodes and says where the API
 * endpoint is; a Node is something to run a command in, copy files in and out of, and read logs
 * from. Lifecycle, image load, logs, ssh and the dashboard see only these types: Docker (and later
 * podman or a VM) sits behind both.
 */

export type NodeRole = 'control-plane' | 'worker';

export interface PortMapping {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

/** A host directory shared with a node (a cluster config file's extraMounts). */
export interface MountPlan {
  hostPath: string;
  containerPath: string;
  readOnly: boolean;
  /** Mount propagation, in Kubernetes' words. */
  propagation: 'None' | 'HostToContainer' | 'Bidirectional';
}

/** One node of a cluster plan: what the provider makes. */
export interface NodePlan {
  name: string;
  role: NodeRole;
  /** Ports published on the host (loopback), the API server's included on control-plane nodes. */
  ports: PortMapping[];
  mounts?: MountPlan[];
  /** Kubernetes labels the node registers with (beyond minilab's own). */
  labels?: Record<string, string>;
}

/**
 * A TCP load balancer in front of several control planes: the API endpoint of a highly available
 * cluster. It runs from the node image with another command (HAProxy), and forwards to nothing
 * until its configuration is written (see src/lifecycle/load-balancer.ts).
 */
export interface LoadBalancerPlan {
  name: string;
  /** The API server's host port, published by the load balancer instead of a node. */
  ports: PortMapping[];
  /** The command the container runs (the provider adds nothing to it). */
  command: string[];
}

/** What a service container beside the nodes is: the load balancer, or the registry add-on. */
export type ServiceRole = 'load-balancer' | 'registry';

/**
 * A service container made for a running cluster (the registry add-on): the node image running
 * one command, unprivileged, on the cluster's network where the nodes reach it by its name.
 */
export interface ServicePlan {
  profile: string;
  name: string;
  role: ServiceRole;
  /** The node image (the cluster's own: nothing else to build or keep). */
  image: string;
  /** Ports published on the host (loopback). */
  ports: PortMapping[];
  command: string[];
  env?: Record<string, string>;
  /** Where a volume of its own is mounted: kept by stop and start, removed with it by deleteNode. */
  dataPath?: string;
  /** Extra labels (MINILAB_LABELS). */
  labels: Record<string, string>;
}

/** A cluster as start means to make it: every node with its role, and what they share. */
export interface ClusterPlan {
  profile: string;
  kubernetesVersion: string;
  /** The node image (or disk) every node boots from. */
  image: string;
  nodes: NodePlan[];
  /** Several control planes: the load balancer made before them. */
  loadBalancer?: LoadBalancerPlan;
  /** The API server's port on the host (published by the control-plane node, or a load balancer). */
  apiServerPort: number;
  cpus?: number;
  memoryBytes?: number;
  /** The disk each node may grow to (VM drivers). */
  diskBytes?: number;
  /** Environment of every node (proxy settings; the provider adds its network's subnets to NO_PROXY, see proxy.ts). */
  env: Record<string, string>;
  /** Extra labels on every resource made for the plan (MINILAB_LABELS). */
  labels: Record<string, string>;
}

export type NodeStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

/** A node as the provider last saw it. */
export interface NodeState {
  id: string;
  name: string;
  profile: string;
  role: string;
  image: string;
  status: NodeStatus;
  running: boolean;
  ip?: string;
  ports: PortMapping[];
  labels: Record<string, string>;
  startedAt?: string;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** False when the runtime could not start the command at all (it never ran). */
  started: boolean;
}

export interface ExecOptions {
  input?: string | Buffer | Readable;
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface StreamIO {
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Fail when the command sends nothing (stdout or stderr) for this long (a stalled stream). */
  stallMs?: number;
}

export interface TerminalIO {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  env?: Record<string, string>;
}

export interface NodeResources {
  /** Memory as `docker stats` counts it: usage minus inactive file cache. */
  memoryBytes: number;
  /** CPU time used by everything in the node since it started. */
  cpuSeconds: number;
}

/** A handle on one node: what is done inside it. */
export interface Node {
  readonly name: string;
  readonly role: string;
  readonly profile: string;
  /** The state when this handle was made (listed or provisioned). */
  readonly state: NodeState;
  /** The state now, or undefined when the node no longer exists. */
  refresh(): Promise<NodeState | undefined>;
  /** Runs a command and collects stdout and stderr apart, then the exit code. */
  exec(cmd: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Runs a command with its streams attached (no TTY); resolves to the exit code. */
  execStream(cmd: string[], io: StreamIO): Promise<number>;
  /** Runs a command on a TTY tied to this terminal (raw mode, resizes); resolves to the exit code. */
  execInteractive(cmd: string[], term: TerminalIO): Promise<number>;
  /** Extracts a tar stream into a directory of the node. */
  copyIn(dir: string, tar: Readable): Promise<void>;
  /** A tar stream of a path in the node. */
  copyOut(path: string): Promise<Readable>;
  /** The node's console output: the last `tail` lines, or followed. */
  logs(opts?: { tail?: number; follow?: boolean }): Promise<Readable>;
  /** Memory and CPU as the provider counts them (may be zero where it cannot). */
  stats(): Promise<NodeResources>;
}

export interface ProviderInfo {
  /** The driver's name, as users pass it to --driver. */
  driver: string;
  engine: { name: string; version: string };
  cgroupVersion: '1' | '2';
  cgroupDriver: string;
  cpus: number;
  memoryBytes: number;
  rootless: boolean;
  /** Where the engine keeps its data (for the free-space check), when on this machine. */
  rootDir: string;
  os: string;
  /** Whether the engine runs on this machine (host ports are then checked here). */
  local: boolean;
  /** What the user should know about this engine before a cluster is made (preflight shows them). */
  warnings?: string[];
  /** The most nodes a cluster may have on this driver, when it is limited. */
  maxNodes?: number;
  /** Whether --disk-size means something here (VM drivers; a container's disk is the engine's). */
  diskSize?: boolean;
  /** Why no cluster can run on this engine as the host stands (preflight refuses with the first). */
  refusals?: Refusal[];
}

/** A reason a cluster cannot be made, with the fix. */
export interface Refusal {
  message: string;
  hint: string;
}

/** What a provider made for a plan, recorded as it is made so a failed start removes exactly that. */
export interface CreatedResource {
  kind: 'network' | 'volume' | 'node';
  name: string;
}

export interface Journal {
  record(resource: CreatedResource): void;
  forget(resource: CreatedResource): void;
  readonly entries: readonly CreatedResource[];
}

export interface RemovedResources {
  containers: string[];
  volumes: string[];
  /** Node VMs (their processes and disks), on a VM driver. */
  vms?: string[];
  network?: string;
}

export interface ImageInfo {
  id: string;
  tags: string[];
  sizeBytes: number;
  created: string;
  labels: Record<string, string>;
}

/** A container that builds an image: commands run in it, then it is committed. */
export interface ImageBuilder {
  readonly node: Node;
  commit(ref: string, changes: string[]): Promise<void>;
  remove(): Promise<void>;
}

/** The engine's image store on the host: node images are built here, user images loaded from here. */
export interface ImageStore {
  /** Whose store it is, for messages: "Docker engine" and its CLI "docker", "podman service" and "podman". */
  readonly engine: { name: string; cli: string };
  info(ref: string): Promise<ImageInfo | undefined>;
  list(reference: string): Promise<ImageInfo[]>;
  remove(ref: string): Promise<'removed' | 'absent'>;
  /** Loads an image archive (docker save / OCI layout tar). */
  load(archive: Readable): Promise<void>;
  /** Imports a root filesystem tar as an image, with Dockerfile-style changes. */
  importRootfs(rootfs: Readable, ref: string, changes: string[]): Promise<void>;
  pull(ref: string, progress?: (detail: string) => void): Promise<void>;
  /** Images as one docker-save archive stream (each image once, however many of its names are given). */
  save(refs: string | string[]): Promise<Readable>;
  /**
   * Starts a privileged build container from an image (a name left by a crashed build is replaced),
   * with host directories bound into it ("HOST:CONTAINER", an engine on this machine only).
   */
  builder(opts: {
    name: string;
    image: string;
    labels: Record<string, string>;
    binds?: string[];
  }): Promise<ImageBuilder>;
}

/** A driver's own packaging of a node image (a VM disk). */
export interface PreparedImage {
  /** The file nodes boot from. */
  disk: string;
  sizeBytes: number;
}

/** The infrastructure a cluster's nodes run on. */
export interface Provider {
  readonly driver: string;
  info(): Promise<ProviderInfo>;
  /** Makes and starts the plan's nodes (and what they share), recording each resource it made. */
  provision(plan: ClusterPlan, journal: Journal): Promise<Node[]>;
  /** A profile's nodes, or with no profile every minilab node, found from labels alone. */
  listNodes(profile?: string): Promise<Node[]>;
  /** The profile's load balancer (highly available clusters), or undefined. */
  loadBalancer(profile: string): Promise<Node | undefined>;
  /**
   * Makes and starts a service container beside a cluster's nodes (and its volume); a host port
   * held by another process fails as 'port-taken', leaving nothing made. Its ports are guarded by
   * the caller (syncFirewall), as after a start.
   */
  addService(plan: ServicePlan): Promise<Node>;
  /** The service containers of this role: a profile's, or every minilab profile's; deleteNode removes one. */
  services(role: ServiceRole, profile?: string): Promise<Node[]>;
  startNode(node: Node): Promise<void>;
  /** Stops a node; its state is kept. Already stopped or gone counts as success. */
  stopNode(node: Node, timeoutSeconds: number): Promise<void>;
  /** Removes one node and what is its alone (its /var); the cluster's shared resources stay. */
  deleteNode(node: Node): Promise<RemovedResources>;
  /** Removes a profile's resources (found by label), or exactly those a journal names. */
  deleteCluster(profile: string, only?: readonly CreatedResource[]): Promise<RemovedResources>;
  /**
   * Makes the host's firewall rules for the profile what its containers need as they now stand:
   * closes what the engine leaves open on their published ports (Docker before 28: ports on
   * 127.0.0.1 reachable by network neighbours, see docker/loopback-guard.ts), and opens what
   * another engine's policy shuts (podman beside Docker: podman/forward-rules.ts). Returns warnings
   * for what it could not do, and never fails. Only providers whose engines need it have it.
   */
  syncFirewall?(profile: string): Promise<string[]>;
  /** The API server's address on the host, from the cluster's nodes. */
  apiEndpoint(nodes: readonly Node[]): { host: string; port: number };
  /**
   * The engine's image store: where node images are built (for a VM driver, the container engine
   * that builds them) and user images are loaded from.
   */
  readonly images: ImageStore;
  /**
   * Makes what nodes boot from a node image in `images`, where the driver needs its own packaging
   * (qemu: a VM disk with a kernel and an initrd); cached, so a second call is quick.
   */
  prepareImage?(
    ref: string,
    reporter: Reporter,
    extraLabels: Record<string, string>,
    opts?: { force?: boolean },
  ): Promise<PreparedImage>;
}
