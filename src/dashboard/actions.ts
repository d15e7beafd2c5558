import * as k8s from '@kubernetes/client-node';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import type { ClusterClients } from './cluster.js';
import { HttpError, errorMessage } from './errors.js';
import { restartableKinds, type MetricsAnswer, type RestartableKind, type RowKind } from './model.js';

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

/** Node usage from the metrics API, or why there is none (most local clusters run no metrics-server). */
export async function nodeMetrics(clients: ClusterClients): Promise<MetricsAnswer> {
  try {
    const groups = await clients.config.makeApiClient(k8s.ApisApi).getAPIVersions();
    if (!groups.groups.some((g) => g.name === 'metrics.k8s.io')) {
      return { available: false, reason: 'the cluster has no metrics API (metrics-server is not installed)' };
    }
    const list = await new k8s.Metrics(clients.config).getNodeMetrics();
    return {
      available: true,
      nodes: list.items.map((m) => ({ name: m.metadata.name, cpu: m.usage.cpu, memory: m.usage.memory })),
    };
  } catch (err) {
    return { available: false, reason: `the metrics API is not available: ${errorMessage(err)}` };
  }
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
