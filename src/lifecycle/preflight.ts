import { readFile, statfs } from 'node:fs/promises';
import { MinilabError } from '../errors.js';
import type { Engine } from '../runtime/engine.js';
import type { EngineInfo } from '../runtime/types.js';

export interface PreflightRequest {
  cpus?: number;
  memoryBytes?: number;
}

export interface PreflightResult {
  info: EngineInfo;
  warnings: string[];
}

const GiB = 1024 ** 3;

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
export async function preflight(engine: Engine, req: PreflightRequest): Promise<PreflightResult> {
  const info = await engine.info();
  const warnings: string[] = [];
  if (info.rootless) {
    warnings.push(
      'the Docker engine runs rootless: nodes need cgroup v2 with delegated cpu, memory and pids controllers',
    );
  }
  if (info.cgroupVersion === '2' && info.cgroupDriver !== 'systemd' && info.cgroupDriver !== 'cgroupfs') {
    warnings.push(`unusual cgroup driver "${info.cgroupDriver}" on the engine`);
  }
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
  try {
    const fs = await statfs(info.rootDir);
    const free = fs.bavail * fs.bsize;
    if (free < 2 * GiB) {
      throw new MinilabError(
        'environment',
        `only ${(free / GiB).toFixed(1)} GiB free under ${info.rootDir}`,
        {
          hint: 'free disk space (docker system prune, or remove unused node images with docker image rm)',
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
