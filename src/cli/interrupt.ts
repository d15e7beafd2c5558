/**
 * Settles on the first Ctrl-C (or SIGTERM) instead of letting it kill the process; dispose when done.
 * The handlers stay until then (`on`, not `once`): proper-lockfile's signal-exit re-raises a signal
 * that finds no listener but its own, and a `once` listener is gone by the time it looks. A second
 * signal before then means what the first one began is not ending (a `logs -f` whose stream does
 * not close): the handlers go and the signal is raised again, so it ends the process as it would
 * have without them (exit status 130 for Ctrl-C).
 */
export function interruption(): { happened: Promise<void>; dispose: () => void } {
  let done!: () => void;
  const happened = new Promise<void>((resolve) => (done = resolve));
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) return done();
    dispose();
    process.kill(process.pid, signal);
  };
  const dispose = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return { happened, dispose };
}
