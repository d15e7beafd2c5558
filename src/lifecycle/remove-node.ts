import { MinilabError } from '../errors.js';
import { runInNode } from '../providers/run.js';
import type { RemovedResources } from '../providers/types.js';
import { deleteNodeObject } from './add-node.js';
import { withProfileLock } from './lock.js';
import { runningControlPlane } from './nodes.js';
import type { LifecycleContext } from './types.js';

export interface RemoveNodeResult extends RemovedResources {
  profile: string;
  node: string;
}

/**
 * Removes a worker: drained (its pods evicted, DaemonSets left alone), removed from the cluster,
 * then its container and /var. The control plane cannot be removed: delete the cluster instead.
 */
export async function removeNode(
  ctx: LifecycleContext,
  profile: string,
  name: string,
): Promise<RemoveNodeResult> {
  return withProfileLock(ctx, profile, 'node delete', 10 * 60_000, async () => {
    const found = await runningControlPlane(ctx.provider, profile);
    const node = found.nodes.find((n) => n.name === name);
    if (!node) {
      throw new MinilabError('notFound', `profile "${profile}" has no node "${name}"`, {
        hint: `its nodes: ${found.nodes.map((n) => n.name).join(', ')}`,
      });
    }
    if (node.role === 'control-plane') {
      throw new MinilabError('usage', `${name} is the cluster's control plane and cannot be removed`, {
        hint: `remove a worker, or the whole cluster: minilab delete -p ${profile}`,
      });
    }
    // A node that never finished joining (or is stopped) has nothing to drain.
    const registered =
      node.state.running &&
      (
        await found.node.exec(['kubectl', '--kubeconfig=/etc/kubernetes/admin.conf', 'get', 'node', name], {
          timeoutMs: 30_000,
        })
      ).exitCode === 0;
    if (registered) {
      await ctx.reporter.step(`Draining ${name}`, () =>
        runInNode(
          found.node,
          [
            'kubectl',
            '--kubeconfig=/etc/kubernetes/admin.conf',
            'drain',
            name,
            '--ignore-daemonsets',
            '--delete-emptydir-data',
            '--force',
            '--timeout=120s',
          ],
          `draining ${name}`,
          { timeoutMs: 150_000 },
        ),
      );
    }
    await ctx.reporter.step(`Removing ${name}`, async () => {
      await deleteNodeObject(found.node, name);
    });
    const removed = await ctx.provider.deleteNode(node);
    return { profile, node: name, ...removed };
  });
}
