import type * as k8s from '@kubernetes/client-node';

/**
 * What keeps an add-on's pods from running, in a few words (a container waiting in a crash loop
 * or for its image, a pod not scheduled), or undefined when nothing is wrong with them: what a
 * wait shows as its state, so a timeout names the cause.
 */
export async function podTrouble(
  config: k8s.KubeConfig,
  namespace: string,
  labelSelector: string,
): Promise<string | undefined> {
  // the client library loads on demand: this module is reached from every command's start
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const pods = await config.makeApiClient(CoreV1Api).listNamespacedPod({ namespace, labelSelector });
  if (pods.items.length === 0) return `no pod matches ${labelSelector} in ${namespace}`;
  for (const pod of pods.items) {
    const name = pod.metadata?.name ?? '?';
    for (const c of pod.status?.containerStatuses ?? []) {
      const waiting = c.state?.waiting;
      if (waiting?.reason && waiting.reason !== 'ContainerCreating') {
        const last = c.lastState?.terminated;
        const exit = last ? `, last exit ${last.exitCode}${last.reason ? ` (${last.reason})` : ''}` : '';
        return `pod ${name}: ${waiting.reason} after ${c.restartCount} restart(s)${exit}`;
      }
    }
    const unscheduled = pod.status?.conditions?.find(
      (c) => c.type === 'PodScheduled' && c.status === 'False',
    );
    if (unscheduled)
      return `pod ${name} is not scheduled: ${unscheduled.message ?? unscheduled.reason ?? ''}`;
  }
  return undefined;
}
