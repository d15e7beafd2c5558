import { readFile, statfs } from 'node:fs/promises';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { MinilabError } from '../errors.js';
import { onPath } from '../on-path.js';
import { nodeImageRef } from '../image/components.js';
import type { Provider, ProviderInfo } from '../providers/types.js';

export interface PreflightRequest {
  cpus?: number;
  memoryBytes?: number;
}

export interface NewClusterRequest extends PreflightRequest {
  kubernetesVersion: string;
  nodes?: number;
  diskBytes?: number;
  ports: { hostPort: number; containerPort: number; protocol: 'tcp' | 'udp' }[];
}

export interface PreflightResult {
  info: ProviderInfo;
  warnings: string[];
}

const GiB = 1024 ** 3;
const UNPRIVILEGED_PORT_START = '/proc/sys/net/ipv4/ip_unprivileged_port_start';

async function readNumber(path: string): Promise<number | undefined> {
  try {
    return Number((await readFile(path, 'utf8')).trim());
  } catch {
    return undefined;
  }
}

/**
 * Checks the host before anything is made: engine, cgroups, disk, inotify limits, and what was
 * asked for. Fatal problems throw (each naming its fix); the rest come back as warnings.
 */
export async function preflight(provider: Provider, req: PreflightRequest): Promise<PreflightResult> {
  const info = await provider.info();
  refuseIfImpossible(info);
  const warnings: string[] = [...(info.warnings ?? [])];
  // (podman's own refusals say what its rootless mode lacks, above)
  if (info.rootless && info.refusals === undefined) {
    warnings.push(
      `the ${info.engine.name} engine runs rootless: nodes need cgroup v2 with delegated cpu, memory and pids controllers`,
    );
  }
  if (info.cgroupVersion === '2' && info.cgroupDriver !== 'systemd' && info.cgroupDriver !== 'cgroupfs') {
    warnings.push(`unusual cgroup driver "${info.cgroupDriver}" on the engine`);
  }
  checkResources(info, req);
  try {
    const fs = await statfs(info.rootDir);
    const free = fs.bavail * fs.bsize;
    if (free < 2 * GiB) {
      throw new MinilabError(
        'environment',
        `only ${(free / GiB).toFixed(1)} GiB free under ${info.rootDir}`,
        {
          hint: `free disk space (${provider.images.engine.cli} system prune, or remove unused node images with ${provider.images.engine.cli} image rm)`,
        },
      );
    }
    if (free < 10 * GiB)
      warnings.push(`only ${(free / GiB).toFixed(1)} GiB free under ${info.rootDir}: pods may be evicted`);
  } catch (err) {
    if (err instanceof MinilabError) throw err;
    // The engine's root is not on this machine (remote engine): nothing to check here.
  }
  const watches = await readNumber('/proc/sys/fs/inotify/max_user_watches');
  const instances = await readNumber('/proc/sys/fs/inotify/max_user_instances');
  if (watches !== undefined && watches < 524288) {
    warnings.push(
      `fs.inotify.max_user_watches is ${watches}; several clusters may hit "too many open files" (fix: sudo sysctl fs.inotify.max_user_watches=524288)`,
    );
  }
  if (instances !== undefined && instances < 512) {
    warnings.push(
      `fs.inotify.max_user_instances is ${instances}; several clusters may hit "too many open files" (fix: sudo sysctl fs.inotify.max_user_instances=512)`,
    );
  }
  return { info, warnings };
}

/** The engine's own reason no cluster can run on it (a rootless podman on cgroup v1), as an error. */
function refuseIfImpossible(info: ProviderInfo): void {
  const refusal = info.refusals?.[0];
  if (refusal) throw new MinilabError('environment', refusal.message, { hint: refusal.hint });
}

/** What was asked of the engine's CPUs and memory, against what it has. */
export function checkResources(info: ProviderInfo, req: PreflightRequest): void {
  if (req.cpus !== undefined && req.cpus > info.cpus) {
    throw new MinilabError('environment', `--cpus ${req.cpus} is more than the engine's ${info.cpus} CPUs`, {
      hint: `use --cpus ${info.cpus} or fewer`,
    });
  }
  if (req.memoryBytes !== undefined) {
    if (req.memoryBytes > info.memoryBytes) {
      throw new MinilabError(
        'environment',
        `--memory ${(req.memoryBytes / GiB).toFixed(1)}g is more than the engine's ${(info.memoryBytes / GiB).toFixed(1)}g`,
        {
          hint: `use at most --memory ${Math.floor(info.memoryBytes / GiB)}g`,
        },
      );
    }
    if (req.memoryBytes < 1.5 * GiB) {
      throw new MinilabError('usage', `--memory below 1.5g cannot hold a control plane`, {
        hint: 'use --memory 2g or more',
      });
    }
  }
}

/**
 * Refuses a new cluster that cannot work (more CPUs or memory than the engine has, a host port in
 * use, a node image that is missing and cannot be built here) before anything is locked or written.
 */
export async function checkNewCluster(
  provider: Provider,
  req: NewClusterRequest,
  opts: { path?: string; fromFile?: boolean },
): Promise<void> {
  const info = await provider.info();
  refuseIfImpossible(info);
  checkResources(info, req);
  if (info.maxNodes !== undefined && (req.nodes ?? 1) > info.maxNodes) {
    throw new MinilabError(
      'usage',
      `the ${info.driver} driver runs clusters of at most ${info.maxNodes} node${info.maxNodes === 1 ? '' : 's'} for now`,
      { hint: `start with --nodes ${info.maxNodes}, or use --driver docker for several nodes` },
    );
  }
  if (req.diskBytes !== undefined && !info.diskSize) {
    throw new MinilabError('usage', `--disk-size applies to VM drivers only, not ${info.driver}`, {
      hint: `leave --disk-size out (a ${info.driver} node's disk is the engine's), or use --driver qemu`,
    });
  }
  if (req.diskBytes !== undefined && req.diskBytes < 10 * GiB) {
    throw new MinilabError('usage', `--disk-size below 10g cannot hold a node`, {
      hint: 'use --disk-size 20g or more',
    });
  }
  // Rootless podman publishes ports as the user: below the kernel's unprivileged start it cannot
  // (rootless Docker's rootlesskit may have been given the capability: not checked there).
  const lowest =
    info.rootless && info.local && info.driver === 'podman'
      ? await readNumber(UNPRIVILEGED_PORT_START)
      : undefined;
  const low = lowest === undefined ? undefined : req.ports.find((p) => p.hostPort < lowest);
  if (low && lowest !== undefined) {
    throw new MinilabError(
      'environment',
      `host port ${low.hostPort} is below ${lowest}, the lowest a rootless ${info.engine.name} may publish`,
      {
        hint: `choose a host port of ${lowest} or more, or allow it: sudo sysctl net.ipv4.ip_unprivileged_port_start=${low.hostPort}`,
      },
    );
  }
  // Ports of a remote engine are taken or free on its machine, not this one.
  for (const p of info.local ? req.ports : []) {
    if (!(await portFree(p.hostPort, p.protocol))) {
      throw new MinilabError('environment', `host port ${p.hostPort} is already in use`, {
        hint: opts.fromFile
          ? 'free it, or choose another host port in the config file'
          : `free it, or choose another with --ports HOST:${p.containerPort}`,
      });
    }
  }
  const image = nodeImageRef(req.kubernetesVersion);
  if (!(await provider.images.info(image)) && !onPath('go', opts.path)) {
    throw new MinilabError(
      'environment',
      `there is no node image ${image} and it cannot be built here: go is not on PATH`,
      {
        hint: 'install Go 1.24 or later (scripts/setup.sh does), or use a built version: minilab image ls --node-images',
      },
    );
  }
}

/** Whether nothing listens on 127.0.0.1:port (what the engine publishes on). */
function portFree(port: number, protocol: 'tcp' | 'udp'): Promise<boolean> {
  return new Promise((resolve) => {
    const taken = (err: NodeJS.ErrnoException) => resolve(err.code !== 'EADDRINUSE');
    if (protocol === 'udp') {
      const socket = createSocket('udp4');
      socket.once('error', (err) => {
        socket.close();
        taken(err);
      });
      socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
    } else {
      const server = createServer();
      server.once('error', taken);
      server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
    }
  });
}
