/** The signals a user sends to end what minilab runs: Ctrl-C, `kill`, a closed terminal. */
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Passes those signals on to a child while it runs, instead of letting them end minilab first
 * (the child then ends and minilab reports it); returns what stops the forwarding.
 */
export function forwardSignals(to: (signal: NodeJS.Signals) => void): () => void {
  FORWARDED.forEach((s) => process.on(s, to));
  return () => FORWARDED.forEach((s) => process.off(s, to));
}

/**
 * What a background process waits on: SIGINT or SIGTERM, or `stop()`, or a check run every
 * `intervalMs` that calls its `stop` argument. `stopped` resolves once, whichever came first;
 * listening starts at once (a signal sent right after the caller records itself is not lost).
 */
export function untilStopped(
  intervalMs: number,
  check: (stop: () => void) => void,
): { stopped: Promise<void>; stop: () => void } {
  let stop = () => {};
  const stopped = new Promise<void>((resolve) => {
    const timer = setInterval(() => check(stop), intervalMs);
    stop = () => {
      clearInterval(timer);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return { stopped, stop };
}
