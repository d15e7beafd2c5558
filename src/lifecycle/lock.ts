import type { MinilabError } from '../errors.js';
import { lockProfile, type LockOptions } from '../profile/lock.js';
import type { LifecycleContext } from './types.js';

/**
 * Runs `fn` holding the profile's lock, telling the user when another command holds it first. A
 * holder that finds its lock taken over (it was suspended for longer than the lock lives) fails at
 * once with that error, and leaves the lock to its new holder.
 */
export async function withProfileLock<T>(
  ctx: Pick<LifecycleContext, 'home' | 'reporter'>,
  profile: string,
  command: string,
  timeoutMs: number,
  fn: () => Promise<T>,
  opts: Pick<LockOptions, 'staleMs'> = {},
): Promise<T> {
  let lost: (err: MinilabError) => void = () => undefined;
  const takenOver = new Promise<never>((_, reject) => (lost = reject));
  takenOver.catch(() => undefined); // lost after the work ended: nothing to fail
  const release = await lockProfile(ctx.home, profile, {
    ...opts,
    timeoutMs,
    purpose: `minilab ${command} -p ${profile}`,
    onWait: (holder) => ctx.reporter.info(`waiting for profile "${profile}": held by ${holder}`),
    onLost: (err) => lost(err),
  });
  const work = fn();
  // Once the lock is lost, what the work does next is nobody's answer: its outcome is dropped.
  work.catch(() => undefined);
  try {
    return await Promise.race([work, takenOver]);
  } finally {
    await release();
  }
}
