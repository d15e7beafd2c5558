import * as k8s from '@kubernetes/client-node';
import type { WakeSource } from './wait.js';
import { renderKubeconfig, type KubeconfigEntry } from './kubeconfig.js';

export interface KubeClients {
  config: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
}

/** How long one API request may take before it is aborted (watches, logs and streams are not bound). */
export const REQUEST_TIMEOUT_MS = 15_000;

/**
 * A KubeConfig whose API clients abort each request after a deadline: an API server that accepts
 * connections and never answers would otherwise hang the caller (and a profile lock) for good.
 * Every client made from it (typed APIs, the object API that applies manifests) is bound.
 */
export class DeadlineKubeConfig extends k8s.KubeConfig {
  constructor(readonly requestTimeoutMs = REQUEST_TIMEOUT_MS) {
    super();
  }

  override makeApiClient<T extends k8s.ApiType>(apiClientType: k8s.ApiConstructor<T>): T {
    const cluster = this.getCurrentCluster();
    if (!cluster) throw new Error('No active cluster!');
    const ms = this.requestTimeoutMs;
    return new apiClientType(
      k8s.createConfiguration({
        baseServer: new k8s.ServerConfiguration(cluster.server, {}),
        authMethods: { default: this },
        promiseMiddleware: [
          {
            pre: async (request) => {
              request.setSignal(AbortSignal.timeout(ms));
              return request;
            },
            post: async (response) => response,
          },
        ],
      }),
    );
  }
}

export function kubeClients(entry: KubeconfigEntry, requestTimeoutMs = REQUEST_TIMEOUT_MS): KubeClients {
  const config = new DeadlineKubeConfig(requestTimeoutMs);
  config.loadFromString(renderKubeconfig(entry));
  return { config, core: config.makeApiClient(k8s.CoreV1Api), apps: config.makeApiClient(k8s.AppsV1Api) };
}

/**
 * A wake source from a watch of one API collection (re-opened when the server ends it): every
 * event is a reason to check again.
 */
export function watchWake(
  config: k8s.KubeConfig,
  path: string,
  query: Record<string, string> = {},
): WakeSource {
  return async (notify) => {
    const watch = new k8s.Watch(config);
    let stopped = false;
    let current: AbortController | undefined;
    const open = async (): Promise<void> => {
      if (stopped) return;
      current = await watch
        .watch(
          path,
          query,
          () => notify(),
          () => {
            if (!stopped) setTimeout(() => void open(), 200);
          },
        )
        .catch(() => {
          if (!stopped) setTimeout(() => void open(), 200);
          return undefined;
        });
      // Stopped while the watch was being opened: close it now, or it would keep the process alive.
      if (stopped) current?.abort();
    };
    void open();
    return () => {
      stopped = true;
      current?.abort();
    };
  };
}

export async function nodeReady(core: k8s.CoreV1Api, name: string): Promise<true | string> {
  const node = await core.readNode({ name });
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  return ready?.status === 'True' ? true : `node ${ready?.reason ?? 'not Ready'}`;
}

export async function coreDnsReady(core: k8s.CoreV1Api): Promise<true | string> {
  const pods = await core.listNamespacedPod({ namespace: 'kube-system', labelSelector: 'k8s-app=kube-dns' });
  const ready = pods.items.filter((p) =>
    p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
  );
  return ready.length > 0 ? true : `CoreDNS pods ready: 0/${pods.items.length}`;
}

export async function defaultServiceAccount(core: k8s.CoreV1Api): Promise<true | string> {
  await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
  return true;
}
