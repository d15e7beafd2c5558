/** Settles on the first Ctrl-C (or SIGTERM) instead of letting it kill the process; dispose when done. */
export function interruption(): { happened: Promise<void>; dispose: () => void } {
  let done!: () => void;
  const happened = new Promise<void>((resolve) => (done = resolve));
  process.once('SIGINT', done);
  process.once('SIGTERM', done);
  return {
    happened,
    dispose: () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
    },
  };
}
