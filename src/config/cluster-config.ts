import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import {
  LineCounter,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  parseAllDocuments,
  parseDocument,
  type Document,
  type Node as YamlNode,
  type YAMLError,
  type YAMLMap,
  type YAMLSeq,
} from 'yaml';
import { MinilabError, plural } from '../errors.js';
import { NODE_LABEL } from '../labels.js';
import { DEFAULT_POD_SUBNET, DEFAULT_SERVICE_SUBNET } from '../kube/kubeadm-config.js';
import { validateProfileName } from '../profile/name.js';
import { MAX_CONTROL_PLANES, MAX_NODES } from './limits.js';

/**
 * A cluster config file in kind's `kind.x-k8s.io/v1alpha4` format, the part minilab supports.
 * Every other kind field, and any unknown key, is refused with its path and line: a file that
 * starts a cluster here means the same cluster it would with kind, or it does not start one.
 */
export interface ConfigNode {
  role: 'control-plane' | 'worker';
  labels: Record<string, string>;
  extraPortMappings: PortMapping[];
  extraMounts: Mount[];
}

export interface PortMapping {
  containerPort: number;
  hostPort: number;
  listenAddress: string;
  protocol: 'tcp' | 'udp';
}

export interface Mount {
  hostPath: string;
  containerPath: string;
  readOnly: boolean;
  propagation: 'None' | 'HostToContainer' | 'Bidirectional';
}

export interface ClusterConfig {
  name?: string;
  nodes: ConfigNode[];
  networking: {
    podSubnet?: string;
    serviceSubnet?: string;
    kubeProxyMode?: 'iptables' | 'nftables';
    apiServerPort?: number;
    apiServerAddress?: string;
  };
  featureGates: Record<string, boolean>;
  runtimeConfig: Record<string, string>;
  /** kubeadm merge patches, each one YAML text (one or more documents, each a mapping with a kind). */
  kubeadmConfigPatches: string[];
}

const CONFIG_API_VERSION = 'kind.x-k8s.io/v1alpha4';
/** The documents minilab's kubeadm configuration is made of, with each one's API group. */
const KUBEADM_DOCUMENT_GROUPS: Readonly<Record<string, string>> = {
  InitConfiguration: 'kubeadm.k8s.io',
  ClusterConfiguration: 'kubeadm.k8s.io',
  JoinConfiguration: 'kubeadm.k8s.io',
  KubeletConfiguration: 'kubelet.config.k8s.io',
  KubeProxyConfiguration: 'kubeproxy.config.k8s.io',
};
/** The API server's port inside a control-plane node. */
const API_SERVER_NODE_PORT = 6443;

const FORMAT_HINT = `a minilab config file starts with "kind: Cluster" and "apiVersion: ${CONFIG_API_VERSION}"; see docs/config-file.md`;

/** kind fields minilab refuses, by where they appear, with the reason (the error's hint). */
const UNSUPPORTED = {
  cluster: {
    kubeadmConfigPatchesJSON6902: 'write the change as a merge patch in kubeadmConfigPatches',
    containerdConfigPatches: "minilab's node image configures containerd itself; remove the field",
    containerdConfigPatchesJSON6902: "minilab's node image configures containerd itself; remove the field",
  },
  node: {
    image: 'every node runs the node image of --kubernetes-version',
    kubeadmConfigPatches: 'per-node patches are not supported: move it to the top-level kubeadmConfigPatches',
    kubeadmConfigPatchesJSON6902:
      'per-node patches are not supported: write it as a merge patch in the top-level kubeadmConfigPatches',
  },
  networking: {
    ipFamily: 'minilab clusters are IPv4 only: remove networking.ipFamily',
    disableDefaultCNI: 'minilab always installs its pod network (a bridge on one node, flannel on several)',
    dnsSearch: "the nodes keep the engine's DNS settings: remove networking.dnsSearch",
  },
  mount: { selinuxRelabel: 'minilab does not relabel mounts: remove selinuxRelabel' },
  portMapping: {},
} satisfies Record<string, Record<string, string>>;

const SUPPORTED = {
  cluster: [
    'kind',
    'apiVersion',
    'name',
    'nodes',
    'networking',
    'featureGates',
    'runtimeConfig',
    'kubeadmConfigPatches',
  ],
  node: ['role', 'labels', 'extraPortMappings', 'extraMounts'],
  networking: ['podSubnet', 'serviceSubnet', 'kubeProxyMode', 'apiServerPort', 'apiServerAddress'],
  mount: ['hostPath', 'containerPath', 'readOnly', 'propagation'],
  portMapping: ['containerPort', 'hostPort', 'listenAddress', 'protocol'],
} as const;

type Section = keyof typeof SUPPORTED;

const TYPE_HINTS: Record<string, string> = {
  'a map': 'write "key: value" lines indented under it',
  'a list': 'write "- " items indented under it',
  'a string': 'write text; quote it if it reads as a number or true/false',
  'a number': 'write the number without quotes',
  'true or false': 'write true or false without quotes',
};

/** A key of a mapping with its value (null when the key has none), where it is, and its path. */
interface Field {
  /** The key in its mapping (empty for list items). */
  key: string;
  value: YamlNode | null;
  line: number;
  path: string;
}

class Reader {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly file: string,
  ) {}

  fail(line: number, message: string, hint: string): never {
    throw new MinilabError('usage', `${this.file}:${line}: ${message}`, { hint });
  }

  lineOf(node: YamlNode | null | undefined, fallback: number): number {
    const offset = node?.range?.[0];
    return offset === undefined ? fallback : this.lines.linePos(offset).line;
  }

  /** The node an alias stands for; other nodes as they are. */
  resolve(node: unknown): YamlNode | null {
    if (isAlias(node)) return (node.resolve(this.doc) as YamlNode | undefined) ?? null;
    return (node as YamlNode | null | undefined) ?? null;
  }

  /** A mapping's keys in order; keys must be plain strings. */
  fields(map: YAMLMap, path: string, fallbackLine: number): Map<string, Field> {
    const out = new Map<string, Field>();
    for (const pair of map.items) {
      const key = this.resolve(pair.key);
      const line = this.lineOf(key, fallbackLine);
      if (!isScalar(key) || typeof key.value !== 'string') {
        this.fail(line, `${path || 'the file'} has a key that is not a string`, 'keys are field names');
      }
      const name = key.value;
      out.set(name, { key: name, value: this.resolve(pair.value), line, path: joinPath(path, name) });
    }
    return out;
  }

  /** Refuses every key that is not supported at this place in the format. */
  onlyKnown(fields: Map<string, Field>, section: Section): void {
    const supported: readonly string[] = SUPPORTED[section];
    const unsupported: Record<string, string> = UNSUPPORTED[section];
    for (const [name, f] of fields) {
      if (supported.includes(name)) continue;
      const reason = unsupported[name];
      if (reason !== undefined) this.fail(f.line, `minilab does not support ${f.path}`, reason);
      const near = supported.find((s) => nearlyEqual(s, name));
      this.fail(
        f.line,
        `unknown field ${f.path}`,
        near !== undefined ? `did you mean ${near}?` : `supported here: ${supported.join(', ')}`,
      );
    }
  }

  map(f: Field): YAMLMap {
    if (!isMap(f.value)) this.wrongType(f, 'a map');
    return f.value;
  }

  seq(f: Field): YAMLSeq {
    if (!isSeq(f.value)) this.wrongType(f, 'a list');
    return f.value;
  }

  /** The items of a list, each as a field named path[i]. */
  items(f: Field): Field[] {
    return this.seq(f).items.map((item, i) => {
      const value = this.resolve(item);
      return { key: '', value, line: this.lineOf(value, f.line), path: `${f.path}[${i}]` };
    });
  }

  /** The entries of a map, each as a field named path.key. */
  entries(f: Field): Field[] {
    return [...this.fields(this.map(f), f.path, f.line).values()];
  }

  string(f: Field, hint?: string): string {
    if (!isScalar(f.value) || typeof f.value.value !== 'string') this.wrongType(f, 'a string', hint);
    return f.value.value;
  }

  int(f: Field, min: number, max: number, hint?: string): number {
    if (!isScalar(f.value) || typeof f.value.value !== 'number') this.wrongType(f, 'a number', hint);
    const n = f.value.value;
    if (!Number.isInteger(n) || n < min || n > max) {
      this.fail(
        this.valueLine(f),
        `${f.path} must be a whole number from ${min} to ${max}, got ${n}`,
        hint ?? `give a number from ${min} to ${max}`,
      );
    }
    return n;
  }

  bool(f: Field, hint?: string): boolean {
    if (!isScalar(f.value) || typeof f.value.value !== 'boolean') this.wrongType(f, 'true or false', hint);
    return f.value.value;
  }

  valueLine(f: Field): number {
    return this.lineOf(f.value, f.line);
  }

  private wrongType(f: Field, wanted: string, hint?: string): never {
    this.fail(
      this.valueLine(f),
      `${f.path} must be ${wanted}, got ${describe(f.value)}`,
      hint ?? TYPE_HINTS[wanted] ?? FORMAT_HINT,
    );
  }
}

/**
 * Parses and checks a cluster config file. Every refusal is a usage error naming the file, the
 * line, and the field's path (e.g. `nodes[1].extraPortMappings[0].hostPort`).
 */
export function parseClusterConfig(text: string, file: string): ClusterConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
  const yamlError = doc.errors[0];
  if (yamlError) throwYamlError(yamlError, file, 'fix the YAML syntax at that line');
  const r: Reader = new Reader(doc, lines, file);
  const root = r.resolve(doc.contents);
  if (isEmpty(root)) r.fail(1, 'the file is empty', FORMAT_HINT);
  if (!isMap(root)) r.fail(r.lineOf(root, 1), `the file must be a map, got ${describe(root)}`, FORMAT_HINT);

  const top = r.fields(root, '', 1);
  checkTypeMeta(r, top);
  r.onlyKnown(top, 'cluster');

  const cfg: ClusterConfig = {
    nodes: [],
    networking: {},
    featureGates: {},
    runtimeConfig: {},
    kubeadmConfigPatches: [],
  };
  const name = top.get('name');
  if (name) cfg.name = clusterName(r, name);
  const nodes = top.get('nodes');
  if (nodes) cfg.nodes = r.items(nodes).map((n) => configNode(r, n));
  // kind's default: no nodes (or an empty list) is one control-plane node.
  if (cfg.nodes.length === 0)
    cfg.nodes = [{ role: 'control-plane', labels: {}, extraPortMappings: [], extraMounts: [] }];
  if (nodes && cfg.nodes.length > MAX_NODES) {
    r.fail(
      nodes.line,
      `nodes lists ${cfg.nodes.length} nodes; minilab makes at most ${MAX_NODES}`,
      'list fewer nodes',
    );
  }
  checkControlPlanes(r, cfg.nodes, nodes?.line ?? 1);
  const networking = top.get('networking');
  if (networking) cfg.networking = networkingOf(r, networking);
  checkHostPorts(r, cfg, nodes);
  const gates = top.get('featureGates');
  if (gates) cfg.featureGates = featureGatesOf(r, gates);
  const runtime = top.get('runtimeConfig');
  if (runtime) cfg.runtimeConfig = runtimeConfigOf(r, runtime);
  const patches = top.get('kubeadmConfigPatches');
  if (patches) cfg.kubeadmConfigPatches = r.items(patches).map((p) => kubeadmPatch(r, p, file));
  return cfg;
}

/** At least one control plane; several must be an odd number (as --control-planes): etcd keeps a majority. */
function checkControlPlanes(r: Reader, nodes: ConfigNode[], line: number): void {
  const n = nodes.filter((node) => node.role === 'control-plane').length;
  if (n === 0) r.fail(line, 'nodes has no control-plane node', 'make the first node "role: control-plane"');
  if (n > MAX_CONTROL_PLANES) {
    r.fail(
      line,
      `nodes has ${n} control-plane nodes; minilab makes at most ${MAX_CONTROL_PLANES}`,
      'make some of them workers',
    );
  }
  if (n % 2 === 0) {
    r.fail(
      line,
      `nodes has ${n} control-plane nodes, an even number: etcd keeps a majority, so ${n} members survive no more failures than ${n - 1}`,
      `use ${n + 1} control-plane nodes (survives ${n / 2} stopped) or ${n - 1}`,
    );
  }
}

function checkTypeMeta(r: Reader, top: Map<string, Field>): void {
  const kind = top.get('kind');
  if (!kind) r.fail(1, 'kind is missing', FORMAT_HINT);
  if (r.string(kind, FORMAT_HINT) !== 'Cluster') {
    r.fail(r.valueLine(kind), `kind must be Cluster, got ${describe(kind.value)}`, FORMAT_HINT);
  }
  const apiVersion = top.get('apiVersion');
  if (!apiVersion) r.fail(1, 'apiVersion is missing', FORMAT_HINT);
  const version = r.string(apiVersion, FORMAT_HINT);
  if (version !== CONFIG_API_VERSION) {
    r.fail(
      r.valueLine(apiVersion),
      `apiVersion ${version} is not supported; minilab reads ${CONFIG_API_VERSION}`,
      version.startsWith('kind.x-k8s.io/')
        ? `rewrite the file for ${CONFIG_API_VERSION} (kind's current format)`
        : FORMAT_HINT,
    );
  }
}

function clusterName(r: Reader, f: Field): string {
  const name = r.string(f);
  try {
    return validateProfileName(name);
  } catch (err) {
    if (!(err instanceof MinilabError)) throw err;
    return r.fail(r.valueLine(f), `name: ${err.message}`, err.hint ?? 'use a DNS label, e.g. dev');
  }
}

function configNode(r: Reader, f: Field): ConfigNode {
  const fields = r.fields(r.map(f), f.path, f.line);
  r.onlyKnown(fields, 'node');
  const node: ConfigNode = { role: 'control-plane', labels: {}, extraPortMappings: [], extraMounts: [] };
  const role = fields.get('role');
  if (role) {
    const value = r.string(role);
    if (value !== 'control-plane' && value !== 'worker') {
      r.fail(
        r.valueLine(role),
        `${role.path} must be control-plane or worker, got "${value}"`,
        'a node is a control-plane node or a worker (kind has no other roles)',
      );
    }
    node.role = value;
  }
  const labels = fields.get('labels');
  if (labels) {
    for (const label of r.entries(labels)) {
      const key = label.key;
      const value = r.string(label, 'label values are strings: quote values such as "true" or "1"');
      checkLabel(r, label, labels.path, value);
      node.labels[key] = value;
    }
  }
  const ports = fields.get('extraPortMappings');
  if (ports) node.extraPortMappings = r.items(ports).map((p) => portMapping(r, p, node.role));
  const mounts = fields.get('extraMounts');
  if (mounts) node.extraMounts = r.items(mounts).map((m) => mount(r, m));
  return node;
}

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** The kubernetes.io labels a kubelet may set on its own node (--node-labels); others it refuses. */
const KUBELET_LABELS = new Set([
  'kubernetes.io/hostname',
  'kubernetes.io/os',
  'kubernetes.io/arch',
  'beta.kubernetes.io/os',
  'beta.kubernetes.io/arch',
  'beta.kubernetes.io/instance-type',
  'topology.kubernetes.io/zone',
  'topology.kubernetes.io/region',
  'failure-domain.beta.kubernetes.io/zone',
  'failure-domain.beta.kubernetes.io/region',
]);
const KUBELET_NAMESPACES = ['kubelet.kubernetes.io', 'node.kubernetes.io'];

/** Labels become the kubelet's --node-labels: Kubernetes label syntax, and what the kubelet accepts. */
function checkLabel(r: Reader, f: Field, where: string, value: string): void {
  const key = f.key;
  const slash = key.lastIndexOf('/');
  const prefix = slash < 0 ? '' : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  const syntax =
    'a label key is [prefix/]name: a DNS subdomain, then up to 63 letters, digits, "-", "_", "."';
  if (
    !LABEL_NAME.test(name) ||
    name.length > 63 ||
    (slash >= 0 && (!DNS_SUBDOMAIN.test(prefix) || prefix.length > 253))
  ) {
    r.fail(f.line, `${where}: invalid label key "${key}"`, syntax);
  }
  if (value !== '' && (!LABEL_NAME.test(value) || value.length > 63)) {
    r.fail(
      r.valueLine(f),
      `${where}: invalid label value "${value}" for ${key}`,
      'a label value is empty or up to 63 letters, digits, "-", "_", ".", starting and ending with a letter or digit',
    );
  }
  if (key === NODE_LABEL) r.fail(f.line, `${where}: ${NODE_LABEL} is minilab's own label`, 'use another key');
  const reserved = [prefix, `.${prefix}`].some((p) => p.endsWith('kubernetes.io') || p.endsWith('k8s.io'));
  const allowed =
    KUBELET_LABELS.has(key) || KUBELET_NAMESPACES.some((ns) => prefix === ns || prefix.endsWith(`.${ns}`));
  if (reserved && !allowed) {
    r.fail(
      f.line,
      `${where}: the kubelet refuses to set ${key} on its own node (${prefix} is reserved)`,
      'use a key of your own (e.g. example.com/role) or one under node.kubernetes.io/; label the node with kubectl for the rest',
    );
  }
}

function portMapping(r: Reader, f: Field, role: ConfigNode['role']): PortMapping {
  const fields = r.fields(r.map(f), f.path, f.line);
  r.onlyKnown(fields, 'portMapping');
  const containerPortField = fields.get('containerPort');
  if (!containerPortField)
    r.fail(f.line, `${f.path}.containerPort is missing`, 'give the node port to publish');
  const containerPort = r.int(containerPortField, 1, 65535);
  const hostPortField = fields.get('hostPort');
  const hostPortHint =
    'minilab publishes every port on a fixed host port: give hostPort (kind picks a random one for 0)';
  if (!hostPortField) r.fail(f.line, `${f.path}.hostPort is missing`, hostPortHint);
  if (isScalar(hostPortField.value) && hostPortField.value.value === 0) {
    r.fail(r.valueLine(hostPortField), `${hostPortField.path} is 0 (a random port)`, hostPortHint);
  }
  const hostPort = r.int(hostPortField, 1, 65535, hostPortHint);
  let listenAddress = '127.0.0.1';
  const address = fields.get('listenAddress');
  if (address) {
    listenAddress = r.string(address);
    if (isIP(listenAddress) === 0) {
      r.fail(
        r.valueLine(address),
        `${address.path} must be an IP address, got "${listenAddress}"`,
        'e.g. 127.0.0.1',
      );
    }
    // As --ports: what a local cluster publishes is for this machine alone.
    if (!/^127\./.test(listenAddress)) {
      r.fail(
        r.valueLine(address),
        `${address.path} ${listenAddress} is not supported: minilab publishes ports on loopback only`,
        'use 127.0.0.1, or leave listenAddress out',
      );
    }
  }
  let protocol: PortMapping['protocol'] = 'tcp';
  const protocolField = fields.get('protocol');
  if (protocolField) {
    // kind writes TCP and UDP; any case is accepted.
    const value = r.string(protocolField).toLowerCase();
    if (value !== 'tcp' && value !== 'udp') {
      r.fail(
        r.valueLine(protocolField),
        `${protocolField.path} must be TCP or UDP, got ${describe(protocolField.value)}`,
        value === 'sctp' ? 'minilab publishes TCP and UDP ports only' : 'write TCP or UDP (TCP if left out)',
      );
    }
    protocol = value;
  }
  if (role === 'control-plane' && containerPort === API_SERVER_NODE_PORT && protocol === 'tcp') {
    r.fail(
      r.valueLine(containerPortField),
      `${containerPortField.path}: node port ${API_SERVER_NODE_PORT} is the API server, published already`,
      'choose its host port with networking.apiServerPort',
    );
  }
  return { containerPort, hostPort, listenAddress, protocol };
}

function mount(r: Reader, f: Field): Mount {
  const fields = r.fields(r.map(f), f.path, f.line);
  r.onlyKnown(fields, 'mount');
  const path = (name: 'hostPath' | 'containerPath', where: string): string => {
    const field = fields.get(name);
    if (!field) r.fail(f.line, `${f.path}.${name} is missing`, `give the absolute path ${where}`);
    const value = r.string(field);
    if (!isAbsolute(value)) {
      r.fail(
        r.valueLine(field),
        `${field.path} must be an absolute path, got "${value}"`,
        `give the absolute path ${where}`,
      );
    }
    return value;
  };
  const result: Mount = {
    hostPath: path('hostPath', 'on the host'),
    containerPath: path('containerPath', 'in the node'),
    readOnly: false,
    propagation: 'None',
  };
  const readOnly = fields.get('readOnly');
  if (readOnly) result.readOnly = r.bool(readOnly);
  const propagation = fields.get('propagation');
  if (propagation) {
    const value = r.string(propagation);
    if (value !== 'None' && value !== 'HostToContainer' && value !== 'Bidirectional') {
      r.fail(
        r.valueLine(propagation),
        `${propagation.path} must be None, HostToContainer or Bidirectional, got "${value}"`,
        "use one of kind's mount propagation modes (None if left out)",
      );
    }
    result.propagation = value;
  }
  return result;
}

function networkingOf(r: Reader, f: Field): ClusterConfig['networking'] {
  const fields = r.fields(r.map(f), f.path, f.line);
  r.onlyKnown(fields, 'networking');
  const out: ClusterConfig['networking'] = {};
  const pod = fields.get('podSubnet');
  const service = fields.get('serviceSubnet');
  // Each node gets a /24 of the pod subnet, the first one taken from a /16 or larger.
  if (pod) out.podSubnet = cidr(r, pod, 8, 16, "e.g. 10.244.0.0/16 (kind's default)");
  // The API server takes ranges from /12 to /28 (the DNS service is its 10th address).
  if (service) out.serviceSubnet = cidr(r, service, 12, 28, 'e.g. 10.96.0.0/16');
  const at = service ?? pod;
  if (at) {
    // A range given is checked against the other one's default too.
    const podRange = out.podSubnet ?? DEFAULT_POD_SUBNET;
    const serviceRange = out.serviceSubnet ?? DEFAULT_SERVICE_SUBNET;
    if (overlaps(podRange, serviceRange)) {
      const named = (field: Field | undefined, range: string, name: string) =>
        field ? `networking.${name} ${range}` : `the default ${name} ${range}`;
      r.fail(
        r.valueLine(at),
        `${named(service, serviceRange, 'serviceSubnet')} overlaps ${named(pod, podRange, 'podSubnet')}`,
        'give the two ranges that do not overlap, e.g. 10.244.0.0/16 and 10.96.0.0/16',
      );
    }
  }
  const mode = fields.get('kubeProxyMode');
  if (mode) {
    const value = r.string(mode);
    if (value !== 'iptables' && value !== 'nftables') {
      const hints: Record<string, string> = {
        none: 'minilab always runs kube-proxy: use iptables or nftables',
        ipvs: 'minilab runs kube-proxy in iptables or nftables mode (ipvs is deprecated upstream)',
      };
      r.fail(
        r.valueLine(mode),
        `${mode.path} must be iptables or nftables, got "${value}"`,
        hints[value] ?? 'use iptables or nftables',
      );
    }
    out.kubeProxyMode = value;
  }
  const port = fields.get('apiServerPort');
  if (port) out.apiServerPort = r.int(port, 1, 65535, 'leave networking.apiServerPort out for a free port');
  const address = fields.get('apiServerAddress');
  if (address) {
    const value = r.string(address);
    if (value !== '127.0.0.1' && value !== 'localhost') {
      r.fail(
        r.valueLine(address),
        `${address.path} ${value} is not supported: minilab publishes the API server on loopback only`,
        'use 127.0.0.1, or leave networking.apiServerAddress out',
      );
    }
    out.apiServerAddress = value;
  }
  return out;
}

const RESERVED_RANGES = ['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/3'];

/** An IPv4 CIDR, its address the first of its range, its prefix within [min, max]. */
function cidr(r: Reader, f: Field, min: number, max: number, example: string): string {
  const value = r.string(f, example);
  const parsed = parseCidr(value);
  const line = r.valueLine(f);
  if (!parsed)
    r.fail(
      line,
      `${f.path} must be an IPv4 CIDR, got "${value}"`,
      `${example}; minilab clusters are IPv4 only`,
    );
  if (parsed.prefix < min || parsed.prefix > max) {
    r.fail(line, `${f.path} ${value} must have a prefix from /${min} to /${max}`, example);
  }
  const network = `${formatIp(parsed.address & mask(parsed.prefix))}/${parsed.prefix}`;
  if (network !== value)
    r.fail(line, `${f.path} ${value} is not the start of its range`, `did you mean ${network}?`);
  const reserved = RESERVED_RANGES.find((range) => overlaps(range, value));
  if (reserved) r.fail(line, `${f.path} ${value} overlaps the reserved range ${reserved}`, example);
  return value;
}

function parseCidr(s: string): { address: number; prefix: number } | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(s);
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix > 32) return undefined;
  return { address: octets.reduce((a, o) => a * 256 + o, 0), prefix };
}

const mask = (prefix: number) => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
const formatIp = (n: number) => [24, 16, 8, 0].map((s) => ((n >>> 0) >>> s) & 255).join('.');

function overlaps(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (!x || !y) return false;
  const m = mask(Math.min(x.prefix, y.prefix));
  return (x.address & m) >>> 0 === (y.address & m) >>> 0;
}

/**
 * Host ports must differ across the file (the engine could publish only one of two), and none may
 * be the API server's.
 */
function checkHostPorts(r: Reader, cfg: ClusterConfig, nodes: Field | undefined): void {
  const seen: { port: PortMapping; where: string }[] = [];
  cfg.nodes.forEach((node, i) =>
    node.extraPortMappings.forEach((port, j) => {
      const where = `nodes[${i}].extraPortMappings[${j}]`;
      const line = nodes ? r.lineOf(portNode(r, nodes, i, j), nodes.line) : 1;
      const clash = seen.find((s) => sameHostPort(s.port, port));
      if (clash) {
        r.fail(
          line,
          `${where} publishes host port ${port.hostPort}/${port.protocol}, as ${clash.where} does`,
          'give each mapping its own hostPort',
        );
      }
      if (port.protocol === 'tcp' && port.hostPort === cfg.networking.apiServerPort) {
        r.fail(
          line,
          `${where} publishes host port ${port.hostPort}, the networking.apiServerPort`,
          'choose another hostPort',
        );
      }
      seen.push({ port, where });
    }),
  );
}

function portNode(r: Reader, nodes: Field, i: number, j: number): YamlNode | null {
  const node = r.resolve((nodes.value as YAMLSeq).items[i]);
  const ports = isMap(node) ? r.resolve(node.get('extraPortMappings', true)) : null;
  return isSeq(ports) ? r.resolve(ports.items[j]) : null;
}

const WILDCARDS = ['0.0.0.0', '::'];

/** Two mappings need the same host socket: same port and protocol, same or a wildcard address. */
function sameHostPort(a: PortMapping, b: PortMapping): boolean {
  return (
    a.hostPort === b.hostPort &&
    a.protocol === b.protocol &&
    (a.listenAddress === b.listenAddress ||
      WILDCARDS.includes(a.listenAddress) ||
      WILDCARDS.includes(b.listenAddress))
  );
}

function featureGatesOf(r: Reader, f: Field): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const gate of r.entries(f)) {
    const name = gate.key;
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(name)) {
      r.fail(
        gate.line,
        `invalid feature gate name "${name}"`,
        'feature gates are named in CamelCase, e.g. InPlacePodVerticalScaling',
      );
    }
    out[name] = r.bool(gate, 'write true or false, without quotes');
  }
  return out;
}

function runtimeConfigOf(r: Reader, f: Field): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of r.entries(f)) {
    const key = entry.key;
    if (!/^[A-Za-z0-9][A-Za-z0-9./-]*$/.test(key)) {
      r.fail(
        entry.line,
        `invalid runtimeConfig key "${key}"`,
        'keys are API groups/versions, e.g. "api/alpha" or "batch/v1"',
      );
    }
    const value = r.string(entry, 'quote the value, e.g. "api/alpha": "false"');
    if (value.includes(','))
      r.fail(r.valueLine(entry), `${entry.path} must not contain ","`, 'give one value per key');
    out[key] = value;
  }
  return out;
}

/**
 * One kubeadm patch: YAML text whose documents are each a mapping with a kind of minilab's kubeadm
 * configuration (and, when given, that kind's API group). Lines inside a literal block (`|`) are
 * reported as lines of the file.
 */
function kubeadmPatch(r: Reader, f: Field, file: string): string {
  const text = r.string(f, 'each patch is YAML text: write it as a block, e.g. "- |" followed by the patch');
  const scalar = f.value as YamlNode & { type?: string };
  const start = r.valueLine(f);
  // In a literal block the patch's first line is the line after "|"; elsewhere lines are approximate.
  const toFileLine = (inner: number) => (scalar.type === 'BLOCK_LITERAL' ? start + inner : start);
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
  if (docs.every((doc) => doc.errors.length === 0 && isEmpty(doc.contents))) {
    r.fail(
      start,
      `${f.path} is empty`,
      'write a partial kubeadm document with its kind, or remove the patch',
    );
  }
  for (const doc of docs) {
    const yamlError = doc.errors[0];
    if (yamlError) throwYamlError(yamlError, file, `fix the YAML of ${f.path}`, toFileLine);
    const inner: Reader = new Reader(doc, lines, file);
    const root = inner.resolve(doc.contents);
    if (isEmpty(root)) continue;
    const line = (node: YamlNode | null | undefined) => toFileLine(inner.lineOf(node, 1));
    if (!isMap(root)) {
      r.fail(
        line(root),
        `${f.path} must be a YAML map, got ${describe(root)}`,
        'a patch is a partial kubeadm document with its kind',
      );
    }
    const kindNode = inner.resolve(root.get('kind', true));
    const kinds = Object.keys(KUBEADM_DOCUMENT_GROUPS).join(', ');
    if (!isScalar(kindNode) || typeof kindNode.value !== 'string') {
      r.fail(line(kindNode ?? root), `${f.path} has no kind`, `name the document to patch: ${kinds}`);
    }
    const kind = kindNode.value;
    const group = KUBEADM_DOCUMENT_GROUPS[kind];
    if (group === undefined)
      r.fail(
        line(kindNode),
        `${f.path}: kind ${kind} is none of minilab's kubeadm documents`,
        `use one of ${kinds}`,
      );
    const apiVersionNode = inner.resolve(root.get('apiVersion', true));
    if (apiVersionNode) {
      if (!isScalar(apiVersionNode) || typeof apiVersionNode.value !== 'string') {
        r.fail(
          line(apiVersionNode),
          `${f.path}: apiVersion must be a string`,
          `e.g. ${group}/v1beta1, or leave it out`,
        );
      }
      if (apiGroup(apiVersionNode.value) !== group) {
        r.fail(
          line(apiVersionNode),
          `${f.path}: apiVersion ${apiVersionNode.value} is not in ${kind}'s group ${group}`,
          `use ${group}/<version>, or leave apiVersion out`,
        );
      }
    }
    if (group === 'kubeadm.k8s.io') checkExtraArgs(r, inner, root, f.path, line);
  }
  return text;
}

/**
 * extraArgs and kubeletExtraArgs, in a patch, are v1beta3 maps (name: value, null removes) or v1beta4
 * lists of {name, value}; values are strings, as kubeadm reads them.
 */
function checkExtraArgs(
  r: Reader,
  inner: Reader,
  map: YAMLMap,
  path: string,
  line: (n: YamlNode | null | undefined) => number,
  inside = '',
): void {
  for (const pair of map.items) {
    const key = inner.resolve(pair.key);
    const value = inner.resolve(pair.value);
    const name = isScalar(key) ? String(key.value) : '';
    const here = `${path}: ${joinPath(inside, name)}`;
    const quote = 'kubeadm reads argument values as strings: quote values such as "true" or "4"';
    if (name === 'extraArgs' || name === 'kubeletExtraArgs') {
      if (isMap(value)) {
        for (const arg of value.items) {
          const v = inner.resolve(arg.value);
          if (!isScalar(v) || (v.value !== null && typeof v.value !== 'string')) {
            r.fail(
              line(v ?? (inner.resolve(arg.key) as YamlNode)),
              `${here} values must be strings, got ${describe(v)}`,
              quote,
            );
          }
        }
      } else if (isSeq(value)) {
        for (const item of value.items) {
          const arg = inner.resolve(item);
          const argName = isMap(arg) ? inner.resolve(arg.get('name', true)) : null;
          const argValue = isMap(arg) ? inner.resolve(arg.get('value', true)) : null;
          const ok =
            isScalar(argName) &&
            typeof argName.value === 'string' &&
            (argValue === null ||
              (isScalar(argValue) && (argValue.value === null || typeof argValue.value === 'string')));
          if (!ok)
            r.fail(line(arg ?? value), `${here} items must be {name, value} with string values`, quote);
        }
      } else if (!(isScalar(value) && value.value === null)) {
        r.fail(
          line(value ?? key),
          `${here} must be a map or a list of {name, value}, got ${describe(value)}`,
          'write arguments as "name: value" lines (v1beta3) or a list of {name, value} (v1beta4)',
        );
      }
    } else if (isMap(value)) {
      checkExtraArgs(r, inner, value, path, line, joinPath(inside, name));
    }
  }
}

/** The API group of an apiVersion: "kubeadm.k8s.io/v1beta4" and "kubeadm.k8s.io" -> kubeadm.k8s.io; "v1" -> "". */
export function apiGroup(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  if (slash >= 0) return apiVersion.slice(0, slash);
  return apiVersion.includes('.') ? apiVersion : '';
}

function throwYamlError(
  e: YAMLError,
  file: string,
  hint: string,
  toFileLine: (line: number) => number = (l) => l,
): never {
  const line = toFileLine(e.linePos?.[0].line ?? 1);
  const message = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
  const duplicate = e.code === 'DUPLICATE_KEY' ? 'each key may appear once in a map' : hint;
  throw new MinilabError('usage', `${file}:${line}: invalid YAML: ${message}`, { hint: duplicate });
}

const isEmpty = (node: unknown) =>
  node === null || node === undefined || (isScalar(node) && node.value === null);

/** A field's path: nodes[0].labels, or runtimeConfig["api/alpha"] for keys that are not plain names. */
function joinPath(path: string, key: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path ? `${path}.${key}` : key;
}

function describe(node: unknown): string {
  if (node === null || node === undefined) return 'nothing';
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return 'nothing';
    if (typeof v === 'string') return `"${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
    return String(v);
  }
  return 'an unreadable value';
}

/** Same letters ignoring case, or one edit apart: worth a "did you mean". */
function nearlyEqual(a: string, b: string): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (x === y) return true;
  if (Math.abs(x.length - y.length) > 1) return false;
  let i = 0;
  while (i < x.length && x[i] === y[i]) i++;
  return x.slice(i + 1) === y.slice(i + 1) || x.slice(i + 1) === y.slice(i) || x.slice(i) === y.slice(i + 1);
}

export interface StartFlags {
  nodes?: number;
  controlPlanes?: number;
  ports?: { hostPort: number; containerPort: number; protocol: 'tcp' | 'udp' }[];
  apiServerPort?: number;
}

/**
 * The file describes the cluster: a flag describing the same thing must agree with it (else a
 * usage error naming both); --ports adds to the first control-plane node's port mappings.
 */
export function mergeWithFlags(cfg: ClusterConfig, flags: StartFlags, file: string): ClusterConfig {
  const disagree = (flag: string, fileSays: string) =>
    new MinilabError('usage', `${flag} disagrees with ${file}, which has ${fileSays}`, {
      hint: `leave ${flag.split(' ')[0]} out (the file describes the cluster), or edit ${file}`,
    });
  if (flags.nodes !== undefined && flags.nodes !== cfg.nodes.length) {
    throw disagree(`--nodes ${flags.nodes}`, plural(cfg.nodes.length, 'node'));
  }
  const controlPlanes = cfg.nodes.filter((n) => n.role === 'control-plane').length;
  if (flags.controlPlanes !== undefined && flags.controlPlanes !== controlPlanes) {
    throw disagree(`--control-planes ${flags.controlPlanes}`, plural(controlPlanes, 'control-plane node'));
  }
  const networking = { ...cfg.networking };
  if (flags.apiServerPort !== undefined) {
    if (networking.apiServerPort !== undefined && networking.apiServerPort !== flags.apiServerPort) {
      throw disagree(
        `--api-server-port ${flags.apiServerPort}`,
        `networking.apiServerPort ${networking.apiServerPort}`,
      );
    }
    networking.apiServerPort = flags.apiServerPort;
  }
  const first = cfg.nodes.findIndex((n) => n.role === 'control-plane');
  const all = cfg.nodes.flatMap((n) => n.extraPortMappings);
  const added: PortMapping[] = [];
  for (const p of flags.ports ?? []) {
    const port: PortMapping = { ...p, listenAddress: '127.0.0.1' };
    if ([...all, ...added].some((q) => sameHostPort(q, port))) {
      throw new MinilabError(
        'usage',
        `--ports ${p.hostPort}:${p.containerPort}/${p.protocol}: host port ${p.hostPort}/${p.protocol} is in ${file} already`,
        {
          hint: `leave it out of --ports, or edit ${file}`,
        },
      );
    }
    if (port.protocol === 'tcp' && port.hostPort === networking.apiServerPort) {
      throw new MinilabError(
        'usage',
        `--ports ${p.hostPort}:${p.containerPort}: host port ${p.hostPort} is the API server's`,
        {
          hint: 'choose another host port',
        },
      );
    }
    added.push(port);
  }
  return {
    ...cfg,
    networking,
    nodes: cfg.nodes.map((n, i) =>
      i === first && added.length > 0 ? { ...n, extraPortMappings: [...n.extraPortMappings, ...added] } : n,
    ),
  };
}
