import { runInNode } from '../providers/run.js';
import type { Node } from '../providers/types.js';
import {
  API_SERVER_PORT,
  GOGC,
  firstNodeCidr,
  bridgeCniConfig,
  kubeadmConfig,
  joinConfig,
  addonPatches,
  staticPodPatches,
  PATCHES_DIR,
  FIRST_PASS_SKIP,
  OBJECT_PHASES,
  LATE_PHASES,
  DEFAULT_POD_SUBNET,
  DEFAULT_SERVICE_SUBNET,
  type ClusterShape,
  type JoinShape,
} from '../kube/kubeadm-config.js';
import type { Components } from '../image/components.js';
import { kubeSystemConfigMapReaders } from '../kube/node-configmaps.js';

/**
 * Marks the cluster as being created and finds out whether the node may set nf_conntrack_max
 * (writing the current value back is the permission kube-proxy needs). Runs while the node boots.
 */
export async function markCreating(node: Node, marker: string): Promise<{ conntrackWritable: boolean }> {
  const out = await runInNode(
    node,
    `touch ${marker}; f=/proc/sys/net/netfilter/nf_conntrack_max; if [ -e $f ] && cat $f > $f 2>/dev/null; then echo writable; fi`,
    'marking the cluster as being created',
  );
  return { conntrackWritable: out.includes('writable') };
}

/**
 * A shell fragment that writes each file (parents created) from a quoted here-document. Contents
 * carry what users wrote (a config file's patches): a line that would end the document early is
 * avoided by another delimiter.
 */
export function writeFilesScript(files: Record<string, string>): string {
  return Object.entries(files)
    .map(([path, text]) => {
      const body = text.endsWith('\n') ? text : `${text}\n`;
      let eof = 'MINILAB_EOF';
      while (body.split('\n').includes(eof)) eof += '_';
      return `mkdir -p "$(dirname ${path})"\ncat > ${path} <<'${eof}'\n${body}${eof}`;
    })
    .join('\n');
}

/** The kubelet's client certificate and key, once its TLS bootstrap is done. */
const KUBELET_CLIENT_PEM = '/var/lib/kubelet/pki/kubelet-client-current.pem';

/**
 * Waits (at most 30 s) until the node's entrypoint has handed over to systemd. A join run in a
 * node that is still booting (node add starts it at once) met the entrypoint rewriting Docker's
 * DNS rules for the gateway address: between the rules and resolv.conf, a lookup of the control
 * plane's name was refused ("lookup ...: read udp ... 127.0.0.11:53: connection refused"), once in
 * four `node add` runs of a benchmark.
 */
const AFTER_ENTRYPOINT = `i=0; while [ "$(cat /proc/1/comm 2>/dev/null)" != systemd ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done`;

/** The kubelet's GOGC, in the environment file its unit reads. */
const KUBELET_GOGC = `grep -q '^GOGC=' /etc/default/kubelet || echo 'GOGC=${GOGC}' >> /etc/default/kubelet`;

/** kubeadm output, each line stamped with the time, kept in the node for `minilab logs --export`. */
const KUBEADM_LOG = `2>&1 | while IFS= read -r l; do printf "%s %s\n" "$(date +%T.%3N)" "$l"; done | tee -a /var/log/minilab-kubeadm.log`;

/** The first /24 of the default pod subnet: the one the controller manager gives the first node. */
export const FIRST_POD_CIDR = firstNodeCidr(DEFAULT_POD_SUBNET);

/**
 * What a cluster's nodes are configured with beyond their shape: its subnets, kube-proxy's mode,
 * and a config file's changes to kubeadm's documents (feature gates, runtime config, patches).
 */
export interface ClusterSettings {
  podSubnet: string;
  serviceSubnet: string;
  kubeProxyMode: 'iptables' | 'nftables';
  /** Applied to every kubeadm configuration written (the identity without a config file). */
  customize: (kubeadmYaml: string) => string;
}

export const DEFAULT_SETTINGS: ClusterSettings = {
  podSubnet: DEFAULT_POD_SUBNET,
  serviceSubnet: DEFAULT_SERVICE_SUBNET,
  kubeProxyMode: 'iptables',
  customize: (yaml) => yaml,
};

/**
 * The bridge CNI config, written before kubeadm runs so the node is Ready as soon as the kubelet
 * registers. The controller manager gives the only node the first /24 of the pod subnet; the wait
 * step checks that the node's pod CIDR is indeed this one.
 */
export async function writeNetworkConfig(node: Node, podSubnet = DEFAULT_POD_SUBNET): Promise<string> {
  const cidr = firstNodeCidr(podSubnet);
  await runInNode(
    node,
    writeFilesScript({ '/etc/cni/net.d/10-minilab.conflist': bridgeCniConfig(cidr) }),
    'writing the pod network config',
  );
  return cidr;
}

/**
 * The kubelet restarted, so that it creates its static pods' mirror pods at once. Joining control
 * planes find the etcd members by the etcd mirror pods; the first attempt, made when the node
 * registered, is refused while the API server has not yet created the system priority classes,
 * and the kubelet's next attempt comes ~10 s later. The static pods keep running through it.
 */
const MIRROR_PODS_AGAIN = 'systemctl restart kubelet';

/**
 * Writes the kubeadm configuration and its patches into the node and runs `kubeadm init` in three
 * parts (FIRST_PASS_SKIP, OBJECT_PHASES, LATE_PHASES): the first pass; then, at once, the object
 * phases, which wait in the node for the API server to serve, and beside them `apiUp`, which waits
 * for its /livez, followed by the late phases.
 */
export async function kubeadmInit(
  node: Node,
  opts: {
    kubernetesVersion: string;
    nodeIp: string;
    cgroupVersion: '1' | '2';
    conntrackWritable: boolean;
    bootstrapToken: string;
    taintControlPlane: boolean;
    highAvailability?: ClusterShape['highAvailability'];
    nodeLabels?: Record<string, string>;
    settings?: ClusterSettings;
    /**
     * Runs once the object phases are done, while the API server bootstraps RBAC; kubeadmInit
     * waits for it, and its failure is the object phases'.
     */
    afterObjectPhases?: () => Promise<void>;
  },
  apiUp: () => Promise<void>,
): Promise<void> {
  const settings = opts.settings ?? DEFAULT_SETTINGS;
  const config = settings.customize(
    kubeadmConfig({
      kubernetesVersion: opts.kubernetesVersion,
      nodeName: node.name,
      nodeIp: opts.nodeIp,
      cgroupVersion: opts.cgroupVersion,
      podSubnet: settings.podSubnet,
      serviceSubnet: settings.serviceSubnet,
      kubeProxyMode: settings.kubeProxyMode,
      conntrackWritable: opts.conntrackWritable,
      bootstrapToken: opts.bootstrapToken,
      taintControlPlane: opts.taintControlPlane,
      highAvailability: opts.highAvailability,
      nodeLabels: opts.nodeLabels,
    }),
  );
  const patches = addonPatches(settings.podSubnet, opts.kubernetesVersion, {
    highAvailability: opts.highAvailability !== undefined,
  });
  const files = {
    [KUBEADM_YAML]: config,
    [NODE_CONFIGMAPS_YAML]: kubeSystemConfigMapReaders(),
    ...patchFiles({ ...patches, ...staticPodPatches() }),
  };
  await runInNode(
    node,
    `${writeFilesScript(files)}
${KUBELET_GOGC}
kubeadm init ${KUBEADM_CONFIG} --skip-phases=${FIRST_PASS_SKIP.join(',')} --skip-token-print -v=2 ${KUBEADM_LOG}`,
    'kubeadm init (first pass: certificates, etcd, API server, kubelet)',
    KUBEADM_FAILURE,
  );
  // Several control planes: upload-certs uploads the certificates the others join with.
  const objects = OBJECT_PHASES.filter((p) => p !== 'upload-certs' || opts.highAvailability);
  const flags: Partial<Record<(typeof OBJECT_PHASES)[number], string>> = {
    'upload-certs': ' --upload-certs --skip-certificate-key-print',
    'bootstrap-token': ' --skip-token-print',
  };
  const objectPhases = runInNode(
    node,
    `${UNTIL_SERVING}
${objects.map((p) => `kubeadm init phase ${p} ${KUBEADM_CONFIG} --kubeconfig ${SUPER_ADMIN_CONF}${flags[p] ?? ''} -v=2 ${KUBEADM_LOG}`).join('\n')}
kubectl --kubeconfig ${SUPER_ADMIN_CONF} apply --server-side --field-manager=minilab -f ${NODE_CONFIGMAPS_YAML} ${KUBEADM_LOG}`,
    "kubeadm init phases (the cluster objects: configuration, bootstrap token, CoreDNS, kube-proxy; the nodes' ConfigMap readers)",
    KUBEADM_FAILURE,
  ).then(() => opts.afterObjectPhases?.());
  // What kubelet-finalize would do, minus its kubelet restart (made only with several control
  // planes, for MIRROR_PODS_AGAIN): kubelet.conf names the kubelet's rotating client
  // certificate, for the kubelet's next start. mark-control-plane runs as the admin (it has no
  // other kubeconfig): kubeadm binds the admin's group to cluster-admin first. This part does not
  // wait for the object phases: with several control planes the super-admin reaches the API
  // server through the load balancer, which admits it only once its health check has passed.
  const pem = KUBELET_CLIENT_PEM;
  const late = async () => {
    await apiUp();
    await runInNode(
      node,
      `${[...LATE_PHASES, 'mark-control-plane'].map((p) => `kubeadm init phase ${p} ${KUBEADM_CONFIG} -v=2 ${KUBEADM_LOG}`).join('\n')}
if [ -e ${pem} ]; then
  sed -i -e 's#client-certificate-data: .*#client-certificate: ${pem}#' -e 's#client-key-data: .*#client-key: ${pem}#' /etc/kubernetes/kubelet.conf
fi${opts.highAvailability ? `\n${MIRROR_PODS_AGAIN}` : ''}`,
      'kubeadm init phases (controller manager, scheduler, control-plane label)',
      KUBEADM_FAILURE,
    );
  };
  await Promise.all([objectPhases, late()]);
}

/** minilab's kubeadm configuration in the node, and as kubeadm's flag. */
const KUBEADM_YAML = '/etc/minilab/kubeadm.yaml';
const KUBEADM_CONFIG = `--config ${KUBEADM_YAML}`;

/**
 * The Role letting nodes read the ConfigMaps of CoreDNS's and kube-proxy's pods (see
 * nodeConfigMapReaders), applied with the object phases: before the controller manager creates
 * those pods.
 */
const NODE_CONFIGMAPS_YAML = '/etc/minilab/node-configmaps.yaml';

/** A kubeadm run's time limit, and the kubelet's log lines its failure shows. */
const KUBEADM_FAILURE = { timeoutMs: 300_000, logCommand: 'journalctl -u kubelet --no-pager -n 20' };

/** kubeadm patches (file name -> body) as the files of PATCHES_DIR. */
function patchFiles(patches: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(patches).map(([name, text]) => [`${PATCHES_DIR}/${name}`, text]));
}

/** The kubeconfig of kubeadm's super-admin (group system:masters), written by the first pass. */
const SUPER_ADMIN_CONF = '/etc/kubernetes/super-admin.conf';

/**
 * Waits (at most 2 minutes) until the API server takes the object phases' writes: its port is
 * open (checked without starting a process), it has made the default ServiceCIDR (kubeadm creates
 * the kube-dns Service at its fixed address once, and that address is refused until then), and its
 * system namespaces exist (the objects go into kube-system and kube-public).
 */
const UNTIL_SERVING = `i=0
until (: </dev/tcp/127.0.0.1/${API_SERVER_PORT}) 2>/dev/null \\
  && kubectl --kubeconfig ${SUPER_ADMIN_CONF} --request-timeout=2s get --raw /livez/poststarthook/start-kubernetes-service-cidr-controller >/dev/null 2>&1 \\
  && kubectl --kubeconfig ${SUPER_ADMIN_CONF} --request-timeout=2s get namespace kube-system kube-public -o name >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 1200 ] || { echo 'the API server did not serve within 2 minutes' >&2; exit 1; }
  sleep 0.1
done`;

/**
 * A node joins the cluster: `kubeadm join` with the cluster's bootstrap token against the
 * control plane's stable name (preflight skipped: the node image is known). A control plane also
 * fetches the uploaded certificates and starts its own etcd member and control-plane components.
 */
export async function kubeadmJoin(
  node: Node,
  opts: Omit<JoinShape, 'nodeName'> & {
    /** The cluster's Service range (default: minilab's). */
    serviceSubnet?: string;
    customize?: (kubeadmYaml: string) => string;
  },
): Promise<void> {
  const { serviceSubnet = DEFAULT_SERVICE_SUBNET, customize = (y: string) => y, ...shape } = opts;
  const config = customize(joinConfig({ nodeName: node.name, ...shape }));
  // The Service range for the node's filter of untranslated Service traffic (a worker has no
  // cluster configuration of its own to read it from).
  const files: Record<string, string> = {
    [KUBEADM_YAML]: config,
    '/etc/minilab/service-cidrs': serviceSubnet,
    ...(shape.controlPlane ? patchFiles(staticPodPatches()) : {}),
  };
  const join = `kubeadm join ${KUBEADM_CONFIG} --skip-phases=preflight -v=2 ${KUBEADM_LOG}`;
  await runInNode(
    node,
    `${AFTER_ENTRYPOINT}
${writeFilesScript(files)}
${KUBELET_GOGC}
${shape.controlPlane ? restartKubeletWhenApiReady(shape.nodeIp, join) : join}`,
    `kubeadm join (${node.name})`,
    KUBEADM_FAILURE,
  );
}

/**
 * Runs a control plane's `kubeadm join` while a watcher restarts the kubelet once the node's own
 * API server is ready, unless the kubelet already has its client certificate. A joining control
 * plane's kubelet bootstraps against its local API server (kubeadm's behaviour since v1.31), which
 * comes up only after the node's etcd member has joined; meanwhile the kubelet's certificate
 * requests fail and back off exponentially, so its next try can come ~10 s after the API server is
 * ready. A restart tries at once; the static pods keep running through it.
 */
function restartKubeletWhenApiReady(nodeIp: string, join: string): string {
  const pem = KUBELET_CLIENT_PEM;
  const ready = `kubectl --kubeconfig /etc/kubernetes/admin.conf --server https://${nodeIp}:${API_SERVER_PORT} --request-timeout=2s get --raw /readyz`;
  return `(while [ ! -e ${pem} ]; do
  if [ -e /etc/kubernetes/admin.conf ] && ${ready} >/dev/null 2>&1; then
    [ -e ${pem} ] || systemctl restart kubelet
    break
  fi
  sleep 0.5
done) >/dev/null 2>&1 &
nudge=$!
rc=0
${join} || rc=$?
kill $nudge 2>/dev/null || true
exit $rc`;
}

/** A bootstrap token is deleted once the nodes it was made for have joined: it grants joining. */
export async function deleteBootstrapToken(controlPlane: Node, token: string): Promise<void> {
  await runInNode(
    controlPlane,
    ['kubeadm', 'token', 'delete', token.split('.')[0] ?? token],
    'deleting the bootstrap token',
  );
}

/** The cluster's Service and pod ranges, from a control plane's manifests (nodes added later). */
export async function clusterSubnets(
  controlPlane: Node,
): Promise<{ serviceSubnet: string; podSubnet: string }> {
  const out = await runInNode(
    controlPlane,
    `flag() { sed -n "s/.*$1=\\([^\\" ]*\\).*/\\1/p" /etc/kubernetes/manifests/$2.yaml | head -n1; }
echo "$(flag --service-cluster-ip-range kube-apiserver)"
echo "$(flag --cluster-cidr kube-controller-manager)"`,
    "reading the cluster's Service and pod ranges",
  );
  const [service, pod] = out.split('\n').map((line) => line.trim());
  return { serviceSubnet: service || DEFAULT_SERVICE_SUBNET, podSubnet: pod || DEFAULT_POD_SUBNET };
}

/** The node's components.json: the versions and images this node image was built with. */
export async function nodeComponents(node: Node): Promise<Components> {
  return JSON.parse(
    await runInNode(node, 'cat /etc/minilab/components.json', 'reading components.json'),
  ) as Components;
}
