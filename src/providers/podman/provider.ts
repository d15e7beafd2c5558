import { MinilabError } from '../../errors.js';
import type { ProviderInfo, Refusal } from '../types.js';
import { statusOf, type DockerClient } from '../docker/client.js';
import { DockerEngine, type EngineInfo } from '../docker/engine.js';
import { probeHost, type Exposure } from '../docker/loopback-guard.js';
import { DockerProvider } from '../docker/provider.js';
import { resourceNames } from '../../profile/name.js';
import { connectPodman, type ConnectOptions } from './connect.js';
import { syncForwardRules } from './forward-rules.js';
import { rootlessBySocket, type PodmanSocket } from './sockets.js';

/** The oldest podman whose compatible API minilab's calls were checked against (4.0). */
export const MIN_PODMAN_MAJOR = 4;

/** What the podman service says about itself (GET /libpod/info), the parts minilab reads. */
export interface PodmanInfo {
  version: { Version: string };
  host: {
    cgroupVersion: string;
    cgroupManager: string;
    /** The controllers this service can use: for a rootless one, those delegated to its user. */
    cgroupControllers?: string[];
    cpus: number;
    memTotal: number;
    distribution?: { distribution?: string; version?: string };
    security: { rootless: boolean };
  };
  store: { graphRoot: string };
}

/** The controllers a node's kubelet needs for its pods' requests and limits. */
const NEEDED_CONTROLLERS = ['cpu', 'memory', 'pids'];

/**
 * Why a rootless podman cannot run a cluster as the host stands (kind's and minikube's rootless
 * notes): it needs cgroup v2 with the cpu, memory and pids controllers delegated to the user.
 * Rootful podman needs nothing of this.
 */
export function rootlessRefusals(info: PodmanInfo): Refusal[] {
  if (!info.host.security.rootless) return [];
  if (info.host.cgroupVersion !== 'v2') {
    return [
      {
        message:
          'rootless podman cannot run a cluster on this host: it has cgroup v1, and nodes need cgroup v2',
        hint: 'run minilab as root (rootful podman), or boot the host with cgroup v2 (systemd.unified_cgroup_hierarchy=1)',
      },
    ];
  }
  const have = new Set(info.host.cgroupControllers ?? []);
  const missing = NEEDED_CONTROLLERS.filter((c) => !have.has(c));
  if (missing.length === 0) return [];
  return [
    {
      message: `rootless podman cannot run a cluster on this host: the cgroup controller${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not delegated to your user`,
      hint: 'delegate them: put "[Service]\\nDelegate=cpu cpuset io memory pids" in /etc/systemd/system/user@.service.d/delegate.conf, run systemctl daemon-reload, and log in again',
    },
  ];
}

/** podman's version must be 4.0 or later: a one-line refusal otherwise. */
export function checkPodmanVersion(version: string): void {
  const major = Number(/^(\d+)\./.exec(version)?.[1] ?? NaN);
  if (!(major >= MIN_PODMAN_MAJOR)) {
    throw new MinilabError(
      'environment',
      `podman ${version} is too old: minilab needs podman ${MIN_PODMAN_MAJOR}.0 or later`,
      {
        hint: 'install a newer podman (Debian bookworm: apt-get install -t trixie podman), or use --driver docker',
      },
    );
  }
}

/**
 * Nodes as privileged containers of the podman service, through its Docker-compatible API: the
 * Docker provider's code, with podman's differences named in PODMAN_DIALECT and here.
 */
export class PodmanProvider extends DockerProvider {
  private constructor(
    engine: DockerEngine,
    readonly socket: PodmanSocket,
  ) {
    super(engine);
  }

  static async open(opts: ConnectOptions): Promise<PodmanProvider> {
    const { client, socket } = await connectPodman(opts);
    // The version the ping that connected read (PODMAN_DIALECT.versionHeader); the compatible
    // /version, which every podman answers, gathers the host's facts first (0.4 s here).
    const version =
      client.pingVersion ?? (await client.call('report its version', () => client.docker.version())).Version;
    checkPodmanVersion(version);
    return new PodmanProvider(new DockerEngine(client), socket);
  }

  private get client(): DockerClient {
    return this.engine.client;
  }

  /** A GET of podman's own API (v4.0.0, the oldest minilab accepts), for what the compatible one lacks. */
  private libpod<T>(what: string, path: string): Promise<T> {
    return this.client.call(what, () => {
      return new Promise<T>((resolve, reject) => {
        this.client.docker.modem.dial(
          { path: `/v4.0.0/libpod${path}`, method: 'GET', statusCodes: { 200: true }, options: {} },
          (err: unknown, data: unknown) => (err ? reject(err) : resolve(data as T)),
        );
      });
    });
  }

  /** GET /libpod/info: what the compatible /info lacks (rootless, the delegated controllers). */
  podmanInfo(): Promise<PodmanInfo> {
    return this.libpod('report its info', '/info');
  }

  /** The host interface of a network's bridge (the compatible inspect does not name it); undefined when the network is gone. */
  async bridgeOf(network: string): Promise<string | undefined> {
    try {
      const n = await this.libpod<{ network_interface?: string }>(
        `inspect network ${network}`,
        `/networks/${encodeURIComponent(network)}/json`,
      );
      return n.network_interface || undefined;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /**
   * The Docker provider's rules for the published ports, and for rootful podman on this machine,
   * the FORWARD rules that let the profile's bridge through where Docker (or another firewall)
   * drops what it does not route itself (forward-rules.ts).
   */
  override async syncFirewall(profile: string): Promise<string[]> {
    const warnings = await super.syncFirewall(profile);
    try {
      const e = await this.loopbackExposure();
      // Rootless podman's bridges live in its own network namespace, out of the host's FORWARD.
      if (!e.exposed || !e.manageable) return warnings;
      const bridge = await this.bridgeOf(resourceNames(profile).network);
      await syncForwardRules(this.firewall.run, profile, bridge);
    } catch (err) {
      warnings.push(
        `could not let the nodes of profile "${profile}" through the host's FORWARD chain (they may not reach each other): ${(err as Error).message}`,
      );
    }
    return warnings;
  }

  override async info(): Promise<ProviderInfo> {
    const i = await this.podmanInfo();
    const rootless = i.host.security.rootless;
    // The info just read says all the exposure needs: the service is not asked again.
    const { warning } = await this.loopbackExposure({ rootless });
    const warnings: string[] = warning ? [warning] : [];
    if (i.host.cgroupVersion !== 'v2' && !rootless) {
      warnings.push('podman on cgroup v1 is deprecated by podman (it still works; cgroup v2 is the future)');
    }
    return {
      driver: this.driver,
      engine: { name: 'Podman', version: i.version.Version },
      cgroupVersion: i.host.cgroupVersion === 'v2' ? '2' : '1',
      cgroupDriver: i.host.cgroupManager,
      cpus: i.host.cpus,
      memoryBytes: i.host.memTotal,
      rootless,
      rootDir: i.store.graphRoot,
      os: [i.host.distribution?.distribution, i.host.distribution?.version].filter(Boolean).join(' '),
      local: this.client.local,
      warnings,
      refusals: rootlessRefusals(i),
    };
  }

  /**
   * Rootful podman publishes a 127.0.0.1 port with netavark's NAT rules in PREROUTING, the
   * mechanism that lets network neighbours reach such ports on Docker before 28 (see
   * docker/loopback-guard.ts); the same raw-table rules guard them. Rootless podman publishes
   * through a listener of its own (rootlessport), as rootless Docker does: nothing to guard.
   */
  protected override loopbackExposure(known?: Pick<EngineInfo, 'rootless'>): Promise<Exposure> {
    this.exposure ??= (async () => {
      const unexposed = { exposed: false, manageable: false, mirroredLoopback: false };
      if (!this.client.local) return unexposed;
      const rootless =
        known?.rootless ??
        (await rootlessBySocket(this.socket.address)) ??
        (await this.podmanInfo()).host.security.rootless;
      if (rootless) return unexposed;
      const host = await probeHost(this.firewall.run, this.firewall.uid);
      return {
        exposed: true,
        manageable: host.denied === undefined,
        mirroredLoopback: host.mirroredLoopback,
        warning:
          host.denied === undefined
            ? undefined
            : `rootful podman's NAT rules let hosts on the same network reach ports published on 127.0.0.1, and minilab cannot guard them here (${host.denied}): the API server port and --ports stay reachable by this machine's network neighbours`,
      };
    })();
    return this.exposure;
  }
}
