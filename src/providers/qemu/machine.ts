import { spawn } from 'node:child_process';
import { mkdir, readFile, readdir, rm, stat } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { MinilabError } from '../../errors.js';
import { writeFileAtomic } from '../../profile/store.js';
import { ProviderError } from '../errors.js';
import type { PortMapping } from '../types.js';
import { qemuArgs, type Accelerator, type MachineSpec } from './command.js';

/**
 * What minilab keeps of a node VM, in its folder (machine.json): what Docker's labels and
 * inspect data are for a container node. Everything else about it is the QEMU process
 * (its pid file) and the disk.
 */
export interface MachineRecord {
  name: string;
  profile: string;
  role: string;
  /** The node image the disk was made from (its tag). */
  image: string;
  /** minilab's labels, as a container node carries them (apiserver port, version, extra labels). */
  labels: Record<string, string>;
  /** The forwards the user and minilab asked for (the API server's included); SSH's apart. */
  ports: PortMapping[];
  sshPort: number;
  cpus: number;
  memoryMiB: number;
  accel: Accelerator;
  /** The node image's disk this node's overlay is made on, with its kernel and initrd. */
  base: { dir: string };
  createdAt: string;
}

/** The files of one node VM, all in its folder under the profile's. */
export function machinePaths(dir: string) {
  return {
    dir,
    record: join(dir, 'machine.json'),
    disk: join(dir, 'disk.qcow2'),
    console: join(dir, 'console.log'),
    qmp: join(dir, 'qmp.sock'),
    pidFile: join(dir, 'qemu.pid'),
    hostKey: join(dir, 'ssh_host_ed25519_key'),
    hostKeyPub: join(dir, 'ssh_host_ed25519_key.pub'),
  };
}
export type MachinePaths = ReturnType<typeof machinePaths>;

export async function readRecord(dir: string): Promise<MachineRecord | undefined> {
  try {
    return JSON.parse(await readFile(machinePaths(dir).record, 'utf8')) as MachineRecord;
  } catch {
    return undefined;
  }
}

export const writeRecord = (dir: string, record: MachineRecord) =>
  writeFileAtomic(machinePaths(dir).record, JSON.stringify(record, null, 2) + '\n');

/** The node folders of a profile (each with a machine.json), or of every profile under `root`. */
export async function machineDirs(vmRoot: string): Promise<string[]> {
  try {
    const entries = await readdir(vmRoot, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => join(vmRoot, e.name));
  } catch {
    return [];
  }
}

/**
 * The QEMU process of a node, if it runs: the pid in its pid file, alive, and (where /proc tells)
 * a QEMU whose command line names this node's folder, so a reused pid is not taken for it.
 */
export async function runningPid(paths: MachinePaths): Promise<number | undefined> {
  let pid: number;
  try {
    pid = Number((await readFile(paths.pidFile, 'utf8')).trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(paths.dir) ? pid : undefined;
  } catch {
    // no /proc (macOS): the signal answered
    return process.platform === 'linux' ? undefined : pid;
  }
}

/** When the running QEMU started (its pid file's time). */
export async function startedAt(paths: MachinePaths): Promise<string | undefined> {
  try {
    return (await stat(paths.pidFile)).mtime.toISOString();
  } catch {
    return undefined;
  }
}

/** QEMU's words when a host forward cannot listen (the port is another process's). */
const FORWARD_FAILED = /Could not set up host forwarding rule '(?:tcp|udp):[^:]*:(\d+)-/;

/**
 * Starts a node's QEMU, daemonized: resolves once QEMU has forked with the guest set up (ports
 * listening, disk open), failing with QEMU's own words, or 'port-taken' for a forward's port.
 */
export async function launch(qemu: string, spec: MachineSpec): Promise<void> {
  await mkdir(join(spec.pidFile, '..'), { recursive: true });
  await rm(spec.qmp, { force: true });
  const stderr = await new Promise<{ code: number | null; text: string }>((resolve, reject) => {
    const child = spawn(qemu, qemuArgs(spec), { stdio: ['ignore', 'ignore', 'pipe'] });
    let text = '';
    child.stderr.on('data', (c: Buffer) => (text += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, text }));
  });
  if (stderr.code === 0) return;
  const taken = FORWARD_FAILED.exec(stderr.text);
  if (taken) {
    const hostPort = Number(taken[1]);
    throw new ProviderError({ reason: 'port-taken', hostPort }, `host port ${hostPort} is already in use`);
  }
  throw new MinilabError('environment', `QEMU could not start node ${spec.name}`, {
    details: stderr.text.trim().split('\n').slice(-10),
    hint: 'the lines above are QEMU\'s; "minilab start -v" shows its command line',
  });
}

/** Sends one QMP command (after the capabilities handshake); resolves when QEMU answered. */
export function qmpCommand(socket: string, command: string, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    let buffer = '';
    let stage = 0;
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`QEMU's control socket did not answer ${command} within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (err?: Error) => {
      clearTimeout(timer);
      conn.destroy();
      if (err) reject(err);
      else resolve();
    };
    conn.on('error', done);
    conn.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc?: string } };
        if (msg.error) return done(new Error(msg.error.desc ?? `QMP ${command} failed`));
        if (stage === 0 && msg.QMP) {
          stage = 1;
          conn.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n');
        } else if (stage === 1 && 'return' in msg) {
          stage = 2;
          conn.write(JSON.stringify({ execute: command }) + '\n');
        } else if (stage === 2 && 'return' in msg) {
          done();
        }
      }
    });
  });
}

/** Waits for a process to end; true when it did within the time. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Ends a QEMU process at once (the guest is not asked): SIGKILL, then waits for it to go. */
export async function killMachine(paths: MachinePaths): Promise<boolean> {
  const pid = await runningPid(paths);
  if (pid === undefined) return false;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return false;
  }
  await waitForExit(pid, 10_000);
  return true;
}
