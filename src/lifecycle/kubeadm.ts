import { parse } from 'yaml';
import { MinilabError } from '../errors.js';
import type { Engine } from '../runtime/engine.js';
import {
  GO_ENV,
  firstNodeCidr,
  bridgeCniConfig,
  kubeadmConfig,
  DEFAULT_POD_SUBNET,
  DEFAULT_SERVICE_SUBNET,
} from '../kube/kubeadm-config.js';
import type { KubeconfigEntry } from '../kube/kubeconfig.js';
import type { Components } from '../image/components.js';
import { nodeShell } from './context.js';

/** Writes the kubeadm configuration into the node and runs `kubeadm init`. */
export async function kubeadmInit(
  engine: Engine,
  node: { name: string; ip: string },
  opts: { kubernetesVersion: string; cgroupVersion: '1' | '2' },
): Promise<void> {
  // Write the current value back: permission to do so is what kube-proxy needs.
  const conntrack = await engine.exec(node.name, [
    'sh',
    '-c',
    'f=/proc/sys/net/netfilter/nf_conntrack_max; [ -e $f ] && cat $f > $f',
  ]);
  const config = kubeadmConfig({
    kubernetesVersion: opts.kubernetesVersion,
    nodeName: node.name,
    nodeIp: node.ip,
    cgroupVersion: opts.cgroupVersion,
    podSubnet: DEFAULT_POD_SUBNET,
    serviceSubnet: DEFAULT_SERVICE_SUBNET,
    conntrackWritable: conntrack.exitCode === 0,
  });
  await nodeShell(
    engine,
    node.name,
    `mkdir -p /etc/minilab && cat > /etc/minilab/kubeadm.yaml
     grep -q '^GOGC=' /etc/default/kubelet || echo 'GOGC=${GO_ENV[0]?.value}' >> /etc/default/kubelet`,
    'writing the kubeadm config',
    {
      input: config,
    },
  );
  await nodeShell(
    engine,
    node.name,
    'kubeadm init --config /etc/minilab/kubeadm.yaml --skip-token-print -v=2 2>&1 | while IFS= read -r l; do printf "%s %s\n" "$(date +%T.%3N)" "$l"; done | tee /var/log/minilab-kubeadm.log',
    'kubeadm init',
    { timeoutMs: 300_000, logCommand: 'journalctl -u kubelet --no-pager -n 20' },
  );
}

/**
 * The bridge CNI config, written before kubeadm runs so the node is Ready as soon as the kubelet
 * registers. The controller manager gives the only node the first /24 of the pod subnet; the
 * wait step checks that the node's pod CIDR is indeed this one.
 */
export async function writeCniConfig(engine: Engine, node: string): Promise<string> {
  const cidr = firstNodeCidr(DEFAULT_POD_SUBNET);
  await nodeShell(
    engine,
    node,
    'mkdir -p /etc/cni/net.d && cat > /etc/cni/net.d/10-minilab.conflist',
    'writing the CNI config',
    {
      input: bridgeCniConfig(cidr),
    },
  );
  return cidr;
}

/** The node's components.json: the versions and images this node image was built with. */
export async function nodeComponents(engine: Engine, node: string): Promise<Components> {
  return JSON.parse(
    await nodeShell(engine, node, 'cat /etc/minilab/components.json', 'reading components.json'),
  ) as Components;
}

/** The admin credentials kubeadm wrote, pointed at the API server's published port on the host. */
export async function adminKubeconfig(
  engine: Engine,
  node: string,
  profile: string,
  hostPort: number,
  file = '/etc/kubernetes/admin.conf',
): Promise<KubeconfigEntry> {
  const text = await nodeShell(engine, node, `cat ${file}`, 'reading the admin kubeconfig');
  const c = parse(text) as {
    clusters?: { cluster?: Record<string, string> }[];
    users?: { user?: Record<string, string> }[];
  };
  const cluster = c.clusters?.[0]?.cluster;
  const user = c.users?.[0]?.user;
  if (
    !cluster?.['certificate-authority-data'] ||
    !user?.['client-certificate-data'] ||
    !user['client-key-data']
  ) {
    throw new MinilabError('clusterFailed', 'the node admin kubeconfig lacks its certificates');
  }
  return {
    name: profile,
    server: `https://127.0.0.1:${hostPort}`,
    certificateAuthorityData: cluster['certificate-authority-data'],
    clientCertificateData: user['client-certificate-data'],
    clientKeyData: user['client-key-data'],
  };
}
