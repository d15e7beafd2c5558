import { X509Certificate, createHash, randomBytes, randomInt } from 'node:crypto';
import { stringify } from 'yaml';
import { NODE_LABEL } from '../labels.js';

export interface ClusterShape {
  kubernetesVersion: string;
  nodeName: string;
  nodeIp: string;
  /** The host's cgroup version decides whether the kubelet must be told to accept cgroup v1. */
  cgroupVersion: '1' | '2';
  podSubnet: string;
  serviceSubnet: string;
  /** Whether the node may set nf_conntrack_max (false in unprivileged-capability containers like these). */
  conntrackWritable: boolean;
  /** The bootstrap token other nodes join with (a fresh one for each cluster). */
  bootstrapToken: string;
  /** Whether pods are kept off the control plane (clusters with workers, as kubeadm and kind do). */
  taintControlPlane: boolean;
  /**
   * Several control planes: the endpoint is the load balancer's name, the controller manager and
   * scheduler elect a leader, and the control-plane certificates are uploaded (encrypted with
   * this key) for the others to join with.
   */
  highAvailability?: { loadBalancer: string; certificateKey: string };
  /** kube-proxy's mode (default iptables). */
  kubeProxyMode?: 'iptables' | 'nftables';
  /** The node's own labels (a cluster config file's), beside the one every minilab node has. */
  nodeLabels?: Record<string, string>;
}

/** The kubelet's --node-labels: minilab's own, then the node's from a config file. */
function nodeLabelsArg(labels: Record<string, string> = {}): string {
  return [`${NODE_LABEL}=true`, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)].join(',');
}

export const DEFAULT_POD_SUBNET = '10.244.0.0/16';
export const DEFAULT_SERVICE_SUBNET = '10.96.0.0/16';
export const API_SERVER_PORT = 6443;
export const CRI_SOCKET = 'unix:///run/containerd/containerd.sock';

/** Where kubeadm finds the patches of its add-on manifests inside the node. */
export const PATCHES_DIR = '/etc/minilab/patches';

/**
 * A local cluster is small and mostly idle: every Go component collects garbage at a quarter of
 * the default heap growth. The API server, which holds the largest heap, was 24 MiB smaller at 25
 * than at 50 (161 -> 137 MiB, restarted with each in an idle node); the controller manager,
 * scheduler, etcd, kube-proxy, CoreDNS and flannel at 25 instead of 50 made an idle node 8 MiB
 * smaller (378 -> 370 MiB, three each); neither change showed in the start time (the README's
 * benchmarks). The kubelet and containerd (and its shims, which inherit its environment) run on
 * every node, workers included: at 25 an idle worker is about 6 MiB smaller than at 50 (kubelet
 * 27 -> 23, containerd 15 -> 13 MiB). Pods get it as GO_ENV; the kubelet in its environment file,
 * and the node image's containerd and kubelet drop-ins say the same (a unit test holds them to it).
 */
export const GOGC = '25';
export const GO_ENV = [{ name: 'GOGC', value: GOGC }];

/**
 * The cluster's own pods (control plane, CoreDNS, kube-proxy, the storage provisioner, flannel)
 * share one containerd shim on each node. containerd's runc shim puts the containers of every pod
 * whose `io.containerd.runc.v2.group` annotation has the same value in one shim process, and the
 * node's containerd passes that annotation through (pod_annotations in
 * images/node/files/etc/containerd/config.toml). A shim holds about 5 MiB of its own: the seven
 * pods of one node held 36 MiB in seven shims. Shims run in containerd's cgroup, not a pod's, so
 * removing the pod that started the shared one leaves it serving the others. Workloads keep a
 * shim each (their containers fail apart).
 */
export const SHIM_GROUP: Record<string, string> = { 'io.containerd.runc.v2.group': 'minilab-system' };

/** The static pods kubeadm writes, by their kubeadm patch target names. */
const STATIC_PODS = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler'];

/**
 * etcd's raft timing for a cluster of one member (one control plane: minilab adds control planes
 * only to clusters made with several). A member that starts alone skips all but one tick of its
 * election timeout, but raft draws that timeout from [1x, 2x) of the setting, so a restarted
 * etcd became leader 0.1-1.0 s after it started (default heartbeat 100 ms, election 1000 ms),
 * and a restarted API server waits for that before it builds its storage (seen: leader 0.80 s
 * after etcd's start, the API server's next line 11 ms after). A 50 ms heartbeat and a 250 ms
 * election timeout (the 5x etcd requires) make it 0.05-0.25 s. With one member there is no peer
 * to miss a heartbeat, so no spurious election to fear; several members keep etcd's defaults.
 */
const SINGLE_MEMBER_ETCD = [
  { name: 'heartbeat-interval', value: '50' },
  { name: 'election-timeout', value: '250' },
];

/**
 * Where the controller manager and the scheduler keep their serving certificate (`--cert-dir`:
 * `<component>.crt` and `.key`; their secure port serves /healthz and /metrics on 127.0.0.1).
 * Without a directory each generates two RSA-2048 keys in memory at every start, before it serves
 * or starts a controller (Go takes 35-165 ms for the pair here, idle). minilab writes an ECDSA
 * pair there while the node boots (servingCerts, src/lifecycle/serving-certs.ts); a component
 * that finds none generates its own there, once.
 */
export const SERVING_CERT_DIRS = {
  'kube-controller-manager': '/var/lib/kube-controller-manager',
  'kube-scheduler': '/var/lib/kube-scheduler',
} as const;

function servingCertDir(component: keyof typeof SERVING_CERT_DIRS) {
  const dir = SERVING_CERT_DIRS[component];
  return {
    extraArgs: [{ name: 'cert-dir', value: dir }],
    extraVolumes: [
      { name: 'serving-cert', hostPath: dir, mountPath: dir, readOnly: false, pathType: 'DirectoryOrCreate' },
    ],
  };
}

/**
 * kubeadm patches (in PATCHES_DIR) for the control plane's static pod manifests: SHIM_GROUP's
 * annotation, for `kubeadm init` and a control plane's `kubeadm join`.
 */
export function staticPodPatches(): Record<string, string> {
  const patch = JSON.stringify({ metadata: { annotations: SHIM_GROUP } }) + '\n';
  return Object.fromEntries(STATIC_PODS.map((target) => [`${target}+strategic.json`, patch]));
}

const args = (o: Record<string, string>) => Object.entries(o).map(([name, value]) => ({ name, value }));

/**
 * kubeadm's v1beta4 configuration for a single-node cluster in a container: Init, Cluster,
 * Kubelet and KubeProxy documents. The API server's certificate covers the names the host and
 * the node use (127.0.0.1 and localhost for the published port).
 */
export function kubeadmConfig(s: ClusterShape): string {
  const ha = s.highAvailability;
  const endpointHost = ha ? ha.loadBalancer : s.nodeName;
  const endpoint = `${endpointHost}:${API_SERVER_PORT}`;
  // One control plane runs one instance of each: no leader election (it costs a 2 s retry when the
  // first attempt meets RBAC not bootstrapped yet). Several elect one, as they must.
  const leaderElect = ha ? [] : [{ name: 'leader-elect', value: 'false' }];
  const managerCerts = servingCertDir('kube-controller-manager');
  const schedulerCerts = servingCertDir('kube-scheduler');
  const init = {
    apiVersion: 'kubeadm.k8s.io/v1beta4',
    kind: 'InitConfiguration',
    bootstrapTokens: [
      {
        token: s.bootstrapToken,
        ttl: '24h0m0s',
        usages: ['signing', 'authentication'],
        groups: ['system:bootstrappers:kubeadm:default-node-token'],
      },
    ],
    localAPIEndpoint: { advertiseAddress: s.nodeIp, bindPort: API_SERVER_PORT },
    nodeRegistration: {
      name: s.nodeName,
      criSocket: CRI_SOCKET,
      // One node runs everything: no control-plane taint. With workers, kubeadm's default taint.
      ...(s.taintControlPlane ? {} : { taints: [] }),
      kubeletExtraArgs: args({ 'node-ip': s.nodeIp, 'node-labels': nodeLabelsArg(s.nodeLabels) }),
      imagePullPolicy: 'Never',
    },
    patches: { directory: PATCHES_DIR },
    ...(ha ? { certificateKey: ha.certificateKey } : {}),
    // The phases are chosen on kubeadm's command line: see FIRST_PASS_SKIP.
  };
  const cluster = {
    apiVersion: 'kubeadm.k8s.io/v1beta4',
    kind: 'ClusterConfiguration',
    clusterName: s.nodeName.replace(/-control-plane\d*$/, ''),
    kubernetesVersion: s.kubernetesVersion,
    controlPlaneEndpoint: endpoint,
    // ECDSA keys are generated in microseconds where RSA-2048 takes tens of milliseconds each.
    encryptionAlgorithm: 'ECDSA-P256',
    networking: { podSubnet: s.podSubnet, serviceSubnet: s.serviceSubnet, dnsDomain: 'cluster.local' },
    apiServer: {
      // The pod network's gateway too: CoreDNS reaches the API server there (see addonPatches).
      certSANs: [
        'localhost',
        '127.0.0.1',
        ...new Set([endpointHost, s.nodeName]),
        s.nodeIp,
        podGatewayIp(s.podSubnet),
      ],
      extraEnvs: GO_ENV,
    },
    // The controller manager creates a service account and requests a token for each of its ~40
    // controllers at start; the default client limit of 20 requests per second made that take 5 s.
    controllerManager: {
      extraArgs: [
        ...leaderElect,
        ...args({ 'kube-api-qps': '200', 'kube-api-burst': '400' }),
        ...managerCerts.extraArgs,
      ],
      extraVolumes: managerCerts.extraVolumes,
      extraEnvs: GO_ENV,
    },
    scheduler: {
      extraArgs: [...leaderElect, ...schedulerCerts.extraArgs],
      extraVolumes: schedulerCerts.extraVolumes,
      extraEnvs: GO_ENV,
    },
    etcd: { local: { dataDir: '/var/lib/etcd', extraArgs: ha ? [] : SINGLE_MEMBER_ETCD, extraEnvs: GO_ENV } },
  };
  const kubelet: Record<string, unknown> = {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    cgroupDriver: 'systemd',
    cgroupRoot: '/kubelet',
    containerRuntimeEndpoint: CRI_SOCKET,
    failSwapOn: false,
    imageGCHighThresholdPercent: 100,
    evictionHard: { 'nodefs.available': '0%', 'nodefs.inodesFree': '0%', 'imagefs.available': '0%' },
    // Node-level limits are the container's; the kubelet should not second-guess them.
    protectKernelDefaults: false,
    serializeImagePulls: false,
  };
  if (s.cgroupVersion === '1') kubelet.failCgroupV1 = false;
  const proxy = {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    mode: s.kubeProxyMode ?? 'iptables',
    conntrack: s.conntrackWritable ? {} : { maxPerCore: 0 },
  };
  return [init, cluster, kubelet, proxy].map((d) => stringify(d)).join('---\n');
}

export interface JoinShape {
  nodeName: string;
  nodeIp: string;
  /** The control plane's stable name and port: the name survives an engine handing out new IPs. */
  controlPlaneEndpoint: string;
  bootstrapToken: string;
  /** The cluster CA's public key hash (caCertHash): the joining node checks whom it talks to. */
  caCertHash: string;
  /** A control plane joins: the key its certificates were uploaded with, and whether it is tainted. */
  controlPlane?: { certificateKey: string; taint: boolean };
  nodeLabels?: Record<string, string>;
}

/**
 * kubeadm's JoinConfiguration: the token to authenticate with and the CA's public key hash to check
 * the control plane by (kubeadm's `--discovery-token-ca-cert-hash`). The kubelet's configuration
 * comes from the cluster (uploaded by init). A control plane also gets the certificate key and its
 * own API server endpoint (it runs its own API server and etcd member).
 */
export function joinConfig(s: JoinShape): string {
  const cp = s.controlPlane;
  return stringify({
    apiVersion: 'kubeadm.k8s.io/v1beta4',
    kind: 'JoinConfiguration',
    discovery: {
      bootstrapToken: {
        apiServerEndpoint: s.controlPlaneEndpoint,
        token: s.bootstrapToken,
        caCertHashes: [s.caCertHash],
      },
    },
    nodeRegistration: {
      name: s.nodeName,
      criSocket: CRI_SOCKET,
      kubeletExtraArgs: args({ 'node-ip': s.nodeIp, 'node-labels': nodeLabelsArg(s.nodeLabels) }),
      imagePullPolicy: 'Never',
      ...(cp && !cp.taint ? { taints: [] } : {}),
    },
    ...(cp
      ? {
          // the static pods' patches (staticPodPatches), which kubeadmJoin writes there
          patches: { directory: PATCHES_DIR },
          controlPlane: {
            localAPIEndpoint: { advertiseAddress: s.nodeIp, bindPort: API_SERVER_PORT },
            certificateKey: cp.certificateKey,
          },
        }
      : {}),
  });
}

/** A key for kubeadm's uploaded certificates: 32 random bytes, hex (kubeadm's format). */
export function newCertificateKey(): string {
  return randomBytes(32).toString('hex');
}

/** kubeadm's CA pin: sha256 of the CA certificate's SubjectPublicKeyInfo, from its base64 PEM. */
export function caCertHash(caPemBase64: string): string {
  const spki = new X509Certificate(Buffer.from(caPemBase64, 'base64')).publicKey.export({
    type: 'spki',
    format: 'der',
  });
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}

/** A bootstrap token in kubeadm's format ([a-z0-9]{6}.[a-z0-9]{16}), each character drawn uniformly. */
export function newBootstrapToken(randomIndex: (max: number) => number = randomInt): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const pick = (n: number) =>
    Array.from({ length: n }, () => alphabet[randomIndex(alphabet.length)]).join('');
  return `${pick(6)}.${pick(16)}`;
}

/** kubeadm reads a `kubeproxydaemonset` patch from v1.37 on; older ones skip the file with a warning. */
export function kubeadmPatchesKubeProxy(kubernetesVersion: string): boolean {
  const m = /^v?1\.(\d+)\./.exec(kubernetesVersion);
  return m ? Number(m[1]) >= 37 : true;
}

/** The kube-proxy pod's settings minilab tunes (GOGC, SHIM_GROUP), as a strategic-merge patch body. */
export const KUBE_PROXY_PATCH = {
  spec: {
    template: {
      metadata: { annotations: SHIM_GROUP },
      spec: { containers: [{ name: 'kube-proxy', env: GO_ENV }] },
    },
  },
};

/**
 * Strategic-merge patches kubeadm applies to its add-on manifests before creating them, so the
 * first CoreDNS and kube-proxy pods are already the tuned ones (patching afterwards rolled both
 * out a second time): one CoreDNS replica probed for readiness every second, and GOGC and
 * SHIM_GROUP for both (kube-proxy's patch only where kubeadm reads it; see kubeadmPatchesKubeProxy).
 * CoreDNS talks to the API server at the pod network's gateway (the node itself, a stable
 * address) rather than the kubernetes Service: that address works before kube-proxy has written
 * its first rules, where the Service address dropped the first connection and CoreDNS retried a
 * second later. File names follow kubeadm's `target+patchtype.ext` rule.
 */
export function addonPatches(
  podSubnet: string,
  kubernetesVersion: string,
  opts: { highAvailability?: boolean } = {},
): Record<string, string> {
  // Several control planes: CoreDNS uses the kubernetes Service, which fails over between them.
  const apiServerAtGateway = opts.highAvailability
    ? []
    : [
        { name: 'KUBERNETES_SERVICE_HOST', value: podGatewayIp(podSubnet) },
        { name: 'KUBERNETES_SERVICE_PORT', value: String(API_SERVER_PORT) },
      ];
  const coredns = {
    spec: {
      replicas: 1,
      template: {
        metadata: { annotations: SHIM_GROUP },
        spec: {
          containers: [
            {
              name: 'coredns',
              readinessProbe: { periodSeconds: 1 },
              env: [...GO_ENV, ...apiServerAtGateway],
            },
          ],
        },
      },
    },
  };
  const patches: Record<string, string> = {
    'corednsdeployment+strategic.json': JSON.stringify(coredns) + '\n',
  };
  if (kubeadmPatchesKubeProxy(kubernetesVersion))
    patches['kubeproxydaemonset+strategic.json'] = JSON.stringify(KUBE_PROXY_PATCH) + '\n';
  return patches;
}

/**
 * `kubeadm init` runs in three parts (src/lifecycle/kubeadm.ts):
 * - the first pass, `kubeadm init` skipping FIRST_PASS_SKIP: certificates, kubeconfigs, etcd and
 *   API server manifests, kubelet start;
 * - as soon as the API server serves, the phases that only write the cluster's objects
 *   (OBJECT_PHASES, each `kubeadm init phase` as the super-admin);
 * - once /livez answers, the controller manager and scheduler manifests (LATE_PHASES), then the
 *   control-plane label and taint (mark-control-plane).
 * The API server's /livez waits for its post-start hooks, which bootstrap the RBAC roles and the
 * system priority classes about 1.5 s after it serves (the priority classes' hook first polls
 * after a second). Until then the admin's group has no role (cluster-admin is one of those
 * objects), which is why the object phases run as the super-admin (system:masters, authorized
 * without RBAC): they go on while the hooks do, where a second `kubeadm init` as the admin had to
 * wait for /livez. Started together with the API server, the scheduler and controller manager
 * met "forbidden" (RBAC not bootstrapped yet) and their informers backed off for seconds before
 * scheduling the first pod; started after /livez, they sync at once.
 * Never run: preflight (the node image is known), wait-control-plane (minilab waits for /livez
 * itself), kubelet-finalize (it only points kubelet.conf at the rotating client certificate, then
 * restarts the kubelet; minilab rewrites the file without the restart), show-join-command
 * (minilab joins nodes itself).
 */
export const FIRST_PASS_SKIP = [
  'preflight',
  'control-plane/controller-manager',
  'control-plane/scheduler',
  'wait-control-plane',
  'upload-config',
  'upload-certs',
  'mark-control-plane',
  'bootstrap-token',
  'kubelet-finalize',
  'addon',
  'show-join-command',
] as const;

/** The phases that write the cluster's objects, in kubeadm's order (upload-certs: several control planes). */
export const OBJECT_PHASES = ['upload-config all', 'upload-certs', 'bootstrap-token', 'addon all'] as const;

/**
 * The phases run once /livez answers; then mark-control-plane, which has no kubeconfig flag and
 * runs as the admin.
 */
export const LATE_PHASES = ['control-plane controller-manager', 'control-plane scheduler'] as const;

/** The first /24 of a pod subnet: what the controller manager allocates to the first node. */
export function firstNodeCidr(podSubnet: string): string {
  const [base] = podSubnet.split('/');
  const [a, b] = (base ?? '').split('.');
  return `${a}.${b}.0.0/24`;
}

/** The node's address on the pod network: the bridge gateway, first address of the node's pod CIDR. */
export function podGatewayIp(podSubnet: string): string {
  return firstNodeCidr(podSubnet).replace(/\.0\/24$/, '.1');
}

/** The bridge CNI configuration for a single node: pods on cni0 with addresses from the node's pod CIDR. */
export function bridgeCniConfig(podCidr: string): string {
  return (
    JSON.stringify(
      {
        cniVersion: '1.0.0',
        name: 'minilab',
        plugins: [
          {
            type: 'bridge',
            bridge: 'cni0',
            isGateway: true,
            ipMasq: true,
            hairpinMode: true,
            ipam: { type: 'host-local', ranges: [[{ subnet: podCidr }]], routes: [{ dst: '0.0.0.0/0' }] },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      },
      null,
      2,
    ) + '\n'
  );
}
