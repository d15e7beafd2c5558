import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { MinilabError, formatMs, inactivityDeadline } from '../errors.js';
import { forwardSignals } from '../signals.js';

/**
 * How long a build script may print nothing before it is stopped: well above the longest silent
 * step seen (a cold `go build` of the Kubernetes binaries, about 7 minutes on 2 cores).
 */
export const SCRIPT_STALL_MS = 30 * 60_000;

/**
 * Runs one of the project's build scripts (bash, from images/), reporting each output line as
 * progress and keeping the last lines for the error when it fails. A script silent for `stallMs`
 * is stopped with everything it started (its own process group) and reported as such.
 */
export async function runScript(
  script: string,
  args: string[],
  opts: {
    progress?: (line: string) => void;
    env?: NodeJS.ProcessEnv;
    what: string;
    hint: string;
    stallMs?: number;
  },
): Promise<void> {
  const child = spawn('bash', [script, ...args], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const stallMs = opts.stallMs ?? SCRIPT_STALL_MS;
  const stall = inactivityDeadline(stallMs);
  const stopGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  stall.signal.addEventListener('abort', () => {
    stopGroup('SIGTERM');
    setTimeout(() => stopGroup('SIGKILL'), 5000).unref();
  });
  // The script has a process group of its own (so a stall stops all of it), which the terminal's
  // Ctrl-C no longer reaches: minilab passes it on, and the build ends with it.
  const unwatch = forwardSignals(stopGroup);
  const tail: string[] = [];
  const onLine = (line: string) => {
    stall.touch();
    tail.push(line);
    if (tail.length > 25) tail.shift();
    if (line.trim()) opts.progress?.(line.trim().slice(0, 120));
  };
  createInterface({ input: child.stdout }).on('line', onLine);
  createInterface({ input: child.stderr }).on('line', onLine);
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? 1));
  }).finally(() => {
    stall.stop();
    unwatch();
  });
  if (stall.fired()) {
    throw new MinilabError('timeout', `${opts.what} printed nothing for ${formatMs(stallMs)}: stopped`, {
      details: tail,
      hint: opts.hint,
    });
  }
  if (code !== 0) {
    throw new MinilabError('environment', `${opts.what} failed (exit ${code})`, {
      details: tail,
      hint: opts.hint,
    });
  }
}

/**
 * The versions a build script pins (its `NAME_VERSION=vX.Y.Z` lines), by NAME: each name asked for
 * must be there.
 */
export async function pinnedVersions<N extends string>(
  script: string,
  names: readonly N[],
): Promise<Record<N, string>> {
  const text = await readFile(script, 'utf8').catch((err: unknown) => {
    throw new MinilabError('environment', `cannot read ${script}: ${(err as Error).message}`, {
      hint: 'minilab runs from its source tree; reinstall or check out the tree again',
    });
  });
  const found = Object.fromEntries(
    [...text.matchAll(/^([A-Z_]+)_VERSION=(v[0-9][0-9A-Za-z.-]*)$/gm)].map((m) => [m[1], m[2]]),
  );
  const missing = names.filter((n) => !found[n]);
  if (missing.length > 0) {
    throw new MinilabError(
      'unexpected',
      `${script} pins no ${missing.map((n) => `${n}_VERSION`).join(', ')}`,
    );
  }
  return found as Record<N, string>;
}
