import { MinilabError } from '../../errors.js';
import { storageImages } from '../../image/components.js';
import type { KubeconfigEntry } from '../../kube/kubeconfig.js';
import { waitUntil } from '../../kube/wait.js';
import { READY_TIMEOUT_MS } from './waits.js';
import { componentsOf, need, type StartState, type Step } from './state.js';

/** The default StorageClass (local-path provisioner with the node's own images), by server-side apply. */
export async function installStorage(s: StartState, entry: KubeconfigEntry): Promise<void> {
  const images = storageImages(await componentsOf(s));
  // The admin's group gets cluster-admin from kubeadm's mark-control-plane (the last part of
  // init), which starts with it: until then the API answers 403. That, throttling, server errors
  // and dropped connections are waited out; any other answer (a manifest the API server refuses)
  // fails at once.
  await waitUntil(
    'the default StorageClass to be accepted',
    READY_TIMEOUT_MS,
    async () => {
      if (s.cancelled) throw new MinilabError('clusterFailed', 'the start failed');
      try {
        await s.ctx.kube.applyStorage(entry, images);
        return true;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (code === 403) return 'admin not yet bound to cluster-admin (403)';
        if (typeof code !== 'number' || code === 429 || code >= 500) return `API server: ${String(err)}`;
        throw new MinilabError('clusterFailed', 'installing the default StorageClass failed', { cause: err });
      }
    },
    { intervalMs: 100 },
  );
}

/** Starts installing the default StorageClass; its failure is kept for the storage step to report. */
export function startStorage(s: StartState, entry: KubeconfigEntry): void {
  // Settled into a value at once: a failure is rethrown by the storage step, never unhandled.
  s.storage = installStorage(s, entry).then(
    () => undefined,
    (err: unknown) => err ?? new Error('installing the default StorageClass failed'),
  );
}

/**
 * Waits for the StorageClass, applied while other steps ran: during kubeadm init's last part with
 * one node; with workers, once they have joined (the provisioner prefers a worker and is placed once,
 * so it must see them: the control plane's memory is the one to spare).
 */
export const storageStep: Step = {
  title: 'Installing the default StorageClass',
  run: async (s) => {
    if (!s.storage) startStorage(s, need(s.entry, 'the admin credentials'));
    const failure = await s.storage;
    if (failure) throw failure;
  },
};
