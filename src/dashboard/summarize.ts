import type * as k8s from '@kubernetes/client-node';
import type {
  ContainerRow,
  EventRow,
  JobRow,
  NamespaceRow,
  NodeRow,
  NodeUsage,
  PodRow,
  PodUsage,
  Row,
  ServiceRow,
  WorkloadRow,
} from './model.js';
import { quantity } from './quantity.js';

/**
 * Informer caches hold objects from typed lists (dates as Date) and from raw watch events (dates as
 * strings): everything read here works on both.
 */
export function iso(value: Date | string | undefined | null): string {
  if (value === undefined || value === null || value === '') return '';
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

function base(obj: k8s.KubernetesObject) {
  return {
    uid: obj.metadata?.uid ?? `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`,
    name: obj.metadata?.name ?? '',
    namespace: obj.metadata?.namespace ?? '',
    created: iso(obj.metadata?.creationTimestamp),
  };
}

function controller(obj: k8s.KubernetesObject): { kind: string; name: string } | undefined {
  const ref = obj.metadata?.ownerReferences?.find((r) => r.controller) ?? obj.metadata?.ownerReferences?.[0];
  return ref ? { kind: ref.kind, name: ref.name } : undefined;
}

const quantities = (q: Record<string, string> | undefined) => ({
  cpu: q?.cpu ?? '',
  memory: q?.memory ?? '',
  pods: q?.pods ?? '',
});

export function nodeRow(node: k8s.V1Node): NodeRow {
  const conditions = node.status?.conditions ?? [];
  const ready = conditions.find((c) => c.type === 'Ready')?.status;
  const problems = conditions.filter((c) => c.type !== 'Ready' && c.status === 'True').map((c) => c.type);
  if (node.spec?.unschedulable) problems.push('SchedulingDisabled');
  const roles = Object.keys(node.metadata?.labels ?? {})
    .filter((l) => l.startsWith('node-role.kubernetes.io/'))
    .map((l) => l.slice('node-role.kubernetes.io/'.length));
  return {
    kind: 'Node',
    ...base(node),
    ready: ready === 'True' || ready === 'False' ? ready : 'Unknown',
    problems,
    roles,
    kubeletVersion: node.status?.nodeInfo?.kubeletVersion ?? '',
    internalIP: node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? '',
    osImage: node.status?.nodeInfo?.osImage ?? '',
    capacity: quantities(node.status?.capacity),
    allocatable: quantities(node.status?.allocatable),
  };
}

export function namespaceRow(ns: k8s.V1Namespace): NamespaceRow {
  return { kind: 'Namespace', ...base(ns), phase: ns.status?.phase ?? '' };
}

function containerState(s: k8s.V1ContainerStatus | undefined): string {
  if (!s?.state) return 'waiting';
  if (s.state.running) return 'running';
  if (s.state.terminated)
    return `terminated (${s.state.terminated.reason ?? `exit ${s.state.terminated.exitCode}`})`;
  return `waiting (${s.state.waiting?.reason ?? 'ContainerCreating'})`;
}

/** The STATUS column as kubectl computes it, simplified: init progress, then the first container problem. */
function podStatus(pod: k8s.V1Pod): string {
  if (pod.metadata?.deletionTimestamp) return 'Terminating';
  const phase = pod.status?.phase ?? 'Unknown';
  if (pod.status?.reason) return pod.status.reason;
  const inits = pod.status?.initContainerStatuses ?? [];
  for (const [i, s] of inits.entries()) {
    if (s.state?.terminated?.exitCode === 0) continue;
    if (s.state?.terminated) return `Init:${s.state.terminated.reason ?? 'Error'}`;
    if (s.state?.waiting?.reason && s.state.waiting.reason !== 'PodInitializing')
      return `Init:${s.state.waiting.reason}`;
    return `Init:${i}/${pod.spec?.initContainers?.length ?? inits.length}`;
  }
  for (const s of pod.status?.containerStatuses ?? []) {
    if (s.state?.waiting?.reason) return s.state.waiting.reason;
    if (s.state?.terminated?.reason && phase === 'Running') return s.state.terminated.reason;
  }
  return phase;
}

export function podRow(pod: k8s.V1Pod): PodRow {
  const statuses = pod.status?.containerStatuses ?? [];
  const inits = pod.status?.initContainerStatuses ?? [];
  const containers: ContainerRow[] = [
    ...(pod.spec?.initContainers ?? []).map((c) => ({
      c,
      s: inits.find((s) => s.name === c.name),
      init: true,
    })),
    ...(pod.spec?.containers ?? []).map((c) => ({
      c,
      s: statuses.find((s) => s.name === c.name),
      init: false,
    })),
  ].map(({ c, s, init }) => ({
    name: c.name,
    image: c.image ?? '',
    ready: Boolean(s?.ready),
    restarts: s?.restartCount ?? 0,
    state: containerState(s),
    init,
  }));
  return {
    kind: 'Pod',
    ...base(pod),
    phase: pod.status?.phase ?? 'Unknown',
    status: podStatus(pod),
    readyCount: statuses.filter((s) => s.ready).length,
    containerCount: pod.spec?.containers?.length ?? 0,
    restarts: [...statuses, ...inits].reduce((n, s) => n + (s.restartCount ?? 0), 0),
    node: pod.spec?.nodeName ?? '',
    ip: pod.status?.podIP ?? '',
    containers,
    owner: controller(pod),
    labels: pod.metadata?.labels ?? {},
    deleting: Boolean(pod.metadata?.deletionTimestamp),
  };
}

/** Deployments and StatefulSets report their replicas the same way. */
function replicatedRow(
  kind: 'Deployment' | 'StatefulSet',
  w: k8s.V1Deployment | k8s.V1StatefulSet,
): WorkloadRow {
  return {
    kind,
    ...base(w),
    desired: w.spec?.replicas ?? 1,
    ready: w.status?.readyReplicas ?? 0,
    upToDate: w.status?.updatedReplicas ?? 0,
    available: w.status?.availableReplicas ?? 0,
    selector: w.spec?.selector?.matchLabels ?? {},
  };
}

export function deploymentRow(d: k8s.V1Deployment): WorkloadRow {
  return replicatedRow('Deployment', d);
}

export function statefulSetRow(s: k8s.V1StatefulSet): WorkloadRow {
  return replicatedRow('StatefulSet', s);
}

export function daemonSetRow(d: k8s.V1DaemonSet): WorkloadRow {
  return {
    kind: 'DaemonSet',
    ...base(d),
    desired: d.status?.desiredNumberScheduled ?? 0,
    ready: d.status?.numberReady ?? 0,
    upToDate: d.status?.updatedNumberScheduled ?? 0,
    available: d.status?.numberAvailable ?? 0,
    selector: d.spec?.selector?.matchLabels ?? {},
  };
}

export function jobRow(j: k8s.V1Job): JobRow {
  const conditions = j.status?.conditions ?? [];
  const is = (type: string) => conditions.some((c) => c.type === type && c.status === 'True');
  return {
    kind: 'Job',
    ...base(j),
    completions: j.spec?.completions ?? 1,
    succeeded: j.status?.succeeded ?? 0,
    failed: j.status?.failed ?? 0,
    active: j.status?.active ?? 0,
    status: is('Complete') ? 'Complete' : is('Failed') ? 'Failed' : j.spec?.suspend ? 'Suspended' : 'Running',
    owner: controller(j),
  };
}

export function serviceRow(s: k8s.V1Service): ServiceRow {
  return {
    kind: 'Service',
    ...base(s),
    type: s.spec?.type ?? 'ClusterIP',
    clusterIP: s.spec?.clusterIP ?? '',
    external: (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? i.hostname ?? '').filter(Boolean),
    ports: (s.spec?.ports ?? []).map((p) => ({
      name: p.name ?? '',
      port: p.port,
      protocol: p.protocol ?? 'TCP',
      targetPort: String(p.targetPort ?? p.port),
      ...(p.nodePort ? { nodePort: p.nodePort } : {}),
    })),
    selector: s.spec?.selector ?? {},
  };
}

export function eventRow(e: k8s.CoreV1Event): EventRow {
  const last =
    iso(e.lastTimestamp) ||
    iso(e.series?.lastObservedTime) ||
    iso(e.eventTime) ||
    iso(e.metadata?.creationTimestamp);
  return {
    kind: 'Event',
    ...base(e),
    type: e.type ?? 'Normal',
    reason: e.reason ?? '',
    message: (e.message ?? '').trim(),
    count: e.count ?? e.series?.count ?? 1,
    last,
    object: {
      kind: e.involvedObject?.kind ?? '',
      name: e.involvedObject?.name ?? '',
      namespace: e.involvedObject?.namespace ?? '',
      uid: e.involvedObject?.uid ?? '',
    },
  };
}

export function nodeUsage(m: k8s.NodeMetric): NodeUsage {
  return { name: m.metadata.name, cpu: m.usage.cpu, memory: m.usage.memory };
}

/**
 * A pod's usage as the sum over its containers (what `kubectl top pods` shows); undefined when a
 * figure is not a quantity, so the pod shows none rather than a wrong one.
 */
export function podUsage(m: k8s.PodMetric): PodUsage | undefined {
  let cpu = 0;
  let memory = 0;
  for (const c of m.containers) {
    cpu += quantity(c.usage.cpu);
    memory += quantity(c.usage.memory);
  }
  if (!Number.isFinite(cpu) || !Number.isFinite(memory)) return undefined;
  return { namespace: m.metadata.namespace, name: m.metadata.name, cpu, memory };
}

export type Summarizer = (obj: k8s.KubernetesObject) => Row;
