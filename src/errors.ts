/**
 * Every failure a user can cause or fix is a MinilabError: a one-line message, a hint naming
 * the next thing to do, and an exit code from the documented table below.
 */
export const ExitCode = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  environment: 3,
  notFound: 4,
  timeout: 5,
  clusterFailed: 6,
  /** The cluster is up, but the kubeconfig could not be written: the next `start` writes it. */
  kubeconfig: 7,
  /** The cluster is up, but an add-on could not be enabled or removed: the cluster is kept. */
  addon: 8,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export type ErrorKind = Exclude<keyof typeof ExitCode, 'ok'>;

export interface ErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Extra lines shown under the message, e.g. the tail of a failing command's log. */
  details?: string[];
}

export class MinilabError extends Error {
  readonly kind: ErrorKind;
  readonly hint?: string;
  readonly details: string[];

  constructor(kind: ErrorKind, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MinilabError';
    this.kind = kind;
    this.hint = options.hint;
    this.details = options.details ?? [];
  }

  get exitCode(): ExitCode {
    return ExitCode[this.kind];
  }
}

export const usageError = (message: string, hint?: string) => new MinilabError('usage', message, { hint });
export const notFoundError = (message: string, hint?: string) =>
  new MinilabError('notFound', message, { hint });

export function exitCodeOf(err: unknown): ExitCode {
  return err instanceof MinilabError ? err.exitCode : ExitCode.unexpected;
}

/** Renders an error the way users see it: one line, then a hint; causes and stacks only when verbose. */
export function renderError(err: unknown, verbose: boolean): string {
  const lines: string[] = [];
  const message = err instanceof Error ? err.message : String(err);
  lines.push(`error: ${firstLine(message)}`);
  if (err instanceof MinilabError) {
    for (const d of err.details) lines.push(`  ${d}`);
    if (err.hint) lines.push(`hint: ${err.hint}`);
  } else if (!verbose) {
    lines.push('hint: this is unexpected; run again with -v for details and report it');
  }
  if (verbose) {
    let cause: unknown = err instanceof Error ? err.cause : undefined;
    while (cause !== undefined) {
      lines.push(`cause: ${cause instanceof Error ? cause.message : String(cause)}`);
      cause = cause instanceof Error ? cause.cause : undefined;
    }
    if (err instanceof Error && err.stack && !(err instanceof MinilabError)) lines.push(err.stack);
  }
  return lines.join('\n') + '\n';
}

function firstLine(s: string): string {
  const line = s.split('\n').find((l) => l.trim() !== '') ?? s;
  return line.trim();
}

/** Wraps a promise with a deadline; the message names what was waited for. */
export async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
  hint?: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new MinilabError('timeout', `timed out after ${formatMs(ms)} waiting for ${what}`, { hint })),
      ms,
    );
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** How long an image stream (upload, export) may go without a byte moving before it is aborted. */
export const STREAM_STALL_MS = 120_000;

/**
 * A deadline on inactivity, for transfers too long for a fixed one (an image of gigabytes):
 * `touch()` at every sign of progress; `signal` aborts once `ms` pass without one.
 */
export function inactivityDeadline(ms: number): {
  signal: AbortSignal;
  touch: () => void;
  stop: () => void;
  fired: () => boolean;
} {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const touch = () => {
    clearTimeout(timer);
    if (!controller.signal.aborted) timer = setTimeout(() => controller.abort(), ms);
  };
  touch();
  return {
    signal: controller.signal,
    touch,
    stop: () => clearTimeout(timer),
    fired: () => controller.signal.aborted,
  };
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
}

/** A count with its noun: "1 node", "3 nodes". */
export const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
