import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, parseAllDocuments } from 'yaml';
import { MinilabError } from '../../src/errors.js';
import { mergeWithFlags, parseClusterConfig, type ClusterConfig } from '../../src/config/cluster-config.js';
import { customizeKubeadm } from '../../src/config/kubeadm-patches.js';
import { joinConfig, kubeadmConfig, type ClusterShape } from '../../src/kube/kubeadm-config.js';

const HEAD = 'kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n';
const parseText = (body: string) => parseClusterConfig(HEAD + body, 'cluster.yaml');

/** Asserts the file is refused as a usage error: message "cluster.yaml:<line>: ..." matching, a hint. */
function refused(text: string, line: number, message: RegExp, hint?: RegExp): void {
  assert.throws(
    () => parseClusterConfig(text, 'cluster.yaml'),
    (err: unknown) => {
      assert.ok(err instanceof MinilabError, String(err));
      assert.equal(err.exitCode, 2);
      assert.equal(err.message.split('\n').length, 1, err.message);
      assert.match(err.message, new RegExp(`^cluster\\.yaml:${line}: `));
      assert.match(err.message, message);
      assert.ok(err.hint, `a hint for: ${err.message}`);
      if (hint) assert.match(err.hint, hint);
      return true;
    },
  );
}
/** The same, for a body under the kind and apiVersion lines (two lines, so body line n is file line n + 2). */
const refusedBody = (body: string, bodyLine: number, message: RegExp, hint?: RegExp) =>
  refused(HEAD + body, bodyLine + 2, message, hint);

test('a file with only kind and apiVersion is one control-plane node, as in kind', () => {
  assert.deepEqual(parseText(''), {
    nodes: [{ role: 'control-plane', labels: {}, extraPortMappings: [], extraMounts: [] }],
    networking: {},
    featureGates: {},
    runtimeConfig: {},
    kubeadmConfigPatches: [],
  } satisfies ClusterConfig);
  assert.equal(parseText('nodes: []\n').nodes.length, 1);
});

test('every supported field is read, with kind defaults filled in', () => {
  const cfg = parseText(`name: dev
nodes:
  - role: control-plane
    labels:
      tier: frontend
      example.com/gpu: "true"
      node.kubernetes.io/pool: a
    extraPortMappings:
      - containerPort: 30080
        hostPort: 8080
      - containerPort: 53
        hostPort: 5353
        listenAddress: "127.0.0.2"
        protocol: udp
      - containerPort: 443
        hostPort: 8443
        protocol: TCP
    extraMounts:
      - hostPath: /tmp/data
        containerPath: /data
      - hostPath: /srv
        containerPath: /srv
        readOnly: true
        propagation: HostToContainer
  - role: worker
  - {}
  - {}
networking:
  podSubnet: 10.100.0.0/16
  serviceSubnet: 10.200.0.0/20
  kubeProxyMode: nftables
  apiServerPort: 7443
  apiServerAddress: 127.0.0.1
featureGates:
  InPlacePodVerticalScaling: true
  SomeAlpha: false
runtimeConfig:
  "api/alpha": "false"
kubeadmConfigPatches:
  - |
    kind: ClusterConfiguration
    apiServer:
      extraArgs:
        v: "4"
`);
  assert.equal(cfg.name, 'dev');
  assert.deepEqual(
    cfg.nodes.map((n) => n.role),
    ['control-plane', 'worker', 'control-plane', 'control-plane'],
    'a node without a role is a control plane (kind)',
  );
  const cp = cfg.nodes[0]!;
  assert.deepEqual(cp.labels, {
    tier: 'frontend',
    'example.com/gpu': 'true',
    'node.kubernetes.io/pool': 'a',
  });
  assert.deepEqual(cp.extraPortMappings, [
    { containerPort: 30080, hostPort: 8080, listenAddress: '127.0.0.1', protocol: 'tcp' },
    { containerPort: 53, hostPort: 5353, listenAddress: '127.0.0.2', protocol: 'udp' },
    { containerPort: 443, hostPort: 8443, listenAddress: '127.0.0.1', protocol: 'tcp' },
  ]);
  assert.deepEqual(cp.extraMounts, [
    { hostPath: '/tmp/data', containerPath: '/data', readOnly: false, propagation: 'None' },
    { hostPath: '/srv', containerPath: '/srv', readOnly: true, propagation: 'HostToContainer' },
  ]);
  assert.deepEqual(cfg.nodes[1], { role: 'worker', labels: {}, extraPortMappings: [], extraMounts: [] });
  assert.deepEqual(cfg.networking, {
    podSubnet: '10.100.0.0/16',
    serviceSubnet: '10.200.0.0/20',
    kubeProxyMode: 'nftables',
    apiServerPort: 7443,
    apiServerAddress: '127.0.0.1',
  });
  assert.deepEqual(cfg.featureGates, { InPlacePodVerticalScaling: true, SomeAlpha: false });
  assert.deepEqual(cfg.runtimeConfig, { 'api/alpha': 'false' });
  assert.deepEqual(cfg.kubeadmConfigPatches, [
    'kind: ClusterConfiguration\napiServer:\n  extraArgs:\n    v: "4"\n',
  ]);
});

test('kind and apiVersion are required and must be kind v1alpha4 Cluster', () => {
  refused('apiVersion: kind.x-k8s.io/v1alpha4\n', 1, /kind is missing/, /kind: Cluster/);
  refused('kind: Cluster\n', 1, /apiVersion is missing/);
  refused('kind: Config\napiVersion: kind.x-k8s.io/v1alpha4\n', 1, /kind must be Cluster, got "Config"/);
  refused(
    'kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha3\n',
    2,
    /apiVersion kind\.x-k8s\.io\/v1alpha3 is not supported; minilab reads kind\.x-k8s\.io\/v1alpha4/,
    /rewrite the file/,
  );
  refused('kind: Cluster\napiVersion: [1]\n', 2, /apiVersion must be a string, got a list/);
  refused('', 1, /the file is empty/);
  refused('# only a comment\n', 1, /the file is empty/);
  refused('- kind: Cluster\n', 1, /the file must be a map, got a list/);
});

test('invalid YAML and duplicate keys are refused at the line the yaml parser names', () => {
  refusedBody('nodes:\n  - role: worker\n   labels: {}\n', 3, /invalid YAML/);
  refusedBody('name: a\nnodes: []\nname: b\n', 3, /invalid YAML: Map keys must be unique/, /once/);
  refused('kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n---\nkind: Cluster\n', 3, /invalid YAML/);
});

test('kind fields minilab does not support are refused with their path, line and the reason', () => {
  refusedBody(
    'nodes:\n  - role: control-plane\n  - role: worker\n    image: kindest/node:v1.31.0\n',
    4,
    /minilab does not support nodes\[1\]\.image$/,
    /every node runs the node image of --kubernetes-version/,
  );
  refusedBody(
    'nodes:\n  - role: control-plane\n    kubeadmConfigPatches: []\n',
    3,
    /nodes\[0\]\.kubeadmConfigPatches/,
    /top-level kubeadmConfigPatches/,
  );
  refusedBody('kubeadmConfigPatchesJSON6902: []\n', 1, /kubeadmConfigPatchesJSON6902/, /merge patch/);
  refusedBody('containerdConfigPatches: []\n', 1, /containerdConfigPatches/, /containerd/);
  refusedBody('containerdConfigPatchesJSON6902: []\n', 1, /containerdConfigPatchesJSON6902/);
  refusedBody('networking:\n  ipFamily: dual\n', 2, /networking\.ipFamily/, /IPv4 only/);
  refusedBody('networking:\n  disableDefaultCNI: true\n', 2, /networking\.disableDefaultCNI/, /pod network/);
  refusedBody('networking:\n  dnsSearch: []\n', 2, /networking\.dnsSearch/);
  refusedBody(
    'nodes:\n  - extraMounts:\n      - hostPath: /a\n        containerPath: /a\n        selinuxRelabel: true\n',
    5,
    /nodes\[0\]\.extraMounts\[0\]\.selinuxRelabel/,
  );
});

test('unknown keys are refused, with a suggestion when one is near', () => {
  refusedBody(
    'nodes:\n  - role: worker\n    extraPortMapping: []\n',
    3,
    /unknown field nodes\[0\]\.extraPortMapping$/,
    /did you mean extraPortMappings\?/,
  );
  refusedBody(
    'networking:\n  podsubnet: 10.1.0.0/16\n',
    2,
    /unknown field networking\.podsubnet/,
    /did you mean podSubnet\?/,
  );
  refusedBody('colour: blue\n', 1, /unknown field colour/, /supported here: kind, apiVersion, name/);
  refusedBody(
    'nodes:\n  - extraPortMappings:\n      - containerPort: 80\n        hostPort: 8080\n        hostIP: 1.2.3.4\n',
    5,
    /unknown field nodes\[0\]\.extraPortMappings\[0\]\.hostIP/,
  );
  refusedBody('? [a]\n: b\n', 1, /key that is not a string/);
});

test('wrong types are refused: a string for a number, a list for a map, a map for a list', () => {
  refusedBody(
    'nodes:\n  - extraPortMappings:\n      - containerPort: "80"\n        hostPort: 8080\n',
    3,
    /containerPort must be a number, got "80"/,
  );
  refusedBody('featureGates: [A]\n', 1, /featureGates must be a map, got a list/);
  refusedBody('nodes:\n  role: worker\n', 2, /nodes must be a list, got a map/);
  refusedBody('nodes:\n  - worker\n', 2, /nodes\[0\] must be a map, got "worker"/);
  refusedBody('name: 7\n', 1, /name must be a string, got 7/);
  refusedBody('networking: []\n', 1, /networking must be a map/);
  refusedBody('nodes:\n  - labels:\n', 2, /nodes\[0\]\.labels must be a map, got nothing/);
});

test('roles: control-plane or worker, at least one control plane, at most 16 nodes', () => {
  refusedBody(
    'nodes:\n  - role: master\n',
    2,
    /nodes\[0\]\.role must be control-plane or worker, got "master"/,
  );
  refusedBody(
    'nodes:\n  - role: worker\n  - role: worker\n',
    1,
    /no control-plane node/,
    /role: control-plane/,
  );
  refusedBody(
    'nodes:\n  - role: control-plane\n  - role: control-plane\n  - role: worker\n',
    1,
    /nodes has 2 control-plane nodes, an even number: etcd keeps a majority/,
    /use 3 control-plane nodes .* or 1/,
  );
  refusedBody(
    `nodes:\n${'  - role: control-plane\n'.repeat(9)}`,
    1,
    /9 control-plane nodes; minilab makes at most 7/,
  );
  assert.equal(
    parseText(`nodes:\n${'  - role: control-plane\n'.repeat(3)}  - role: worker\n`).nodes.length,
    4,
  );
  refusedBody(
    `nodes:\n${'  - role: worker\n'.repeat(16)}  - role: control-plane\n`,
    1,
    /17 nodes; minilab makes at most 16/,
  );
});

test('port mappings: hostPort is required and not 0, ports in range, TCP or UDP, an IP to listen on', () => {
  const port = (fields: string) =>
    `nodes:\n  - extraPortMappings:\n      - ${fields.split('\n').join('\n        ')}\n`;
  refusedBody(
    port('containerPort: 80\nhostPort: 0'),
    4,
    /hostPort is 0 \(a random port\)/,
    /fixed host port/,
  );
  refusedBody(port('containerPort: 80'), 3, /hostPort is missing/, /give hostPort/);
  refusedBody(port('hostPort: 80'), 3, /containerPort is missing/);
  refusedBody(
    port('containerPort: 80\nhostPort: 70000'),
    4,
    /hostPort must be a whole number from 1 to 65535, got 70000/,
  );
  refusedBody(port('containerPort: 80\nhostPort: 80.5'), 4, /hostPort must be a whole number/);
  refusedBody(
    port('containerPort: 80\nhostPort: 8080\nprotocol: SCTP'),
    5,
    /protocol must be TCP or UDP, got "SCTP"/,
    /TCP and UDP/,
  );
  refusedBody(
    port('containerPort: 80\nhostPort: 8080\nlistenAddress: localhost'),
    5,
    /listenAddress must be an IP address/,
  );
  assert.equal(
    parseText(port('containerPort: 80\nhostPort: 8080\nprotocol: Udp')).nodes[0]?.extraPortMappings[0]
      ?.protocol,
    'udp',
  );
  // Loopback only, as --ports: a local cluster's ports are for this machine.
  refusedBody(
    port('containerPort: 80\nhostPort: 8080\nlistenAddress: 0.0.0.0'),
    5,
    /listenAddress 0\.0\.0\.0 is not supported: minilab publishes ports on loopback only/,
  );
});

test('host ports: one mapping per host port, none on the API server port or its node port', () => {
  refusedBody(
    'nodes:\n  - extraPortMappings:\n      - {containerPort: 80, hostPort: 8080}\n  - role: worker\n    extraPortMappings:\n      - {containerPort: 81, hostPort: 8080, listenAddress: 127.0.0.1}\n',
    6,
    /nodes\[1\]\.extraPortMappings\[0\] publishes host port 8080\/tcp, as nodes\[0\]\.extraPortMappings\[0\] does/,
  );
  // The same port number for TCP and UDP, or on two different addresses, is fine.
  parseText(
    'nodes:\n  - extraPortMappings:\n      - {containerPort: 53, hostPort: 53}\n      - {containerPort: 53, hostPort: 53, protocol: UDP}\n      - {containerPort: 80, hostPort: 8080, listenAddress: 127.0.0.2}\n      - {containerPort: 80, hostPort: 8080}\n',
  );
  refusedBody(
    'nodes:\n  - extraPortMappings:\n      - {containerPort: 80, hostPort: 7443}\nnetworking:\n  apiServerPort: 7443\n',
    3,
    /host port 7443, the networking\.apiServerPort/,
  );
  refusedBody(
    'nodes:\n  - extraPortMappings:\n      - containerPort: 6443\n        hostPort: 6443\n',
    3,
    /node port 6443 is the API server, published already/,
    /networking\.apiServerPort/,
  );
});

test("mounts: absolute paths, a boolean readOnly, one of kind's propagation modes", () => {
  const mount = (fields: string) =>
    `nodes:\n  - extraMounts:\n      - ${fields.split('\n').join('\n        ')}\n`;
  refusedBody(
    mount('hostPath: ./data\ncontainerPath: /data'),
    3,
    /hostPath must be an absolute path, got "\.\/data"/,
  );
  refusedBody(mount('hostPath: /data\ncontainerPath: data'), 4, /containerPath must be an absolute path/);
  refusedBody(mount('containerPath: /data'), 3, /hostPath is missing/);
  refusedBody(
    mount('hostPath: /a\ncontainerPath: /a\nreadOnly: "yes"'),
    5,
    /readOnly must be true or false, got "yes"/,
  );
  refusedBody(
    mount('hostPath: /a\ncontainerPath: /a\npropagation: rshared'),
    5,
    /propagation must be None, HostToContainer or Bidirectional/,
  );
});

test('networking: IPv4 subnets that are ranges of the right size and do not overlap', () => {
  refusedBody('networking:\n  podSubnet: fd00::/64\n', 2, /podSubnet must be an IPv4 CIDR/, /IPv4 only/);
  refusedBody('networking:\n  podSubnet: 10.244.0.0\n', 2, /must be an IPv4 CIDR/);
  refusedBody('networking:\n  podSubnet: 10.300.0.0/16\n', 2, /must be an IPv4 CIDR/);
  refusedBody(
    'networking:\n  podSubnet: 10.244.1.0/16\n',
    2,
    /not the start of its range/,
    /did you mean 10\.244\.0\.0\/16\?/,
  );
  refusedBody('networking:\n  podSubnet: 10.244.0.0/24\n', 2, /prefix from \/8 to \/16/);
  refusedBody('networking:\n  serviceSubnet: 10.0.0.0/8\n', 2, /prefix from \/12 to \/28/);
  refusedBody('networking:\n  podSubnet: 127.0.0.0/16\n', 2, /reserved range 127\.0\.0\.0\/8/);
  refusedBody(
    'networking:\n  podSubnet: 10.0.0.0/8\n  serviceSubnet: 10.96.0.0/16\n',
    3,
    /serviceSubnet 10\.96\.0\.0\/16 overlaps networking\.podSubnet 10\.0\.0\.0\/8/,
  );
  refusedBody(
    'networking:\n  podSubnet: 10.96.0.0/12\n',
    2,
    /the default serviceSubnet 10\.96\.0\.0\/16 overlaps networking\.podSubnet 10\.96\.0\.0\/12/,
  );
  refusedBody('networking:\n  podSubnet: 10\n', 2, /podSubnet must be a string, got 10/);
});

test('networking: kube-proxy mode, API server port and address', () => {
  refusedBody(
    'networking:\n  kubeProxyMode: none\n',
    2,
    /kubeProxyMode must be iptables or nftables, got "none"/,
    /always runs kube-proxy/,
  );
  refusedBody('networking:\n  kubeProxyMode: ipvs\n', 2, /got "ipvs"/, /iptables or nftables/);
  refusedBody(
    'networking:\n  apiServerPort: 0\n',
    2,
    /apiServerPort must be a whole number from 1 to 65535, got 0/,
    /leave/,
  );
  refusedBody('networking:\n  apiServerPort: 65536\n', 2, /apiServerPort must be a whole number/);
  refusedBody('networking:\n  apiServerPort: "6443"\n', 2, /apiServerPort must be a number, got "6443"/);
  refusedBody(
    'networking:\n  apiServerAddress: 0.0.0.0\n',
    2,
    /apiServerAddress 0\.0\.0\.0 is not supported: minilab publishes the API server on loopback only/,
    /127\.0\.0\.1/,
  );
  assert.equal(
    parseText('networking:\n  apiServerAddress: localhost\n').networking.apiServerAddress,
    'localhost',
  );
  assert.equal(parseText('networking:\n  kubeProxyMode: iptables\n').networking.kubeProxyMode, 'iptables');
});

test('feature gates are booleans by name; runtime config maps strings to strings', () => {
  refusedBody(
    'featureGates:\n  Foo: "true"\n',
    2,
    /featureGates\.Foo must be true or false, got "true"/,
    /without quotes/,
  );
  refusedBody('featureGates:\n  "Foo=Bar": true\n', 2, /invalid feature gate name "Foo=Bar"/);
  refusedBody(
    'runtimeConfig:\n  api/alpha: false\n',
    2,
    /runtimeConfig\["api\/alpha"\] must be a string, got false/,
    /quote/,
  );
  refusedBody('runtimeConfig:\n  "a,b": "true"\n', 2, /invalid runtimeConfig key "a,b"/);
  refusedBody('runtimeConfig: "api/all=true"\n', 1, /runtimeConfig must be a map/);
});

test('labels: Kubernetes syntax, string values, none the kubelet refuses or minilab uses', () => {
  const labels = (l: string) => `nodes:\n  - labels:\n      ${l}\n`;
  refusedBody(labels('"bad key!": x'), 3, /invalid label key "bad key!"/);
  refusedBody(labels('tier: "front end"'), 3, /invalid label value "front end" for tier/);
  refusedBody(labels('gpu: true'), 3, /labels\.gpu must be a string, got true/, /quote/);
  refusedBody(
    labels('node-role.kubernetes.io/worker: ""'),
    3,
    /the kubelet refuses to set node-role\.kubernetes\.io\/worker/,
  );
  refusedBody(labels('minilab.io/node: "x"'), 3, /minilab's own label/);
  assert.deepEqual(parseText(labels('topology.kubernetes.io/zone: a')).nodes[0]?.labels, {
    'topology.kubernetes.io/zone': 'a',
  });
});

test('the cluster name follows the profile name rules', () => {
  refusedBody('name: Dev_Cluster\n', 1, /name: invalid profile name "Dev_Cluster"/, /lowercase/);
});

test('kubeadm patches: YAML maps of a kubeadm document kind, errors at the line inside the file', () => {
  refusedBody('kubeadmConfigPatches: "kind: X"\n', 1, /kubeadmConfigPatches must be a list/);
  refusedBody(
    'kubeadmConfigPatches:\n  - kind: ClusterConfiguration\n',
    2,
    /kubeadmConfigPatches\[0\] must be a string, got a map/,
    /- \|/,
  );
  refusedBody(
    'kubeadmConfigPatches:\n  - |\n    kind: ClusterConfiguration\n    apiServer: a: b\n',
    4,
    /invalid YAML/,
  );
  refusedBody(
    'kubeadmConfigPatches:\n  - |\n    apiServer: {}\n',
    3,
    /kubeadmConfigPatches\[0\] has no kind/,
    /ClusterConfiguration/,
  );
  refusedBody('kubeadmConfigPatches:\n  - "# nothing"\n', 2, /kubeadmConfigPatches\[0\] is empty/);
  refusedBody('kubeadmConfigPatches:\n  - |\n    - a\n', 3, /must be a YAML map, got a list/);
  refusedBody(
    'kubeadmConfigPatches:\n  - |\n    kind: Deployment\n',
    3,
    /kind Deployment is none of minilab's kubeadm documents/,
  );
  refusedBody(
    'kubeadmConfigPatches:\n  - |\n    kind: KubeletConfiguration\n    apiVersion: kubeadm.k8s.io/v1beta3\n',
    4,
    /apiVersion kubeadm\.k8s\.io\/v1beta3 is not in KubeletConfiguration's group kubelet\.config\.k8s\.io/,
  );
  refusedBody(
    'kubeadmConfigPatches:\n  - |\n    kind: ClusterConfiguration\n    apiServer:\n      extraArgs:\n        v: 4\n',
    6,
    /kubeadmConfigPatches\[0\]: apiServer\.extraArgs values must be strings, got 4/,
    /quote/,
  );
  refusedBody(
    'kubeadmConfigPatches:\n  - |\n    kind: JoinConfiguration\n    nodeRegistration:\n      kubeletExtraArgs: [{name: v}, {value: "2"}]\n',
    5,
    /nodeRegistration\.kubeletExtraArgs items must be \{name, value\}/,
  );
  // Several documents in one patch, as kind allows; null removes an argument.
  const cfg = parseText(
    'kubeadmConfigPatches:\n  - |\n    kind: InitConfiguration\n    nodeRegistration:\n      kubeletExtraArgs:\n        v: null\n    ---\n    apiVersion: kubelet.config.k8s.io/v1beta1\n    kind: KubeletConfiguration\n    maxPods: 50\n',
  );
  assert.equal(cfg.kubeadmConfigPatches.length, 1);
});

test('a flag that describes what the file does must agree with it; --ports adds to the first control plane', () => {
  const cfg = parseText(
    'nodes:\n  - role: worker\n  - role: control-plane\n    extraPortMappings:\n      - {containerPort: 80, hostPort: 8080}\n',
  );
  const usage = (fn: () => unknown, message: RegExp) =>
    assert.throws(
      fn,
      (e: unknown) => e instanceof MinilabError && e.exitCode === 2 && message.test(e.message) && !!e.hint,
    );
  assert.deepEqual(mergeWithFlags(cfg, {}, 'cluster.yaml'), cfg);
  assert.deepEqual(mergeWithFlags(cfg, { nodes: 2, controlPlanes: 1 }, 'cluster.yaml'), cfg);
  usage(
    () => mergeWithFlags(cfg, { nodes: 3 }, 'cluster.yaml'),
    /--nodes 3 disagrees with cluster\.yaml, which has 2 nodes/,
  );
  usage(
    () => mergeWithFlags(cfg, { controlPlanes: 3 }, 'cluster.yaml'),
    /--control-planes 3 disagrees with cluster\.yaml, which has 1 control-plane node$/,
  );
  const merged = mergeWithFlags(
    cfg,
    { ports: [{ hostPort: 9090, containerPort: 90, protocol: 'tcp' }], apiServerPort: 7443 },
    'cluster.yaml',
  );
  assert.deepEqual(merged.nodes[1]?.extraPortMappings, [
    { containerPort: 80, hostPort: 8080, listenAddress: '127.0.0.1', protocol: 'tcp' },
    { containerPort: 90, hostPort: 9090, listenAddress: '127.0.0.1', protocol: 'tcp' },
  ]);
  assert.equal(merged.networking.apiServerPort, 7443);
  assert.deepEqual(cfg.nodes[1]?.extraPortMappings.length, 1, 'the parsed config is left as it was');
  usage(
    () =>
      mergeWithFlags(
        cfg,
        { ports: [{ hostPort: 8080, containerPort: 81, protocol: 'tcp' }] },
        'cluster.yaml',
      ),
    /host port 8080\/tcp is in cluster\.yaml already/,
  );
  const pinned = parseText('networking:\n  apiServerPort: 7443\n');
  usage(
    () => mergeWithFlags(pinned, { apiServerPort: 8443 }, 'cluster.yaml'),
    /--api-server-port 8443 disagrees .* networking\.apiServerPort 7443/,
  );
  usage(
    () =>
      mergeWithFlags(
        pinned,
        { ports: [{ hostPort: 7443, containerPort: 80, protocol: 'tcp' }] },
        'cluster.yaml',
      ),
    /host port 7443 is the API server's/,
  );
});

// customizeKubeadm

const shape: ClusterShape = {
  kubernetesVersion: 'v1.36.5',
  nodeName: 'dev-control-plane',
  nodeIp: '172.18.0.2',
  cgroupVersion: '2',
  podSubnet: '10.244.0.0/16',
  serviceSubnet: '10.96.0.0/16',
  conntrackWritable: true,
  bootstrapToken: 'abcdef.0123456789abcdef',
  taintControlPlane: false,
};
const join = joinConfig({
  nodeName: 'dev-worker1',
  nodeIp: '172.18.0.3',
  controlPlaneEndpoint: 'dev-control-plane:6443',
  bootstrapToken: 'abcdef.0123456789abcdef',
  caCertHash: 'sha256:00ff',
});
const none = { featureGates: {}, runtimeConfig: {}, kubeadmConfigPatches: [] };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;
const byKind = (text: string) =>
  Object.fromEntries(
    parseAllDocuments(text).map((d) => [(d.toJS() as { kind: string }).kind, d.toJS() as Doc]),
  ) as Record<string, Doc>;
const arg = (c: { extraArgs?: { name: string; value: string }[] }, name: string) =>
  c.extraArgs?.find((a) => a.name === name)?.value;

test('without settings the kubeadm configuration comes back as it went in', () => {
  assert.equal(customizeKubeadm(kubeadmConfig(shape), none), kubeadmConfig(shape));
  assert.equal(customizeKubeadm(join, none), join);
});

test('feature gates reach the API server, controller manager, scheduler, kubelet and kube-proxy', () => {
  const out = customizeKubeadm(kubeadmConfig(shape), { ...none, featureGates: { Zeta: false, Alpha: true } });
  assert.deepEqual(
    parseAllDocuments(out).map((d) => (d.toJS() as { kind: string }).kind),
    ['InitConfiguration', 'ClusterConfiguration', 'KubeletConfiguration', 'KubeProxyConfiguration'],
    'same documents, same order',
  );
  const d = byKind(out);
  for (const component of ['apiServer', 'controllerManager', 'scheduler']) {
    assert.equal(arg(d.ClusterConfiguration[component], 'feature-gates'), 'Alpha=true,Zeta=false', component);
  }
  assert.equal(
    arg(d.ClusterConfiguration.scheduler, 'leader-elect'),
    'false',
    "minilab's own arguments stay",
  );
  assert.deepEqual(d.KubeletConfiguration.featureGates, { Alpha: true, Zeta: false });
  assert.deepEqual(d.KubeProxyConfiguration.featureGates, { Alpha: true, Zeta: false });
  assert.equal(d.InitConfiguration.featureGates, undefined, "kubeadm's own gates are not Kubernetes'");
  assert.equal(
    customizeKubeadm(join, { ...none, featureGates: { Alpha: true } }),
    join,
    'workers get them from the cluster',
  );
});

test('runtime config becomes the API server runtime-config argument', () => {
  const d = byKind(
    customizeKubeadm(kubeadmConfig(shape), {
      ...none,
      runtimeConfig: { 'batch/v2': 'true', 'api/alpha': 'false' },
    }),
  );
  assert.equal(arg(d.ClusterConfiguration.apiServer, 'runtime-config'), 'api/alpha=false,batch/v2=true');
  assert.equal(arg(d.ClusterConfiguration.controllerManager, 'runtime-config'), undefined);
});

test('a v1beta3 patch with extraArgs maps merges into the v1beta4 argument lists by name', () => {
  const patch = `apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
apiServer:
  extraArgs:
    v: "4"
  certSANs: [my.example.com]
controllerManager:
  extraArgs:
    kube-api-qps: "50"
    leader-elect: null
etcd:
  local:
    extraArgs:
      quota-backend-bytes: "1000000"
`;
  const d = byKind(customizeKubeadm(kubeadmConfig(shape), { ...none, kubeadmConfigPatches: [patch] }));
  const cluster = d.ClusterConfiguration;
  assert.equal(
    cluster.apiVersion,
    'kubeadm.k8s.io/v1beta4',
    "the patch's version does not replace the document's",
  );
  assert.deepEqual(cluster.apiServer.extraArgs, [{ name: 'v', value: '4' }]);
  assert.deepEqual(cluster.controllerManager.extraArgs, [
    { name: 'kube-api-qps', value: '50' },
    { name: 'kube-api-burst', value: '400' },
    { name: 'cert-dir', value: '/var/lib/kube-controller-manager' },
  ]);
  assert.deepEqual(cluster.etcd.local.extraArgs, [
    { name: 'heartbeat-interval', value: '50' },
    { name: 'election-timeout', value: '250' },
    { name: 'quota-backend-bytes', value: '1000000' },
  ]);
  assert.equal(cluster.etcd.local.dataDir, '/var/lib/etcd', 'maps merge');
  assert.ok(cluster.apiServer.certSANs.includes('my.example.com'));
  assert.ok(cluster.apiServer.certSANs.includes('127.0.0.1'), "certSANs are added to: minilab's names stay");
  assert.deepEqual(cluster.apiServer.extraEnvs, [{ name: 'GOGC', value: '25' }]);
});

test('a v1beta4 list patch merges by name too; feature gates and patches combine', () => {
  const patch =
    'kind: ClusterConfiguration\nscheduler:\n  extraArgs:\n    - name: v\n      value: "2"\n    - name: leader-elect\n      value: "true"\n';
  const d = byKind(
    customizeKubeadm(kubeadmConfig(shape), {
      ...none,
      featureGates: { A: true },
      kubeadmConfigPatches: [patch],
    }),
  );
  assert.deepEqual(d.ClusterConfiguration.scheduler.extraArgs, [
    { name: 'leader-elect', value: 'true' },
    { name: 'cert-dir', value: '/var/lib/kube-scheduler' },
    { name: 'feature-gates', value: 'A=true' },
    { name: 'v', value: '2' },
  ]);
});

test('a KubeletConfiguration patch merges into the kubelet configuration; null deletes a key', () => {
  const patch = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
maxPods: 50
evictionHard:
  nodefs.available: null
  memory.available: 100Mi
serializeImagePulls: null
`;
  const d = byKind(customizeKubeadm(kubeadmConfig(shape), { ...none, kubeadmConfigPatches: [patch] }));
  const kubelet = d.KubeletConfiguration;
  assert.equal(kubelet.maxPods, 50);
  assert.deepEqual(kubelet.evictionHard, {
    'nodefs.inodesFree': '0%',
    'imagefs.available': '0%',
    'memory.available': '100Mi',
  });
  assert.ok(!('serializeImagePulls' in kubelet));
  assert.equal(kubelet.cgroupDriver, 'systemd');
  assert.equal(d.KubeProxyConfiguration.maxPods, undefined, 'only the matching kind is patched');
});

test('a patch naming another API group, or a kind not in the configuration, changes nothing', () => {
  const config = kubeadmConfig(shape);
  const patches = [
    'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\nmaxPods: 1\n',
    'kind: JoinConfiguration\nnodeRegistration:\n  name: x\n',
  ];
  assert.equal(customizeKubeadm(config, { ...none, kubeadmConfigPatches: patches }), config);
});

test('a JoinConfiguration patch applies to joins only; kubeletExtraArgs merge by name, null removes', () => {
  const patch = `kind: JoinConfiguration
nodeRegistration:
  kubeletExtraArgs:
    node-labels: null
    v: "3"
  taints: []
`;
  const cfg = { ...none, kubeadmConfigPatches: [patch] };
  const j = parse(customizeKubeadm(join, cfg)) as Doc;
  assert.deepEqual(j.nodeRegistration.kubeletExtraArgs, [
    { name: 'node-ip', value: '172.18.0.3' },
    { name: 'v', value: '3' },
  ]);
  assert.deepEqual(j.nodeRegistration.taints, []);
  assert.equal(j.nodeRegistration.name, 'dev-worker1');
  assert.equal(customizeKubeadm(kubeadmConfig(shape), cfg), kubeadmConfig(shape));
});

test('patches apply in order; a later one sees the earlier one; lists other than arguments replace', () => {
  const patches = [
    'kind: KubeProxyConfiguration\nconntrack:\n  maxPerCore: 0\nmode: nftables\n',
    'kind: KubeProxyConfiguration\nconntrack: null\n---\nkind: ClusterConfiguration\napiServer:\n  extraEnvs: [{name: A, value: b}]\n',
  ];
  const d = byKind(customizeKubeadm(kubeadmConfig(shape), { ...none, kubeadmConfigPatches: patches }));
  assert.equal(d.KubeProxyConfiguration.mode, 'nftables');
  assert.ok(!('conntrack' in d.KubeProxyConfiguration));
  assert.deepEqual(d.ClusterConfiguration.apiServer.extraEnvs, [{ name: 'A', value: 'b' }]);
});

test('a parsed file customizes the configuration end to end', () => {
  const cfg = parseText(`featureGates:
  Alpha: true
runtimeConfig:
  "api/alpha": "false"
kubeadmConfigPatches:
  - |
    kind: InitConfiguration
    nodeRegistration:
      kubeletExtraArgs:
        v: "5"
`);
  const d = byKind(customizeKubeadm(kubeadmConfig(shape), cfg));
  assert.equal(arg(d.ClusterConfiguration.apiServer, 'runtime-config'), 'api/alpha=false');
  assert.equal(arg(d.ClusterConfiguration.apiServer, 'feature-gates'), 'Alpha=true');
  assert.deepEqual(d.InitConfiguration.nodeRegistration.kubeletExtraArgs.at(-1), { name: 'v', value: '5' });
});

test("a patch's node-labels, feature-gates or runtime-config add to the value key by key (kind's ingress example)", () => {
  const patch = `kind: InitConfiguration
nodeRegistration:
  kubeletExtraArgs:
    node-labels: "ingress-ready=true"
---
kind: ClusterConfiguration
apiServer:
  extraArgs:
    feature-gates: "Beta=true,Alpha=false"
`;
  const d = byKind(
    customizeKubeadm(kubeadmConfig(shape), {
      ...none,
      featureGates: { Alpha: true },
      kubeadmConfigPatches: [patch],
    }),
  );
  assert.equal(
    arg({ extraArgs: d.InitConfiguration.nodeRegistration.kubeletExtraArgs }, 'node-labels'),
    'ingress-ready=true,minilab.io/node=true',
    "minilab's node label stays",
  );
  assert.equal(
    arg(d.ClusterConfiguration.apiServer, 'feature-gates'),
    'Alpha=false,Beta=true',
    'the patch comes last',
  );
  assert.equal(arg(d.ClusterConfiguration.scheduler, 'feature-gates'), 'Alpha=true');
});
