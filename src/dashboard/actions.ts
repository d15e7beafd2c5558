import * as k8s from '@kubernetes/client-node';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import type { ClusterClients } from './cluster.js';
import { HttpError, errorMessage } from './errors.js';
import {
  restartableKinds,
  type MetricsAnswer,
  type NoUsage,
  type PodMetricsAnswer,
  type RestartableKind,
  type RowKind,
} from './model.js';
import { nodeUsage, podUsage } from './summarize.js';

const mergePatch = () => k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

export const MAX_REPLICAS = 100;

export async function scaleDeployment(
  clients: ClusterClients,
  namespace: string,
  name: string,
  replicas: number,
): Promise<number> {
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > MAX_REPLICAS) {
    throw new HttpError(400, `replicas must be a whole number from 0 to ${MAX_REPLICAS}`);
  }
  const scale = await clients.apps.patchNamespacedDeploymentScale(
    { name, namespace, body: { spec: { replicas } } },
    mergePatch(),
  );
  return scale.spec?.replicas ?? replicas;
}

/** What `kubectl rollout restart` does: a new pod-template annotation makes the controller roll the pods. */
export async function restartRollout(
  clients: ClusterClients,
  kind: string,
  namespace: string,
  name: string,
): Promise<string> {
  if (!restartableKinds.includes(kind as RestartableKind)) {
    throw new HttpError(400, `only ${restartableKinds.join(', ')} can be restarted`);
  }
  const restartedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const body = {
    spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': restartedAt } } } },
  };
  const param = { name, namespace, body };
  if (kind === 'Deployment') await clients.apps.patchNamespacedDeployment(param, mergePatch());
  else if (kind === 'StatefulSet') await clients.apps.patchNamespacedStatefulSet(param, mergePatch());
  else await clients.apps.patchNamespacedDaemonSet(param, mergePatch());
  return restartedAt;
}

export async function deletePod(clients: ClusterClients, namespace: string, name: string): Promise<void> {
  await clients.core.deleteNamespacedPod({ name, namespace });
}

const API_VERSIONS: Record<RowKind, string> = {
  Namespace: 'v1',
  Node: 'v1',
  Pod: 'v1',
  Service: 'v1',
  Event: 'v1',
  Deployment: 'apps/v1',
  StatefulSet: 'apps/v1',
  DaemonSet: 'apps/v1',
  Job: 'batch/v1',
};

/** The object as YAML, read fresh from the API server, without the managedFields bookkeeping. */
export async function resourceYaml(
  clients: ClusterClients,
  kind: string,
  namespace: string,
  name: string,
): Promise<string> {
  if (!Object.hasOwn(API_VERSIONS, kind)) throw new HttpError(400, `unknown kind "${kind}"`);
  const apiVersion = API_VERSIONS[kind as RowKind];
  const obj = await clients.objects.read({
    apiVersion,
    kind,
    metadata: { name, ...(namespace ? { namespace } : {}) },
  });
  if (obj.metadata) delete obj.metadata.managedFields;
  return stringify(obj, { aliasDuplicateObjects: false });
}

/**
 * Reads the metrics API, or says why there is none: most clusters run no metrics-server until the
 * add-on is enabled, and one just enabled answers only after its first scrapes.
 */
async function fromMetricsApi<T extends object>(
  clients: ClusterClients,
  read: (metrics: k8s.Metrics) => Promise<T>,
): Promise<({ available: true } & T) | NoUsage> {
  try {
    const groups = await clients.config.makeApiClient(k8s.ApisApi).getAPIVersions();
    if (!groups.groups.some((g) => g.name === 'metrics.k8s.io')) {
      return {
        available: false,
        reason: 'the cluster has no metrics API (metrics-server is not installed)',
        missing: true,
      };
    }
    return { available: true, ...(await read(new k8s.Metrics(clients.config))) };
  } catch (err) {
    // The Metrics class keeps no body for a 503: the aggregator's answer while metrics-server is not ready.
    const why =
      err instanceof k8s.ApiException && err.code === 503
        ? 'metrics-server does not answer (it may still be starting)'
        : errorMessage(err);
    return { available: false, reason: `the metrics API is not available: ${why}`, missing: false };
  }
}

/** Node usage from the metrics API, or why there is none. */
export function nodeMetrics(clients: ClusterClients): Promise<MetricsAnswer> {
  return fromMetricsApi(clients, async (m) => ({ nodes: (await m.getNodeMetrics()).items.map(nodeUsage) }));
}

/** Pod usage (summed over containers) in `namespace`, or in all namespaces when it is "". */
export function podMetrics(clients: ClusterClients, namespace: string): Promise<PodMetricsAnswer> {
  return fromMetricsApi(clients, async (m) => ({
    pods: (await m.getPodMetrics(namespace || undefined)).items.flatMap((p) => podUsage(p) ?? []),
  }));
}

/**
 * Streams a container's log, line by line, until the log ends or `signal` aborts. Resolves with why
 * it ended.
 */
export async function streamLogs(
  clients: ClusterClients,
  target: { namespace: string; pod: string; container: string; follow: boolean; tailLines: number },
  onLines: (lines: string[]) => void,
  signal: AbortSignal,
): Promise<string> {
  let partial = '';
  let ended!: () => void;
  const finished = new Promise<void>((resolve) => (ended = resolve));
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      if (lines.length > 0) onLines(lines);
      callback();
    },
    final(callback) {
      if (partial !== '') onLines([partial]);
      ended();
      callback();
    },
  });
  sink.on('error', () => ended());
  const controller = await new k8s.Log(clients.config).log(
    target.namespace,
    target.pod,
    target.container,
    sink,
    {
      follow: target.follow,
      tailLines: target.tailLines,
    },
  );
  const abort = () => controller.abort();
  signal.addEventListener('abort', abort, { once: true });
  if (signal.aborted) abort();
  await Promise.race([finished, new Promise((r) => signal.addEventListener('abort', r, { once: true }))]);
  signal.removeEventListener('abort', abort);
  return signal.aborted ? 'closed' : target.follow ? 'the container stopped' : 'end of log';
}
