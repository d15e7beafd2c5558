import { profileLocked } from '../profile/lock.js';
import { stopLoadBalancerAgent } from '../addons/loadbalancer.js';
import { stopForwards } from '../profile/services.js';
import { withProfileLock } from './lock.js';
import { controlPlane, haltNode } from './nodes.js';
import type { LifecycleContext } from './types.js';

export interface StopResult {
  profile: string;
  stopped: string[];
  alreadyStopped: string[];
}

/**
 * Stops the profile's nodes cleanly (haltNode: the kubelet first, so it does not restart pods while
 * the node halts), then the node's systemd halts on its stop signal. Every byte of state stays.
 */
export async function stop(ctx: LifecycleContext, profile: string): Promise<StopResult> {
  // A profile with no cluster, that no other command is working on, is refused before anything is written.
  if (!(await profileLocked(ctx.home, profile))) await controlPlane(ctx.provider, profile);
  return withProfileLock(ctx, profile, 'stop', 5 * 60_000, async () => {
    const { nodes } = await controlPlane(ctx.provider, profile);
    // Workers first, then the control planes, then the load balancer in front of them and the
    // registry add-on's container beside them.
    // `minilab service --url` forwards and the loadbalancer add-on's agent end with the cluster
    // (meanwhile the service containers are listed).
    const [lb, registries] = await Promise.all([
      ctx.provider.loadBalancer(profile),
      ctx.provider.services('registry', profile),
      stopForwards(ctx.profiles.dir(profile)),
      stopLoadBalancerAgent(ctx.profiles.dir(profile)),
    ]);
    const services = [...(lb ? [lb] : []), ...registries];
    const order = [
      ...nodes.filter((n) => n.role !== 'control-plane'),
      ...nodes.filter((n) => n.role === 'control-plane'),
    ];
    const result: StopResult = { profile, stopped: [], alreadyStopped: [] };
    for (const node of [...order, ...services]) {
      if (!node.state.running) {
        result.alreadyStopped.push(node.name);
        continue;
      }
      await ctx.reporter.step(`Stopping ${node.name}`, async () => {
        if (services.includes(node)) await ctx.provider.stopNode(node, 15);
        else await haltNode(ctx.provider, node);
      });
      result.stopped.push(node.name);
    }
    return result;
  });
}
