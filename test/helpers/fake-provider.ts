import { PassThrough, Readable } from 'node:stream';
import { MinilabError } from '../../src/errors.js';
import { ProviderError } from '../../src/providers/errors.js';
import type { ClusterApi } from '../../src/kube/cluster-api.js';
import { Labels } from '../../src/labels.js';
import { resourceNames } from '../../src/profile/name.js';
import type {
  ClusterPlan,
  CreatedResource,
  ExecResult,
  ImageBuilder,
  ImageInfo,
  ImageStore,
  Journal,
  Node,
  NodeResources,
  NodeState,
  Provider,
  ProviderInfo,
  RemovedResources,
  ServicePlan,
  ServiceRole,
} from '../../src/providers/types.js';

/**
 * An in-memory Provider, Node and ClusterApi for unit tests of the lifecycle. Every call lands in
 * `calls` under a short name (what a step did, in order); `failAt` makes the call of that name
 * fail, so a test can break a start at any step.
 */
export class FakeWorld {
  readonly calls: string[] = [];
  readonly networks = new Set<string>();
  readonly volumes = new Set<string>();
  readonly nodes = new Map<string, { state: NodeState; files: Set<string> }>();
  readonly images = new Set<string>();
  /** Host ports another process holds: provision fails on them as the Docker provider does. */
  readonly takenPorts = new Set<number>();
  /** Whether a manifest (flannel's) was applied to the cluster. */
  manifestApplied = false;
  /** Each node's /var volume. */
  readonly volumeOf = new Map<string, string>();
  failAt?: string;
  /** Every command run in a node, as text, with the node's name: what the kubeadm files said. */
  readonly scripts: { node: string; text: string }[] = [];
  /** Every command run in a node as its argument vector (exec and execStream). */
  readonly argv: { node: string; argv: string[] }[] = [];
  /** Every plan provisioned. */
  readonly plans: ClusterPlan[] = [];
  /** The images in each node's containerd, by reference (none unless a test puts some). */
  readonly nodeImages = new Map<string, Set<string>>();
  /** Of those, the node image's own (pinned); the others count as loaded by `image load`. */
  readonly preloaded = new Set<string>();

  /** Records a call; throws when it is the one to fail. */
  call(name: string): void {
    this.calls.push(name);
    // An API call's failure carries a status an API server would send for a refused request.
    if (this.failAt === name)
      throw Object.assign(new MinilabError('clusterFailed', `injected failure at ${name}`), { code: 422 });
  }
}

/** A throwaway self-signed CA certificate (public part only): join pins its key's hash. */
export const FAKE_CA =
  'LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJlakNDQVIrZ0F3SUJBZ0lVYmV5YW5LNFhFb21pRXJhQWlNdkFmYnRlMnhjd0NnWUlLb1pJemowRUF3SXcKRWpFUU1BNEdBMVVFQXd3SFptRnJaUzFqWVRBZUZ3MHlOakV5TURReE16UTRNelphRncwek5qRXlNREV4TXpRNApNelphTUJJeEVEQU9CZ05WQkFNTUIyWmhhMlV0WTJFd1dUQVRCZ2NxaGtqT1BRSUJCZ2dxaGtqT1BRTUJCd05DCkFBVE1ST3QyQXBPeVlLVnJ5RkJJL0srZmhOeGNNTUcwWFdJcTcrRGl2RWhVWEUyTzdPeGl5U2FLVmtISkxCR2IKdG1UaWQxdlI4dFUrZUdDWTRuMHNJUVdYbzFNd1VUQWRCZ05WSFE0RUZnUVVHSmVlYmluaFdEYmlyTG1tVzVWZgpzSHZ5QmJFd0h3WURWUjBqQkJnd0ZvQVVHSmVlYmluaFdEYmlyTG1tVzVWZnNIdnlCYkV3RHdZRFZSMFRBUUgvCkJBVXdBd0VCL3pBS0JnZ3Foa2pPUFFRREFnTkpBREJHQWlFQXNJRUJFWkUrcUw4aHdWelJuZGxpQWsvME1SRjcKQ2FqZU4zazBTMlYyZjFVQ0lRQ0dTbGRCS3hEVThCRjdWMlVjcUFvSHowM1R4R1NSaVNZTVpTR3l5N0xsYUE9PQotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg==';
const ADMIN_CONF = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${FAKE_CA}
    server: https://fake-control-plane:6443
  name: kubernetes
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
`;
const COMPONENTS = JSON.stringify({
  kubernetes: 'v1.37.2',
  localPathProvisioner: 'v0.0.31',
  flannel: 'v0.28.10',
  images: [
    'images.test/kube-apiserver:v1.37.2',
    'images.test/kube-proxy:v1.37.2',
    'images.test/pause:3.10.2',
    'images.test/coredns/coredns:v1.14.6',
  ],
});

/** What a command in a fake node is, by the shape of its script; and what it answers. */
function classify(cmd: string[]): string {
  const text = cmd.join(' ');
  const rules: [RegExp, string][] = [
    [/ctr --timeout 2s version/, 'boot'],
    [/touch \/etc\/minilab\/creating/, 'mark-creating'],
    [/openssl req -x509/, 'serving-certs'],
    [/images mount --rw=false/, 'unpack-images'],
    [/10-minilab\.conflist/, 'network-config'],
    [/haproxy -c/, 'configure-lb'],
    [/start-kubernetes-service-cidr-controller/, 'kubeadm-objects'],
    [/kubeadm init phase upload-certs/, 'upload-certs'],
    [/kubeadm reset/, 'kubeadm-reset'],
    [/kubeadm join.*certificateKey|certificateKey.*kubeadm join/s, 'kubeadm-join-control-plane'],
    [/kubeadm join/, 'kubeadm-join'],
    [/kubeadm token create/, 'token-create'],
    [/--service-cluster-ip-range/, 'read-service-subnet'],
    [/kubectl .* drain /, 'drain'],
    [/kubectl .* delete node /, 'delete-node-object'],
    [/kubectl .* get node /, 'get-node'],
    [/kubeadm token delete/, 'token-delete'],
    [/test -e \/etc\/cni\/net\.d\/10-flannel\.conflist/, 'has-flannel'],
    [/kubeadm init .*GOGC|GOGC.*kubeadm init/s, 'kubeadm-first-pass'],
    [/kubeadm init/, 'kubeadm-second-pass'],
    [/cat \/etc\/kubernetes\/admin\.conf/, 'read-admin-conf'],
    [/cat \/etc\/minilab\/components\.json/, 'read-components'],
    [/rm -f \/etc\/minilab\/creating/, 'mark-complete'],
    [/test -f \/etc\/kubernetes\/admin\.conf/, 'check-complete'],
    [/systemctl stop kubelet/, 'stop-kubelet'],
    [/systemctl is-active kubelet/, 'kubelet-active'],
    [/dev\/tcp\/127\.0\.0\.1\/10256/, 'kube-proxy-health'],
    [/ctr -n k8s\.io images ls/, 'images-ls'],
    [/ctr -n k8s\.io images import/, 'images-import'],
    [/ctr -n k8s\.io images export/, 'images-export'],
    [/ctr -n k8s\.io images label/, 'images-label'],
  ];
  return rules.find(([re]) => re.test(text))?.[1] ?? `exec ${text}`;
}

class FakeNode implements Node {
  constructor(
    private readonly world: FakeWorld,
    readonly state: NodeState,
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
    const n = this.world.nodes.get(this.name);
    return n ? { ...n.state } : undefined;
  }
  async exec(cmd: string[]): Promise<ExecResult> {
    const ok = (stdout = ''): ExecResult => ({ exitCode: 0, stdout, stderr: '', started: true });
    // The liveness probe of a failed step is not part of what the steps do.
    if (cmd.length === 1 && cmd[0] === 'true') return ok();
    const what = classify(cmd);
    this.world.scripts.push({ node: this.name, text: cmd.join(' ') });
    this.world.argv.push({ node: this.name, argv: [...cmd] });
    this.world.call(`${what} ${this.name}`);
    const node = this.world.nodes.get(this.name);
    if (!node?.state.running) return { exitCode: 126, stdout: '', stderr: 'not running', started: false };
    switch (what) {
      case 'mark-creating':
        node.files.add('creating');
        return ok('writable\n');
      case 'kubeadm-first-pass':
        node.files.add('admin.conf');
        return ok();
      case 'read-admin-conf':
        return ok(ADMIN_CONF);
      case 'read-components':
        return ok(COMPONENTS);
      case 'mark-complete':
        node.files.delete('creating');
        return ok();
      case 'check-complete':
        return node.files.has('admin.conf') && !node.files.has('creating')
          ? ok()
          : { exitCode: 1, stdout: '', stderr: '', started: true };
      case 'kubelet-active':
        return ok('active\n');
      case 'has-flannel':
        // flannel's init container writes its CNI config once its manifest is applied.
        return this.world.manifestApplied ? ok() : { exitCode: 1, stdout: '', stderr: '', started: true };
      case 'get-node': {
        // A kubelet reports as soon as its node starts: its Ready heartbeat is the start time.
        if (!cmd.some((a) => a.includes('lastHeartbeatTime'))) return ok();
        const name = cmd[cmd.indexOf('node') + 1] ?? '';
        return ok(this.world.nodes.get(name)?.state.startedAt ?? '');
      }
      case 'kube-proxy-health':
        // kube-proxy has synced once (the zero time before its first sync).
        return ok(
          'HTTP/1.0 200 OK\r\n\r\n{"status":{"IPv4":{"lastUpdated":"2026-12-04T19:00:00Z","healthy":true}}}',
        );
      case 'token-create':
        return ok('abcdef.0123456789abcdef\n');
      case 'images-ls': {
        const refs = [...(this.world.nodeImages.get(this.name) ?? [])];
        const labels = (ref: string) =>
          this.world.preloaded.has(ref) ? 'io.cri-containerd.pinned=pinned' : 'io.minilab.loaded=true';
        const line = (ref: string) =>
          `${ref} application/vnd.oci.image.manifest.v1+json sha256:${ref} 1.0 MiB linux/amd64 ${labels(ref)}`;
        return ok(['REF TYPE DIGEST SIZE PLATFORMS LABELS', ...refs.map(line)].join('\n'));
      }
      case 'images-label': {
        // An imported image is labelled next: the node has it from then on.
        const images = this.world.nodeImages.get(this.name) ?? new Set<string>();
        for (const m of cmd.join(' ').matchAll(/images label (\S+)/g)) images.add(m[1]!);
        this.world.nodeImages.set(this.name, images);
        return ok();
      }
      default:
        return ok();
    }
  }
  async execStream(cmd: string[]): Promise<number> {
    this.world.argv.push({ node: this.name, argv: [...cmd] });
    this.world.call(`${classify(cmd)} ${this.name}`);
    return 0;
  }
  async execInteractive(): Promise<number> {
    return 0;
  }
  async copyIn(): Promise<void> {}
  async copyOut(): Promise<Readable> {
    return Readable.from([]);
  }
  async logs(): Promise<Readable> {
    const s = new PassThrough();
    s.end();
    return s;
  }
  async stats(): Promise<NodeResources> {
    return { memoryBytes: 1, cpuSeconds: 1 };
  }
}

class FakeImages implements ImageStore {
  readonly engine = { name: 'fake engine', cli: 'fake' };
  constructor(private readonly world: FakeWorld) {}
  async info(ref: string): Promise<ImageInfo | undefined> {
    return this.world.images.has(ref)
      ? {
          id: `sha256:${ref}`,
          tags: [ref],
          sizeBytes: 1,
          created: '',
          labels: { [Labels.flannel]: 'v0.28.10' },
        }
      : undefined;
  }
  async list(): Promise<ImageInfo[]> {
    return [];
  }
  async remove(): Promise<'removed' | 'absent'> {
    return 'absent';
  }
  async load(): Promise<void> {}
  async importRootfs(): Promise<void> {}
  async pull(): Promise<void> {}
  async save(): Promise<Readable> {
    return Readable.from([]);
  }
  async builder(): Promise<ImageBuilder> {
    throw new Error('the fake provider builds no images');
  }
}

const SERVICE_ROLES: string[] = ['load-balancer', 'registry'];

export class FakeProvider implements Provider {
  readonly driver = 'fake';
  readonly images: ImageStore;

  constructor(readonly world: FakeWorld) {
    this.images = new FakeImages(world);
  }

  async info(): Promise<ProviderInfo> {
    return {
      driver: 'fake',
      engine: { name: 'Fake', version: '1' },
      cgroupVersion: '2',
      cgroupDriver: 'systemd',
      cpus: 4,
      memoryBytes: 8 * 1024 ** 3,
      rootless: false,
      rootDir: '/',
      os: 'fake',
      local: true,
    };
  }

  async provision(plan: ClusterPlan, journal: Journal): Promise<Node[]> {
    this.world.call('provision');
    this.world.plans.push(plan);
    const taken = [...plan.nodes, ...(plan.loadBalancer ? [plan.loadBalancer] : [])]
      .flatMap((n) => n.ports)
      .find((p) => this.world.takenPorts.has(p.hostPort));
    if (taken) {
      throw new ProviderError(
        { reason: 'port-taken', hostPort: taken.hostPort },
        `host port ${taken.hostPort} is already in use`,
      );
    }
    const names = resourceNames(plan.profile);
    if (!this.world.networks.has(names.network)) {
      this.world.networks.add(names.network);
      journal.record({ kind: 'network', name: names.network });
    }
    if (plan.loadBalancer) {
      const lb = plan.loadBalancer;
      const state: NodeState = {
        id: lb.name,
        name: lb.name,
        profile: plan.profile,
        role: 'load-balancer',
        image: plan.image,
        status: 'running',
        running: true,
        ip: '10.0.0.100',
        ports: lb.ports,
        labels: {
          [Labels.profile]: plan.profile,
          [Labels.kind]: 'load-balancer',
          [Labels.apiServerPort]: String(plan.apiServerPort),
        },
      };
      this.world.nodes.set(lb.name, { state, files: new Set() });
      journal.record({ kind: 'node', name: lb.name });
    }
    const nodes: Node[] = [];
    for (const [i, n] of plan.nodes.entries()) {
      const volume = names.varVolume(n.name);
      if (!this.world.volumes.has(volume)) {
        this.world.volumes.add(volume);
        journal.record({ kind: 'volume', name: volume });
      }
      const state: NodeState = {
        id: n.name,
        name: n.name,
        profile: plan.profile,
        role: n.role,
        image: plan.image,
        status: 'running',
        running: true,
        ip: `10.0.0.${i + 2}`,
        ports: n.ports,
        labels: {
          [Labels.profile]: plan.profile,
          [Labels.version]: plan.kubernetesVersion,
          [Labels.apiServerPort]: String(plan.apiServerPort),
        },
      };
      this.world.nodes.set(n.name, { state, files: new Set() });
      this.world.volumeOf.set(n.name, volume);
      journal.record({ kind: 'node', name: n.name });
      nodes.push(new FakeNode(this.world, { ...state }));
    }
    return nodes;
  }

  async listNodes(profile?: string): Promise<Node[]> {
    return [...this.world.nodes.values()]
      .filter((n) => (!profile || n.state.profile === profile) && !SERVICE_ROLES.includes(n.state.role))
      .map((n) => new FakeNode(this.world, { ...n.state }));
  }

  async loadBalancer(profile: string): Promise<Node | undefined> {
    return (await this.services('load-balancer', profile))[0];
  }

  async services(role: ServiceRole, profile?: string): Promise<Node[]> {
    return [...this.world.nodes.values()]
      .filter((n) => (!profile || n.state.profile === profile) && n.state.role === role)
      .map((n) => new FakeNode(this.world, { ...n.state }));
  }

  async addService(plan: ServicePlan): Promise<Node> {
    this.world.call(`add-service ${plan.name}`);
    const taken = plan.ports.find((p) => this.world.takenPorts.has(p.hostPort));
    if (taken) {
      throw new ProviderError(
        { reason: 'port-taken', hostPort: taken.hostPort },
        `host port ${taken.hostPort} is already in use`,
      );
    }
    const state: NodeState = {
      id: plan.name,
      name: plan.name,
      profile: plan.profile,
      role: plan.role,
      image: plan.image,
      status: 'running',
      running: true,
      ip: '10.0.0.101',
      ports: plan.ports,
      labels: { ...plan.labels, [Labels.profile]: plan.profile, [Labels.kind]: plan.role },
    };
    this.world.nodes.set(plan.name, { state, files: new Set() });
    if (plan.dataPath) {
      this.world.volumes.add(`${plan.name}-data`);
      this.world.volumeOf.set(plan.name, `${plan.name}-data`);
    }
    return new FakeNode(this.world, { ...state });
  }

  async startNode(node: Node): Promise<void> {
    this.world.call(`start-node ${node.name}`);
    const n = this.world.nodes.get(node.name);
    // Each start a later time than the last, even within one millisecond.
    const startedAt = new Date(Math.max(Date.now(), Date.parse(n?.state.startedAt ?? '') + 1 || 0));
    if (n) Object.assign(n.state, { running: true, status: 'running', startedAt: startedAt.toISOString() });
  }

  async stopNode(node: Node): Promise<void> {
    this.world.call(`stop-node ${node.name}`);
    const n = this.world.nodes.get(node.name);
    if (n) Object.assign(n.state, { running: false, status: 'exited' });
  }

  async deleteNode(node: Node): Promise<RemovedResources> {
    this.world.call(`delete-node ${node.name}`);
    const removed: RemovedResources = { containers: [], volumes: [] };
    if (this.world.nodes.delete(node.name)) removed.containers.push(node.name);
    const volume = this.world.volumeOf.get(node.name);
    if (volume && this.world.volumes.delete(volume)) removed.volumes.push(volume);
    return removed;
  }

  async deleteCluster(profile: string, only?: readonly CreatedResource[]): Promise<RemovedResources> {
    this.world.call(only ? `rollback ${only.map((r) => `${r.kind}:${r.name}`).join(',')}` : 'delete');
    const names = resourceNames(profile);
    const pick = (kind: CreatedResource['kind'], all: string[]) =>
      only ? only.filter((r) => r.kind === kind).map((r) => r.name) : all;
    const removed: RemovedResources = { containers: [], volumes: [] };
    const ofProfile = [...this.world.nodes.values()]
      .filter((n) => n.state.profile === profile)
      .map((n) => n.state.name);
    for (const name of pick('node', ofProfile))
      if (this.world.nodes.delete(name)) removed.containers.push(name);
    const vols = [...this.world.volumes].filter((v) => v.startsWith(`${profile}-`));
    for (const v of pick('volume', vols)) if (this.world.volumes.delete(v)) removed.volumes.push(v);
    for (const net of pick('network', [names.network]))
      if (this.world.networks.delete(net)) removed.network = net;
    return removed;
  }

  apiEndpoint(nodes: readonly Node[]): { host: string; port: number } {
    const port = Number(nodes.find((n) => n.role === 'control-plane')?.state.labels[Labels.apiServerPort]);
    if (!port) throw new MinilabError('notFound', 'no API server port');
    return { host: '127.0.0.1', port };
  }
}

/** A ClusterApi whose API server, node, CoreDNS and service account are ready at once. */
export function fakeClusterApi(world: FakeWorld, podCidr: string): ClusterApi {
  const answer =
    <T>(name: string, value: T) =>
    async () => {
      world.call(`api ${name}`);
      return value;
    };
  return {
    preload: () => undefined,
    health: async (_entry, path) => {
      world.call(`api health ${path.split('?')[0]}`);
      return true;
    },
    nodeReady: answer('node-ready', true as const),
    podCidr: answer('pod-cidr', podCidr),
    coreDnsReady: answer('coredns-ready', true as const),
    coreDnsChanges: () => async () => () => undefined,
    defaultServiceAccount: answer('default-service-account', true as const),
    apply: async () => {
      world.call('api apply-manifest');
      world.manifestApplied = true;
    },
    remove: answer('remove-manifest', 0),
    withConfig: async () => {
      throw new Error('the fake cluster API has no client configuration');
    },
    applyStorage: answer('apply-storage', undefined),
    tuneKubeProxy: answer('tune-kube-proxy', undefined),
  };
}
