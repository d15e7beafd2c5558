import { open, readFile, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { Labels, ownedLabels } from '../../labels.js';
import type {
  ExecOptions,
  ExecResult,
  Node,
  NodeResources,
  NodeState,
  StreamIO,
  TerminalIO,
} from '../types.js';
import { GUEST_ADDRESS } from './command.js';
import { machinePaths, runningPid, startedAt, type MachineRecord } from './machine.js';
import type { SshConnection } from './ssh.js';

/** The deadline of a command run in a node when its caller names none (as for a container node). */
const EXEC_TIMEOUT_MS = 120_000;

/** A node VM's state in the words a container node's is given (what lifecycle code reads). */
export async function machineState(dir: string, record: MachineRecord): Promise<NodeState> {
  const paths = machinePaths(dir);
  const pid = await runningPid(paths);
  return {
    id: record.name,
    name: record.name,
    profile: record.profile,
    role: record.role,
    image: record.image,
    status: pid === undefined ? 'exited' : 'running',
    running: pid !== undefined,
    ip: GUEST_ADDRESS,
    ports: pid === undefined ? [] : record.ports,
    labels: { ...record.labels, ...ownedLabels(record.profile, 'node'), [Labels.role]: record.role },
    startedAt: pid === undefined ? undefined : await startedAt(paths),
  };
}

/** A node that is a QEMU VM: commands and copies go over SSH, logs are its serial console. */
export class QemuNode implements Node {
  constructor(
    readonly state: NodeState,
    readonly dir: string,
    private readonly record: MachineRecord,
    readonly ssh: SshConnection,
  ) {}

  get name() {
    return this.state.name;
  }
  get role() {
    return this.state.role;
  }
  get profile() {
    return this.state.profile;
  }

  async refresh(): Promise<NodeState | undefined> {
    try {
      await stat(machinePaths(this.dir).record);
    } catch {
      return undefined;
    }
    return machineState(this.dir, this.record);
  }
  exec(cmd: string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.ssh.run(cmd, { timeoutMs: EXEC_TIMEOUT_MS, ...opts });
  }
  execStream(cmd: string[], io: StreamIO): Promise<number> {
    return this.ssh.stream(cmd, io);
  }
  execInteractive(cmd: string[], term: TerminalIO): Promise<number> {
    return this.ssh.interactive(cmd, term);
  }
  copyIn(dir: string, tar: Readable): Promise<void> {
    return this.ssh.putTar(dir, tar);
  }
  copyOut(path: string): Promise<Readable> {
    return this.ssh.getTar(path);
  }
  logs(opts: { tail?: number; follow?: boolean } = {}): Promise<Readable> {
    return consoleLog(machinePaths(this.dir).console, opts);
  }
  async stats(): Promise<NodeResources> {
    const pid = await runningPid(machinePaths(this.dir));
    if (pid === undefined) return { memoryBytes: 0, cpuSeconds: 0 };
    return processResources(pid);
  }
  /** Ends the SSH connection (a handle that is done with). */
  close(): void {
    this.ssh.close();
  }
}

/** Clock ticks a second in /proc/PID/stat (USER_HZ, 100 on every Linux architecture minilab runs on). */
const USER_HZ = 100;

/** The QEMU process's resident memory (the guest's touched memory and QEMU's own) and CPU time. */
export async function processResources(pid: number): Promise<NodeResources> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
    // the fields after the command's closing parenthesis: utime and stime are the 12th and 13th
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { memoryBytes: rssKb * 1024, cpuSeconds: ticks / USER_HZ };
  } catch {
    return { memoryBytes: 0, cpuSeconds: 0 };
  }
}

/**
 * The serial console's log: its last `tail` lines, then (following) what QEMU appends, until the
 * reader stops reading.
 */
export async function consoleLog(path: string, opts: { tail?: number; follow?: boolean }): Promise<Readable> {
  // Bytes, not text: a serial console carries what is not UTF-8, and the follow offset is the file's.
  let data = Buffer.alloc(0);
  try {
    data = await readFile(path);
  } catch {
    // not booted yet: nothing logged
  }
  const start = opts.tail === undefined ? data : lastLinesOf(data, opts.tail);
  if (!opts.follow) return Readable.from([start]);
  let offset = data.length;
  let reading = false;
  const poll = async () => {
    if (reading) return;
    reading = true;
    try {
      const size = (await stat(path)).size;
      if (size > offset) {
        const fh = await open(path, 'r');
        try {
          const buf = Buffer.alloc(size - offset);
          const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
          offset += bytesRead;
          if (!stream.destroyed) stream.push(buf.subarray(0, bytesRead));
        } finally {
          await fh.close();
        }
      }
    } catch {
      // not there yet (a node that never booted): nothing to send
    } finally {
      reading = false;
    }
  };
  const timer = setInterval(() => void poll(), 250);
  const stream = new Readable({
    read() {},
    destroy(err, cb) {
      clearInterval(timer);
      cb(err);
    },
  });
  stream.push(start);
  return stream;
}

/** The last `n` lines of a buffer (a final newline ends the last line, it does not start another). */
function lastLinesOf(data: Buffer, n: number): Buffer {
  let end = data.length;
  if (end > 0 && data[end - 1] === 0x0a) end--;
  let i = end;
  for (let seen = 0; i > 0; i--) {
    if (data[i - 1] === 0x0a && ++seen === n) break;
  }
  return data.subarray(i);
}
