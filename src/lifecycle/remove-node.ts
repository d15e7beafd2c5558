import { MinilabError } from '../errors.js';
import { runInNode } from '../providers/run.js';
import type { RemovedResources } from '../providers/types.js';
import { deleteNodeObject, resetNode } from './add-node.js';
import { configureLoadBalancer } from './load-balancer.js';
import { withProfileLock } from './lock.js';
import { etcdQuorum, evenControlPlanesWarning, runningControlPlane } from './nodes.js';
import type { LifecycleContext } from './types.js';

export interface RemoveNodeResult extends RemovedResources {
  profile: string;
  node: string;
}

/**
 * Removes a node: drained (its pods evicted, DaemonSets left alone), removed from the cluster,
 * then its container and /var. A control plane (of several) also leaves etcd (kubeadm reset) and
 * the load balancer's list; the last control plane cannot be removed: delete the cluster instead.
 */
export async function removeNode(
  ctx: LifecycleContext,
  profile: string,
  name: string,
): Promise<RemoveNodeResult> {
  return withProfileLock(ctx, profile, 'node delete', 10 * 60_000, async () => {
    let found = await runningControlPlane(ctx.provider, profile);
    const node = found.nodes.find((n) => n.name === name);
    if (!node) {
      throw new MinilabError('notFound', `profile "${profile}" has no node "${name}"`, {
        hint: `its nodes: ${found.nodes.map((n) => n.name).join(', ')}`,
      });
    }
    const controlPlanes = found.nodes.filter((n) => n.role === 'control-plane');
    if (node.role === 'control-plane') {
      const others = controlPlanes.filter((n) => n !== node);
      if (others.length === 0) {
        throw new MinilabError('usage', `${name} is the cluster's last control plane and cannot be removed`, {
          hint: `remove a worker, or the whole cluster: minilab delete -p ${profile}`,
        });
      }
      // Leaving etcd is kubeadm reset in the node itself: a stopped control plane would stay a member.
      if (!node.state.running) {
        throw new MinilabError('usage', `${name} is stopped: it must run to leave etcd`, {
          hint: `start it first: minilab node start -p ${profile} ${name}`,
        });
      }
      // etcd refuses to remove a member when the rest would have no majority running.
      const running = others.filter((n) => n.state.running);
      if (running.length < etcdQuorum(others.length)) {
        throw new MinilabError(
          'usage',
          `removing ${name} would leave ${running.length} of ${others.length} control planes running: etcd needs a majority`,
          { hint: `start the stopped control planes first: minilab start -p ${profile}` },
        );
      }
      // Commands go through another control plane: this one is leaving.
      const via = running[0] as (typeof running)[number];
      found = { node: via, nodes: found.nodes };
      const even = evenControlPlanesWarning(others.length);
      if (even) ctx.reporter.warn(even);
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
      if (node.role === 'control-plane') {
        // Out of the load balancer first, then out of etcd, while the other members keep quorum.
        const lb = await ctx.provider.loadBalancer(profile);
        if (lb) {
          await configureLoadBalancer(
            lb,
            controlPlanes.filter((n) => n !== node).map((n) => n.name),
          );
        }
        if (node.state.running) await resetNode(node);
      }
      await deleteNodeObject(found.node, name);
    });
    const removed = await ctx.provider.deleteNode(node);
    return { profile, node: name, ...removed };
  });
}
