import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { flannelManifest } from '../../src/kube/flannel.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;
const image = 'ghcr.io/flannel-io/flannel:v0.28.10';
const docs = (backend: 'host-gw' | 'vxlan') =>
  parseAllDocuments(flannelManifest({ image, podSubnet: '10.244.0.0/16', backend })).map(
    (d) => d.toJS() as Doc,
  );

test('flannel manifest: namespace, RBAC, config and a DaemonSet on every node, as the release ships it', () => {
  const d = docs('host-gw');
  assert.deepEqual(
    d.map((x) => x.kind),
    ['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'ServiceAccount', 'ConfigMap', 'DaemonSet'],
  );
  const ds = d[5].spec.template.spec;
  assert.equal(ds.hostNetwork, true);
  assert.deepEqual(
    ds.tolerations,
    [{ operator: 'Exists', effect: 'NoSchedule' }],
    'runs on the tainted control plane',
  );
  const images = [...ds.initContainers, ...ds.containers].map((c: Doc) => [c.image, c.imagePullPolicy]);
  assert.deepEqual(images, [
    [image, 'Never'],
    [image, 'Never'],
  ]);
  assert.deepEqual(ds.containers[0].args.slice(0, 2), ['--ip-masq', '--kube-subnet-mgr']);
});

test('flannel config: the pod subnet and backend; the CNI config delegates to the bridge through the flannel plugin', () => {
  for (const backend of ['host-gw', 'vxlan'] as const) {
    const cm = docs(backend)[4];
    assert.deepEqual(JSON.parse(cm.data['net-conf.json']), {
      Network: '10.244.0.0/16',
      EnableNFTables: false,
      Backend: { Type: backend },
    });
    const cni = JSON.parse(cm.data['cni-conf.json']);
    assert.equal(cni.cniVersion, '0.3.1');
    assert.deepEqual(
      cni.plugins.map((p: Doc) => p.type),
      ['flannel', 'portmap'],
    );
  }
});
