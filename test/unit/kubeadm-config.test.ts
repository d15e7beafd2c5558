import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import {
  GOGC,
  PATCHES_DIR,
  SHIM_GROUP,
  addonPatches,
  staticPodPatches,
  kubeadmPatchesKubeProxy,
  bridgeCniConfig,
  caCertHash,
  joinConfig,
  kubeadmConfig,
  newBootstrapToken,
  type ClusterShape,
} from '../../src/kube/kubeadm-config.js';
import { kubeadmInit, writeFilesScript } from '../../src/lifecycle/kubeadm.js';
import { servingCerts } from '../../src/lifecycle/serving-certs.js';
import type { Node } from '../../src/providers/types.js';
import { storageManifest } from '../../src/kube/addons.js';
import { flannelManifest } from '../../src/kube/flannel.js';
import { projectRoot } from '../../src/version.js';
import { FAKE_CA } from '../helpers/fake-provider.js';

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

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;
const docs = (s: ClusterShape) =>
  Object.fromEntries(
    parseAllDocuments(kubeadmConfig(s)).map((d) => [(d.toJS() as { kind: string }).kind, d.toJS() as Doc]),
  ) as Record<string, Doc>;

test('kubeadm v1beta4 config: version, endpoint, SANs for the host, no taints', () => {
  const d = docs(shape);
  assert.deepEqual(Object.keys(d), [
    'InitConfiguration',
    'ClusterConfiguration',
    'KubeletConfiguration',
    'KubeProxyConfiguration',
  ]);
  const cluster = d.ClusterConfiguration as {
    apiVersion: string;
    kubernetesVersion: string;
    controlPlaneEndpoint: string;
    apiServer: { certSANs: string[] };
  };
  assert.equal(cluster.apiVersion, 'kubeadm.k8s.io/v1beta4');
  assert.equal(cluster.kubernetesVersion, 'v1.36.5');
  assert.equal(cluster.controlPlaneEndpoint, 'dev-control-plane:6443');
  for (const san of ['127.0.0.1', 'localhost', 'dev-control-plane', '172.18.0.2'])
    assert.ok(cluster.apiServer.certSANs.includes(san));
  const init = d.InitConfiguration as {
    nodeRegistration: { taints: unknown[]; kubeletExtraArgs: { name: string; value: string }[] };
  };
  assert.deepEqual(init.nodeRegistration.taints, []);
  assert.deepEqual(init.nodeRegistration.kubeletExtraArgs[0], { name: 'node-ip', value: '172.18.0.2' });
});

test("the node image's kubelet and containerd drop-ins set GOGC", async () => {
  const units = join(projectRoot, 'images', 'node', 'files', 'etc', 'systemd', 'system');
  for (const file of ['containerd.service.d/10-minilab.conf', 'kubelet.service.d/20-minilab.conf']) {
    const text = await readFile(join(units, file), 'utf8');
    assert.match(text, new RegExp(`^Environment=GOGC=${GOGC}$`, 'm'), file);
  }
});

test('control-plane components collect garbage at GOGC=25 (lower idle memory)', () => {
  const cluster = docs(shape).ClusterConfiguration;
  for (const c of [cluster.apiServer, cluster.controllerManager, cluster.scheduler, cluster.etcd.local]) {
    assert.deepEqual(c.extraEnvs, [{ name: 'GOGC', value: '25' }]);
  }
});

test('kubelet config: systemd cgroups; cgroup v1 hosts get failCgroupV1: false', () => {
  const v2 = docs(shape).KubeletConfiguration as Record<string, unknown>;
  assert.equal(v2.cgroupDriver, 'systemd');
  assert.equal(v2.failCgroupV1, undefined);
  const v1 = docs({ ...shape, cgroupVersion: '1' }).KubeletConfiguration as Record<string, unknown>;
  assert.equal(v1.failCgroupV1, false);
});

test('kube-proxy leaves nf_conntrack_max alone where the node may not write it', () => {
  const free = docs(shape).KubeProxyConfiguration as { conntrack: object };
  assert.deepEqual(free.conntrack, {});
  const locked = docs({ ...shape, conntrackWritable: false }).KubeProxyConfiguration as { conntrack: object };
  assert.deepEqual(locked.conntrack, { maxPerCore: 0 });
});

test('bridge CNI config uses the node pod CIDR', () => {
  const c = JSON.parse(bridgeCniConfig('10.244.0.0/24')) as {
    plugins: { type: string; ipam?: { ranges: { subnet: string }[][] } }[];
  };
  assert.equal(c.plugins[0]?.type, 'bridge');
  assert.equal(c.plugins[0]?.ipam?.ranges[0]?.[0]?.subnet, '10.244.0.0/24');
});

test('one node, no leader election; the controller manager may make its start-up requests quickly', () => {
  const cluster = docs(shape).ClusterConfiguration;
  const arg = (c: { extraArgs: { name: string; value: string }[] }, name: string) =>
    c.extraArgs.find((a) => a.name === name)?.value;
  assert.equal(arg(cluster.controllerManager, 'leader-elect'), 'false');
  assert.equal(arg(cluster.scheduler, 'leader-elect'), 'false');
  assert.ok(Number(arg(cluster.controllerManager, 'kube-api-qps')) >= 100);
  assert.equal(docs(shape).InitConfiguration.patches.directory, PATCHES_DIR);
});

test('add-on patches: one CoreDNS replica probed every second; GOGC for CoreDNS and kube-proxy', () => {
  const p = addonPatches('10.244.0.0/16', 'v1.37.2');
  assert.deepEqual(Object.keys(p).sort(), [
    'corednsdeployment+strategic.json',
    'kubeproxydaemonset+strategic.json',
  ]);
  const dns = JSON.parse(p['corednsdeployment+strategic.json'] as string);
  assert.equal(dns.spec.replicas, 1);
  assert.equal(dns.spec.template.spec.containers[0].name, 'coredns');
  assert.equal(dns.spec.template.spec.containers[0].readinessProbe.periodSeconds, 1);
  assert.deepEqual(
    dns.spec.template.spec.containers[0].env.filter((e: { name: string }) =>
      e.name.startsWith('KUBERNETES_'),
    ),
    [
      { name: 'KUBERNETES_SERVICE_HOST', value: '10.244.0.1' },
      { name: 'KUBERNETES_SERVICE_PORT', value: '6443' },
    ],
  );
  // ... an address the API server's certificate covers.
  assert.ok(docs(shape).ClusterConfiguration.apiServer.certSANs.includes('10.244.0.1'));
  const proxy = JSON.parse(p['kubeproxydaemonset+strategic.json'] as string);
  assert.deepEqual(proxy.spec.template.spec.containers[0].env, [{ name: 'GOGC', value: '25' }]);
});

/** A node whose every exec succeeds and whose scripts are kept, in order, in `scripts`. */
function recordingNode(scripts: string[], name: string, role = 'control-plane'): Node {
  return {
    name,
    role,
    exec: async (cmd: string[]) => {
      scripts.push(cmd.join(' '));
      return { exitCode: 0, stdout: '', stderr: '', started: true };
    },
  } as unknown as Node;
}

test('kubeadm init in three parts runs every init phase once, except preflight, wait-control-plane, kubelet-finalize and show-join-command; the objects as the super-admin beside the wait for /livez, the controller manager and scheduler after it', async () => {
  const scripts: string[] = [];
  const node = recordingNode(scripts, 'dev-control-plane');
  let beforeLivez = -1;
  const init = { ...shape, kubernetesVersion: 'v1.37.2' };
  await kubeadmInit(node, init, async () => {
    beforeLivez = scripts.length;
  });
  // the phases each script runs: the first pass's are those it does not skip
  const ran = scripts.map((script) => {
    const skip = /kubeadm init .*--skip-phases=(\S+)/.exec(script)?.[1];
    if (skip) return PHASES.filter((p) => !skip.split(',').some((s) => p === s || p.startsWith(`${s}/`)));
    return [...script.matchAll(/kubeadm init phase (\S+)(?: (\S+))?/g)].map(([, phase, sub]) =>
      sub === undefined || sub === 'all' || sub.startsWith('-') ? phase : `${phase}/${sub}`,
    );
  });
  const expanded = ran.flat().flatMap((p) => PHASES.filter((q) => q === p || q.startsWith(`${p}/`)));
  const once = PHASES.filter((p) => !['upload-certs', 'show-join-command'].includes(p));
  assert.deepEqual([...expanded].sort(), [...once].sort(), 'one node: no certificates to upload');
  assert.equal(beforeLivez, 2, 'the object phases start before /livez is awaited');
  assert.deepEqual(ran[1], ['upload-config', 'bootstrap-token', 'addon']);
  assert.ok(scripts[1]?.includes('/livez/poststarthook/start-kubernetes-service-cidr-controller'));
  for (const line of scripts[1]?.split('\n').filter((l) => l.startsWith('kubeadm')) ?? []) {
    assert.ok(line.includes('--kubeconfig /etc/kubernetes/super-admin.conf'), line);
  }
  assert.deepEqual(ran[2], [
    'control-plane/controller-manager',
    'control-plane/scheduler',
    'mark-control-plane',
  ]);
  assert.ok(ran[0]?.includes('control-plane/apiserver'));
  // The nodes' ConfigMap readers: written by the first pass, applied with the objects, before
  // the controller manager (the late part) makes CoreDNS's pod.
  assert.match(scripts[0] ?? '', /\/etc\/minilab\/node-configmaps\.yaml/);
  assert.match(
    scripts[1] ?? '',
    /kubectl --kubeconfig \/etc\/kubernetes\/super-admin\.conf apply --server-side --field-manager=minilab -f \/etc\/minilab\/node-configmaps\.yaml/,
  );

  scripts.length = 0;
  const ha = { loadBalancer: 'dev-external-load-balancer', certificateKey: 'c'.repeat(64) };
  await kubeadmInit(node, { ...init, highAvailability: ha }, async () => undefined);
  assert.ok(
    scripts[1]?.includes(
      'kubeadm init phase upload-certs --config /etc/minilab/kubeadm.yaml --kubeconfig /etc/kubernetes/super-admin.conf --upload-certs',
    ),
  );
  assert.match(scripts[2] ?? '', /systemctl restart kubelet/);
});

/** kubeadm v1.37's init phases (kubeadm init --help), minus the four never run. */
const PHASES = [
  'certs',
  'kubeconfig',
  'etcd',
  'control-plane/apiserver',
  'control-plane/controller-manager',
  'control-plane/scheduler',
  'kubelet-start',
  'upload-config',
  'upload-certs',
  'mark-control-plane',
  'bootstrap-token',
  'addon',
];

test('files are written from quoted here-documents: no shell expansion of their content', () => {
  const script = writeFilesScript({ '/etc/x/a.conf': 'value: $HOME `id`\n' });
  assert.match(
    script,
    /^mkdir -p "\$\(dirname \/etc\/x\/a.conf\)"\ncat > \/etc\/x\/a.conf <<'MINILAB_EOF'\n/,
  );
  assert.ok(script.includes('value: $HOME `id`\nMINILAB_EOF'));
});

test('kube-proxy is patched by kubeadm only where kubeadm reads that patch (v1.37 on)', () => {
  assert.ok('kubeproxydaemonset+strategic.json' in addonPatches('10.244.0.0/16', 'v1.37.2'));
  assert.ok(!('kubeproxydaemonset+strategic.json' in addonPatches('10.244.0.0/16', 'v1.36.5')));
  assert.ok('corednsdeployment+strategic.json' in addonPatches('10.244.0.0/16', 'v1.34.0'));
  assert.equal(kubeadmPatchesKubeProxy('v1.36.5'), false);
  assert.equal(kubeadmPatchesKubeProxy('v1.38.0'), true);
});

test('the bootstrap token is in the cluster config; with workers the control plane keeps its taint', () => {
  const init = docs(shape).InitConfiguration;
  assert.equal(init.bootstrapTokens[0].token, shape.bootstrapToken);
  assert.deepEqual(init.nodeRegistration.taints, [], 'one node runs everything');
  const tainted = docs({ ...shape, taintControlPlane: true }).InitConfiguration;
  assert.equal(tainted.nodeRegistration.taints, undefined, "kubeadm's default control-plane taint");
});

test('a worker joins by the control plane name with the bootstrap token, its own IP and no image pulls', () => {
  const j = parse(
    joinConfig({
      nodeName: 'dev-worker1',
      nodeIp: '172.18.0.3',
      controlPlaneEndpoint: 'dev-control-plane:6443',
      bootstrapToken: 'abcdef.0123456789abcdef',
      caCertHash: 'sha256:00ff',
    }),
  ) as Doc;
  assert.equal(j.kind, 'JoinConfiguration');
  assert.deepEqual(j.discovery.bootstrapToken, {
    apiServerEndpoint: 'dev-control-plane:6443',
    token: 'abcdef.0123456789abcdef',
    caCertHashes: ['sha256:00ff'],
  });
  assert.equal(j.nodeRegistration.name, 'dev-worker1');
  assert.deepEqual(j.nodeRegistration.kubeletExtraArgs[0], { name: 'node-ip', value: '172.18.0.3' });
  assert.equal(j.nodeRegistration.imagePullPolicy, 'Never');
});

test("bootstrap tokens have kubeadm's format and differ each time", () => {
  const a = newBootstrapToken();
  assert.match(a, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
  assert.notEqual(newBootstrapToken(), a);
  assert.equal(
    newBootstrapToken(() => 0),
    'aaaaaa.aaaaaaaaaaaaaaaa',
  );
});

test("the CA pin is kubeadm's: sha256 of the certificate's public key info, as openssl computes it", () => {
  // openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | sha256sum, for FAKE_CA
  assert.equal(
    caCertHash(FAKE_CA),
    'sha256:c686a4879d48046d2c0a28fde9575bcafc0b95e0e820a3256d0f46068bdbfda7',
  );
});

test("the cluster's own pods carry one shim group, the annotation the node's containerd passes through to runc's shim", async () => {
  const toml = await readFile(join(projectRoot, 'images/node/files/etc/containerd/config.toml'), 'utf8');
  const passed = /^\s*pod_annotations = \['([^']+)'\]$/m.exec(toml)?.[1];
  assert.equal(passed, 'io.containerd.runc.v2.group');
  assert.deepEqual(Object.keys(SHIM_GROUP), [passed]);

  const statics = staticPodPatches();
  assert.deepEqual(Object.keys(statics).sort(), [
    'etcd+strategic.json',
    'kube-apiserver+strategic.json',
    'kube-controller-manager+strategic.json',
    'kube-scheduler+strategic.json',
  ]);
  for (const text of Object.values(statics)) {
    assert.deepEqual(JSON.parse(text), { metadata: { annotations: SHIM_GROUP } });
  }
  const addons = addonPatches('10.244.0.0/16', 'v1.37.2');
  for (const name of ['corednsdeployment+strategic.json', 'kubeproxydaemonset+strategic.json']) {
    assert.deepEqual(JSON.parse(addons[name] as string).spec.template.metadata.annotations, SHIM_GROUP, name);
  }
  const templates = (yamlText: string) =>
    parseAllDocuments(yamlText)
      .map((d) => d.toJS() as { kind: string; spec?: { template?: { metadata?: { annotations?: object } } } })
      .filter((d) => d.kind === 'Deployment' || d.kind === 'DaemonSet');
  const workloads = [
    ...templates(storageManifest({ provisioner: 'p:1', helper: 'h:1' })),
    ...templates(
      flannelManifest({
        image: 'f:1',
        podSubnet: '10.244.0.0/16',
        backend: 'host-gw',
        apiServer: { host: 'demo-control-plane', port: 6443 },
      }),
    ),
  ];
  assert.equal(workloads.length, 2);
  for (const w of workloads) assert.deepEqual(w.spec?.template?.metadata?.annotations, SHIM_GROUP);
});

test('the controller manager and the scheduler keep their serving certificate in a directory of the node, mounted writable', () => {
  const cluster = docs(shape).ClusterConfiguration;
  for (const [key, dir] of [
    ['controllerManager', '/var/lib/kube-controller-manager'],
    ['scheduler', '/var/lib/kube-scheduler'],
  ] as const) {
    assert.ok(
      cluster[key].extraArgs.some((a: Doc) => a.name === 'cert-dir' && a.value === dir),
      key,
    );
    assert.deepEqual(cluster[key].extraVolumes, [
      { name: 'serving-cert', hostPath: dir, mountPath: dir, readOnly: false, pathType: 'DirectoryOrCreate' },
    ]);
  }
});

test('kubeadm init: what runs after the object phases starts once their script has returned, without waiting for /livez', async () => {
  const scripts: string[] = [];
  const node = recordingNode(scripts, 'dev-control-plane');
  let after = -1;
  let release = () => {};
  const ran = new Promise<void>((resolve) => (release = resolve));
  await kubeadmInit(
    node,
    {
      ...shape,
      kubernetesVersion: 'v1.37.2',
      afterObjectPhases: async () => {
        after = scripts.length;
        release();
      },
    },
    // /livez answers only once the hook has run: a hook that waited for it would never run.
    () => ran,
  );
  assert.equal(after, 2, 'after the first pass and the object phases, before the late phases');
  assert.match(scripts[1] ?? '', /kubeadm init phase addon/);
  assert.equal(scripts.length, 3);
});

test("serving certificates: the kubelet's on every node, the controller manager's and scheduler's on control planes; a pair already there is kept", async () => {
  const scripts: string[] = [];
  await servingCerts(recordingNode(scripts, 'dev-worker', 'worker'));
  await servingCerts(recordingNode(scripts, 'dev-control-plane'));
  const pairs = scripts.map((s) => [...s.matchAll(/-out (\S+)/g)].map((m) => m[1]));
  assert.deepEqual(pairs, [
    ['/var/lib/kubelet/pki/kubelet.crt'],
    [
      '/var/lib/kubelet/pki/kubelet.crt',
      '/var/lib/kube-controller-manager/kube-controller-manager.crt',
      '/var/lib/kube-scheduler/kube-scheduler.crt',
    ],
  ]);
  assert.match(scripts[0] ?? '', /\[ -s \/var\/lib\/kubelet\/pki\/kubelet\.crt \] \|\|/);
  assert.match(scripts[0] ?? '', /-subj \/CN=dev-worker -addext subjectAltName=DNS:dev-worker/);
  assert.match(scripts[1] ?? '', /subjectAltName=DNS:localhost,IP:127\.0\.0\.1/);
});
