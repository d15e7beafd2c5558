import { PassThrough, Readable, type Writable } from 'node:stream';
import { MinilabError, formatMs, inactivityDeadline, withTimeout } from '../../errors.js';
import { TIMEOUT_NOT_STARTED } from '../run.js';
import type { ExecOptions, ExecResult, StreamIO, TerminalIO } from '../types.js';
import type { DockerClient } from './client.js';

/** runc's words when it could not start a command at all (exit 126): the command never ran. */
const NOT_STARTED = /OCI runtime exec failed/;

const envList = (env: Record<string, string> | undefined) =>
  env ? Object.entries(env).map(([k, v]) => `${k}=${v}`) : undefined;

/** Commands in containers, done as testcontainers does: demux stdout and stderr, then inspect the exit code. */
export class Exec {
  constructor(private readonly client: DockerClient) {}

  /** Runs a command, collecting stdout and stderr apart; `input` is written to its stdin and closed. */
  async run(nameOrId: string, cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    stdout.on('data', (c: Buffer) => out.push(c));
    stderr.on('data', (c: Buffer) => err.push(c));
    const input =
      opts.input === undefined
        ? undefined
        : Buffer.isBuffer(opts.input) || typeof opts.input === 'string'
          ? Readable.from([Buffer.from(opts.input)])
          : opts.input;
    const exitCode = await this.stream(nameOrId, cmd, {
      stdin: input,
      stdout,
      stderr,
      env: opts.env,
      timeoutMs: opts.timeoutMs,
    });
    const result = {
      exitCode,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
    };
    const neverRan =
      (exitCode === 126 && NOT_STARTED.test(result.stdout + result.stderr)) ||
      // Under a deadline the command runs under `timeout`, which started; the command did not.
      (Boolean(opts.timeoutMs) &&
        (exitCode === 126 || exitCode === 127) &&
        TIMEOUT_NOT_STARTED.test(result.stderr));
    return { ...result, started: !neverRan };
  }

  /** Runs a command with its streams attached to the given ones (no TTY); resolves to the exit code. */
  async stream(nameOrId: string, cmd: string[], io: StreamIO): Promise<number> {
    const { docker } = this.client;
    const container = docker.getContainer(nameOrId);
    // The engine cannot stop an exec: with a deadline, `timeout` in the container ends the command
    // when minilab stops waiting for it (TERM, then KILL 5 s later), so nothing it abandons (a
    // kubeadm) runs on beside what comes next (a rollback, a reset). The short options are the ones
    // coreutils' and busybox's timeout share.
    const argv = io.timeoutMs ? ['timeout', '-k', '5', String(Math.ceil(io.timeoutMs / 1000)), ...cmd] : cmd;
    const exec = await this.client.call('create an exec', () =>
      container.exec({
        Cmd: argv,
        AttachStdin: Boolean(io.stdin),
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
        Env: envList(io.env),
      }),
    );
    let attached: { destroy(): void } | undefined;
    const stall = io.stallMs ? inactivityDeadline(io.stallMs) : undefined;
    const run = async () => {
      const stream = await exec.start({ hijack: true, stdin: Boolean(io.stdin) });
      attached = stream;
      stall?.touch();
      const done = new Promise<void>((resolve, reject) => {
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', reject);
        stream.on('data', () => stall?.touch());
        stall?.signal.addEventListener('abort', () =>
          reject(
            new MinilabError(
              'timeout',
              `\`${cmd.join(' ')}\` in ${nameOrId} sent nothing for ${formatMs(io.stallMs ?? 0)}`,
            ),
          ),
        );
      });
      docker.modem.demuxStream(stream, io.stdout, io.stderr);
      if (io.stdin) {
        io.stdin.on('error', () => stream.end());
        io.stdin.pipe(stream as unknown as Writable);
      }
      await done;
      const info = await exec.inspect();
      return info.ExitCode ?? 1;
    };
    try {
      return await (io.timeoutMs
        ? withTimeout(run(), io.timeoutMs, `\`${cmd.join(' ')}\` in ${nameOrId}`)
        : run());
    } catch (err) {
      // the connection goes: a command still writing to it gets EPIPE; `timeout` ends one that is not
      attached?.destroy();
      throw err;
    } finally {
      stall?.stop();
    }
  }

  /**
   * Runs a command with a TTY attached to this process's terminal: raw mode, window size forwarded,
   * Ctrl-C delivered to the remote side. Resolves to the remote exit code.
   */
  async interactive(nameOrId: string, cmd: string[], term: TerminalIO): Promise<number> {
    const container = this.client.docker.getContainer(nameOrId);
    const exec = await this.client.call('create an exec', () =>
      container.exec({
        Cmd: cmd,
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Tty: true,
        // The first window size goes with the exec itself, so the command never sees a 0x0 terminal.
        ConsoleSize: [term.stdout.rows || 24, term.stdout.columns || 80],
        Env: envList({ TERM: process.env.TERM || 'xterm', ...(term.env ?? {}) }),
      }),
    );
    const stream = await exec.start({
      hijack: true,
      stdin: true,
      Tty: true,
      ...this.client.dialect.execStartSize(term.stdout.rows || 24, term.stdout.columns || 80),
    });
    const finished = new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    });
    const resize = () =>
      exec.resize({ h: term.stdout.rows || 24, w: term.stdout.columns || 80 }).catch(() => undefined);
    const wasRaw = term.stdin.isRaw;
    if (term.stdin.isTTY) term.stdin.setRawMode(true);
    term.stdin.resume();
    term.stdin.pipe(stream as unknown as Writable);
    stream.pipe(term.stdout, { end: false });
    term.stdout.on('resize', resize);
    try {
      await resize();
      await finished;
    } finally {
      term.stdout.off('resize', resize);
      term.stdin.unpipe(stream as unknown as Writable);
      if (term.stdin.isTTY) term.stdin.setRawMode(wasRaw);
      term.stdin.pause();
    }
    const info = await exec.inspect();
    return info.ExitCode ?? 1;
  }
}
