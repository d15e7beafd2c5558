import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MinilabError } from '../errors.js';
import { findOnPath, onPath } from '../on-path.js';
import { DOCKER_DEFAULT_SOCKET } from './docker/socket.js';
import { podmanSockets, socketPath } from './podman/sockets.js';
import type { Provider } from './types.js';

/** The drivers minilab has, as users name them to --driver (and MINILAB_DRIVER). */
export const DRIVERS = ['docker', 'podman', 'qemu'] as const;
export type Driver = (typeof DRIVERS)[number];

export function validateDriver(name: string, from = '--driver'): Driver {
  const found = DRIVERS.find((d) => d === name);
  if (!found) {
    throw new MinilabError('usage', `unknown driver "${name}" in ${from}`, {
      hint: `use one of: ${DRIVERS.join(', ')}`,
    });
  }
  return found;
}

export interface ConnectOptions {
  env: NodeJS.ProcessEnv;
  /** minilab's home: the log of a podman service minilab starts goes there. */
  home: string;
  /** Told of what connecting did on the user's behalf (a podman service started). */
  notify?: (message: string) => void;
  /** Whether a podman service may be started where none runs (commands that make things). */
  startService?: boolean;
}

/**
 * The provider for a driver. Each loads only when used (dockerode is not loaded by commands that
 * never talk to an engine).
 */
export async function connectProvider(driver: Driver, opts: ConnectOptions): Promise<Provider> {
  switch (driver) {
    case 'docker': {
      const { DockerProvider } = await import('./docker/provider.js');
      return DockerProvider.connect(opts.env);
    }
    case 'podman': {
      const { PodmanProvider } = await import('./podman/provider.js');
      return PodmanProvider.open({
        env: opts.env,
        uid: process.getuid?.(),
        log: join(opts.home, 'logs', 'podman-service.log'),
        notify: opts.notify,
        start: opts.startService ?? false,
      });
    }
    case 'qemu': {
      const { QemuProvider } = await import('./qemu/provider.js');
      const { BuildEngineImages } = await import('./qemu/build-engine.js');
      // Node images are built in a container engine: the one minilab would pick for containers.
      const engine = detectDriver(opts.env);
      const images = new BuildEngineImages(
        engine === 'docker'
          ? { name: 'Docker engine', cli: 'docker' }
          : { name: 'podman service', cli: 'podman' },
        async () => (await connectProvider(engine, opts)).images,
      );
      return new QemuProvider(
        opts.home,
        images,
        {
          qemu: findOnPath('qemu-system-x86_64', opts.env.PATH),
          qemuImg: findOnPath('qemu-img', opts.env.PATH),
        },
        opts.notify,
      );
    }
  }
}

/**
 * The driver when none is named (by --driver, MINILAB_DRIVER or a profile): Docker when
 * DOCKER_HOST is set or Docker's socket exists, else podman when CONTAINER_HOST is set, a podman
 * socket exists or podman is installed, else Docker (whose error says how to get an engine).
 */
export function detectDriver(
  env: NodeJS.ProcessEnv,
  uid = process.getuid?.(),
  exists: (path: string) => boolean = existsSync,
): Driver {
  if (env.DOCKER_HOST || exists(DOCKER_DEFAULT_SOCKET)) return 'docker';
  if (podmanServed(env, uid, exists) || onPath('podman', env.PATH)) return 'podman';
  return 'docker';
}

/** Whether a podman service is there to ask (CONTAINER_HOST, or one of its sockets exists). */
export function podmanServed(
  env: NodeJS.ProcessEnv,
  uid = process.getuid?.(),
  exists: (path: string) => boolean = existsSync,
): boolean {
  if (env.CONTAINER_HOST) return true;
  return podmanSockets(env, uid).some((s) => {
    const path = socketPath(s.address);
    return path !== undefined && exists(path);
  });
}
