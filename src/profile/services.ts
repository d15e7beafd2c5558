import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './store.js';

/** A `minilab service --url` forwarder running in the background. */
export interface ServiceForward {
  pid: number;
  url: string;
  namespace: string;
  service: string;
  startedAt: string;
}

const dirOf = (profileDir: string) => join(profileDir, 'services');
const fileOf = (profileDir: string, namespace: string, service: string) =>
  join(dirOf(profileDir), `${namespace}.${service}.json`);

export async function recordForward(profileDir: string, f: ServiceForward): Promise<void> {
  await mkdir(dirOf(profileDir), { recursive: true, mode: 0o700 });
  await writeFileAtomic(fileOf(profileDir, f.namespace, f.service), JSON.stringify(f) + '\n');
}

export async function readForward(
  profileDir: string,
  namespace: string,
  service: string,
): Promise<ServiceForward | undefined> {
  try {
    return JSON.parse(await readFile(fileOf(profileDir, namespace, service), 'utf8')) as ServiceForward;
  } catch {
    return undefined;
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Background forwarders that still run (records of dead ones are removed). */
export async function listForwards(profileDir: string): Promise<ServiceForward[]> {
  let names: string[];
  try {
    names = await readdir(dirOf(profileDir));
  } catch {
    return [];
  }
  const out: ServiceForward[] = [];
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    const file = join(dirOf(profileDir), name);
    const f = JSON.parse(await readFile(file, 'utf8').catch(() => '{}')) as ServiceForward;
    if (f.pid && alive(f.pid)) out.push(f);
    else await rm(file, { force: true });
  }
  return out;
}

/** Stops background forwarders of a profile (all, or one service's). */
export async function stopForwards(
  profileDir: string,
  filter?: { namespace: string; service: string },
): Promise<ServiceForward[]> {
  const stopped: ServiceForward[] = [];
  for (const f of await listForwards(profileDir)) {
    if (filter && (f.namespace !== filter.namespace || f.service !== filter.service)) continue;
    try {
      process.kill(f.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    await rm(fileOf(profileDir, f.namespace, f.service), { force: true });
    stopped.push(f);
  }
  return stopped;
}
