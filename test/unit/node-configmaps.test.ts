import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { kubeSystemConfigMapReaders, nodeConfigMapReaders } from '../../src/kube/node-configmaps.js';
import { storageManifest } from '../../src/kube/addons.js';
import { flannelManifest } from '../../src/kube/flannel.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;
const parse = (text: string): Doc[] => parseAllDocuments(text).map((d) => d.toJS() as Doc);

test('node ConfigMap readers: the nodes group may get, list and watch the named ConfigMaps of one namespace, nothing else', () => {
  const [role, binding] = nodeConfigMapReaders('ns1', ['a', 'b']) as Doc[];
  assert.equal(role.kind, 'Role');
  assert.equal(role.metadata.namespace, 'ns1');
  assert.deepEqual(role.rules, [
    {
      apiGroups: [''],
      resources: ['configmaps'],
      resourceNames: ['a', 'b'],
      verbs: ['get', 'list', 'watch'],
    },
  ]);
  assert.equal(binding.kind, 'RoleBinding');
  assert.equal(binding.metadata.namespace, 'ns1');
  assert.deepEqual(binding.roleRef, {
    apiGroup: 'rbac.authorization.k8s.io',
    kind: 'Role',
    name: role.metadata.name,
  });
  assert.deepEqual(binding.subjects, [
    { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:nodes' },
  ]);
});

test("node ConfigMap readers in kube-system: CoreDNS's and kube-proxy's ConfigMaps and the namespace's CA bundle", () => {
  const [role] = parse(kubeSystemConfigMapReaders());
  assert.equal(role.metadata.namespace, 'kube-system');
  assert.deepEqual(role.rules[0].resourceNames, ['coredns', 'kube-proxy', 'kube-root-ca.crt']);
});

test("the storage provisioner's and flannel's manifests let nodes read every ConfigMap their pods mount, before the pods exist", () => {
  const manifests = [
    storageManifest({ provisioner: 'p:1', helper: 'h:1' }),
    flannelManifest({
      image: 'f:1',
      podSubnet: '10.244.0.0/16',
      backend: 'vxlan',
      apiServer: { host: 'c', port: 6443 },
    }),
  ];
  for (const docs of manifests.map(parse)) {
    const workload = docs.findIndex((d) => d.kind === 'Deployment' || d.kind === 'DaemonSet');
    const role = docs.findIndex(
      (d) => d.kind === 'Role' && d.metadata.name === 'minilab:nodes-pod-configmaps',
    );
    assert.ok(role >= 0 && role < workload, 'the Role comes before the workload');
    const mounted = (docs[workload].spec.template.spec.volumes as Doc[])
      .filter((v) => v.configMap)
      .map((v) => v.configMap.name as string);
    assert.ok(mounted.length > 0);
    assert.deepEqual(docs[role].rules[0].resourceNames, [...mounted, 'kube-root-ca.crt']);
    assert.equal(docs[role].metadata.namespace, docs[workload].metadata.namespace);
  }
});
