import type { Readable } from 'node:stream';
import { MinilabError, type ErrorKind } from '../errors.js';
import type { Node } from './types.js';

/**
 * `timeout`'s words (coreutils', busybox's) when the command it was to run could not start: a
 * command run under a deadline that never ran (every driver runs deadlines through `timeout`).
 */
export const TIMEOUT_NOT_STARTED = /^timeout: (failed to run command|can't execute)/m;

export interface RunOptions {
  input?: string | Buffer | Readable;
  timeoutMs?: number;
  /** A command whose output (a log) is shown under the failure. */
  logCommand?: string;
  hint?: string;
  /** The error's kind when the command fails (a cluster failure unless said otherwise). */
  kind?: ErrorKind;
}

/**
 * Runs a command in a node and returns its stdout; a non-zero exit becomes an error carrying the
 * last lines of its output (and of the log the caller names), so the user sees why. A string is a
 * bash script run with -euo pipefail. A command the runtime could not start at all (a passing
 * runc failure) never ran, so it is run once more while the node still runs.
 */
export async function runInNode(
  node: Node,
  command: string | string[],
  what: string,
  opts: RunOptions = {},
): Promise<string> {
  const cmd = typeof command === 'string' ? ['bash', '-euo', 'pipefail', '-c', command] : command;
  const run = () => node.exec(cmd, { input: opts.input, timeoutMs: opts.timeoutMs ?? 120_000 });
  let r = await run();
  if (!r.started && opts.input === undefined && (await node.refresh())?.running) r = await run();
  if (r.exitCode === 0) return r.stdout;
  const details = lastLines(`${r.stdout}\n${r.stderr}`, 15);
  if (opts.logCommand) {
    const log = await node.exec(['bash', '-c', opts.logCommand]).catch(() => undefined);
    if (log?.stdout.trim()) details.push('--- ' + opts.logCommand, ...lastLines(log.stdout, 15));
  }
  throw new MinilabError(opts.kind ?? 'clusterFailed', `${what} failed (exit ${r.exitCode})`, {
    details,
    hint: opts.hint ?? 'the lines above show why; minilab logs --export DIR collects everything',
  });
}

/** The last `n` non-blank lines of a command's output, for an error's details. */
export function lastLines(text: string, n: number): string[] {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '')
    .slice(-n);
}
