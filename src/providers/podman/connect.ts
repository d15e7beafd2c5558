import { spawn } from 'node:child_process';
import { closeSync, constants, existsSync } from 'node:fs';
import { access, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type Docker from 'dockerode';
import lockfile from 'proper-lockfile';
import { MinilabError } from '../../errors.js';
import { onPath } from '../../on-path.js';
import { openPrivateLog } from '../../private-files.js';
import { providerFailure } from '../errors.js';
import { DockerClient, engineAddress } from '../docker/client.js';
import { PODMAN_DIALECT } from '../docker/dialect.js';
import { podmanSockets, socketPath, type PodmanSocket } from './sockets.js';

const START_HINT = (s: PodmanSocket) =>
  s.rootless
    ? 'start it: systemctl --user enable --now podman.socket (or podman system service --time=0 &)'
    : 'start it: sudo systemctl enable --now podman.socket (or sudo podman system service --time=0 &)';

/** dockerode's options for a podman address (podman's ssh:// connections are not supported). */
export function podmanAddress(address: string): Docker.DockerOptions {
  // podman's service speaks plain HTTP over TCP (it has no TLS of its own).
  if (address.startsWith('unix://') || address.startsWith('tcp://')) {
    return engineAddress({ DOCKER_HOST: address });
  }
  throw new MinilabError('usage', `unsupported CONTAINER_HOST "${address}"`, {
    hint: 'use unix:///path/to/podman.sock or tcp://HOST:PORT (for ssh://, forward the socket: ssh -L)',
  });
}

export interface ConnectOptions {
  env: NodeJS.ProcessEnv;
  uid?: number;
  /** Where the log of a podman service minilab starts goes. */
  log: string;
  /** Told when minilab starts the service. */
  notify?: (message: string) => void;
  /** Whether the service may be started where none runs (else that is an error with a hint). */
  start?: boolean;
  timeoutMs?: number;
}

/**
 * A connection to the podman service: the first socket (podmanSockets) that exists, and that a
 * non-root user may write to, is used and must answer (a socket present but dead is an error
 * naming it, not skipped). Where none exists and podman is installed, `opts.start` lets the
 * service be started (`podman system service --time=0`, detached, as its systemd socket unit would
 * start it) on the first socket, under a lock so two commands start one service; otherwise that is
 * an error saying how to start it.
 */
export async function connectPodman(
  opts: ConnectOptions,
): Promise<{ client: DockerClient; socket: PodmanSocket }> {
  const sockets = podmanSockets(opts.env, opts.uid);
  const open = (s: PodmanSocket, timeoutMs = opts.timeoutMs) =>
    DockerClient.open(podmanAddress(s.address), s.address, PODMAN_DIALECT, START_HINT(s), timeoutMs);
  const found = await existingSocket(sockets, opts.uid);
  if (found) {
    try {
      return { client: await answering(found, open), socket: found };
    } catch (err) {
      // A socket file nobody listens on (its service was killed): start may put a service there.
      if (!(opts.start && found === sockets[0] && found.from !== 'CONTAINER_HOST' && refused(err))) throw err;
      await rm(socketPath(found.address) ?? '', { force: true });
    }
  }
  const first = sockets[0]!;
  const path = socketPath(first.address);
  if (path === undefined) return { client: await open(first), socket: first };
  if (!onPath('podman', opts.env.PATH)) {
    throw new MinilabError('environment', 'no podman service answers and podman is not installed', {
      hint: 'install podman 4 or later (Debian: apt-get install -t trixie podman), or use --driver docker',
    });
  }
  if (!opts.start) {
    throw new MinilabError('environment', `no podman service answers on ${first.address}`, {
      hint: `${START_HINT(first)}; minilab start --driver podman starts it too`,
    });
  }
  await mkdirOrExplain(dirname(path), first);
  await mkdir(dirname(opts.log), { recursive: true, mode: 0o700 });
  const release = await lockfile.lock(dirname(opts.log), {
    lockfilePath: `${opts.log}.lock`,
    retries: { retries: 60, minTimeout: 250, maxTimeout: 250 },
    stale: 30_000,
  });
  try {
    // Another command may have started it while this one waited for the lock.
    if (existsSync(path)) return { client: await answering(first, open), socket: first };
    const exited = startService(first, opts.log, opts.env);
    opts.notify?.(
      `started the podman service (podman system service) on ${first.address}; its log: ${opts.log}`,
    );
    const deadline = Date.now() + 15_000;
    for (;;) {
      const gone = exited.code();
      if (gone !== undefined) {
        throw new MinilabError('environment', `the podman service minilab started exited (${gone})`, {
          hint: `see its log, ${opts.log}`,
        });
      }
      try {
        return { client: await open(first, 1_000), socket: first };
      } catch (err) {
        if (Date.now() > deadline) {
          throw new MinilabError(
            'environment',
            `the podman service started on ${first.address} does not answer`,
            {
              hint: `see its log, ${opts.log}`,
              cause: err,
            },
          );
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    await release();
  }
}

/**
 * The first socket that exists; for a user other than root, the rootful one only where they may
 * write to it (a member of its group): otherwise it is not theirs, and their own service is.
 */
async function existingSocket(
  sockets: PodmanSocket[],
  uid: number | undefined,
): Promise<PodmanSocket | undefined> {
  for (const s of sockets) {
    const path = socketPath(s.address);
    if (path === undefined) return s;
    if (!existsSync(path)) continue;
    if (s.from === 'rootful' && uid !== 0 && uid !== undefined) {
      try {
        await access(path, constants.W_OK);
      } catch {
        continue;
      }
    }
    return s;
  }
  return undefined;
}

/** Whether connecting failed because nothing listens on the socket (not a hung service). */
function refused(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if ((e as NodeJS.ErrnoException).code === 'ECONNREFUSED') return true;
  }
  return false;
}

/** The client of a socket that exists; one that does not answer is an error naming it. */
async function answering(
  s: PodmanSocket,
  open: (s: PodmanSocket) => Promise<DockerClient>,
): Promise<DockerClient> {
  try {
    return await open(s);
  } catch (err) {
    const path = socketPath(s.address);
    if (!providerFailure(err, 'unreachable') || path === undefined) throw err;
    throw new MinilabError('environment', `the podman service at ${s.address} does not answer`, {
      hint: `${s.rootless ? 'systemctl --user' : 'sudo systemctl'} restart podman.socket, or remove the stale ${path} and start it again (podman system service --time=0 &)`,
      cause: err,
    });
  }
}

/** The socket's folder; a user's runtime folder that cannot be made means no login session. */
async function mkdirOrExplain(dir: string, s: PodmanSocket): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new MinilabError('environment', `cannot make ${dir} for the podman service's socket`, {
      hint: s.rootless
        ? 'log in to a session with a runtime directory (XDG_RUNTIME_DIR), or keep one: loginctl enable-linger'
        : 'run as root, or start the service yourself: sudo systemctl enable --now podman.socket',
      cause: err,
    });
  }
}

/**
 * `podman system service --time=0 ADDRESS` in the background, outliving this command (as dockerd
 * does); `code()` is its exit code once it has exited (it should not).
 */
function startService(
  socket: PodmanSocket,
  log: string,
  env: NodeJS.ProcessEnv,
): { code: () => number | string | undefined } {
  const out = openPrivateLog(log);
  let exited: number | string | undefined;
  try {
    const child = spawn('podman', ['system', 'service', '--time=0', socket.address], {
      detached: true,
      cwd: '/',
      stdio: ['ignore', out, out],
      env: { ...env, PODMAN_IGNORE_CGROUPSV1_WARNING: '1' },
    });
    child.on('error', (err) => (exited = err.message));
    child.on('exit', (code, signal) => (exited = code ?? signal ?? 'killed'));
    child.unref();
  } finally {
    closeSync(out);
  }
  return { code: () => exited };
}
