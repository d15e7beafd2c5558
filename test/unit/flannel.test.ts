import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { flannelManifest } from '../../src/kube/flannel.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;
const image = 'ghcr.io/flannel-io/flannel:v0.28.10';
const manifest = (backend: 'host-gw' | 'vxlan', podSubnet = '10.244.0.0/16') =>
  flannelManifest({ image, podSubnet, backend, apiServer: { host: 'demo-control-plane', port: 6443 } });
const docs = (backend: 'host-gw' | 'vxlan', podSubnet?: string) =>
  parseAllDocuments(manifest(backend, podSubnet)).map((d) => {
    assert.deepEqual(d.errors, [], 'every document parses');
    return d.toJS() as Doc;
  });
const ofKind = (d: Doc[], kind: string) => d.find((x) => x.kind === kind);

test('flannel manifest: namespace, RBAC, config and a DaemonSet on every node, as the release ships it', () => {
  const d = docs('host-gw');
  assert.deepEqual(
    d.map((x) => x.kind),
    [
      'Namespace',
      'Role',
      'RoleBinding',
      'ClusterRole',
      'ClusterRoleBinding',
      'ServiceAccount',
      'ConfigMap',
      'DaemonSet',
    ],
  );
  const namespaced = d.filter((x) => !['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(x.kind));
  for (const x of namespaced) assert.equal(x.metadata.namespace, 'kube-flannel', `${x.kind} namespace`);
  const ds = ofKind(d, 'DaemonSet').spec.template.spec;
  assert.equal(ds.hostNetwork, true);
  assert.equal(ds.serviceAccountName, 'flannel');
  assert.deepEqual(ds.tolerations, [{ operator: 'Exists' }], 'tolerates every taint (no key, no effect)');
  assert.deepEqual(ofKind(d, 'ClusterRoleBinding').subjects, [
    { kind: 'ServiceAccount', name: 'flannel', namespace: 'kube-flannel' },
  ]);
});

test('flannel manifest: the given image, preloaded, in every container and nowhere another', () => {
  const text = manifest('vxlan');
  const ds = ofKind(docs('vxlan'), 'DaemonSet').spec.template.spec;
  assert.equal(ds.initContainers, undefined, 'no init container: both start in one pass of the kubelet');
  assert.deepEqual(
    ds.containers.map((c: Doc) => [c.name, c.image, c.imagePullPolicy]),
    [
      ['kube-flannel', image, 'Never'],
      ['install-cni', image, 'Never'],
    ],
  );
  const refs = [...text.matchAll(/^\s*image: (.*)$/gm)].map((m) => m[1]);
  assert.deepEqual(refs, [image, image]);
});

test('flannel daemon: kube subnet manager, masquerading, capabilities and mounts as upstream', () => {
  const ds = ofKind(docs('host-gw'), 'DaemonSet').spec.template.spec;
  const [flanneld] = ds.containers;
  assert.deepEqual(flanneld.command, ['/opt/bin/flanneld']);
  assert.deepEqual(flanneld.args.slice(0, 2), ['--ip-masq', '--kube-subnet-mgr']);
  assert.deepEqual(flanneld.securityContext, {
    privileged: false,
    capabilities: { add: ['NET_ADMIN', 'NET_RAW'] },
  });
  const env = Object.fromEntries(
    flanneld.env.map((e: Doc) => [e.name, e.value ?? e.valueFrom.fieldRef.fieldPath]),
  );
  assert.equal(env.NODE_NAME, 'spec.nodeName', 'its node given: no read of its own pod');
  // The API server by the cluster's stable name, not the kubernetes Service: on a node that has
  // just joined, the Service works only once kube-proxy there has written its rules.
  assert.equal(env.KUBERNETES_SERVICE_HOST, 'demo-control-plane');
  assert.equal(env.KUBERNETES_SERVICE_PORT, '6443');
  assert.equal(env.POD_NAME, 'metadata.name');
  assert.equal(env.POD_NAMESPACE, 'metadata.namespace');
  assert.equal(env.EVENT_QUEUE_DEPTH, '5000');
  const hostPaths = Object.fromEntries(
    ds.volumes.filter((v: Doc) => v.hostPath).map((v: Doc) => [v.name, v.hostPath.path]),
  );
  const mounts = (c: Doc) => c.volumeMounts.map((m: Doc) => hostPaths[m.name] ?? `configmap:${m.mountPath}`);
  assert.deepEqual(mounts(flanneld), ['/run/flannel', 'configmap:/etc/kube-flannel/', '/run/xtables.lock']);
  // A container beside flanneld puts the CNI config where containerd reads it (conf_dir
  // /etc/cni/net.d), once flanneld has written the node's subnet file: the node is Ready only when
  // pods can start.
  const [, init] = ds.containers;
  assert.equal(init.name, 'install-cni');
  assert.deepEqual(mounts(init), ['/etc/cni/net.d', 'configmap:/etc/kube-flannel/', '/run/flannel']);
  assert.deepEqual(init.command.slice(0, 2), ['sh', '-c']);
  const script = init.command[2] as string;
  assert.ok(
    script.indexOf('/run/flannel/subnet.env') < script.indexOf('/opt/bin/install-conf'),
    'waits for the subnet file before installing',
  );
  assert.match(
    script,
    /install-conf \/etc\/kube-flannel\/cni-conf\.json \/etc\/cni\/net\.d\/10-flannel\.conflist/,
  );
});

test('flannel config: the pod subnet and backend; the CNI config delegates to the bridge through the flannel plugin', () => {
  for (const backend of ['host-gw', 'vxlan'] as const) {
    const cm = ofKind(docs(backend, '10.99.0.0/16'), 'ConfigMap');
    assert.equal(cm.metadata.name, 'kube-flannel-cfg');
    assert.deepEqual(JSON.parse(cm.data['net-conf.json']), {
      Network: '10.99.0.0/16',
      EnableNFTables: false,
      Backend: { Type: backend },
    });
    const cni = JSON.parse(cm.data['cni-conf.json']);
    assert.equal(cni.cniVersion, '0.3.1');
    assert.deepEqual(cni.plugins, [
      { type: 'flannel', delegate: { hairpinMode: true, isDefaultGateway: true } },
      { type: 'portmap', capabilities: { portMappings: true } },
    ]);
  }
});
