import { lockProfile } from '../profile/lock.js';
import type { LifecycleContext } from './types.js';

/** Runs `fn` holding the profile's lock, telling the user when another command holds it first. */
export async function withProfileLock<T>(
  ctx: Pick<LifecycleContext, 'home' | 'reporter'>,
  profile: string,
  command: string,
  timeoutMs: number,
  fn: () => Promise<T>,
): Promise<T> {
  const release = await lockProfile(ctx.home, profile, {
    timeoutMs,
    purpose: `minilab ${command} -p ${profile}`,
    onWait: (holder) => ctx.reporter.info(`waiting for profile "${profile}": held by ${holder}`),
  });
  try {
    return await fn();
  } finally {
    await release();
  }
}
