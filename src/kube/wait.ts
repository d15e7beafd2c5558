import { MinilabError, formatMs } from '../errors.js';

/** Something that calls `notify` whenever the state a wait is about may have changed. */
export type WakeSource = (notify: () => void) => Promise<() => void>;

/**
 * Waits until `check` says done; the error names what was waited for and the last state seen.
 * Checks run back to back with a short pause: each is one small API call. With `wake` (a watch),
 * a change is checked at once instead of at the next pause, and the pause can be longer.
 */
export async function waitUntil(
  what: string,
  timeoutMs: number,
  check: () => Promise<true | string>,
  opts: { intervalMs?: number; hint?: string; onState?: (state: string) => void; wake?: WakeSource } = {},
): Promise<void> {
  const started = Date.now();
  let last = 'no answer yet';
  let woken: () => void = () => undefined;
  let changed = false;
  // Set up without waiting: checks start at once and the deadline holds even if it stalls.
  const wake = opts
    .wake?.(() => {
      changed = true;
      woken();
    })
    .catch(() => undefined);
  const timedOut = () =>
    new MinilabError(
      'timeout',
      `timed out after ${formatMs(timeoutMs)} waiting for ${what} (last: ${last})`,
      {
        hint: opts.hint ?? 'minilab logs shows the kubelet and control-plane logs',
      },
    );
  // A check that never returns (a server that accepts and never answers) ends at the deadline too.
  let deadlineTimer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'deadline'>((resolve) => {
    deadlineTimer = setTimeout(() => resolve('deadline'), timeoutMs);
  });
  try {
    for (;;) {
      changed = false;
      try {
        const r = await Promise.race([check(), deadline]);
        if (r === 'deadline') {
          last = `${last}; the last check had not answered`;
          throw timedOut();
        }
        if (r === true) return;
        if (r !== last) opts.onState?.(r);
        last = r;
      } catch (err) {
        // A MinilabError from a check is a verdict (the node stopped, a wrong pod CIDR), not a state to wait out.
        if (err instanceof MinilabError) throw err;
        last = err instanceof Error ? (err.message.split('\n')[0] ?? String(err)) : String(err);
      }
      if (Date.now() - started > timeoutMs) throw timedOut();
      if (changed) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, opts.intervalMs ?? 250);
        woken = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      woken = () => undefined;
    }
  } finally {
    clearTimeout(deadlineTimer);
    void wake?.then((stop) => stop?.());
  }
}
