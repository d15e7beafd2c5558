import type { Readable } from 'node:stream';
import type {
  ExecOptions,
  ExecResult,
  Node,
  NodeResources,
  NodeState,
  StreamIO,
  TerminalIO,
} from '../types.js';
import type { Containers } from './containers.js';
import type { Exec } from './exec.js';

/** The deadline of a command run in a node when its caller names none. */
const EXEC_TIMEOUT_MS = 120_000;

/** A node that is a container: every operation is one engine call on it. */
export class DockerNode implements Node {
  constructor(
    readonly state: NodeState,
    private readonly containers: Containers,
    private readonly execs: Exec,
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

  refresh(): Promise<NodeState | undefined> {
    return this.containers.inspect(this.state.id || this.name);
  }
  exec(cmd: string[], opts?: ExecOptions): Promise<ExecResult> {
    // A command whose output is collected is a short one: none runs without a deadline.
    return this.execs.run(this.name, cmd, { timeoutMs: EXEC_TIMEOUT_MS, ...opts });
  }
  execStream(cmd: string[], io: StreamIO): Promise<number> {
    return this.execs.stream(this.name, cmd, io);
  }
  execInteractive(cmd: string[], term: TerminalIO): Promise<number> {
    return this.execs.interactive(this.name, cmd, term);
  }
  copyIn(dir: string, tar: Readable): Promise<void> {
    return this.containers.putArchive(this.name, dir, tar);
  }
  copyOut(path: string): Promise<Readable> {
    return this.containers.getArchive(this.name, path);
  }
  logs(opts?: { tail?: number; follow?: boolean }): Promise<Readable> {
    return this.containers.logs(this.name, opts);
  }
  stats(): Promise<NodeResources> {
    return this.containers.stats(this.name);
  }
}
