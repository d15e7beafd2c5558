import type Docker from 'dockerode';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { Agent } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { MinilabError, withTimeout } from '../../errors.js';
import { ProviderError } from '../errors.js';
import { DOCKER_DIALECT, type Dialect } from './dialect.js';
import { Dockerode } from './dockerode.js';
import { DOCKER_DEFAULT_SOCKET } from './socket.js';

/** Deadline for calls that should answer at once; long streams (image load, exec) have their own. */
const CALL_TIMEOUT_MS = 20_000;
const ENGINE_HINT =
  'start a Docker engine (on Debian: sudo scripts/setup-docker.sh) or point DOCKER_HOST at a running one';
const DEFAULT_HOST = `unix://${DOCKER_DEFAULT_SOCKET}`;

/** The shape of dockerode's errors: the engine's HTTP status and message. */
export interface DockerError {
  statusCode?: number;
  code?: string;
  message?: string;
  json?: { message?: string };
}
export const statusOf = (err: unknown) => (err as DockerError)?.statusCode;
export const messageOf = (err: unknown) => String((err as DockerError)?.message ?? err);

/** The environment the docker CLI reads to reach an engine (and so does minilab). */
export interface EngineEnv {
  DOCKER_HOST?: string;
  /** Non-empty: TLS, the engine's certificate checked against ca.pem. */
  DOCKER_TLS_VERIFY?: string;
  /** Non-empty: TLS without checking the engine's certificate. */
  DOCKER_TLS?: string;
  /** Where ca.pem, cert.pem and key.pem are (default: ~/.docker). */
  DOCKER_CERT_PATH?: string;
  HOME?: string;
}

/**
 * Docker's connection options from the environment, as the docker CLI reads it: DOCKER_HOST
 * (unix:// or tcp://); over TCP, TLS when DOCKER_TLS_VERIFY or DOCKER_TLS is set (non-empty),
 * with DOCKER_CERT_PATH's (or ~/.docker's) ca.pem, cert.pem and key.pem, and the engine's
 * certificate verified when DOCKER_TLS_VERIFY is.
 */
export function engineAddress(env: EngineEnv): Docker.DockerOptions & { agent?: Agent } {
  const where = env.DOCKER_HOST || DEFAULT_HOST;
  if (where.startsWith('unix://')) return { socketPath: where.slice('unix://'.length) };
  const url = /^(tcp|http|https):\/\/([^:/]+)(?::(\d+))?/.exec(where);
  if (!url) {
    throw new MinilabError('usage', `unsupported DOCKER_HOST "${where}"`, {
      hint: 'use unix:///path/to/docker.sock or tcp://HOST:PORT',
    });
  }
  const address = { host: url[2], port: Number(url[3] ?? 2375) };
  const verify = Boolean(env.DOCKER_TLS_VERIFY);
  if (!verify && !env.DOCKER_TLS) return { ...address, protocol: url[1] === 'https' ? 'https' : 'http' };
  const certs = env.DOCKER_CERT_PATH || join(env.HOME || homedir(), '.docker');
  const read = (name: string, required: boolean) => {
    const file = join(certs, name);
    if (!required && !existsSync(file)) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new MinilabError('environment', `cannot read ${file} for TLS to the Docker engine at ${where}`, {
        hint: 'put ca.pem, cert.pem and key.pem in DOCKER_CERT_PATH (default ~/.docker), as the docker CLI expects',
        cause: err,
      });
    }
  };
  // As the docker CLI: the client certificate when there is one; the CA only to verify with.
  const cert = read('cert.pem', false);
  const key = read('key.pem', cert !== undefined);
  const ca = verify ? read('ca.pem', true) : undefined;
  return {
    ...address,
    protocol: 'https',
    ...(ca ? { ca } : {}),
    ...(cert && key ? { cert, key } : {}),
    // dockerode passes no rejectUnauthorized of its own: an agent carries it.
    ...(verify ? {} : { agent: new Agent({ rejectUnauthorized: false }) }),
  };
}

/**
 * GET /_ping by hand (dockerode's ping returns no headers), for a header of its answer; rejects
 * unless the engine answers 200. Only for plain HTTP addresses (unix or TCP): the podman service's.
 */
function pingHeader(docker: Docker, header: string): Promise<string | undefined> {
  const { socketPath, host, port } = docker.modem as { socketPath?: string; host?: string; port?: number };
  const where = typeof socketPath === 'string' ? { socketPath } : { host, port };
  return new Promise((resolve, reject) => {
    const req = request({ ...where, path: '/_ping', method: 'GET' }, (res) => {
      res.resume();
      const v = res.headers[header];
      if (res.statusCode !== 200) reject(new Error(`/_ping answered ${res.statusCode}`));
      else resolve(typeof v === 'string' && v ? v : undefined);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * The connection to one engine speaking Docker's API (Docker, or the podman service with its
 * dialect): every call goes through `call`, which puts a deadline on it so a stuck engine cannot
 * hang the CLI.
 */
export class DockerClient {
  private constructor(
    readonly docker: Docker,
    /** Whether the engine runs on this machine (a unix socket), so its ports and disk are ours to check. */
    readonly local: boolean,
    /** Where it differs from Docker. */
    readonly dialect: Dialect,
    /** What the engine's version header on /_ping said (the podman service sends one). */
    readonly pingVersion?: string,
  ) {}

  /** Connects to DOCKER_HOST (with TLS as the docker CLI would) or the default socket; checks it answers. */
  static connect(env: EngineEnv, timeoutMs = 4_000): Promise<DockerClient> {
    return DockerClient.open(
      engineAddress(env),
      env.DOCKER_HOST || DEFAULT_HOST,
      DOCKER_DIALECT,
      ENGINE_HINT,
      timeoutMs,
    );
  }

  /** Connects to an engine at `address` (`where` names it in messages); checks it answers. */
  static async open(
    address: Docker.DockerOptions,
    where: string,
    dialect: Dialect,
    hint: string,
    timeoutMs = 4_000,
  ): Promise<DockerClient> {
    const docker = new Dockerode(address);
    const socket = address.socketPath;
    const name = dialect.engine;
    if (typeof socket === 'string' && !existsSync(socket)) {
      throw new ProviderError({ reason: 'unreachable' }, `no ${name} at ${where} (socket does not exist)`, {
        hint,
      });
    }
    let version: string | undefined;
    try {
      version = await withTimeout(
        dialect.versionHeader
          ? pingHeader(docker, dialect.versionHeader)
          : docker.ping().then(() => undefined),
        timeoutMs,
        `the ${name} at ${where}`,
      );
    } catch (err) {
      throw new ProviderError({ reason: 'unreachable' }, `the ${name} at ${where} does not answer`, {
        hint,
        cause: err,
      });
    }
    return new DockerClient(docker, typeof socket === 'string', dialect, version);
  }

  call<T>(what: string, fn: () => Promise<T>, ms = CALL_TIMEOUT_MS): Promise<T> {
    return withTimeout(fn(), ms, `the ${this.dialect.engine} to ${what}`, this.dialect.hint);
  }
}
