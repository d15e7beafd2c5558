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
