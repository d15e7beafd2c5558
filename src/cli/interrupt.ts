/**
 * Settles on the first Ctrl-C (or SIGTERM) instead of letting it kill the process; dispose when done.
 * The handlers stay until then (`on`, not `once`): proper-lockfile's signal-exit re-raises a signal
 * that finds no listener but its own, and a `once` listener is gone by the time it looks.
 */
export function interruption(): { happened: Promise<void>; dispose: () => void } {
  let done!: () => void;
  const happened = new Promise<void>((resolve) => (done = resolve));
  process.on('SIGINT', done);
  process.on('SIGTERM', done);
  return {
    happened,
    dispose: () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
    },
  };
}
