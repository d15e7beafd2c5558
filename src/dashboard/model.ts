/**
 * What the dashboard server sends to the page: compact rows summarised from Kubernetes objects.
 * Shared by the server and the web UI (web/), so this file holds types only.
 */
import type { UsageSample } from './series.js';

interface RowBase {
  uid: string;
  name: string;
  namespace: string;
  /** ISO time the object was created. */
  created: string;
}

export interface NodeRow extends RowBase {
  kind: 'Node';
  ready: 'True' | 'False' | 'Unknown';
  /** Conditions other than Ready that are true (MemoryPressure, ...), and whether it is cordoned. */
  problems: string[];
  roles: string[];
  kubeletVersion: string;
  internalIP: string;
  osImage: string;
  capacity: { cpu: string; memory: string; pods: string };
  allocatable: { cpu: string; memory: string; pods: string };
}

export interface NamespaceRow extends RowBase {
  kind: 'Namespace';
  phase: string;
}

export interface ContainerRow {
  name: string;
  image: string;
  ready: boolean;
  restarts: number;
  /** running, waiting (reason), terminated (reason). */
  state: string;
  init: boolean;
}

export interface PodRow extends RowBase {
  kind: 'Pod';
  phase: string;
  /** What kubectl prints in STATUS: the phase, or a container's waiting/terminated reason. */
  status: string;
  readyCount: number;
  containerCount: number;
  restarts: number;
  node: string;
  ip: string;
  containers: ContainerRow[];
  owner?: { kind: string; name: string };
  labels: Record<string, string>;
  deleting: boolean;
}

export interface WorkloadRow extends RowBase {
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet';
  desired: number;
  ready: number;
  upToDate: number;
  available: number;
  selector: Record<string, string>;
}

export interface JobRow extends RowBase {
  kind: 'Job';
  completions: number;
  succeeded: number;
  failed: number;
  active: number;
  status: 'Complete' | 'Failed' | 'Running' | 'Suspended';
  owner?: { kind: string; name: string };
}

export interface ServicePort {
  name: string;
  port: number;
  protocol: string;
  targetPort: string;
  nodePort?: number;
}

export interface ServiceRow extends RowBase {
  kind: 'Service';
  type: string;
  clusterIP: string;
  /** The load balancer's addresses (status.loadBalancer.ingress: IPs or host names). */
  external: string[];
  ports: ServicePort[];
  selector: Record<string, string>;
}

export interface EventRow extends RowBase {
  kind: 'Event';
  type: string;
  reason: string;
  message: string;
  count: number;
  /** ISO time the event was last seen. */
  last: string;
  object: { kind: string; name: string; namespace: string; uid: string };
}

export type Row = NodeRow | NamespaceRow | PodRow | WorkloadRow | JobRow | ServiceRow | EventRow;
export type RowKind = Row['kind'];

/** Kinds whose pod template can be restarted with the restartedAt annotation. */
export const restartableKinds = ['Deployment', 'StatefulSet', 'DaemonSet'] as const;
export type RestartableKind = (typeof restartableKinds)[number];

export type ClusterState =
  | { state: 'connecting'; message?: string }
  | { state: 'connected' }
  | { state: 'reconnecting'; message: string; retryInMs: number };

/** Server-sent events on /api/stream. */
export interface StreamEvents {
  /** Every row known now; sent first, and again whenever the server's view was rebuilt. */
  snapshot: { rows: Row[] };
  /** Rows changed since the last message, in order. */
  changes: { upsert: Row[]; remove: string[] };
  cluster: ClusterState;
}

export interface DashboardInfo {
  profile: string;
  apiServer: string;
}

/** One of the user's profiles, as `minilab profile list` shows it. */
export interface ProfileEntry {
  name: string;
  /** unreachable: the engine of its driver does not answer. */
  status: 'running' | 'stopped' | 'partial' | 'missing' | 'unreachable';
  driver: string;
}

/** GET /api/profiles: every profile, and the one a page naming none is served. */
export interface ProfilesAnswer {
  initial: string;
  profiles: ProfileEntry[];
}

/** The request header naming the profile an API call is for (none: the initial one). */
export const PROFILE_HEADER = 'x-minilab-profile';

export interface NodeUsage {
  name: string;
  cpu: string;
  memory: string;
}

/** A pod's usage: the sum over its containers. */
export interface PodUsage {
  namespace: string;
  name: string;
  /** Cores. */
  cpu: number;
  /** Bytes. */
  memory: number;
}

/**
 * Why usage is not shown. `missing`: the cluster has no metrics API at all (the metrics-server
 * add-on brings it), rather than one that does not answer yet.
 */
export interface NoUsage {
  available: false;
  reason: string;
  missing: boolean;
}

/** Node usage now, and each node's readings over the last minutes (see series.ts). */
export type MetricsAnswer =
  { available: true; nodes: NodeUsage[]; history?: Record<string, UsageSample[]> } | NoUsage;
/** One pod's readings over the last minutes. */
export type PodHistoryAnswer = { available: true; history: UsageSample[] } | NoUsage;
export type PodMetricsAnswer = { available: true; pods: PodUsage[] } | NoUsage;

export interface PortForwardInfo {
  id: string;
  namespace: string;
  service: string;
  port: number;
  url: string;
}

/** Server-sent events on /api/logs. */
export interface LogEvents {
  lines: { lines: string[] };
  end: { reason: string };
  failure: { message: string };
}

/** A kind of resource the API server serves, in one of its versions, found by discovery. */
export interface ResourceKind {
  /** "" for the core group. */
  group: string;
  version: string;
  /** The plural name in the API path ("deployments"). */
  resource: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
  /** The group's preferred version: the one the page lists (objects of the others apply too). */
  preferred: boolean;
}

/** Which resource: the parts of its API path. */
export interface ResourceRef {
  group: string;
  version: string;
  resource: string;
}

/** A column of the API server's Table rendering (kubectl get prints the same). */
export interface TableColumn {
  name: string;
  type: string;
  format: string;
  description: string;
}

export type Cell = string | number | boolean | null;

export interface ResourceTableRow {
  uid: string;
  name: string;
  namespace: string;
  /** One per column, as the API server rendered it. */
  cells: Cell[];
}

export interface ResourceTable {
  columns: TableColumn[];
  rows: ResourceTableRow[];
  /** More objects exist than one page lists. */
  truncated: boolean;
}

/** The events of /api/resources/watch: the list, then its changes (rows by uid). */
export interface ResourceEvents {
  table: ResourceTable;
  changes: { upsert: ResourceTableRow[]; remove: string[] };
  failure: { message: string };
}

/** An event about one object (kubectl describe shows the same). */
export interface ObjectEvent {
  type: string;
  reason: string;
  message: string;
  count: number;
  /** ISO time it was last seen. */
  last: string;
}

export interface ObjectDetail {
  kind: string;
  apiVersion: string;
  uid: string;
  /** The object without managedFields; a Secret's values are replaced by what they hide. */
  yaml: string;
  events: ObjectEvent[];
  /** A Secret's keys and the size of each value: values come one at a time, on request. */
  secretKeys?: { key: string; bytes: number }[];
}

/** One hunk of a unified diff: lines start with " ", "+" or "-". */
export interface DiffHunk {
  oldStart: number;
  newStart: number;
  lines: string[];
}

/** What applying YAML did, or would do (dryRun). */
export interface ApplyAnswer {
  dryRun: boolean;
  /** There was no such object before. */
  created: boolean;
  ref: ResourceRef;
  kind: string;
  namespace: string;
  name: string;
  /** From the live object to the result; empty when nothing changes. */
  diff: DiffHunk[];
}

/** The shells the terminal offers (and the server runs: nothing else). */
export const SHELLS = ['sh', 'bash', 'ash', 'zsh'] as const;
export type Shell = (typeof SHELLS)[number];
