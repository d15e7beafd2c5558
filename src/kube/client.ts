import * as k8s from '@kubernetes/client-node';
import { MinilabError, formatMs } from '../errors.js';
import { renderKubeconfig, type KubeconfigEntry } from './kubeconfig.js';

export interface KubeClients {
  config: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
}

export function kubeClients(entry: KubeconfigEntry): KubeClients {
  const config = new k8s.KubeConfig();
  config.loadFromString(renderKubeconfig(entry));
  return { config, core: config.makeApiClient(k8s.CoreV1Api), apps: config.makeApiClient(k8s.AppsV1Api) };
}

/**
 * Waits until `check` says done; the error names what was waited for and the last state seen.
 * Checks run back to back with a short pause: each is one small API call.
 */
export async function waitUntil(
  what: string,
  timeoutMs: number,
  check: () => Promise<true | string>,
  opts: { intervalMs?: number; hint?: string; onState?: (state: string) => void } = {},
): Promise<void> {
  const started = Date.now();
  let last = 'no answer yet';
  for (;;) {
    try {
      const r = await check();
      if (r === true) return;
      if (r !== last) opts.onState?.(r);
      last = r;
    } catch (err) {
      // A MinilabError from a check is a verdict (the node stopped, a wrong pod CIDR), not a state to wait out.
      if (err instanceof MinilabError) throw err;
      last = err instanceof Error ? (err.message.split('\n')[0] ?? String(err)) : String(err);
    }
    if (Date.now() - started > timeoutMs) {
      throw new MinilabError(
        'timeout',
        `timed out after ${formatMs(timeoutMs)} waiting for ${what} (last: ${last})`,
        {
          hint: opts.hint ?? 'minilab logs shows the kubelet and control-plane logs',
        },
      );
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
  }
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
