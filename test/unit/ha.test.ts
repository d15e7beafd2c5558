import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments, parse } from 'yaml';
import {
  joinConfig,
  kubeadmConfig,
  addonPatches,
  newCertificateKey,
  PATCHES_DIR,
  type ClusterShape,
} from '../../src/kube/kubeadm-config.js';
import { clusterShape, planCluster, withApiServerPort } from '../../src/lifecycle/plan.js';
import { haproxyConfig, LOAD_BALANCER_COMMAND } from '../../src/lifecycle/load-balancer.js';
import { MinilabError } from '../../src/errors.js';
import type { StartRequest } from '../../src/lifecycle/start.js';

const shape: ClusterShape = {
  kubernetesVersion: 'v1.37.2',
  nodeName: 'ha-control-plane',
  nodeIp: '172.18.0.3',
  cgroupVersion: '2',
  podSubnet: '10.244.0.0/16',
  serviceSubnet: '10.96.0.0/16',
  conntrackWritable: true,
  bootstrapToken: 'abcdef.0123456789abcdef',
  taintControlPlane: true,
  highAvailability: { loadBalancer: 'ha-external-load-balancer', certificateKey: 'k'.repeat(64) },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;
const docs = (s: ClusterShape) =>
  Object.fromEntries(
    parseAllDocuments(kubeadmConfig(s)).map((d) => [(d.toJS() as { kind: string }).kind, d.toJS() as Doc]),
  ) as Record<string, Doc>;
const argNames = (list: { name: string }[]) => list.map((a) => a.name);

test('several control planes: the endpoint and a SAN are the load balancer, leaders are elected, certificates uploaded', () => {
  const d = docs(shape);
  assert.equal(d.ClusterConfiguration.controlPlaneEndpoint, 'ha-external-load-balancer:6443');
  assert.equal(d.ClusterConfiguration.clusterName, 'ha');
  for (const san of ['ha-external-load-balancer', 'ha-control-plane', '127.0.0.1', '172.18.0.3'])
    assert.ok(d.ClusterConfiguration.apiServer.certSANs.includes(san), san);
  assert.ok(!argNames(d.ClusterConfiguration.controllerManager.extraArgs).includes('leader-elect'));
  assert.ok(!argNames(d.ClusterConfiguration.scheduler.extraArgs).includes('leader-elect'));
  assert.equal(d.InitConfiguration.certificateKey, 'k'.repeat(64));
  // One control plane: its own name, no election, nothing uploaded.
  const one = docs({ ...shape, highAvailability: undefined });
  assert.equal(one.ClusterConfiguration.controlPlaneEndpoint, 'ha-control-plane:6443');
  assert.ok(argNames(one.ClusterConfiguration.controllerManager.extraArgs).includes('leader-elect'));
  assert.equal(one.InitConfiguration.certificateKey, undefined);
});

test('CoreDNS reaches the API server at the node gateway with one control plane, by the Service with several', () => {
  const env = (p: Record<string, string>) =>
    (
      JSON.parse(p['corednsdeployment+strategic.json'] as string) as Doc
    ).spec.template.spec.containers[0].env.map((e: { name: string }) => e.name);
  assert.ok(env(addonPatches('10.244.0.0/16', 'v1.37.2')).includes('KUBERNETES_SERVICE_HOST'));
  assert.ok(
    !env(addonPatches('10.244.0.0/16', 'v1.37.2', { highAvailability: true })).includes(
      'KUBERNETES_SERVICE_HOST',
    ),
  );
});

test('a control plane joins with the certificate key and its own API endpoint; untainted only without workers', () => {
  const base = {
    nodeName: 'ha-control-plane2',
    nodeIp: '172.18.0.4',
    controlPlaneEndpoint: 'ha-external-load-balancer:6443',
    bootstrapToken: 'abcdef.0123456789abcdef',
    caCertHash: 'sha256:00',
  };
  const cp = parse(
    joinConfig({ ...base, controlPlane: { certificateKey: 'c'.repeat(64), taint: true } }),
  ) as Doc;
  assert.deepEqual(cp.controlPlane, {
    localAPIEndpoint: { advertiseAddress: '172.18.0.4', bindPort: 6443 },
    certificateKey: 'c'.repeat(64),
  });
  assert.equal(cp.nodeRegistration.taints, undefined);
  assert.equal(cp.discovery.bootstrapToken.apiServerEndpoint, 'ha-external-load-balancer:6443');
  // kubeadm join reads the static pods' patches (staticPodPatches) where a control plane joins
  assert.equal(cp.patches.directory, PATCHES_DIR);
  const bare = parse(
    joinConfig({ ...base, controlPlane: { certificateKey: 'c'.repeat(64), taint: false } }),
  ) as Doc;
  assert.deepEqual(bare.nodeRegistration.taints, []);
  const worker = parse(joinConfig(base)) as Doc;
  assert.equal(worker.controlPlane, undefined);
  assert.equal(worker.patches, undefined);
  assert.match(newCertificateKey(), /^[0-9a-f]{64}$/);
  assert.notEqual(newCertificateKey(), newCertificateKey());
});

test('--nodes counts every node; an even number of control planes and fewer nodes than control planes are refused', () => {
  assert.deepEqual(clusterShape({}), { nodes: 1, controlPlanes: 1 });
  assert.deepEqual(clusterShape({ nodes: 3 }), { nodes: 3, controlPlanes: 1 });
  assert.deepEqual(clusterShape({ controlPlanes: 3 }), { nodes: 3, controlPlanes: 3 });
  assert.deepEqual(clusterShape({ controlPlanes: 3, nodes: 5 }), { nodes: 5, controlPlanes: 3 });
  for (const bad of [{ controlPlanes: 2 }, { controlPlanes: 4, nodes: 5 }, { controlPlanes: 3, nodes: 2 }]) {
    assert.throws(
      () => clusterShape(bad),
      (e: unknown) => e instanceof MinilabError && e.exitCode === 2 && e.hint !== undefined,
      JSON.stringify(bad),
    );
  }
  assert.throws(
    () => clusterShape({ controlPlanes: 2 }),
    /even number.*2 members survive no more failures than 1/,
  );
});

const request = (over: Partial<StartRequest>): StartRequest => ({
  profile: 'ha',
  kubernetesVersion: 'v1.37.2',
  explicitVersion: false,
  nodes: 1,
  ports: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
  wait: 'all',
  keepOnFailure: false,
  switchContext: true,
  ...over,
});

test('the plan of an HA cluster: the load balancer publishes the API server, the first control plane the user ports', () => {
  const plan = planCluster(request({ nodes: 4, controlPlanes: 3 }), {
    apiServerPort: 40000,
    env: {},
    labels: {},
  });
  assert.deepEqual(
    plan.nodes.map((n) => [n.name, n.role]),
    [
      ['ha-control-plane', 'control-plane'],
      ['ha-control-plane2', 'control-plane'],
      ['ha-control-plane3', 'control-plane'],
      ['ha-worker1', 'worker'],
    ],
  );
  assert.equal(plan.loadBalancer?.name, 'ha-external-load-balancer');
  assert.deepEqual(plan.loadBalancer?.ports, [
    { hostIp: '127.0.0.1', hostPort: 40000, containerPort: 6443, protocol: 'tcp' },
  ]);
  assert.deepEqual(plan.loadBalancer?.command, LOAD_BALANCER_COMMAND);
  assert.deepEqual(plan.nodes[0]?.ports, [
    { hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' },
  ]);
  assert.deepEqual(plan.nodes[1]?.ports, []);
  const moved = withApiServerPort(plan, 40001);
  assert.equal(moved.loadBalancer?.ports[0]?.hostPort, 40001);
  assert.equal(moved.nodes[0]?.ports[0]?.hostPort, 8080);
  // One control plane publishes the API server itself; no load balancer.
  const single = planCluster(request({ nodes: 2 }), { apiServerPort: 40000, env: {}, labels: {} });
  assert.equal(single.loadBalancer, undefined);
  assert.equal(single.nodes[0]?.ports[0]?.containerPort, 6443);
});

test('HAProxy forwards 6443 to every control plane by name, health-checked every second', () => {
  const cfg = haproxyConfig(['ha-control-plane', 'ha-control-plane2']);
  assert.match(cfg, /bind \*:6443/);
  assert.match(cfg, /^ {2}server ha-control-plane ha-control-plane:6443$/m);
  assert.match(cfg, /^ {2}server ha-control-plane2 ha-control-plane2:6443$/m);
  assert.match(cfg, /nameserver dns 127\.0\.0\.11:53/);
  assert.match(cfg, /option httpchk GET \/livez/);
  assert.match(cfg, /inter 1s fall 2 rise 1/);
});

test("etcd: one member elects itself within a 250 ms timeout (50 ms heartbeat); several keep etcd's defaults", () => {
  assert.deepEqual(docs(shape).ClusterConfiguration.etcd.local.extraArgs, []);
  assert.deepEqual(
    docs({ ...shape, highAvailability: undefined }).ClusterConfiguration.etcd.local.extraArgs,
    [
      { name: 'heartbeat-interval', value: '50' },
      { name: 'election-timeout', value: '250' },
    ],
  );
});
