import { lockProfile, profileLocked } from '../profile/lock.js';
import { stopForwards } from '../profile/services.js';
import { controlPlane, profileNodes, type LifecycleContext } from './context.js';

export interface StopResult {
  profile: string;
  stopped: string[];
  alreadyStopped: string[];
}

/**
 * Stops the profile's nodes cleanly: the kubelet first (so it does not restart pods while the
 * node halts), then the container's systemd halts on its stop signal. Every byte of state stays.
 */
export async function stop(ctx: LifecycleContext, profile: string): Promise<StopResult> {
  // A profile with no cluster, that no other command is working on, is refused before anything is written.
  if (!(await profileLocked(ctx.home, profile))) await controlPlane(ctx.engine, profile);
  const release = await lockProfile(ctx.home, profile, {
    timeoutMs: 5 * 60_000,
    purpose: `minilab stop -p ${profile}`,
    onWait: (holder) => ctx.reporter.info(`waiting for profile "${profile}": held by ${holder}`),
  });
  try {
    await controlPlane(ctx.engine, profile);
    // `minilab service --url` forwards end with the cluster.
    await stopForwards(ctx.profiles.dir(profile));
    const nodes = await profileNodes(ctx.engine, profile);
    const result: StopResult = { profile, stopped: [], alreadyStopped: [] };
    for (const node of nodes) {
      if (!node.running) {
        result.alreadyStopped.push(node.name);
        continue;
      }
      await ctx.reporter.step(`Stopping ${node.name}`, async () => {
        await ctx.engine
          .exec(node.name, ['systemctl', 'stop', 'kubelet'], { timeoutMs: 15_000 })
          .catch(() => undefined);
        await ctx.engine.stop(node.name, 15);
      });
      result.stopped.push(node.name);
    }
    return result;
  } finally {
    await release();
  }
}
