import { Readable } from 'node:stream';
import { Labels } from '../../labels.js';
import { ProviderError } from '../errors.js';
import type { NodeResources, NodeState } from '../types.js';
import { messageOf, statusOf, type DockerClient } from './client.js';
import {
  labelFilter,
  nodeCreateOptions,
  nodeStateFromInspect,
  nodeStateFromList,
  plainCreateOptions,
  serviceCreateOptions,
} from './translate.js';
import type { ContainerSpec, PlainContainerSpec, ServiceSpec } from './types.js';

/** The engine's words for a host port another process holds; the port is read from the same text. */
const PORT_TAKEN = /port is already allocated|address already in use/i;
const HOST_PORT = /(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-f:]*\]):(\d{1,5})/i;

/** How long a container removal may take before frozen cgroups are suspected (see remove). */
const THAW_AFTER_MS = 3000;

/** Containers: create, inspect, list, start, stop, remove, files in and out, logs, stats. */
export class Containers {
  constructor(private readonly client: DockerClient) {}

  private get docker() {
    return this.client.docker;
  }

  async createNode(spec: ContainerSpec): Promise<NodeState> {
    const c = await this.create('create a container', spec.name, () =>
      this.docker.createContainer(nodeCreateOptions(spec, this.client.dialect.containerEnv)),
    );
    return this.inspect(c.id) as Promise<NodeState>;
  }

  /** Creates (not starts) a service container: a load balancer, an add-on's registry. */
  async createService(spec: ServiceSpec): Promise<void> {
    await this.create('create a container', spec.name, () =>
      this.docker.createContainer(serviceCreateOptions(spec)),
    );
  }

  /** Creates (not starts) a plain container, for image builds and helpers. */
  async createPlain(spec: PlainContainerSpec): Promise<string> {
    const c = await this.create('create a container', spec.name, () =>
      this.docker.createContainer(plainCreateOptions(spec)),
    );
    return c.id;
  }

  private async create<T>(what: string, name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await this.client.call(what, fn);
    } catch (err) {
      if (statusOf(err) === 409) {
        throw new ProviderError({ reason: 'name-in-use', name }, `a container named ${name} exists already`, {
          hint: 'remove it, or use another profile',
          cause: err,
        });
      }
      throw err;
    }
  }

  /** The container's state, or undefined when it does not exist. */
  async inspect(nameOrId: string): Promise<NodeState | undefined> {
    try {
      const info = await this.client.call('inspect a container', () =>
        this.docker.getContainer(nameOrId).inspect(),
      );
      return nodeStateFromInspect(info);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  async list(labels: Record<string, string>): Promise<NodeState[]> {
    const list = await this.client.call('list containers', () =>
      this.docker.listContainers({ all: true, filters: { label: labelFilter(labels) } }),
    );
    return list.map(nodeStateFromList).sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Starts a container; "already running" counts as success. A host port held by another process
   * becomes a ProviderError naming the port.
   */
  async start(nameOrId: string): Promise<void> {
    try {
      await this.client.call('start a container', () => this.docker.getContainer(nameOrId).start());
    } catch (err) {
      if (statusOf(err) === 304) return;
      const message = messageOf(err);
      if (PORT_TAKEN.test(message)) {
        const hostPort = Number(HOST_PORT.exec(message)?.[1] ?? 0);
        throw new ProviderError(
          { reason: 'port-taken', hostPort },
          `host port ${hostPort} is already in use`,
          {
            cause: err,
          },
        );
      }
      throw err;
    }
  }

  /** Stops a container; "already stopped" and "already gone" count as success. */
  async stop(nameOrId: string, timeoutSeconds = 10): Promise<void> {
    try {
      await this.client.call(
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
      await this.client.call('kill a container', () => this.docker.getContainer(nameOrId).kill({ signal }));
    } catch (err) {
      if (statusOf(err) === 404 || statusOf(err) === 409) return;
      throw err;
    }
  }

  /**
   * Removes a container (forced, with its anonymous volumes); "already gone" counts as success.
   * A node killed while runc inside it had frozen a pod container's cgroup (cgroup v1: runc freezes
   * a cgroup to signal all its processes, then thaws it) leaves that cgroup frozen; its processes
   * then never die, and the engine waits 10 s for an exit event before it gives up. A removal still
   * running after THAW_AFTER_MS (a normal one takes well under a second) gets such cgroups thawed
   * beside it (see thawFrozenCgroups), so the engine's wait ends; one that failed that way is tried
   * once more after the thaw.
   */
  async remove(nameOrId: string): Promise<'removed' | 'absent'> {
    let thaw: Promise<void> | undefined;
    const timer = setTimeout(() => (thaw = this.thawContainer(nameOrId)), THAW_AFTER_MS);
    try {
      return await this.removeOnce(nameOrId);
    } catch (err) {
      if (!/did not receive an exit event|could not kill/.test(messageOf(err))) throw err;
      clearTimeout(timer);
      await (thaw ??= this.thawContainer(nameOrId));
      return await this.removeOnce(nameOrId);
    } finally {
      clearTimeout(timer);
      // a helper started beside the removal is gone before this returns
      await thaw;
    }
  }

  private async removeOnce(nameOrId: string): Promise<'removed' | 'absent'> {
    try {
      if (this.client.dialect.killBeforeRemove) {
        // A container that is not running (409) or gone (404, answered by the removal) is removed as it is.
        await this.client
          .call('kill a container', () => this.docker.getContainer(nameOrId).kill({ signal: 'SIGKILL' }))
          .catch((err: unknown) => {
            if (statusOf(err) !== 409 && statusOf(err) !== 404) throw err;
          });
      }
      await this.client.call(
        'remove a container',
        () => this.docker.getContainer(nameOrId).remove({ force: true, v: true }),
        60_000,
      );
      return 'removed';
    } catch (err) {
      if (statusOf(err) === 404) return 'absent';
      if (statusOf(err) === 409 && /already in progress/.test(messageOf(err))) return 'removed';
      throw err;
    }
  }

  /** thawFrozenCgroups for a container by name; nothing when it is gone or cannot be read. */
  private async thawContainer(nameOrId: string): Promise<void> {
    try {
      const c = await this.client.call('inspect a container', () =>
        this.docker.getContainer(nameOrId).inspect(),
      );
      await this.thawFrozenCgroups({
        id: c.Id,
        name: c.Name.replace(/^\//, ''),
        image: c.Image,
        labels: c.Config.Labels ?? {},
      });
    } catch {
      // removed meanwhile, or the helper could not run: the removal reports what matters
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
    await this.removeOnce(name);
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
      await this.removeOnce(name).catch(() => undefined);
    }
  }

  async waitForExit(nameOrId: string, timeoutMs: number): Promise<void> {
    await this.client.call(
      'wait for a container to exit',
      () => this.docker.getContainer(nameOrId).wait(),
      timeoutMs,
    );
  }

  /** Container logs (the node's console output): the last `tail` lines, or followed as a stream. */
  async logs(nameOrId: string, opts: { tail?: number; follow?: boolean } = {}): Promise<Readable> {
    const container = this.docker.getContainer(nameOrId);
    const raw = opts.follow
      ? await this.client.call('stream logs', () =>
          container.logs({ follow: true, stdout: true, stderr: true, tail: opts.tail }),
        )
      : await this.client.call('read logs', () =>
          container.logs({ follow: false, stdout: true, stderr: true, tail: opts.tail }),
        );
    if (Buffer.isBuffer(raw)) return Readable.from([raw]);
    return raw as unknown as Readable;
  }

  /**
   * Memory and CPU of a container as `docker stats` reports them: memory is usage minus the
   * inactive file cache (cgroup v1: total_inactive_file, v2: inactive_file); CPU is cumulative seconds.
   */
  async stats(nameOrId: string): Promise<NodeResources> {
    const s = (await this.client.call('read container stats', () =>
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

  /** Extracts a tar stream into a directory of the container. */
  async putArchive(nameOrId: string, dir: string, tar: Readable): Promise<void> {
    await this.client.call(
      'copy files into a container',
      () => this.docker.getContainer(nameOrId).putArchive(tar, { path: dir }),
      300_000,
    );
  }

  /** A tar stream of a path in the container. */
  async getArchive(nameOrId: string, path: string): Promise<Readable> {
    const res = await this.client.call('copy files out of a container', () =>
      this.docker.getContainer(nameOrId).getArchive({ path }),
    );
    return res as unknown as Readable;
  }

  /** Commits a container to an image with Dockerfile-style changes (ENTRYPOINT, CMD, LABEL, ...). */
  async commit(nameOrId: string, repo: string, tag: string, changes: string[]): Promise<void> {
    await this.client.call(
      'commit a container',
      () => this.docker.getContainer(nameOrId).commit({ repo, tag, changes, pause: false }),
      600_000,
    );
  }
}
