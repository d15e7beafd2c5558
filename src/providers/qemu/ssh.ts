import { once } from 'node:events';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import { posix } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import ssh2, { type Client, type ClientChannel, type PseudoTtyOptions } from 'ssh2';
import { MinilabError, formatMs, inactivityDeadline, withTimeout } from '../../errors.js';
import { ProviderError } from '../errors.js';
import { TIMEOUT_NOT_STARTED, lastLines } from '../run.js';
import type { ExecOptions, ExecResult, StreamIO, TerminalIO } from '../types.js';

/** How long a handshake may take before the node counts as unreachable (loopback, but a busy host). */
const HANDSHAKE_MS = 20_000;
/** How often ready() knocks while the VM boots. */
const RETRY_MS = 250;

/**
 * getTar's exit status for a missing path (sysexits' EX_NOINPUT): tar itself still writes an empty
 * archive for one, which would read as an empty copy instead of an error.
 */
const NO_SUCH_PATH = 66;
const GET_TAR =
  `test -e "$1/$2" || test -L "$1/$2" || { echo "$1/$2: No such file or directory" >&2; exit ${NO_SUCH_PATH}; }; ` +
  'exec tar -c -f - -C "$1" -- "$2"';

/** An ed25519 key pair in OpenSSH's formats: the private key, and the public key as one authorized_keys line. */
export function generateKeyPair(comment = 'minilab'): { privateKey: string; publicKey: string } {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    // ssh2 1.17 strips a public key's leading zero bytes, spoiling 1 pair in 256 (mscdex/ssh2#1390):
    // such a pair does not parse, and is made again.
    const spoilt = [pair.private, pair.public].some((k) => ssh2.utils.parseKey(k) instanceof Error);
    if (!spoilt) return { privateKey: pair.private, publicKey: pair.public };
  }
}

/** The authorized_keys line of an OpenSSH private key ("ssh-ed25519 AAAA..."). */
export function publicKeyOf(privateKey: string): string {
  const key = ssh2.utils.parseKey(privateKey);
  if (key instanceof Error) throw new MinilabError('environment', `unreadable SSH key: ${key.message}`);
  const k = Array.isArray(key) ? key[0] : key;
  if (!k) throw new MinilabError('environment', 'unreadable SSH key: no key in it');
  return `${k.type} ${k.getPublicSSH().toString('base64')}`;
}

/**
 * One command line for argv: sshd hands the command to the user's login shell (a POSIX one), so
 * each word is single-quoted; words of only safe characters stay bare, for readable logs.
 */
export function shellQuote(argv: string[]): string {
  return argv.map((a) => (/^[\w/.,:@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** The client key (OpenSSH format), authorized in the guest. */
  privateKey: string;
  /** The guest's host key as a public key line: minilab made it, so it is pinned, never learnt. */
  hostKey: string;
  /** The node's name, for messages. */
  name: string;
}

interface Session {
  client: Client;
  lost: boolean;
}

/** The guest would not open a channel or run a command on it: the command never ran. */
class SessionRefused extends MinilabError {}

/** An exit code as a shell reports one: a signal's is 128 + its number, and 255 (ssh's own) when unknown. */
function exitCodeOf(code: unknown, signal: unknown): number | undefined {
  if (typeof code === 'number') return code;
  if (typeof signal !== 'string') return undefined;
  const n = (constants.signals as Record<string, number | undefined>)[signal];
  return n === undefined ? 255 : 128 + n;
}

/** The words of bash, dash, busybox, zsh or env for a command that does not exist. */
function notFound(command: string): RegExp {
  const name = command.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(
    `(^|[\\s'‘])${name}['’]?: ((command )?not found|No such file or directory)$|command not found: ${name}$`,
    'm',
  );
}

/** A sink that keeps what is written to it at once, so nothing is still in flight at the exit. */
const collector = (chunks: Buffer[]) =>
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });

const unreachable = (message: string, hint: string, cause?: unknown) =>
  new ProviderError({ reason: 'unreachable' }, message, { hint, cause });

/** A command that ran and failed, with the last lines it wrote to stderr. */
const failed = (message: string, stderr: string) =>
  new MinilabError('clusterFailed', message, { details: lastLines(stderr, 15) });

const ended = (s: Readable) => new Promise<void>((resolve) => s.once('end', resolve).once('close', resolve));

/**
 * The SSH connection to one VM's node, with the semantics of Docker's exec (docker/exec.ts):
 * connected on first use, one channel per command, reconnected after a drop. The guest's host key
 * is made on the host and pinned, so no first connection is trusted blindly.
 */
export class SshConnection {
  private live?: Session;
  private pending?: Promise<Session>;
  private sock?: Socket;
  /** Commands and connects in flight; with none the socket is unref'd, so an idle node never holds the process. */
  private busy = 0;
  private readonly pinned: Buffer;

  constructor(private readonly target: SshTarget) {
    const key = ssh2.utils.parseKey(target.hostKey);
    if (key instanceof Error)
      throw new MinilabError('unexpected', `${target.name}: bad host key: ${key.message}`);
    this.pinned = key.getPublicSSH();
  }

  /** Runs a command, collecting stdout and stderr apart; `input` is written to its stdin and closed. */
  async run(cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const { input, env, timeoutMs } = opts;
    const stdin =
      typeof input === 'string' || Buffer.isBuffer(input) ? Readable.from([Buffer.from(input)]) : input;
    const io = { stdin, stdout: collector(out), stderr: collector(err), env, timeoutMs };
    let exitCode: number;
    try {
      exitCode = await this.stream(cmd, io);
    } catch (e) {
      if (e instanceof SessionRefused)
        return { exitCode: 255, stdout: '', stderr: e.message, started: false };
      throw e;
    }
    const stderr = Buffer.concat(err).toString('utf8');
    const neverRan =
      // Under a deadline the command runs under `timeout`, which started; the command did not.
      (Boolean(timeoutMs) && (exitCode === 126 || exitCode === 127) && TIMEOUT_NOT_STARTED.test(stderr)) ||
      (exitCode === 127 && cmd.length > 0 && notFound(cmd[0]!).test(stderr));
    return { exitCode, stdout: Buffer.concat(out).toString('utf8'), stderr, started: !neverRan };
  }

  /** Runs a command with its streams attached to the given ones (no TTY); resolves to the exit code. */
  async stream(cmd: string[], io: StreamIO): Promise<number> {
    const what = `\`${cmd.join(' ')}\` in ${this.target.name}`;
    const release = this.hold();
    let stall: ReturnType<typeof inactivityDeadline> | undefined;
    let channel: ClientChannel | undefined;
    let abandoned = false;
    // A destination that closes early (a reader that stopped) ends the command instead of blocking it.
    const stop = () => channel?.destroy();
    io.stdout.once('close', stop);
    const run = async () => {
      const opened = await this.open(this.commandLine(cmd, io.env, io.timeoutMs), what);
      const ch = (channel = opened.channel);
      if (abandoned) {
        ch.destroy(); // opened after the deadline: nobody waits for it
        throw new MinilabError('timeout', `${what} opened after its deadline`);
      }
      // Counted from the open: a slow connect is the handshake's deadline to judge.
      stall = io.stallMs ? inactivityDeadline(io.stallMs) : undefined;
      const stalled = new Promise<never>((_, reject) =>
        stall?.signal.addEventListener('abort', () =>
          reject(new MinilabError('timeout', `${what} sent nothing for ${formatMs(io.stallMs ?? 0)}`)),
        ),
      );
      const exited = Promise.all([this.exited(ch, opened.session, what), ended(ch.stderr)]);
      ch.on('data', () => stall?.touch());
      ch.stderr.on('data', () => stall?.touch());
      ch.pipe(io.stdout, { end: false });
      ch.stderr.pipe(io.stderr, { end: false });
      if (io.stdin) {
        io.stdin.on('error', () => ch.end());
        io.stdin.pipe(ch);
      } else {
        ch.end();
      }
      return (await Promise.race([exited, stalled]))[0];
    };
    try {
      // `timeout` in the guest ends a command minilab stops waiting for (TERM, then KILL 5 s later),
      // so nothing it abandons runs on beside what comes next: closing the channel does not end it.
      return await (io.timeoutMs ? withTimeout(run(), io.timeoutMs, what) : run());
    } catch (err) {
      abandoned = true;
      channel?.destroy();
      throw err;
    } finally {
      stall?.stop();
      io.stdout.off('close', stop);
      // tar-fs and tar-stream packs (streamx) have no unpipe; they end anyway
      if (channel && typeof io.stdin?.unpipe === 'function') io.stdin.unpipe(channel);
      release();
    }
  }

  /**
   * Runs a command (none: a login shell) on a TTY tied to this terminal: raw mode, window size
   * forwarded, Ctrl-C delivered to the remote side. Resolves to the remote exit code.
   */
  async interactive(cmd: string[], term: TerminalIO): Promise<number> {
    const what =
      cmd.length > 0 ? `\`${cmd.join(' ')}\` in ${this.target.name}` : `a shell in ${this.target.name}`;
    const size = () => ({ rows: term.stdout.rows || 24, cols: term.stdout.columns || 80 });
    const release = this.hold();
    try {
      // No command is a login shell: ssh's own, or through env when there are variables to set.
      const env = Object.keys(term.env ?? {}).length > 0 ? this.commandLine([], term.env) : undefined;
      const line = cmd.length > 0 ? this.commandLine(cmd, term.env) : env && `${env} "\${SHELL:-/bin/sh}" -l`;
      // The first window size goes with the PTY request, so the command never sees a 0x0 terminal.
      const pty = { ...size(), term: process.env.TERM || 'xterm' };
      const { channel, session } = await this.open(line, what, pty);
      const exited = this.exited(channel, session, what);
      const resize = () => channel.setWindow(size().rows, size().cols, 0, 0);
      const wasRaw = term.stdin.isRaw;
      if (term.stdin.isTTY) term.stdin.setRawMode(true);
      term.stdin.resume();
      term.stdin.pipe(channel);
      channel.pipe(term.stdout, { end: false });
      channel.stderr.pipe(term.stdout, { end: false });
      term.stdout.on('resize', resize);
      try {
        return await exited;
      } finally {
        term.stdout.off('resize', resize);
        term.stdin.unpipe(channel);
        if (term.stdin.isTTY) term.stdin.setRawMode(wasRaw);
        term.stdin.pause();
      }
    } finally {
      release();
    }
  }

  /** Extracts a tar stream into a directory of the guest, owners kept by number as Docker's copy does. */
  async putTar(dir: string, tar: Readable): Promise<void> {
    const argv = ['tar', '-x', '--numeric-owner', '-C', dir, '-f', '-'];
    const r = await this.run(argv, { input: tar, timeoutMs: 300_000 });
    if (r.started && r.exitCode === 0) return;
    throw failed(`copying files into ${dir} of ${this.target.name} failed (exit ${r.exitCode})`, r.stderr);
  }

  /**
   * A tar stream of a path, its last component at the root as Docker's getArchive gives it. Waits
   * for the first byte or the exit, so that a missing path throws instead of streaming nothing.
   */
  async getTar(path: string): Promise<Readable> {
    const trimmed = path.replace(/\/+$/, '') || '/';
    const argv = ['sh', '-c', GET_TAR, 'sh', posix.dirname(trimmed), posix.basename(trimmed) || '.'];
    const out = new PassThrough();
    const err: Buffer[] = [];
    const failure = this.stream(argv, { stdout: out, stderr: collector(err) }).then(
      (code) => {
        const stderr = Buffer.concat(err).toString('utf8');
        if (code === NO_SUCH_PATH)
          return new ProviderError({ reason: 'not-found', name: path }, `no ${path} in ${this.target.name}`);
        return code === 0
          ? undefined
          : failed(`copying ${path} out of ${this.target.name} failed (exit ${code})`, stderr);
      },
      (e: unknown) => e as Error,
    );
    void failure.then((e) => (e ? out.destroy(e) : out.end()));
    const early = await Promise.race([once(out, 'readable').then(() => undefined), failure]);
    if (early) throw early;
    return out;
  }

  /** Waits for sshd to answer (the VM is booting), knocking every RETRY_MS until the deadline. */
  async ready(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const release = this.hold();
    try {
      for (;;) {
        try {
          await this.session(Math.max(1, Math.min(HANDSHAKE_MS, deadline - Date.now())));
          return;
        } catch (err) {
          if (!(err instanceof ProviderError)) throw err;
          if (Date.now() + RETRY_MS >= deadline) {
            const { name, host, port } = this.target;
            const message = `${name} did not answer over SSH at ${host}:${port} within ${formatMs(timeoutMs)}`;
            throw unreachable(message, 'the VM may have failed to boot: its console log shows why', err);
          }
          await sleep(RETRY_MS);
        }
      }
    } finally {
      release();
    }
  }

  /** Ends the connection; a later command connects again. */
  close(): void {
    this.live?.client.end();
    this.live = undefined;
  }

  /** The command line: env and `timeout` go first, so that a command that cannot start is reported by them. */
  private commandLine(cmd: string[], env?: Record<string, string>, timeoutMs?: number): string {
    const vars = Object.entries(env ?? {}).map(([k, v]) => `${k}=${v}`);
    return shellQuote([
      ...(vars.length > 0 ? ['env', ...vars] : []),
      ...(timeoutMs ? ['timeout', '-k', '5', String(Math.ceil(timeoutMs / 1000))] : []),
      ...cmd,
    ]);
  }

  private hold(): () => void {
    if (this.busy++ === 0) this.sock?.ref();
    let held = true;
    return () => {
      if (held && --this.busy === 0) this.sock?.unref();
      held = false;
    };
  }

  private session(handshakeMs = HANDSHAKE_MS): Promise<Session> {
    if (this.live && !this.live.lost) return Promise.resolve(this.live);
    this.pending ??= this.connect(handshakeMs).finally(() => (this.pending = undefined));
    return this.pending;
  }

  private connect(handshakeMs: number): Promise<Session> {
    const { host, port, user, privateKey, name } = this.target;
    // Our own socket, so that it can be unref'd while idle (ssh2 never does).
    const sock = (this.sock = new Socket());
    sock.setNoDelay(true); // keystrokes of an interactive session go at once, as OpenSSH's do
    const client = new ssh2.Client();
    const session: Session = { client, lost: false };
    let ready = false;
    let changedKey = false;
    return new Promise((resolve, reject) => {
      const fail = (err: Error & { level?: string; code?: string }) => {
        client.destroy();
        reject(
          changedKey
            ? new MinilabError('environment', `the SSH host key of ${name} (at ${host}:${port}) changed`, {
                hint: `something other than ${name}'s VM answers on port ${port}: stop it, or delete the cluster`,
                cause: err,
              })
            : err.level === 'client-authentication'
              ? new MinilabError('environment', `${name} refused minilab's SSH key`, {
                  hint: 'the VM does not hold the key minilab made for it: delete the cluster and start again',
                  cause: err,
                })
              : unreachable(
                  `cannot reach ${name} over SSH at ${host}:${port} (${err.code ?? err.message})`,
                  'the VM may be stopped or still booting: minilab status shows it',
                  err,
                ),
        );
      };
      // After the handshake an error is a drop: 'close' follows, and the next command reconnects.
      client.on('error', (err) => ready || fail(err));
      client.on('ready', () => {
        ready = true;
        this.live = session;
        resolve(session);
      });
      client.on('close', () => {
        session.lost = true;
        if (!ready) fail(new Error('connection closed during the handshake'));
      });
      sock.connect(port, host);
      client.connect({
        sock,
        username: user,
        privateKey,
        readyTimeout: handshakeMs,
        hostVerifier: (key: Buffer) => {
          changedKey = !key.equals(this.pinned);
          return !changedKey;
        },
      });
    });
  }

  /** A channel running `line` (a login shell without one); a refusal is a SessionRefused. */
  private async open(line: string | undefined, what: string, pty?: PseudoTtyOptions) {
    const session = await this.session();
    const channel = await new Promise<ClientChannel>((resolve, reject) => {
      const opened = (err: Error | undefined, ch: ClientChannel) => {
        if (!err) resolve(ch);
        else if (session.lost) reject(this.lostError(what, err));
        else reject(new SessionRefused('environment', `${what} could not start: ${err.message}`));
      };
      try {
        if (line === undefined) session.client.shell(pty ?? false, opened);
        else session.client.exec(line, pty ? { pty } : {}, opened);
      } catch (err) {
        session.lost = true; // ssh2 throws when its socket went before it said so
        reject(this.lostError(what, err));
      }
    });
    return { channel, session };
  }

  private exited(channel: ClientChannel, session: Session, what: string): Promise<number> {
    return new Promise((resolve, reject) => {
      channel.once('close', (code: unknown, signal: unknown) => {
        const exitCode = exitCodeOf(code, signal);
        if (exitCode !== undefined) resolve(exitCode);
        else if (session.lost) reject(this.lostError(what));
        else resolve(255);
      });
    });
  }

  private lostError(what: string, cause?: unknown): ProviderError {
    const { name, host, port } = this.target;
    const message = `lost the SSH connection to ${name} (${host}:${port}) during ${what}`;
    return unreachable(message, 'the VM may have stopped: minilab status shows it', cause);
  }
}
