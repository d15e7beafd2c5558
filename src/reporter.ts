import type { Ora } from 'ora';
import { styleText } from 'node:util';
import type { Writable } from 'node:stream';
import { formatMs } from './errors.js';

export type OutputFormat = 'text' | 'json';

export interface StepTiming {
  name: string;
  ms: number;
  ok: boolean;
}

/**
 * Human progress on stderr: a spinner per step on a TTY, plain lines otherwise. Results go to stdout
 * (exactly one JSON document with -o json). NO_COLOR turns colour off.
 */
export class Reporter {
  readonly timings: StepTiming[] = [];
  private readonly tty: boolean;
  private readonly color: boolean;

  constructor(
    readonly stdout: Writable,
    readonly stderr: Writable & { isTTY?: boolean },
    env: NodeJS.ProcessEnv,
    readonly quiet = false,
  ) {
    this.tty = Boolean(stderr.isTTY) && env.TERM !== 'dumb';
    this.color = this.tty && !('NO_COLOR' in env && env.NO_COLOR !== '');
  }

  private paint(style: Parameters<typeof styleText>[0], text: string): string {
    return this.color ? styleText(style, text) : text;
  }

  /** Runs one named step, showing it while it runs and how long it took. */
  async step<T>(title: string, fn: (progress: (detail: string) => void) => Promise<T>): Promise<T> {
    const started = performance.now();
    let spinner: Ora | undefined;
    if (!this.quiet && this.tty) {
      // ora loads only when a terminal shows spinners.
      const { default: ora } = await import('ora');
      spinner = ora({
        text: title,
        stream: this.stderr as NodeJS.WriteStream,
        color: 'cyan',
        isEnabled: true,
      });
      if (!this.color) spinner.spinner = 'line';
      spinner.start();
    } else if (!this.quiet) {
      this.stderr.write(`• ${title} ...\n`);
    }
    const progress = (detail: string) => {
      if (spinner) spinner.text = `${title} — ${detail}`;
      else if (!this.quiet) this.stderr.write(`    ${detail}\n`);
    };
    try {
      const result = await fn(progress);
      const ms = performance.now() - started;
      this.timings.push({ name: title, ms, ok: true });
      const line = `${title} ${this.paint('dim', `(${formatMs(ms)})`)}`;
      if (spinner) spinner.stopAndPersist({ symbol: this.paint('green', '✓'), text: line });
      else if (!this.quiet) this.stderr.write(`✓ ${title} (${formatMs(ms)})\n`);
      return result;
    } catch (err) {
      const ms = performance.now() - started;
      if (spinner) {
        this.timings.push({ name: title, ms, ok: false });
        spinner.stopAndPersist({ symbol: this.paint('red', '✗'), text: title });
      } else this.failed(title, ms);
      throw err;
    }
  }

  /** A step that shows nothing while it runs (it is short, or reports its own progress) failed. */
  failed(title: string, ms: number): void {
    this.timings.push({ name: title, ms, ok: false });
    if (!this.quiet) this.stderr.write(`✗ ${title} (${formatMs(ms)})\n`);
  }

  info(line: string): void {
    if (!this.quiet) this.stderr.write(`${line}\n`);
  }

  warn(line: string): void {
    this.stderr.write(`${this.paint('yellow', '!')} ${line}\n`);
  }

  /** Prints a result: JSON as one document, text through the renderer. */
  result<T>(format: OutputFormat, data: T, renderText: (data: T) => string): void {
    if (format === 'json') this.stdout.write(JSON.stringify(data, null, 2) + '\n');
    else this.stdout.write(renderText(data));
  }
}
