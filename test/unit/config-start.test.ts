import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClusterConfig } from '../../src/config/cluster-config.js';
import { planCluster, settingsOf } from '../../src/lifecycle/plan.js';
import { start, type StartRequest } from '../../src/lifecycle/start.js';
import { VERSION, withFixture } from '../helpers/lifecycle-fixture.js';

const FILE = `kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: worker
    labels:
      tier: web
    extraPortMappings:
      - containerPort: 30080
        hostPort: 8080
  - role: control-plane
    extraMounts:
      - hostPath: /srv/data
        containerPath: /data
        readOnly: true
        propagation: HostToContainer
networking:
  podSubnet: 10.10.0.0/16
  serviceSubnet: 10.20.0.0/16
  kubeProxyMode: nftables
  apiServerPort: 7443
featureGates:
  InPlacePodVerticalScaling: true
runtimeConfig:
  api/alpha: "false"
kubeadmConfigPatches:
  - |
    kind: ClusterConfiguration
    apiServer:
      extraArgs:
        audit-log-maxage: "3"
`;

const request = (over: Partial<StartRequest> = {}): StartRequest => {
  const config = parseClusterConfig(FILE, 'cluster.yaml');
  return {
    profile: 'cfg',
    kubernetesVersion: VERSION,
    explicitVersion: false,
    nodes: config.nodes.length,
    controlPlanes: 1,
    config,
    ports: [],
    wait: 'all',
    keepOnFailure: false,
    switchContext: true,
    ...over,
  };
};

test('a config file plans its nodes in order: names by role, its ports on their node, mounts and labels', () => {
  const plan = planCluster(request(), { apiServerPort: 7443, env: {}, labels: {} });
  assert.deepEqual(
    plan.nodes.map((n) => [n.name, n.role]),
    [
      ['cfg-worker1', 'worker'],
      ['cfg-control-plane', 'control-plane'],
    ],
  );
  assert.deepEqual(plan.nodes[0]?.ports, [
    { hostIp: '127.0.0.1', hostPort: 8080, containerPort: 30080, protocol: 'tcp' },
  ]);
  assert.deepEqual(plan.nodes[0]?.labels, { tier: 'web' });
  assert.deepEqual(plan.nodes[1]?.ports, [
    { hostIp: '127.0.0.1', hostPort: 7443, containerPort: 6443, protocol: 'tcp' },
  ]);
  assert.deepEqual(plan.nodes[1]?.mounts, [
    { hostPath: '/srv/data', containerPath: '/data', readOnly: true, propagation: 'HostToContainer' },
  ]);
  const settings = settingsOf(request());
  assert.equal(settings.podSubnet, '10.10.0.0/16');
  assert.equal(settings.serviceSubnet, '10.20.0.0/16');
  assert.equal(settings.kubeProxyMode, 'nftables');
  // Without a file: minilab's defaults and kubeadm's documents as generated.
  const plain = settingsOf(request({ config: undefined }));
  assert.equal(plain.podSubnet, '10.244.0.0/16');
  assert.equal(plain.customize('kind: X\n'), 'kind: X\n');
});

test('a start from a config file writes its subnets, proxy mode, gates, runtime config, patches and labels into kubeadm', async () => {
  await withFixture(
    async ({ ctx, world }) => {
      const r = await start(ctx, request());
      assert.equal(r.apiServer, 'https://127.0.0.1:7443');
      const init =
        world.scripts.find((s) => s.node === 'cfg-control-plane' && /kubeadm init/.test(s.text))?.text ?? '';
      for (const expected of [
        /podSubnet: 10\.10\.0\.0\/16/,
        /serviceSubnet: 10\.20\.0\.0\/16/,
        /mode: nftables/,
        /name: feature-gates\s+value: InPlacePodVerticalScaling=true/,
        /InPlacePodVerticalScaling: true/,
        /name: runtime-config\s+value: api\/alpha=false/,
        /name: audit-log-maxage\s+value: "3"/,
      ]) {
        assert.match(init, expected);
      }
      const joinScript =
        world.scripts.find((s) => s.node === 'cfg-worker1' && /kubeadm join/.test(s.text))?.text ?? '';
      assert.match(joinScript, /value: minilab\.io\/node=true,tier=web/);
      assert.match(joinScript, /10\.20\.0\.0\/16/, 'the worker filters the cluster Service range');
      // flannel runs with the file's pod subnet (a worker: two nodes).
      assert.ok(world.manifestApplied);
    },
    { name: 'config', podCidr: '10.10.0.0/24' },
  );
});
