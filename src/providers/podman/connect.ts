import { spawn } from 'node:child_process';
import { closeSync, existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type Docker from 'dockerode';
import { MinilabError } from '../../errors.js';
import { onPath } from '../../on-path.js';
import { openPrivateLog } from '../../private-files.js';
import { providerFailure } from '../errors.js';
import { DockerClient, engineAddress } from '../docker/client.js';
import { PODMAN_DIALECT } from '../docker/dialect.js';
import { podmanSockets, type PodmanSocket } from './sockets.js';

const START_HINT = (s: PodmanSocket) =>
  s.rootless
    ? 'start it: systemctl --user enable --now podman.socket (or podman system service --time=0 &)'
    : 'start it: sudo systemctl enable --now podman.socket (or sudo podman system service --time=0 &)';

/** dockerode's options for a podman address (podman's ssh:// connections are not supported). */
export function podmanAddress(address: string): Docker.DockerOptions {
  if (address.startsWith('unix://') || /^(tcp|http|https):\/\//.test(address)) {
    return engineAddress({ DOCKER_HOST: address.replace(/^https?:/, 'tcp:') });
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
  timeoutMs?: number;
}

/**
 * A connection to the podman service: the first socket (podmanSockets) that exists is used and
 * must answer (a socket present but dead is an error naming it, not skipped); where none exists
 * and podman is installed, the service is started (`podman system service --time=0`, detached,
 * as its systemd socket unit would start it) on the default socket, and awaited.
 */
export async function connectPodman(
  opts: ConnectOptions,
): Promise<{ client: DockerClient; socket: PodmanSocket }> {
  const sockets = podmanSockets(opts.env, opts.uid);
  const open = (s: PodmanSocket, timeoutMs = opts.timeoutMs) =>
    DockerClient.open(podmanAddress(s.address), s.address, PODMAN_DIALECT, START_HINT(s), timeoutMs);
  for (const s of sockets) {
    const path = s.address.startsWith('unix://') ? s.address.slice('unix://'.length) : undefined;
    if (path !== undefined && !existsSync(path)) continue;
    try {
      return { client: await open(s), socket: s };
    } catch (err) {
      if (!providerFailure(err, 'unreachable') || path === undefined) throw err;
      throw new MinilabError('environment', `the podman service at ${s.address} does not answer`, {
        hint: `${s.rootless ? 'systemctl --user' : 'sudo systemctl'} restart podman.socket, or remove the stale ${path} and start it again (podman system service --time=0 &)`,
        cause: err,
      });
    }
  }
  const first = sockets[0]!;
  if (first.from === 'CONTAINER_HOST' && !first.address.startsWith('unix://'))
    return { client: await open(first), socket: first };
  if (!onPath('podman', opts.env.PATH)) {
    throw new MinilabError('environment', 'no podman service answers and podman is not installed', {
      hint: 'install podman 4 or later (Debian: apt-get install podman), or use --driver docker',
    });
  }
  await startService(first, opts.log, opts.env);
  opts.notify?.(
    `started the podman service (podman system service) on ${first.address}; its log: ${opts.log}`,
  );
  const deadline = Date.now() + 15_000;
  for (;;) {
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
}

/** `podman system service --time=0 ADDRESS` in the background, outliving this command (as dockerd does). */
async function startService(socket: PodmanSocket, log: string, env: NodeJS.ProcessEnv): Promise<void> {
  const path = socket.address.slice('unix://'.length);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await mkdir(dirname(log), { recursive: true, mode: 0o700 });
  const out = openPrivateLog(log);
  try {
    const child = spawn('podman', ['system', 'service', '--time=0', socket.address], {
      detached: true,
      stdio: ['ignore', out, out],
      env: { ...env, PODMAN_IGNORE_CGROUPSV1_WARNING: '1' },
    });
    child.on('error', () => undefined); // awaited through the socket instead
    child.unref();
  } finally {
    closeSync(out);
  }
}
