import { MinilabError } from '../../errors.js';
import { kubeadmPatchesKubeProxy } from '../../kube/kubeadm-config.js';
import { READYZ_AFTER_RESTART } from '../../kube/readyz.js';
import { waitUntil } from '../../kube/wait.js';
import type { Node } from '../../providers/types.js';
import { nodeStopped } from '../nodes.js';
import { controlPlaneOf, need, type StartState, type Step } from './state.js';

export const READY_TIMEOUT_MS = 240_000;

/** Runs a readiness check unless the node has stopped (then fails at once, saying so). */
export async function whileRunning<T>(node: Node, check: () => Promise<T>): Promise<T> {
  const stopped = await nodeStopped(node);
  if (stopped) throw stopped;
  return check();
}

/**
 * Node Ready, CoreDNS answering, the default service account: then the cluster is usable. Each
 * check first makes sure the node still runs, so a node that stops fails the wait at once. A
 * restart (quick) waits for the API server and node Ready only: the rest existed before.
 */
async function waitForCluster(s: StartState, progress: (state: string) => void, quick: boolean) {
  const { kube } = s.ctx;
  const entry = need(s.entry, 'the admin credentials');
  const node = controlPlaneOf(s);
  const running = <T>(check: () => Promise<T>) => whileRunning(node, check);
  const onState = progress;
  await waitUntil(
    'the API server',
    READY_TIMEOUT_MS,
    () => running(() => kube.health(entry, quick ? READYZ_AFTER_RESTART : '/readyz')),
    { onState, intervalMs: 100 },
  );
  for (const n of s.nodes) {
    await waitUntil(
      `node ${n.name} to be Ready`,
      READY_TIMEOUT_MS,
      () => running(() => kube.nodeReady(entry, n.name)),
      {
        onState,
      },
    );
  }
  if (quick) return;
  if (s.podCidr) {
    const expected = s.podCidr;
    await waitUntil(`node ${node.name} to get its pod CIDR`, READY_TIMEOUT_MS, () =>
      running(async () => {
        const cidr = await kube.podCidr(entry, node.name);
        if (!cidr) return 'no pod CIDR yet';
        if (cidr !== expected) {
          throw new MinilabError(
            'clusterFailed',
            `node ${node.name} got pod CIDR ${cidr}, the CNI config uses ${expected}`,
            { hint: 'report this; delete and start the cluster again' },
          );
        }
        return true;
      }),
    );
  }
  await waitUntil('CoreDNS', READY_TIMEOUT_MS, () => running(() => kube.coreDnsReady(entry)), {
    onState,
    // Watched: the pod's Ready change is seen at once; the pause only bounds a missed event.
    wake: kube.coreDnsChanges(entry),
    intervalMs: 1000,
  });
  await waitUntil(
    'the default service account',
    READY_TIMEOUT_MS,
    () => running(() => kube.defaultServiceAccount(entry)),
    { onState },
  );
}

/** kubeadm releases before v1.37 read no kube-proxy patch: its GOGC is set on the DaemonSet instead. */
export const kubeProxyStep: Step = {
  title: 'Tuning kube-proxy',
  skip: (s) => kubeadmPatchesKubeProxy(s.req.kubernetesVersion),
  run: async (s) => s.ctx.kube.tuneKubeProxy(need(s.entry, 'the admin credentials')),
};

export const waitStep: Step = {
  title: 'Waiting for node Ready, CoreDNS and the default service account',
  skip: (s) => s.req.wait !== 'all',
  run: (s, progress) => waitForCluster(s, progress, false),
};

/** Restart: the API server and node Ready after a start; a check of the same on a running cluster. */
export const rewaitStep: Step = {
  title: (s) => (s.wasRunning ? 'Checking the cluster' : 'Waiting for the API server and node Ready'),
  skip: (s) => s.wasRunning === true && s.req.wait !== 'all',
  run: (s, progress) => waitForCluster(s, progress, !s.wasRunning),
};
