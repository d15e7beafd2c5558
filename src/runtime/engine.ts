import Docker from 'dockerode';
import { existsSync } from 'node:fs';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MinilabError, withTimeout } from '../errors.js';
import { Labels, labelFilter } from './labels.js';
import { nodeCreateOptions, nodeStateFromInspect, nodeStateFromList } from './translate.js';
import type { EngineInfo, ExecResult, ImageInfo, NodeSpec, NodeState } from './types.js';

/** Deadline for calls that should answer at once; long streams (image load, exec) have their own. */
const CALL_TIMEOUT_MS = 20_000;
const ENGINE_HINT =
  'start a Docker engine (on Debian: sudo scripts/setup-docker.sh) or point DOCKER_HOST at a running one';

interface DockerError {
  statusCode?: number;
  code?: string;
  message?: string;
  json?: { message?: string };
}
/** One line of docker pull's progress stream. */
interface PullEvent {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}
const statusOf = (err: unknown) => (err as DockerError)?.statusCode;

const DEFAULT_HOST = 'unix:///var/run/docker.sock';

/** Docker's connection options from a DOCKER_HOST value (unix:// or tcp://). */
export function engineAddress(dockerHost: string | undefined): Docker.DockerOptions {
  const where = dockerHost || DEFAULT_HOST;
  if (where.startsWith('unix://')) return { socketPath: where.slice('unix://'.length) };
  const url = /^(tcp|http|https):\/\/([^:/]+)(?::(\d+))?/.exec(where);
  if (!url) {
    throw new MinilabError('usage', `unsupported DOCKER_HOST "${where}"`, {
      hint: 'use unix:///path/to/docker.sock or tcp://HOST:PORT',
    });
  }
  return {
    host: url[2],
    port: Number(url[3] ?? 2375),
    protocol: url[1] === 'https' ? 'https' : 'http',
  };
}

/**
 * The Docker engine. The only module that imports dockerode: callers speak minilab's types
 * (NodeSpec, NodeState, ExecResult). Every call has a deadline so a stuck engine cannot hang the CLI.
 */
export class Engine {
  private constructor(private readonly docker: Docker) {}

  /** Connects to DOCKER_HOST or the default socket and checks that an engine answers. */
  static async connect(dockerHost: string | undefined, timeoutMs = 4_000): Promise<Engine> {
    const where = dockerHost || DEFAULT_HOST;
    const address = engineAddress(dockerHost);
    const docker = new Docker(address);
    const socket = address.socketPath;
    if (typeof socket === 'string' && !existsSync(socket)) {
      throw new MinilabError('environment', `no Docker engine at ${where} (socket does not exist)`, {
        hint: ENGINE_HINT,
      });
    }
    try {
      await withTimeout(docker.ping(), timeoutMs, `the Docker engine at ${where}`);
    } catch (err) {
      throw new MinilabError('environment', `the Docker engine at ${where} does not answer`, {
        hint: ENGINE_HINT,
        cause: err,
      });
    }
    return new Engine(docker);
  }

  private call<T>(what: string, fn: () => Promise<T>, ms = CALL_TIMEOUT_MS): Promise<T> {
    return withTimeout(fn(), ms, `the Docker engine to ${what}`, 'check that the Docker engine is healthy');
  }

  async info(): Promise<EngineInfo> {
    const i = await this.call('report its info', () => this.docker.info());
    return {
      serverVersion: i.ServerVersion,
      cgroupVersion: i.CgroupVersion === '2' ? '2' : '1',
      cgroupDriver: i.CgroupDriver,
      rootDir: i.DockerRootDir,
      cpus: i.NCPU,
      memoryBytes: i.MemTotal,
      os: i.OperatingSystem,
      rootless: (i.SecurityOptions ?? []).some((o: string) => o.includes('rootless')),
    };
  }

  // ---- networks ----------------------------------------------------------------------------

  /** Creates the network unless it exists; reports whether this call created it (so rollback removes only that). */
  async ensureNetwork(name: string, labels: Record<string, string>): Promise<{ created: boolean }> {
    const existing = await this.call('list networks', () =>
      this.docker.listNetworks({ filters: { name: [name] } }),
    );
    if (existing.some((n) => n.Name === name)) return { created: false };
    try {
      await this.call('create a network', () =>
        this.docker.createNetwork({ Name: name, Driver: 'bridge', Labels: labels, CheckDuplicate: true }),
      );
      return { created: true };
    } catch (err) {
      if (statusOf(err) === 409) return { created: false };
      throw err;
    }
  }

  /** Removes a network if nothing is attached to it; "already gone" and "still in use" are reported, not thrown. */
  async removeNetwork(name: string): Promise<'removed' | 'absent' | 'in-use'> {
    try {
      const net = this.docker.getNetwork(name);
      const info = await this.call('inspect a network', () => net.inspect());
      if (Object.keys(info.Containers ?? {}).length > 0) return 'in-use';
      await this.call('remove a network', () => net.remove());
      return 'removed';
    } catch (err) {
      if (statusOf(err) === 404) return 'absent';
      if (statusOf(err) === 403 || statusOf(err) === 409) return 'in-use';
      throw err;
    }
  }

  async listNetworks(labels: Record<string, string>): Promise<string[]> {
    const nets = await this.call('list networks', () =>
      this.docker.listNetworks({ filters: { label: labelFilter(labels) } }),
    );
    return nets.map((n) => n.Name);
  }

  // ---- volumes -----------------------------------------------------------------------------

  async ensureVolume(name: string, labels: Record<string, string>): Promise<{ created: boolean }> {
    try {
      await this.call('inspect a volume', () => this.docker.getVolume(name).inspect());
      return { created: false };
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    await this.call('create a volume', () => this.docker.createVolume({ Name: name, Labels: labels }));
    return { created: true };
  }

  async removeVolume(name: string): Promise<'removed' | 'absent'> {
    try {
      await this.call('remove a volume', () => this.docker.getVolume(name).remove({ force: true }));
      return 'removed';
    } catch (err) {
      if (statusOf(err) === 404) return 'absent';
      throw err;
    }
  }

  async listVolumes(labels: Record<string, string>): Promise<string[]> {
    const res = await this.call('list volumes', () =>
      this.docker.listVolumes({ filters: { label: labelFilter(labels) } }),
    );
    return (res.Volumes ?? []).map((v) => v.Name);
  }

  // ---- containers --------------------------------------------------------------------------

  async createNode(spec: NodeSpec): Promise<NodeState> {
    const container = await this.call('create a container', () =>
      this.docker.createContainer(nodeCreateOptions(spec)),
    );
    return this.inspect(container.id) as Promise<NodeState>;
  }

  /** The container's state, or undefined when it does not exist. */
  async inspect(nameOrId: string): Promise<NodeState | undefined> {
    try {
      const info = await this.call('inspect a container', () => this.docker.getContainer(nameOrId).inspect());
      return nodeStateFromInspect(info);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  async listContainers(labels: Record<string, string>): Promise<NodeState[]> {
    const list = await this.call('list containers', () =>
      this.docker.listContainers({ all: true, filters: { label: labelFilter(labels) } }),
    );
    return list.map(nodeStateFromList).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Starts a container; "already running" counts as success. */
  async start(nameOrId: string): Promise<void> {
    try {
      await this.call('start a container', () => this.docker.getContainer(nameOrId).start());
    } catch (err) {
      if (statusOf(err) === 304) return;
      throw err;
    }
  }

  /** Stops a container; "already stopped" and "already gone" count as success. */
  async stop(nameOrId: string, timeoutSeconds = 10): Promise<void> {
    try {
      await this.call(
        'stop a container',
        () => this.docker.getContainer(nameOrId).stop({ t: timeoutSeconds }),
        (timeoutSeconds + 20) * 1000,
      );
    } catch (err) {
      if (statusOf(err) === 304 || statusOf(err) === 404) return;
      throw err;
    }
  }

  async kill(nameOrId: string, signal = 'SIGKILL'): Promise<void> {
    try {
      await this.call('kill a container', () => this.docker.getContainer(nameOrId).kill({ signal }));
    } catch (err) {
      if (statusOf(err) === 404 || statusOf(err) === 409) return;
      throw err;
    }
  }

  /**
   * Removes a container (forced, with its anonymous volumes); "already gone" counts as success.
   * A node killed while runc inside it was changing a pod container's cgroups can leave that
   * cgroup frozen (cgroup v1); its processes then never die and the engine cannot kill the node.
   * Such cgroups are thawed (see thawFrozenCgroups) and the removal tried once more.
   */
  async remove(nameOrId: string): Promise<'removed' | 'absent'> {
    const once = async (): Promise<'removed' | 'absent'> => {
      try {
        await this.call(
          'remove a container',
          () => this.docker.getContainer(nameOrId).remove({ force: true, v: true }),
          60_000,
        );
        return 'removed';
      } catch (err) {
        if (statusOf(err) === 404) return 'absent';
        if (statusOf(err) === 409 && /already in progress/.test(String((err as DockerError).message)))
          return 'removed';
        throw err;
      }
    };
    try {
      return await once();
    } catch (err) {
      if (!/did not receive an exit event|could not kill/.test(String((err as Error).message))) throw err;
      const c = await this.docker.getContainer(nameOrId).inspect();
      await this.thawFrozenCgroups({
        id: c.Id,
        name: c.Name.replace(/^\//, ''),
        image: c.Image,
        labels: c.Config.Labels ?? {},
      });
      return once();
    }
  }

  /**
   * Thaws every frozen or freezing cgroup of a container (freezer.state on cgroup v1,
   * cgroup.freeze on v2) from a short-lived privileged helper made from the container's own image,
   * which sees the engine host's cgroup tree at /host-cgroup. The helper carries the container's
   * profile and extra labels (kind "helper"), so a helper left by an interrupted run is found.
   */
  async thawFrozenCgroups(c: {
    id: string;
    name: string;
    image: string;
    labels: Record<string, string>;
  }): Promise<void> {
    const script = `for f in $(find /host-cgroup -path "*${c.id}*" \\( -name freezer.state -o -name cgroup.freeze \\) 2>/dev/null); do
      case "$f" in
        *freezer.state) grep -qx THAWED "$f" || echo THAWED > "$f" ;;
        *cgroup.freeze) grep -qx 0 "$f" || echo 0 > "$f" ;;
      esac
    done; true`;
    const nodeOnly: string[] = [Labels.role, Labels.node, Labels.apiServerPort, Labels.version];
    const labels = Object.fromEntries(Object.entries(c.labels).filter(([k]) => !nodeOnly.includes(k)));
    const name = `${c.name}-thaw`;
    await this.remove(name);
    await this.createPlain({
      name,
      image: c.image,
      entrypoint: ['sh', '-c', script],
      labels: { ...labels, [Labels.managed]: 'true', [Labels.kind]: 'helper' },
      privileged: true,
      binds: ['/sys/fs/cgroup:/host-cgroup'],
    });
    try {
      await this.start(name);
      await this.waitForExit(name, 60_000);
    } finally {
      await this.remove(name).catch(() => undefined);
    }
  }

  async waitForExit(nameOrId: string, timeoutMs: number): Promise<void> {
    await this.call(
      'wait for a container to exit',
      () => this.docker.getContainer(nameOrId).wait(),
      timeoutMs,
    );
  }

  /** Container logs (the node's console output): the last `tail` lines, or followed as a stream. */
  async logs(nameOrId: string, opts: { tail?: number; follow?: boolean } = {}): Promise<Readable> {
    const container = this.docker.getContainer(nameOrId);
    const raw = opts.follow
      ? await this.call('stream logs', () =>
          container.logs({ follow: true, stdout: true, stderr: true, tail: opts.tail }),
        )
      : await this.call('read logs', () =>
          container.logs({ follow: false, stdout: true, stderr: true, tail: opts.tail }),
        );
    if (Buffer.isBuffer(raw)) return Readable.from([raw]);
    return raw as unknown as Readable;
  }

  /**
   * Memory and CPU of a container as `docker stats` reports them: memory is usage minus the
   * inactive file cache (cgroup v1: total_inactive_file, v2: inactive_file); CPU is cumulative seconds.
   */
  async stats(nameOrId: string): Promise<{ memoryBytes: number; cpuSeconds: number }> {
    const s = (await this.call('read container stats', () =>
      this.docker.getContainer(nameOrId).stats({ stream: false }),
    )) as unknown as {
      memory_stats: { usage?: number; stats?: Record<string, number> };
      cpu_stats: { cpu_usage: { total_usage: number } };
    };
    const m = s.memory_stats;
    const inactive = m.stats?.total_inactive_file ?? m.stats?.inactive_file ?? 0;
    return {
      memoryBytes: Math.max(0, (m.usage ?? 0) - inactive),
      cpuSeconds: s.cpu_stats.cpu_usage.total_usage / 1e9,
    };
  }

  // ---- exec --------------------------------------------------------------------------------

  /**
   * Runs a command in a container and collects stdout and stderr separately, then reads the exit code.
   * `input` is written to the command's stdin and closed.
   */
  async exec(
    nameOrId: string,
    cmd: string[],
    opts: { input?: string | Buffer | Readable; env?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<ExecResult> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    stdout.on('data', (c: Buffer) => out.push(c));
    stderr.on('data', (c: Buffer) => err.push(c));
    const input =
      opts.input === undefined
        ? undefined
        : Buffer.isBuffer(opts.input) || typeof opts.input === 'string'
          ? Readable.from([Buffer.from(opts.input)])
          : opts.input;
    const exitCode = await this.execStream(nameOrId, cmd, {
      stdin: input,
      stdout,
      stderr,
      env: opts.env,
      timeoutMs: opts.timeoutMs,
    });
    return {
      exitCode,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
    };
  }

  /** Runs a command with its streams attached to the given ones (no TTY); resolves to the exit code. */
  async execStream(
    nameOrId: string,
    cmd: string[],
    io: {
      stdin?: Readable;
      stdout: Writable;
      stderr: Writable;
      env?: Record<string, string>;
      timeoutMs?: number;
    },
  ): Promise<number> {
    const container = this.docker.getContainer(nameOrId);
    const exec = await this.call('create an exec', () =>
      container.exec({
        Cmd: cmd,
        AttachStdin: Boolean(io.stdin),
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
        Env: io.env ? Object.entries(io.env).map(([k, v]) => `${k}=${v}`) : undefined,
      }),
    );
    const run = async () => {
      const stream = await exec.start({ hijack: true, stdin: Boolean(io.stdin) });
      const done = new Promise<void>((resolve, reject) => {
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', reject);
      });
      this.docker.modem.demuxStream(stream, io.stdout, io.stderr);
      if (io.stdin) {
        io.stdin.on('error', () => stream.end());
        io.stdin.pipe(stream as unknown as Writable);
      }
      await done;
      const info = await exec.inspect();
      return info.ExitCode ?? 1;
    };
    return io.timeoutMs ? withTimeout(run(), io.timeoutMs, `\`${cmd.join(' ')}\` in ${nameOrId}`) : run();
  }

  /**
   * Runs a command with a TTY attached to this process's terminal: raw mode, window size forwarded,
   * Ctrl-C delivered to the remote side. Resolves to the remote exit code.
   */
  async execInteractive(
    nameOrId: string,
    cmd: string[],
    term: { stdin: NodeJS.ReadStream; stdout: NodeJS.WriteStream; env?: Record<string, string> },
  ): Promise<number> {
    const container = this.docker.getContainer(nameOrId);
    const exec = await this.call('create an exec', () =>
      container.exec({
        Cmd: cmd,
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Tty: true,
        // The first window size goes with the exec itself, so the command never sees a 0x0 terminal.
        ConsoleSize: [term.stdout.rows || 24, term.stdout.columns || 80],
        Env: Object.entries({ TERM: process.env.TERM || 'xterm', ...(term.env ?? {}) }).map(
          ([k, v]) => `${k}=${v}`,
        ),
      }),
    );
    const stream = await exec.start({ hijack: true, stdin: true, Tty: true });
    const finished = new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    });
    const resize = () =>
      exec.resize({ h: term.stdout.rows || 24, w: term.stdout.columns || 80 }).catch(() => undefined);
    const wasRaw = term.stdin.isRaw;
    if (term.stdin.isTTY) term.stdin.setRawMode(true);
    term.stdin.resume();
    term.stdin.pipe(stream as unknown as Writable);
    stream.pipe(term.stdout, { end: false });
    term.stdout.on('resize', resize);
    try {
      await resize();
      await finished;
    } finally {
      term.stdout.off('resize', resize);
      term.stdin.unpipe(stream as unknown as Writable);
      if (term.stdin.isTTY) term.stdin.setRawMode(wasRaw);
      term.stdin.pause();
    }
    const info = await exec.inspect();
    return info.ExitCode ?? 1;
  }

  // ---- files -------------------------------------------------------------------------------

  /** Extracts a tar stream into a directory of the container. */
  async putArchive(nameOrId: string, dir: string, tar: Readable): Promise<void> {
    await this.call(
      'copy files into a container',
      () => this.docker.getContainer(nameOrId).putArchive(tar, { path: dir }),
      300_000,
    );
  }

  /** A tar stream of a path in the container. */
  async getArchive(nameOrId: string, path: string): Promise<Readable> {
    const res = await this.call('copy files out of a container', () =>
      this.docker.getContainer(nameOrId).getArchive({ path }),
    );
    return res as unknown as Readable;
  }

  // ---- images ------------------------------------------------------------------------------

  async imageInfo(name: string): Promise<ImageInfo | undefined> {
    try {
      const i = await this.call('inspect an image', () => this.docker.getImage(name).inspect());
      return {
        id: i.Id,
        tags: i.RepoTags ?? [],
        sizeBytes: i.Size,
        created: i.Created,
        labels: i.Config?.Labels ?? {},
      };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  async listImages(reference: string): Promise<ImageInfo[]> {
    const list = await this.call('list images', () =>
      this.docker.listImages({ filters: { reference: [reference] } }),
    );
    return list.map((i) => ({
      id: i.Id,
      tags: i.RepoTags ?? [],
      sizeBytes: i.Size,
      created: new Date(i.Created * 1000).toISOString(),
      labels: i.Labels ?? {},
    }));
  }

  async removeImage(name: string): Promise<'removed' | 'absent'> {
    try {
      await this.call('remove an image', () => this.docker.getImage(name).remove({ force: true }));
      return 'removed';
    } catch (err) {
      if (statusOf(err) === 404) return 'absent';
      throw err;
    }
  }

  /** Loads an image archive (docker save / OCI layout tar) from a stream: POST /images/load. */
  async loadImage(archive: Readable): Promise<void> {
    const res = (await this.docker.loadImage(archive, { quiet: true })) as unknown as Readable;
    await this.readProgress(res, 'load an image');
  }

  /** Imports a root filesystem tar as an image (docker import), with Dockerfile-style changes. */
  async importRootfs(rootfs: Readable, ref: string, changes: string[]): Promise<void> {
    const [repo, tag] = splitRef(ref);
    const res = (await this.docker.importImage(rootfs, { repo, tag, changes })) as unknown as Readable;
    await this.readProgress(res, 'import a root filesystem');
  }

  /**
   * Pulls an image from its registry (docker pull), reporting the bytes downloaded over all
   * layers. The engine reports most failures inside the progress stream, not as an HTTP error:
   * both become a MinilabError carrying the engine's own message.
   */
  async pullImage(ref: string, progress?: (detail: string) => void, timeoutMs = 30 * 60_000): Promise<void> {
    const hint = "check that the Docker engine can reach the image's registry (network, proxy, credentials)";
    const failed = (reason: string, kind: 'environment' | 'notFound' = 'environment', cause?: unknown) =>
      new MinilabError(kind, `the Docker engine could not pull ${ref}: ${reason}`, { hint, cause });
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.call('start pulling an image', () => this.docker.pull(ref));
    } catch (err) {
      if (err instanceof MinilabError) throw err;
      const e = err as DockerError;
      // dockerode's message is "(HTTP code 500) server error - <the engine's message>".
      throw failed(
        (e.json?.message ?? e.message ?? String(err)).replace(/^\(HTTP code \d+\)[^-]*- /, '').trim(),
        e.statusCode === 404 ? 'notFound' : undefined,
        err,
      );
    }
    const layers = new Map<string, { current: number; total: number }>();
    let lastReport = 0;
    const onEvent = (e: PullEvent) => {
      if (e.error) throw failed(e.errorDetail?.message ?? e.error);
      const detail = e.progressDetail;
      if (e.id && detail?.total) layers.set(e.id, { current: detail.current ?? 0, total: detail.total });
      const now = performance.now();
      if (!progress || now - lastReport < 500) return;
      lastReport = now;
      const sum = (k: 'current' | 'total') => [...layers.values()].reduce((n, l) => n + l[k], 0) / 1e6;
      if (layers.size > 0) progress(`${sum('current').toFixed(0)}/${sum('total').toFixed(0)} MB`);
      else if (e.status) progress(e.status);
    };
    const done = new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (err: Error | null) => (err ? reject(failed(err.message, 'environment', err)) : resolve()),
        (e: PullEvent) => {
          try {
            onEvent(e);
          } catch (err) {
            reject(err);
          }
        },
      );
    });
    try {
      await withTimeout(done, timeoutMs, `the Docker engine to pull ${ref}`, hint);
    } finally {
      (stream as Readable).destroy();
    }
  }

  /** Streams an image out of the engine as a docker-save archive. */
  async saveImage(ref: string): Promise<Readable> {
    return (await this.call('save an image', () => this.docker.getImage(ref).get())) as unknown as Readable;
  }

  /** Commits a container to an image with Dockerfile-style changes (ENTRYPOINT, CMD, LABEL, ...). */
  async commit(nameOrId: string, ref: string, changes: string[]): Promise<void> {
    const [repo, tag] = splitRef(ref);
    await this.call(
      'commit a container',
      () => this.docker.getContainer(nameOrId).commit({ repo, tag, changes, pause: false }),
      600_000,
    );
  }

  /** Creates (not starts) a plain container from an image, for image builds. */
  async createPlain(opts: {
    name: string;
    image: string;
    cmd?: string[];
    entrypoint?: string[];
    labels: Record<string, string>;
    privileged?: boolean;
    binds?: string[];
    tmpfs?: Record<string, string>;
  }): Promise<string> {
    const c = await this.call('create a container', () =>
      this.docker.createContainer({
        name: opts.name,
        Image: opts.image,
        Cmd: opts.cmd,
        Entrypoint: opts.entrypoint,
        Labels: opts.labels,
        HostConfig: {
          Privileged: opts.privileged ?? false,
          SecurityOpt: opts.privileged ? ['seccomp=unconfined', 'apparmor=unconfined'] : undefined,
          Binds: opts.binds,
          Tmpfs: opts.tmpfs,
        },
      }),
    );
    return c.id;
  }

  private async readProgress(res: Readable, what: string): Promise<void> {
    let failure: string | undefined;
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (!line.trim()) continue;
          try {
            const msg = JSON.parse(line) as { error?: string; errorDetail?: { message?: string } };
            if (msg.error) failure = msg.errorDetail?.message ?? msg.error;
          } catch {
            // partial JSON lines carry progress only
          }
        }
        cb();
      },
    });
    await pipeline(res, sink);
    if (failure) throw new MinilabError('environment', `the Docker engine could not ${what}: ${failure}`);
  }
}

export function splitRef(ref: string): [string, string] {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
}
