import { parse } from 'yaml';
import { MinilabError } from '../errors.js';
import type { Engine } from '../runtime/engine.js';
import { storageManifest } from '../kube/addons.js';
import {
  bridgeCniConfig,
  kubeadmConfig,
  DEFAULT_POD_SUBNET,
  DEFAULT_SERVICE_SUBNET,
} from '../kube/kubeadm-config.js';
import type { KubeconfigEntry } from '../kube/kubeconfig.js';
import { storageImages, type Components } from '../image/components.js';
import { nodeShell } from './context.js';

const ADMIN = '--kubeconfig=/etc/kubernetes/admin.conf';

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
    'mkdir -p /etc/minilab && cat > /etc/minilab/kubeadm.yaml',
    'writing the kubeadm config',
    {
      input: config,
    },
  );
  await nodeShell(
    engine,
    node.name,
    'kubeadm init --config /etc/minilab/kubeadm.yaml --skip-token-print 2>&1',
    'kubeadm init',
    { timeoutMs: 300_000, logCommand: 'journalctl -u kubelet --no-pager -n 20' },
  );
}

/** The bridge CNI with the pod CIDR the controller manager gave the node, then the default StorageClass. */
export async function installNetworkAndStorage(
  engine: Engine,
  node: string,
  components: Components,
): Promise<void> {
  const cidr = await nodeShell(
    engine,
    node,
    `for i in $(seq 1 150); do
       c=$(kubectl ${ADMIN} get node ${node} -o jsonpath='{.spec.podCIDR}' 2>/dev/null || true)
       if [ -n "$c" ]; then echo "$c"; exit 0; fi
       sleep 0.2
     done
     echo "the node got no pod CIDR within 30 s" >&2; exit 1`,
    'reading the node pod CIDR',
  );
  await nodeShell(engine, node, 'cat > /etc/cni/net.d/10-minilab.conflist', 'writing the CNI config', {
    input: bridgeCniConfig(cidr.trim()),
  });
  await nodeShell(
    engine,
    node,
    `kubectl ${ADMIN} apply -f - >/dev/null`,
    'installing the default StorageClass',
    {
      input: storageManifest(storageImages(components)),
    },
  );
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
): Promise<KubeconfigEntry> {
  const text = await nodeShell(
    engine,
    node,
    'cat /etc/kubernetes/admin.conf',
    'reading the admin kubeconfig',
  );
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
