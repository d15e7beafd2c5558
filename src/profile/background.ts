import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { MinilabError } from '../errors.js';
import { openPrivateLog } from '../private-files.js';
import { projectRoot } from '../version.js';
import { writeFileAtomic } from './store.js';

/**
 * minilab's processes in the background (`minilab service --url` forwarders, the loadbalancer
 * add-on's agent): each records itself in a file of its profile's folder, with what tells it apart
 * from a later process given the same PID, so that it is found, and ended, only while it runs.
 */

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

/** A process of minilab's running in the background, as its record file names it. */
export interface ProcessRecord {
  pid: number;
  /** Absent where there is no /proc, and in records written before fingerprints: never trusted. */
  process?: ProcessFingerprint;
  startedAt: string;
}

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

/**
 * Whether the record's PID is still the process that wrote it (not a process that got its PID
 * later). Where there is no /proc (macOS), a record has no fingerprint and the PID alone is
 * trusted; elsewhere a record without one is not.
 */
export async function stillRunning(f: ProcessRecord): Promise<boolean> {
  if (!f.pid) return false;
  if (!f.process) return !HAS_PROC && processExists(f.pid);
  return isDeepStrictEqual(await processFingerprint(f.pid), f.process);
}

const HAS_PROC = existsSync('/proc/self/stat');

/** Whether a process of this host's (pid namespace) exists: signal 0 checks without sending anything. */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Writes a process's record, with the fingerprint of its process. */
export async function writeProcessRecord<T extends ProcessRecord>(
  file: string,
  record: Omit<T, 'process'>,
): Promise<void> {
  const fingerprint = await processFingerprint(record.pid);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(
    file,
    JSON.stringify({ ...record, ...(fingerprint ? { process: fingerprint } : {}) }) + '\n',
  );
}

/**
 * Records this process in a file. The record is removed when the process exits, whichever way (an
 * end after SIGINT or SIGTERM, an uncaught error), or sooner by the returned function; a record
 * that names another process by then is left alone.
 */
export async function recordOwnProcess<T extends ProcessRecord>(
  file: string,
  fields: Omit<T, 'process' | 'pid' | 'startedAt'>,
): Promise<() => void> {
  // Synchronous: an 'exit' listener cannot wait.
  const release = () => {
    process.off('exit', release);
    try {
      if ((JSON.parse(readFileSync(file, 'utf8')) as ProcessRecord).pid === process.pid)
        rmSync(file, { force: true });
    } catch {
      // gone already
    }
  };
  process.on('exit', release);
  await writeProcessRecord<ProcessRecord>(file, {
    ...fields,
    pid: process.pid,
    startedAt: new Date().toISOString(),
  });
  return release;
}

/** A record whose process still runs, or undefined (a stale or unreadable record is removed). */
export async function runningRecord<T extends ProcessRecord>(file: string): Promise<T | undefined> {
  let record: T | undefined;
  try {
    record = JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  }
  if (record && (await stillRunning(record))) return record;
  await rm(file, { force: true });
  return undefined;
}

/**
 * Ends the recorded process if it is still the one recorded: SIGTERM, then SIGKILL if it has not
 * exited within `graceMs`; resolves once it has (what it served is closed), to whether one ran.
 */
export async function stopRecorded(file: string, graceMs = 5000): Promise<boolean> {
  const record = await runningRecord(file);
  if (!record) return false;
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(record.pid, s);
    } catch {
      // already gone
    }
  };
  const exited = async (ms: number) => {
    for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
      if (!(await stillRunning(record))) return true;
    }
    return false;
  };
  signal('SIGTERM');
  if (!(await exited(graceMs))) {
    signal('SIGKILL');
    await exited(2000);
  }
  await rm(file, { force: true });
  return true;
}

/**
 * Starts this program in the background (detached, its output in `log`) with these arguments,
 * and resolves once it has recorded itself in `file` (see recordOwnProcess), to that record. A
 * child that exits first, or records nothing in time, is an error naming the log.
 */
export async function spawnRecorded<T extends ProcessRecord>(
  args: string[],
  opts: { file: string; log: string; env: NodeJS.ProcessEnv; what: string; timeoutMs: number },
): Promise<T> {
  await mkdir(dirname(opts.log), { recursive: true, mode: 0o700 });
  const out = openPrivateLog(opts.log);
  const child = spawn(process.execPath, [join(projectRoot, 'dist', 'src', 'main.js'), ...args], {
    detached: true,
    stdio: ['ignore', out, out],
    env: opts.env,
  });
  child.unref();
  const started = Date.now();
  while (Date.now() - started < opts.timeoutMs) {
    const record = await runningRecord<T>(opts.file);
    if (record && record.pid === child.pid) return record;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (child.exitCode === null) child.kill('SIGTERM');
  throw new MinilabError('unexpected', `${opts.what} did not start`, { hint: `see ${opts.log}` });
}
