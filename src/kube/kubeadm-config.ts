import { stringify } from 'yaml';

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
}

export const DEFAULT_POD_SUBNET = '10.244.0.0/16';
export const DEFAULT_SERVICE_SUBNET = '10.96.0.0/16';
export const API_SERVER_PORT = 6443;
export const CRI_SOCKET = 'unix:///run/containerd/containerd.sock';

/**
 * A local cluster is small and mostly idle: collecting garbage at half the default heap growth
 * keeps every Go component's resident memory lower for a little CPU.
 */
export const GO_ENV = [{ name: 'GOGC', value: '50' }];

const args = (o: Record<string, string>) => Object.entries(o).map(([name, value]) => ({ name, value }));

/**
 * kubeadm's v1beta4 configuration for a single-node cluster in a container: Init, Cluster,
 * Kubelet and KubeProxy documents. The API server's certificate covers the names the host and
 * the node use (127.0.0.1 and localhost for the published port).
 */
export function kubeadmConfig(s: ClusterShape): string {
  const endpoint = `${s.nodeName}:${API_SERVER_PORT}`;
  const init = {
    apiVersion: 'kubeadm.k8s.io/v1beta4',
    kind: 'InitConfiguration',
    localAPIEndpoint: { advertiseAddress: s.nodeIp, bindPort: API_SERVER_PORT },
    nodeRegistration: {
      name: s.nodeName,
      criSocket: CRI_SOCKET,
      // One node runs everything: no control-plane taint.
      taints: [],
      kubeletExtraArgs: args({ 'node-ip': s.nodeIp, 'node-labels': 'minilab.io/node=true' }),
      imagePullPolicy: 'Never',
    },
    skipPhases: ['preflight'],
  };
  const cluster = {
    apiVersion: 'kubeadm.k8s.io/v1beta4',
    kind: 'ClusterConfiguration',
    clusterName: s.nodeName.replace(/-control-plane$/, ''),
    kubernetesVersion: s.kubernetesVersion,
    controlPlaneEndpoint: endpoint,
    // ECDSA keys are generated in microseconds where RSA-2048 takes tens of milliseconds each.
    encryptionAlgorithm: 'ECDSA-P256',
    networking: { podSubnet: s.podSubnet, serviceSubnet: s.serviceSubnet, dnsDomain: 'cluster.local' },
    apiServer: { certSANs: ['localhost', '127.0.0.1', s.nodeName, s.nodeIp], extraEnvs: GO_ENV },
    controllerManager: { extraEnvs: GO_ENV },
    scheduler: { extraEnvs: GO_ENV },
    etcd: { local: { dataDir: '/var/lib/etcd', extraEnvs: GO_ENV } },
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
    mode: 'iptables',
    conntrack: s.conntrackWritable ? {} : { maxPerCore: 0 },
  };
  return [init, cluster, kubelet, proxy].map((d) => stringify(d)).join('---\n');
}

/** The first /24 of a pod subnet: what the controller manager allocates to the first node. */
export function firstNodeCidr(podSubnet: string): string {
  const [base] = podSubnet.split('/');
  const [a, b] = (base ?? '').split('.');
  return `${a}.${b}.0.0/24`;
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
