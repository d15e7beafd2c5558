import { readFileSync, rmSync } from 'node:fs';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { join } from 'node:path';
import { writeFileAtomic } from './store.js';

/**
 * What tells a process apart from a later one given the same PID (after a reboot, or once the
 * kernel's PIDs wrap): the boot, the process's start time, its command line.
 */
export interface ProcessFingerprint {
  bootId: string;
  /** Field 22 of /proc/PID/stat: clock ticks from boot to the process's start. */
  startTime: string;
  cmdline: string;
}

/** A `minilab service --url` forwarder running in the background. */
export interface ServiceForward {
  pid: number;
  /** Absent where there is no /proc, and in records written before fingerprints: never trusted. */
  process?: ProcessFingerprint;
  url: string;
  namespace: string;
  service: string;
  startedAt: string;
}

const dirOf = (profileDir: string) => join(profileDir, 'services');
const fileOf = (profileDir: string, namespace: string, service: string) =>
  join(dirOf(profileDir), `${namespace}.${service}.json`);

/** The fingerprint of a running process, or undefined (no such process, or no /proc to read it from). */
export async function processFingerprint(pid: number): Promise<ProcessFingerprint | undefined> {
  try {
    const [stat, bootId, cmdline] = await Promise.all([
      readFile(`/proc/${pid}/stat`, 'utf8'),
      readFile('/proc/sys/kernel/random/boot_id', 'utf8'),
      readFile(`/proc/${pid}/cmdline`, 'utf8'),
    ]);
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its
    // last ')', where field 3 begins.
    const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3];
    return startTime ? { bootId: bootId.trim(), startTime, cmdline } : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the record's PID is still the forwarder that wrote it (not a process that got its PID later). */
async function stillRunning(f: ServiceForward): Promise<boolean> {
  if (!f.pid || !f.process) return false;
  return isDeepStrictEqual(await processFingerprint(f.pid), f.process);
}

/** Records a forwarder, with the fingerprint of its process. */
export async function recordForward(profileDir: string, f: Omit<ServiceForward, 'process'>): Promise<void> {
  const fingerprint = await processFingerprint(f.pid);
  await mkdir(dirOf(profileDir), { recursive: true, mode: 0o700 });
  await writeFileAtomic(
    fileOf(profileDir, f.namespace, f.service),
    JSON.stringify({ ...f, ...(fingerprint ? { process: fingerprint } : {}) }) + '\n',
  );
}

/**
 * Records this process as a service's background forwarder. The record is removed when the
 * process exits, whichever way (an end after SIGINT or SIGTERM, an uncaught error), or sooner by
 * the returned function; a record that names another process by then is left alone.
 */
export async function recordOwnForward(
  profileDir: string,
  f: Pick<ServiceForward, 'url' | 'namespace' | 'service'>,
): Promise<() => void> {
  const file = fileOf(profileDir, f.namespace, f.service);
  // Synchronous: an 'exit' listener cannot wait.
  const release = () => {
    process.off('exit', release);
    try {
      if ((JSON.parse(readFileSync(file, 'utf8')) as ServiceForward).pid === process.pid)
        rmSync(file, { force: true });
    } catch {
      // gone already
    }
  };
  process.on('exit', release);
  await recordForward(profileDir, { ...f, pid: process.pid, startedAt: new Date().toISOString() });
  return release;
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

/**
 * Background forwarders that still run. Records of the others are removed: their process is gone,
 * or its PID now belongs to another process.
 */
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
    if (await stillRunning(f)) out.push(f);
    else await rm(file, { force: true });
  }
  return out;
}

/** Stops background forwarders of a profile (all, or one service's); only a process that is still the recorded forwarder is signalled. */
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
