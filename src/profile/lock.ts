import lockfile from 'proper-lockfile';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MinilabError, formatMs } from '../errors.js';

/** A lock not refreshed for this long belongs to a crashed command and is taken over. */
const STALE_MS = 15_000;

export interface LockOptions {
  /**
   * A lock not refreshed for this long is taken over (default 15 s); a live holder refreshes it
   * three times as often. A holder suspended longer (Ctrl-Z, a laptop asleep) may find it gone.
   */
  staleMs?: number;
  /**
   * Called, at most once, when this holder finds its lock taken over by another command (after it
   * was suspended for longer than staleMs): it no longer holds it, and should stop.
   */
  onLost?: (err: MinilabError) => void;
  /** How long to wait for another command holding the lock. */
  timeoutMs: number;
  /** Called once when the lock is held by someone else and we start waiting. */
  onWait?: (holder: string) => void;
  /** What this process is doing, shown to whoever waits for it. */
  purpose: string;
  /** Where the purpose is recorded for waiters (none for files beside a user's own, like a kubeconfig). */
  holderFile?: string;
}

/**
 * Takes an exclusive lock on a path (proper-lockfile: a `<path>.lock` directory, refreshed while
 * held, stale after a crash). Returns the release function.
 */
export async function acquireLock(
  path: string,
  what: string,
  opts: LockOptions,
): Promise<() => Promise<void>> {
  const started = Date.now();
  let announced = false;
  const infoFile = opts.holderFile;
  const stale = opts.staleMs ?? STALE_MS;
  for (;;) {
    try {
      let lost = false;
      const release = await lockfile.lock(path, {
        realpath: false,
        stale,
        update: Math.floor(stale / 3),
        // The lock's modification time is its holder's token: proper-lockfile finds another one there
        // when the lock was taken over. Its default is to throw, from a timer: an uncaught exception.
        onCompromised: () => {
          lost = true;
          opts.onLost?.(lostLockError(what, stale));
        },
      });
      if (infoFile) {
        await writeFile(infoFile, `${opts.purpose} (pid ${process.pid})`, { mode: 0o600 }).catch(
          () => undefined,
        );
      }
      return async () => {
        // The lock and its holder file belong to whoever took it over.
        if (lost) return;
        // Removed while still held: only a holder writes this file, so it is ours to remove.
        if (infoFile) await rm(infoFile, { force: true });
        await release().catch(() => undefined);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
      const holder = infoFile
        ? (await readFile(infoFile, 'utf8').catch(() => 'another minilab command')).trim()
        : 'another minilab command';
      if (!announced) {
        announced = true;
        opts.onWait?.(holder);
      }
      if (Date.now() - started >= opts.timeoutMs) {
        throw new MinilabError(
          'timeout',
          `${what} is still locked after ${formatMs(opts.timeoutMs)} by: ${holder}`,
          {
            hint: 'wait for that command to finish, or stop it; a crashed holder frees the lock within 15 s',
          },
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

function lostLockError(what: string, staleMs: number): MinilabError {
  return new MinilabError(
    'unexpected',
    `${what} was taken over by another command while this one was suspended for more than ${formatMs(staleMs)}`,
    {
      hint: 'what this command was doing may be half done: check with minilab status, then run it again',
    },
  );
}

/** Whether a command holds the profile's lock now (reads only: creates nothing). */
export async function profileLocked(home: string, profile: string): Promise<boolean> {
  return lockfile
    .check(join(home, 'locks', profile), { realpath: false, stale: STALE_MS })
    .catch(() => false);
}

/** Serializes commands on one profile. */
export async function lockProfile(
  home: string,
  profile: string,
  opts: LockOptions,
): Promise<() => Promise<void>> {
  const dir = join(home, 'locks');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return acquireLock(join(dir, profile), `profile "${profile}"`, {
    ...opts,
    holderFile: join(dir, `${profile}.holder`),
  });
}
