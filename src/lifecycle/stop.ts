import { profileLocked } from '../profile/lock.js';
import { stopForwards } from '../profile/services.js';
import { withProfileLock } from './lock.js';
import { controlPlane } from './nodes.js';
import type { LifecycleContext } from './types.js';

export interface StopResult {
  profile: string;
  stopped: string[];
  alreadyStopped: string[];
}

/**
 * Stops the profile's nodes cleanly: the kubelet first (so it does not restart pods while the
 * node halts), then the node's systemd halts on its stop signal. Every byte of state stays.
 */
export async function stop(ctx: LifecycleContext, profile: string): Promise<StopResult> {
  // A profile with no cluster, that no other command is working on, is refused before anything is written.
  if (!(await profileLocked(ctx.home, profile))) await controlPlane(ctx.provider, profile);
  return withProfileLock(ctx, profile, 'stop', 5 * 60_000, async () => {
    const { nodes } = await controlPlane(ctx.provider, profile);
    // Workers first, then the control planes, then the load balancer in front of them.
    const lb = await ctx.provider.loadBalancer(profile);
    const order = [
      ...nodes.filter((n) => n.role !== 'control-plane'),
      ...nodes.filter((n) => n.role === 'control-plane'),
    ];
    // `minilab service --url` forwards end with the cluster.
    await stopForwards(ctx.profiles.dir(profile));
    const result: StopResult = { profile, stopped: [], alreadyStopped: [] };
    for (const node of [...order, ...(lb ? [lb] : [])]) {
      if (!node.state.running) {
        result.alreadyStopped.push(node.name);
        continue;
      }
      await ctx.reporter.step(`Stopping ${node.name}`, async () => {
        if (node !== lb) {
          await node.exec(['systemctl', 'stop', 'kubelet'], { timeoutMs: 15_000 }).catch(() => undefined);
        }
        await ctx.provider.stopNode(node, 15);
      });
      result.stopped.push(node.name);
    }
    return result;
  });
}
