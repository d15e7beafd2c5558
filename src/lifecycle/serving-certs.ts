import { runInNode } from '../providers/run.js';
import type { Node } from '../providers/types.js';
import { SERVING_CERT_DIRS } from '../kube/kubeadm-config.js';

/** The kubelet's serving certificate, where it looks for one before generating it. */
const KUBELET_PKI = '/var/lib/kubelet/pki';

/**
 * Writes the serving certificates the kubelet (and on a control plane the controller manager and
 * the scheduler: SERVING_CERT_DIRS) would otherwise generate when they first start: each makes two
 * RSA-2048 keys, on the way to the API server's start for the kubelet and to the first controller
 * for the controller manager. These are what the components make for themselves, self-signed, a
 * year's validity, for the same names (the node's name; localhost and 127.0.0.1), but with an ECDSA
 * P-256 key, which openssl makes in milliseconds. Runs while the node boots; an existing pair is
 * kept, and a component that finds none makes its own as before.
 */
export async function servingCerts(node: Node): Promise<void> {
  const pairs: [string, string, string, string][] = [[KUBELET_PKI, 'kubelet', node.name, `DNS:${node.name}`]];
  if (node.role === 'control-plane') {
    for (const [component, dir] of Object.entries(SERVING_CERT_DIRS)) {
      pairs.push([dir, component, 'localhost', 'DNS:localhost,IP:127.0.0.1']);
    }
  }
  await runInNode(
    node,
    `umask 077
${pairs
  .map(
    ([dir, name, cn, san]) =>
      `[ -s ${dir}/${name}.crt ] || { mkdir -p ${dir} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj /CN=${cn} -addext subjectAltName=${san} -addext extendedKeyUsage=serverAuth -keyout ${dir}/${name}.key -out ${dir}/${name}.crt 2>/dev/null; }`,
  )
  .join('\n')}`,
    'writing the serving certificates',
  );
}
