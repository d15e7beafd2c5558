import { parse } from 'yaml';
import { MinilabError } from '../errors.js';
import type { Engine } from '../runtime/engine.js';
import {
  GO_ENV,
  firstNodeCidr,
  bridgeCniConfig,
  kubeadmConfig,
  addonPatches,
  PATCHES_DIR,
  KUBEADM_PASSES_SKIP,
  DEFAULT_POD_SUBNET,
  DEFAULT_SERVICE_SUBNET,
} from '../kube/kubeadm-config.js';
import type { KubeconfigEntry } from '../kube/kubeconfig.js';
import type { Components } from '../image/components.js';
import { nodeShell } from './context.js';

/**
 * Marks the cluster as being created and finds out whether the node may set nf_conntrack_max
 * (writing the current value back is the permission kube-proxy needs). Runs while the node boots.
 */
export async function markCreating(
  engine: Engine,
  node: string,
  marker: string,
): Promise<{ conntrackWritable: boolean }> {
  const out = await nodeShell(
    engine,
    node,
    `touch ${marker}; f=/proc/sys/net/netfilter/nf_conntrack_max; if [ -e $f ] && cat $f > $f 2>/dev/null; then echo writable; fi`,
    'marking the cluster as being created',
  );
  return { conntrackWritable: out.includes('writable') };
}

/** A shell fragment that writes each file (parents created) from a quoted here-document. */
export function writeFilesScript(files: Record<string, string>): string {
  return Object.entries(files)
    .map(([path, text]) => {
      const body = text.endsWith('\n') ? text : `${text}\n`;
      return `mkdir -p "$(dirname ${path})"\ncat > ${path} <<'MINILAB_EOF'\n${body}MINILAB_EOF`;
    })
    .join('\n');
}

/**
 * Writes the CNI config, the kubeadm configuration and its add-on patches into the node and
 * runs `kubeadm init` in its two passes (KUBEADM_PASSES_SKIP), calling `apiUp` in between; returns
 * the pod CIDR the CNI config uses.
 *
 * The bridge CNI config is written before kubeadm runs so the node is Ready as soon as the
 * kubelet registers. The controller manager gives the only node the first /24 of the pod
 * subnet; the wait step checks that the node's pod CIDR is indeed this one.
 */
export async function kubeadmInit(
  engine: Engine,
  node: { name: string; ip: string },
  opts: { kubernetesVersion: string; cgroupVersion: '1' | '2'; conntrackWritable: boolean },
  apiUp: () => Promise<void>,
): Promise<string> {
  const podCidr = firstNodeCidr(DEFAULT_POD_SUBNET);
  const config = kubeadmConfig({
    kubernetesVersion: opts.kubernetesVersion,
    nodeName: node.name,
    nodeIp: node.ip,
    cgroupVersion: opts.cgroupVersion,
    podSubnet: DEFAULT_POD_SUBNET,
    serviceSubnet: DEFAULT_SERVICE_SUBNET,
    conntrackWritable: opts.conntrackWritable,
  });
  const files: Record<string, string> = {
    '/etc/cni/net.d/10-minilab.conflist': bridgeCniConfig(podCidr),
    '/etc/minilab/kubeadm.yaml': config,
  };
  for (const [name, text] of Object.entries(addonPatches(DEFAULT_POD_SUBNET, opts.kubernetesVersion)))
    files[`${PATCHES_DIR}/${name}`] = text;
  const init = (pass: keyof typeof KUBEADM_PASSES_SKIP) =>
    `kubeadm init --config /etc/minilab/kubeadm.yaml --skip-phases=${KUBEADM_PASSES_SKIP[pass].join(',')} --skip-token-print -v=2 2>&1 | while IFS= read -r l; do printf "%s %s\n" "$(date +%T.%3N)" "$l"; done | tee -a /var/log/minilab-kubeadm.log`;
  const failure = { timeoutMs: 300_000, logCommand: 'journalctl -u kubelet --no-pager -n 20' };
  await nodeShell(
    engine,
    node.name,
    `${writeFilesScript(files)}
grep -q '^GOGC=' /etc/default/kubelet || echo 'GOGC=${GO_ENV[0]?.value}' >> /etc/default/kubelet
${init('first')}`,
    'kubeadm init (first pass: certificates, etcd, API server, kubelet)',
    failure,
  );
  await apiUp();
  // What kubelet-finalize would do, minus its kubelet restart: kubelet.conf names the kubelet's
  // rotating client certificate, for the kubelet's next start.
  const pem = '/var/lib/kubelet/pki/kubelet-client-current.pem';
  await nodeShell(
    engine,
    node.name,
    `${init('second')}
if [ -e ${pem} ]; then
  sed -i -e 's#client-certificate-data: .*#client-certificate: ${pem}#' -e 's#client-key-data: .*#client-key: ${pem}#' /etc/kubernetes/kubelet.conf
fi`,
    'kubeadm init (second pass: controller manager, scheduler, add-ons)',
    failure,
  );
  return podCidr;
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
