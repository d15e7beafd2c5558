import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  recordOwnProcess,
  runningRecord,
  stopRecorded,
  writeProcessRecord,
  type ProcessRecord,
} from './background.js';

export { processFingerprint } from './background.js';

/** A `minilab service --url` forwarder running in the background. */
export interface ServiceForward extends ProcessRecord {
  url: string;
  namespace: string;
  service: string;
}

const dirOf = (profileDir: string) => join(profileDir, 'services');
/** Where a service's background forwarder records itself. */
export const forwardFile = (profileDir: string, namespace: string, service: string) =>
  join(dirOf(profileDir), `${namespace}.${service}.json`);

/** Records a forwarder, with the fingerprint of its process. */
export const recordForward = (profileDir: string, f: Omit<ServiceForward, 'process'>) =>
  writeProcessRecord<ServiceForward>(forwardFile(profileDir, f.namespace, f.service), f);

/** Records this process as a service's background forwarder (see recordOwnProcess). */
export const recordOwnForward = (
  profileDir: string,
  f: Pick<ServiceForward, 'url' | 'namespace' | 'service'>,
): Promise<() => void> =>
  recordOwnProcess<ServiceForward>(forwardFile(profileDir, f.namespace, f.service), f);

export async function readForward(
  profileDir: string,
  namespace: string,
  service: string,
): Promise<ServiceForward | undefined> {
  try {
    return JSON.parse(await readFile(forwardFile(profileDir, namespace, service), 'utf8')) as ServiceForward;
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
    const f = await runningRecord<ServiceForward>(join(dirOf(profileDir), name));
    if (f) out.push(f);
  }
  return out;
}

/**
 * Stops background forwarders of a profile (all, or one service's), each once it has exited; only a
 * process that is still the recorded forwarder is signalled.
 */
export async function stopForwards(
  profileDir: string,
  filter?: { namespace: string; service: string },
): Promise<ServiceForward[]> {
  const stopped: ServiceForward[] = [];
  for (const f of await listForwards(profileDir)) {
    if (filter && (f.namespace !== filter.namespace || f.service !== filter.service)) continue;
    await stopRecorded(forwardFile(profileDir, f.namespace, f.service));
    stopped.push(f);
  }
  return stopped;
}
