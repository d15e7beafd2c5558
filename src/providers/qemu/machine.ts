import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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

/**
 * Where QEMU's control socket goes: a Unix socket's path may not pass 107 bytes (103 on macOS),
 * and a node's folder names its profile twice (a 26-character profile under /home/alice passed
 * it). So it lives in a short private folder of this user's, named by a hash of the node's folder.
 */
export function controlSocket(dir: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_RUNTIME_DIR || join(tmpdir(), `minilab-${process.getuid?.() ?? 'user'}`);
  const name = createHash('sha256').update(dir).digest('hex').slice(0, 16);
  return join(base, 'minilab-qmp', `${name}.sock`);
}

/** The files of one node VM, in its folder under the profile's (the control socket apart). */
export function machinePaths(dir: string) {
  return {
    dir,
    record: join(dir, 'machine.json'),
    disk: join(dir, 'disk.qcow2'),
    console: join(dir, 'console.log'),
    qmp: controlSocket(dir),
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
 * a QEMU whose command line names this node's pid file as its own, so a reused pid is not taken
 * for it (the pid file outlives a killed QEMU and a reboot).
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
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    const i = argv.indexOf('-pidfile');
    return i >= 0 && argv[i + 1] === paths.pidFile ? pid : undefined;
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
  await mkdir(join(spec.qmp, '..'), { recursive: true, mode: 0o700 });
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
export function qmpCommand(
  socket: string,
  command: string,
  args?: Record<string, unknown>,
  timeoutMs = 5_000,
): Promise<void> {
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
        let msg: { QMP?: unknown; return?: unknown; error?: { desc?: string } };
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          return done(
            new Error(`QEMU's control socket sent something that is not JSON: ${line.slice(0, 80)}`),
          );
        }
        if (msg.error) return done(new Error(msg.error.desc ?? `QMP ${command} failed`));
        if (stage === 0 && msg.QMP) {
          stage = 1;
          conn.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n');
        } else if (stage === 1 && 'return' in msg) {
          stage = 2;
          conn.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) + '\n');
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
  let killed = false;
  if (pid !== undefined) {
    try {
      process.kill(pid, 'SIGKILL');
      killed = await waitForExit(pid, 10_000);
    } catch {
      // gone already
    }
  }
  // a pid file left behind would name whichever process gets that pid next
  if (pid === undefined || killed) await forgetProcess(paths);
  return killed;
}

/** The files of a QEMU that has ended: its pid file and control socket. */
export async function forgetProcess(paths: MachinePaths): Promise<void> {
  await rm(paths.pidFile, { force: true });
  await rm(paths.qmp, { force: true });
}
