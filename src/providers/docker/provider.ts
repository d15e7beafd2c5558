import { existsSync } from 'node:fs';
import { MinilabError } from '../../errors.js';
import { Labels, ownedLabels } from '../../labels.js';
import { resourceNames } from '../../profile/name.js';
import { apiEndpointOf } from '../errors.js';
import type {
  ClusterPlan,
  CreatedResource,
  Journal,
  Node,
  Provider,
  ProviderInfo,
  RemovedResources,
  ServicePlan,
  ServiceRole,
} from '../types.js';
import { proxied, withNoProxy } from '../proxy.js';
import { nextFixedAddress } from './addresses.js';
import type { EngineEnv } from './client.js';
import { DockerEngine, type EngineInfo } from './engine.js';
import { runCommand, type CommandRunner } from '../iptables.js';
import { assessExposure, LoopbackGuard, probeHost, type Exposure } from './loopback-guard.js';
import { DockerNode } from './node.js';

/**
 * Nodes as privileged Docker containers, the way kind and minikube run them: one network per
 * profile, a /var volume per node, ports published on loopback, labels recording what each is.
 */
export class DockerProvider implements Provider {
  /** docker, or podman for the podman service's dialect of the same API. */
  get driver(): string {
    return this.engine.client.dialect.driver;
  }

  /** How the engine's loopback ports stand (asked once: the engine's version and this process's rights). */
  protected exposure?: Promise<Exposure>;

  constructor(
    readonly engine: DockerEngine,
    /** How the loopback guard runs iptables, and as whom this process runs (fakes in tests). */
    protected readonly firewall: { run: CommandRunner; uid?: number } = {
      run: runCommand,
      uid: process.getuid?.(),
    },
  ) {}

  static async connect(env: EngineEnv): Promise<DockerProvider> {
    return new DockerProvider(await DockerEngine.connect(env));
  }

  get images() {
    return this.engine.images;
  }

  async info(): Promise<ProviderInfo> {
    const i = await this.engine.info();
    const { warning } = await this.loopbackExposure(i);
    return {
      driver: this.driver,
      engine: { name: 'Docker', version: i.serverVersion },
      cgroupVersion: i.cgroupVersion,
      cgroupDriver: i.cgroupDriver,
      cpus: i.cpus,
      memoryBytes: i.memoryBytes,
      rootless: i.rootless,
      rootDir: i.rootDir,
      os: i.os,
      local: this.engine.client.local,
      warnings: warning ? [warning] : [],
    };
  }

  protected loopbackExposure(known?: EngineInfo): Promise<Exposure> {
    this.exposure ??= (async () => {
      const i = known ?? (await this.engine.info());
      const local = this.engine.client.local;
      return assessExposure(
        {
          version: i.serverVersion,
          local,
          rootless: i.rootless,
          forwarded: i.os === 'Docker Desktop' || (local && process.platform !== 'linux'),
        },
        // Another machine's firewall is not this one's: nothing to ask here.
        local ? await probeHost(this.firewall.run, this.firewall.uid) : { mirroredLoopback: false },
      );
    })();
    return this.exposure;
  }

  /**
   * On Docker before 28, the raw-table rules Docker 28 would write for the loopback ports the
   * profile's containers publish (running containers only: a stopped one publishes nothing);
   * on an engine that filters them itself, or with no containers left, rules written before go.
   */
  async syncFirewall(profile: string): Promise<string[]> {
    try {
      const e = await this.loopbackExposure();
      if (!e.manageable) return [];
      const owned = { [Labels.profile]: profile, [Labels.managed]: 'true' };
      const ports = e.exposed ? (await this.engine.containers.list(owned)).flatMap((c) => c.ports) : [];
      await new LoopbackGuard(this.firewall.run, e.mirroredLoopback).sync(profile, ports);
      return [];
    } catch (err) {
      return [
        `could not guard the ports of profile "${profile}" on 127.0.0.1 against network neighbours: ${(err as Error).message}`,
      ];
    }
  }

  private handle = (state: DockerNode['state']) =>
    new DockerNode(state, this.engine.containers, this.engine.exec);

  async provision(plan: ClusterPlan, journal: Journal): Promise<Node[]> {
    const { containers, networks, volumes } = this.engine;
    const names = resourceNames(plan.profile);
    if ((await networks.ensure(names.network, ownedLabels(plan.profile, 'network', plan.labels))).created)
      journal.record({ kind: 'network', name: names.network });
    // Behind a proxy, node-to-node traffic stays direct: the addresses are the network's (kind does the same).
    const env = proxied(plan.env) ? withNoProxy(plan.env, await networks.subnets(names.network)) : plan.env;
    // Fixed addresses where the network has minilab's subnet: the lowest free ones, in plan order.
    const fixed = await networks.fixedAddresses(names.network);
    const address = () => {
      if (!fixed) return undefined;
      const ip = nextFixedAddress(fixed.addressing, fixed.used);
      if (ip) fixed.used.add(ip);
      return ip;
    };
    if (plan.loadBalancer) {
      const lb = plan.loadBalancer;
      await containers.createService({
        name: lb.name,
        role: 'load-balancer',
        ipv4Address: address(),
        image: plan.image,
        network: names.network,
        ports: lb.ports,
        command: lb.command,
        labels: {
          ...ownedLabels(plan.profile, 'load-balancer', plan.labels),
          [Labels.apiServerPort]: String(plan.apiServerPort),
        },
      });
      await this.startCreated(lb.name, journal);
    }
    const nodes: Node[] = [];
    for (const node of plan.nodes) {
      const varVolume = names.varVolume(node.name);
      // The volume names its node, so removing one node finds the volume that is its alone.
      const volumeLabels = { ...ownedLabels(plan.profile, 'volume', plan.labels), [Labels.node]: node.name };
      if ((await volumes.ensure(varVolume, volumeLabels, [Labels.profile, Labels.node])).created)
        journal.record({ kind: 'volume', name: varVolume });
      const labels: Record<string, string> = {
        ...ownedLabels(plan.profile, 'node', plan.labels),
        [Labels.version]: plan.kubernetesVersion,
      };
      if (node.role === 'control-plane') labels[Labels.apiServerPort] = String(plan.apiServerPort);
      await containers.createNode({
        name: node.name,
        hostname: node.name,
        image: plan.image,
        profile: plan.profile,
        role: node.role,
        network: names.network,
        varVolume,
        ports: node.ports,
        cpus: plan.cpus,
        memoryBytes: plan.memoryBytes,
        labels,
        env,
        mountLibModules: existsSync('/lib/modules'),
        binds: node.mounts,
        ipv4Address: address(),
      });
      nodes.push(this.handle(await this.startCreated(node.name, journal)));
    }
    return nodes;
  }

  /** Starts a container just made, recorded in the journal; its state once it has an address. */
  private async startCreated(name: string, journal: Journal): Promise<DockerNode['state']> {
    const { containers } = this.engine;
    const created: CreatedResource = { kind: 'node', name };
    journal.record(created);
    try {
      await containers.start(name);
    } catch (err) {
      // A container that never started holds nothing: it goes now, so a retry can reuse the name.
      await containers.remove(name);
      journal.forget(created);
      throw err;
    }
    const state = await containers.inspect(name);
    if (!state?.ip) throw new MinilabError('clusterFailed', `container ${name} has no IP address`);
    return state;
  }

  async listNodes(profile?: string): Promise<Node[]> {
    const selector: Record<string, string> = profile
      ? { [Labels.profile]: profile, [Labels.kind]: 'node' }
      : { [Labels.managed]: 'true', [Labels.kind]: 'node' };
    return (await this.engine.containers.list(selector)).map(this.handle);
  }

  async loadBalancer(profile: string): Promise<Node | undefined> {
    return (await this.services('load-balancer', profile))[0];
  }

  async services(role: ServiceRole, profile?: string): Promise<Node[]> {
    const owner: Record<string, string> = profile
      ? { [Labels.profile]: profile }
      : { [Labels.managed]: 'true' };
    return (await this.engine.containers.list({ ...owner, [Labels.kind]: role })).map(this.handle);
  }

  async addService(plan: ServicePlan): Promise<Node> {
    const { containers, volumes } = this.engine;
    const volume = plan.dataPath ? { name: `${plan.name}-data`, path: plan.dataPath } : undefined;
    let madeVolume = false;
    if (volume) {
      // Labelled with the container's name, as a node's /var is: deleteNode finds it.
      const labels = { ...ownedLabels(plan.profile, 'volume', plan.labels), [Labels.node]: plan.name };
      madeVolume = (await volumes.ensure(volume.name, labels, [Labels.profile, Labels.node])).created;
    }
    await containers.createService({
      name: plan.name,
      role: plan.role,
      image: plan.image,
      network: resourceNames(plan.profile).network,
      ports: plan.ports,
      command: plan.command,
      env: plan.env,
      volume,
      labels: ownedLabels(plan.profile, plan.role, plan.labels),
    });
    try {
      await containers.start(plan.name);
    } catch (err) {
      // A container that never started holds nothing; a volume made for it holds nothing yet either
      // (one that had data before stays).
      await containers.remove(plan.name);
      if (volume && madeVolume) await volumes.remove(volume.name);
      throw err;
    }
    const state = await containers.inspect(plan.name);
    if (!state) throw new MinilabError('unexpected', `container ${plan.name} is gone right after its start`);
    return this.handle(state);
  }

  startNode(node: Node): Promise<void> {
    return this.engine.containers.start(node.name);
  }

  stopNode(node: Node, timeoutSeconds: number): Promise<void> {
    return this.engine.containers.stop(node.name, timeoutSeconds);
  }

  async deleteNode(node: Node): Promise<RemovedResources> {
    const { containers, volumes } = this.engine;
    const removed: RemovedResources = { containers: [], volumes: [] };
    if ((await containers.remove(node.name)) === 'removed') removed.containers.push(node.name);
    const own = { [Labels.profile]: node.profile, [Labels.managed]: 'true', [Labels.node]: node.name };
    for (const name of await volumes.list(own)) {
      if ((await volumes.remove(name)) === 'removed') removed.volumes.push(name);
    }
    // A rule left behind would only drop what the kernel calls martian: its failure is not the delete's.
    await this.syncFirewall(node.profile);
    return removed;
  }

  async deleteCluster(profile: string, only?: readonly CreatedResource[]): Promise<RemovedResources> {
    const { containers, networks, volumes } = this.engine;
    const owned = { [Labels.profile]: profile, [Labels.managed]: 'true' };
    const named = (kind: CreatedResource['kind']) => only?.filter((r) => r.kind === kind).map((r) => r.name);
    const removed: RemovedResources = { containers: [], volumes: [] };
    // Every container of the profile: nodes, and helpers an interrupted command may have left.
    const nodeNames = named('node') ?? (await containers.list(owned)).map((c) => c.name);
    for (const name of nodeNames) {
      if ((await containers.remove(name)) === 'removed') removed.containers.push(name);
    }
    for (const name of named('volume') ?? (await volumes.list(owned))) {
      if ((await volumes.remove(name)) === 'removed') removed.volumes.push(name);
    }
    const network = named('network') ?? [resourceNames(profile).network];
    for (const name of network) {
      if ((await networks.remove(name)) === 'removed') removed.network = name;
    }
    // The guard rules follow what is left: none after a delete, a node's fewer after a rollback.
    await this.syncFirewall(profile);
    return removed;
  }

  apiEndpoint(nodes: readonly Node[]): { host: string; port: number } {
    return apiEndpointOf(nodes);
  }
}
