import * as k8s from '@kubernetes/client-node';
import { kubeClients } from '../kube/client.js';
import type { KubeconfigEntry } from '../kube/kubeconfig.js';
import type { ClusterState, Row, RowKind } from './model.js';
import {
  daemonSetRow,
  deploymentRow,
  eventRow,
  jobRow,
  namespaceRow,
  nodeRow,
  podRow,
  serviceRow,
  statefulSetRow,
  type Summarizer,
} from './summarize.js';
import { errorMessage } from './errors.js';

/** The API clients of one connection; replaced whole when the dashboard reconnects. */
export interface ClusterClients {
  config: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  discovery: k8s.DiscoveryV1Api;
  objects: k8s.KubernetesObjectApi;
}

export function clusterClients(entry: KubeconfigEntry): ClusterClients {
  const { config, core, apps } = kubeClients(entry);
  return {
    config,
    core,
    apps,
    discovery: config.makeApiClient(k8s.DiscoveryV1Api),
    objects: k8s.KubernetesObjectApi.makeApiClient(config),
  };
}

interface WatchedKind {
  kind: RowKind;
  path: string;
  list: (c: ClusterClients) => Promise<k8s.KubernetesListObject<k8s.KubernetesObject>>;
  row: Summarizer;
}

const rowOf =
  <T extends k8s.KubernetesObject>(fn: (o: T) => Row): Summarizer =>
  (o) =>
    fn(o as T);

/** Everything the dashboard shows, watched across all namespaces (a local cluster is small). */
const WATCHED: WatchedKind[] = [
  {
    kind: 'Namespace',
    path: '/api/v1/namespaces',
    list: (c) => c.core.listNamespace(),
    row: rowOf(namespaceRow),
  },
  { kind: 'Node', path: '/api/v1/nodes', list: (c) => c.core.listNode(), row: rowOf(nodeRow) },
  { kind: 'Pod', path: '/api/v1/pods', list: (c) => c.core.listPodForAllNamespaces(), row: rowOf(podRow) },
  {
    kind: 'Deployment',
    path: '/apis/apps/v1/deployments',
    list: (c) => c.apps.listDeploymentForAllNamespaces(),
    row: rowOf(deploymentRow),
  },
  {
    kind: 'StatefulSet',
    path: '/apis/apps/v1/statefulsets',
    list: (c) => c.apps.listStatefulSetForAllNamespaces(),
    row: rowOf(statefulSetRow),
  },
  {
    kind: 'DaemonSet',
    path: '/apis/apps/v1/daemonsets',
    list: (c) => c.apps.listDaemonSetForAllNamespaces(),
    row: rowOf(daemonSetRow),
  },
  {
    kind: 'Job',
    path: '/apis/batch/v1/jobs',
    list: (c) => c.config.makeApiClient(k8s.BatchV1Api).listJobForAllNamespaces(),
    row: rowOf(jobRow),
  },
  {
    kind: 'Service',
    path: '/api/v1/services',
    list: (c) => c.core.listServiceForAllNamespaces(),
    row: rowOf(serviceRow),
  },
  {
    kind: 'Event',
    path: '/api/v1/events',
    list: (c) => c.core.listEventForAllNamespaces(),
    row: rowOf(eventRow),
  },
];

export type LiveEvent =
  { type: 'changes'; upsert: Row[]; remove: string[] } | { type: 'cluster'; state: ClusterState };

export interface LiveClusterOptions {
  /** Reads the profile's admin kubeconfig entry; called again on every reconnect attempt. */
  resolve: () => Promise<KubeconfigEntry>;
  /** Waits between reconnect attempts. */
  backoffMs?: number[];
  /** How long changes are gathered before they are sent as one message. */
  batchMs?: number;
}

/**
 * The cluster as the dashboard sees it: informers (list + watch) for every shown kind feed one store
 * of summarised rows; subscribers get batched changes. When any watch fails (the API server went
 * away), every informer is stopped and the whole view is rebuilt once the cluster answers again,
 * removing what disappeared meanwhile. Nothing polls: between reconnect attempts it only waits.
 */
export class LiveCluster {
  private readonly rows = new Map<string, { row: Row; json: string }>();
  private readonly listeners = new Set<(e: LiveEvent) => void>();
  private informers: k8s.Informer<k8s.KubernetesObject>[] = [];
  private current?: ClusterClients;
  private generation = 0;
  private stopped = false;
  private wakeUp?: () => void;
  private pending = { upsert: new Map<string, Row>(), remove: new Set<string>() };
  private flushTimer?: NodeJS.Timeout;
  private readonly backoffMs: number[];
  state: ClusterState = { state: 'connecting' };

  constructor(private readonly opts: LiveClusterOptions) {
    this.backoffMs = opts.backoffMs ?? [1000, 2000, 4000, 8000, 10_000];
  }

  /** Connects in the background; the state says how it goes. */
  start(): void {
    void this.connect();
  }

  /** The clients of the live connection, or undefined while (re)connecting. */
  clients(): ClusterClients | undefined {
    return this.state.state === 'connected' ? this.current : undefined;
  }

  snapshot(): Row[] {
    return [...this.rows.values()].map((r) => r.row);
  }

  subscribe(listener: (e: LiveEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    this.wakeUp?.();
    clearTimeout(this.flushTimer);
    await this.stopInformers();
    this.listeners.clear();
  }

  private async stopInformers(): Promise<void> {
    const informers = this.informers;
    this.informers = [];
    await Promise.all(informers.map((i) => i.stop().catch(() => undefined)));
  }

  private setState(state: ClusterState): void {
    this.state = state;
    for (const l of this.listeners) l({ type: 'cluster', state });
  }

  private async connect(): Promise<void> {
    const generation = ++this.generation;
    await this.stopInformers();
    for (let attempt = 0; !this.stopped && generation === this.generation; attempt++) {
      try {
        await this.watchAll(generation);
        if (generation === this.generation) this.setState({ state: 'connected' });
        return;
      } catch (err) {
        if (this.stopped || generation !== this.generation) return;
        await this.stopInformers();
        const retryInMs = this.backoffMs[Math.min(attempt, this.backoffMs.length - 1)] ?? 1000;
        this.setState({ state: 'reconnecting', message: errorMessage(err), retryInMs });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, retryInMs);
          this.wakeUp = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
  }

  /** Lists and watches every kind; resolves once all lists arrived, rejects on the first failure. */
  private async watchAll(generation: number): Promise<void> {
    const live = () => generation === this.generation && !this.stopped;
    const clients = clusterClients(await this.opts.resolve());
    if (!live()) return;
    const seen = new Set<string>();
    let failure: unknown;
    const informers = WATCHED.map((w) => {
      const informer = k8s.makeInformer(clients.config, w.path, () => w.list(clients));
      const upsert = (obj: k8s.KubernetesObject) => {
        if (!live()) return;
        const row = w.row(obj);
        seen.add(row.uid);
        this.upsert(row);
      };
      informer.on('add', upsert);
      informer.on('update', upsert);
      informer.on('delete', (obj) => {
        if (live()) this.remove(w.row(obj).uid);
      });
      informer.on('error', (err?: unknown) => {
        if (!live()) return;
        failure ??= err ?? new Error(`the ${w.kind} watch failed`);
        // After the first success, a failing watch means the cluster went away: rebuild everything.
        if (this.current === clients && this.state.state === 'connected') void this.connect();
      });
      return informer;
    });
    this.informers = informers;
    await Promise.all(informers.map((i) => i.start()));
    if (!live()) {
      // Stopped while starting: an informer stopped mid-list still opens its watch afterwards.
      await Promise.all(informers.map((i) => i.stop().catch(() => undefined)));
      return;
    }
    if (failure !== undefined) throw failure;
    for (const [uid, { row }] of this.rows) {
      if (!seen.has(uid) && WATCHED.some((w) => w.kind === row.kind)) this.remove(uid);
    }
    this.current = clients;
  }

  private upsert(row: Row): void {
    const json = JSON.stringify(row);
    if (this.rows.get(row.uid)?.json === json) return;
    this.rows.set(row.uid, { row, json });
    this.pending.remove.delete(row.uid);
    this.pending.upsert.set(row.uid, row);
    this.scheduleFlush();
  }

  private remove(uid: string): void {
    if (!this.rows.delete(uid)) return;
    this.pending.upsert.delete(uid);
    this.pending.remove.add(uid);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      const { upsert, remove } = this.pending;
      this.pending = { upsert: new Map(), remove: new Set() };
      const event: LiveEvent = { type: 'changes', upsert: [...upsert.values()], remove: [...remove] };
      for (const l of this.listeners) l(event);
    }, this.opts.batchMs ?? 50);
  }
}
