import Docker from 'dockerode';
import { existsSync } from 'node:fs';
import { MinilabError, withTimeout } from '../../errors.js';
import { ProviderError } from '../errors.js';

/** Deadline for calls that should answer at once; long streams (image load, exec) have their own. */
const CALL_TIMEOUT_MS = 20_000;
const ENGINE_HINT =
  'start a Docker engine (on Debian: sudo scripts/setup-docker.sh) or point DOCKER_HOST at a running one';
const DEFAULT_HOST = 'unix:///var/run/docker.sock';

/** The shape of dockerode's errors: the engine's HTTP status and message. */
export interface DockerError {
  statusCode?: number;
  code?: string;
  message?: string;
  json?: { message?: string };
}
export const statusOf = (err: unknown) => (err as DockerError)?.statusCode;
export const messageOf = (err: unknown) => String((err as DockerError)?.message ?? err);

/** Docker's connection options from a DOCKER_HOST value (unix:// or tcp://). */
export function engineAddress(dockerHost: string | undefined): Docker.DockerOptions {
  const where = dockerHost || DEFAULT_HOST;
  if (where.startsWith('unix://')) return { socketPath: where.slice('unix://'.length) };
  const url = /^(tcp|http|https):\/\/([^:/]+)(?::(\d+))?/.exec(where);
  if (!url) {
    throw new MinilabError('usage', `unsupported DOCKER_HOST "${where}"`, {
      hint: 'use unix:///path/to/docker.sock or tcp://HOST:PORT',
    });
  }
  return {
    host: url[2],
    port: Number(url[3] ?? 2375),
    protocol: url[1] === 'https' ? 'https' : 'http',
  };
}

/**
 * The connection to one Docker engine: every call goes through `call`, which puts a deadline on
 * it so a stuck engine cannot hang the CLI.
 */
export class DockerClient {
  private constructor(
    readonly docker: Docker,
    /** Whether the engine runs on this machine (a unix socket), so its ports and disk are ours to check. */
    readonly local: boolean,
  ) {}

  /** Connects to DOCKER_HOST or the default socket and checks that an engine answers. */
  static async connect(dockerHost: string | undefined, timeoutMs = 4_000): Promise<DockerClient> {
    const where = dockerHost || DEFAULT_HOST;
    const address = engineAddress(dockerHost);
    const docker = new Docker(address);
    const socket = address.socketPath;
    if (typeof socket === 'string' && !existsSync(socket)) {
      throw new ProviderError(
        { reason: 'unreachable' },
        `no Docker engine at ${where} (socket does not exist)`,
        { hint: ENGINE_HINT },
      );
    }
    try {
      await withTimeout(docker.ping(), timeoutMs, `the Docker engine at ${where}`);
    } catch (err) {
      throw new ProviderError({ reason: 'unreachable' }, `the Docker engine at ${where} does not answer`, {
        hint: ENGINE_HINT,
        cause: err,
      });
    }
    return new DockerClient(docker, typeof socket === 'string');
  }

  call<T>(what: string, fn: () => Promise<T>, ms = CALL_TIMEOUT_MS): Promise<T> {
    return withTimeout(fn(), ms, `the Docker engine to ${what}`, 'check that the Docker engine is healthy');
  }
}
