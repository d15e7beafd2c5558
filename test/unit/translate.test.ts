import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeCreateOptions, nodeStateFromInspect } from '../../src/providers/docker/translate.js';
import { Labels, ownedLabels, parseExtraLabels } from '../../src/labels.js';
import { parseCpus, parseMemory, parsePort } from '../../src/cli/commands/lifecycle.js';
import { parseClusterConfig } from '../../src/config/cluster-config.js';
import { RunJournal } from '../../src/lifecycle/journal.js';
import { planCluster } from '../../src/lifecycle/plan.js';
import type { StartRequest } from '../../src/lifecycle/start.js';
import type { DockerClient } from '../../src/providers/docker/client.js';
import { DOCKER_DIALECT } from '../../src/providers/docker/dialect.js';
import { DockerEngine } from '../../src/providers/docker/engine.js';
import { DockerProvider } from '../../src/providers/docker/provider.js';
import type { ContainerSpec } from '../../src/providers/docker/types.js';
import type { ContainerCreateOptions, ContainerInspectInfo, NetworkCreateOptions } from 'dockerode';
import { startRequest } from '../helpers/lifecycle-fixture.js';

const spec: ContainerSpec = {
  name: 'dev-control-plane',
  hostname: 'dev-control-plane',
  image: 'minilab/node:v1.36.5',
  profile: 'dev',
  role: 'control-plane',
  network: 'minilab-dev',
  varVolume: 'dev-var',
  ports: [{ hostIp: '127.0.0.1', hostPort: 41234, containerPort: 6443, protocol: 'tcp' }],
  labels: ownedLabels('dev', 'node', { 'test.run': '1' }),
  mountLibModules: false,
  memoryBytes: 2 ** 31,
  cpus: 1.5,
};

test('node containers run like kind nodes: privileged, unconfined, tmpfs, /var volume', () => {
  const o = nodeCreateOptions(spec);
  assert.equal(o.HostConfig.Privileged, true);
  assert.deepEqual(o.HostConfig.SecurityOpt, ['seccomp=unconfined', 'apparmor=unconfined']);
  assert.deepEqual(o.HostConfig.Tmpfs, { '/run': 'rw', '/tmp': 'rw' });
  assert.deepEqual(o.HostConfig.Binds, ['dev-var:/var']);
  assert.equal(o.HostConfig.RestartPolicy?.Name, 'unless-stopped');
  assert.equal(o.HostConfig.NanoCpus, 1.5e9);
  assert.equal(o.HostConfig.Memory, 2 ** 31);
  assert.equal(o.StopSignal, 'SIGRTMIN+3');
  assert.equal(o.Hostname, 'dev-control-plane');
});

/**
 * The Docker provider over a fake engine that records what it is asked to create (networks,
 * volumes, containers) and answers as an engine would, so a plan is provisioned as by `start`.
 */
function recordingEngine() {
  const created: ContainerCreateOptions[] = [];
  let network: NetworkCreateOptions | undefined;
  const inspect = (o: ContainerCreateOptions) => ({
    Id: o.name,
    Name: `/${o.name}`,
    Config: { Image: o.Image, Labels: o.Labels },
    State: { Status: 'running', Running: true },
    NetworkSettings: { Networks: { [network?.Name ?? '']: { IPAddress: '192.168.49.9' } }, Ports: {} },
  });
  const docker = {
    listNetworks: async () => [],
    createNetwork: async (o: NetworkCreateOptions) => void (network = o),
    getNetwork: () => ({ inspect: async () => ({ IPAM: network?.IPAM, Containers: {} }) }),
    listContainers: async () => [],
    getVolume: () => ({
      inspect: async () => Promise.reject(Object.assign(new Error('no such volume'), { statusCode: 404 })),
    }),
    createVolume: async () => ({}),
    createContainer: async (o: ContainerCreateOptions) => (created.push(o), { id: o.name }),
    getContainer: (id: string) => ({
      start: async () => undefined,
      inspect: async () => inspect(created.find((c) => c.name === id) as ContainerCreateOptions),
    }),
  };
  const client = {
    docker,
    local: false,
    dialect: DOCKER_DIALECT,
    call: (_what: string, fn: () => unknown) => fn(),
  };
  return { provider: new DockerProvider(new DockerEngine(client as unknown as DockerClient)), created };
}

/** `--ports` values as the CLI parses them. */
const portsFlag = (...values: string[]) =>
  values.reduce((all, v) => parsePort(v, all), [] as StartRequest['ports']);

/** Every host binding the engine was asked for: container name, port, host address and port. */
const bindings = (created: ContainerCreateOptions[]) =>
  created.flatMap((c) =>
    Object.entries(c.HostConfig?.PortBindings ?? {}).flatMap(([port, binds]) =>
      (binds as { HostIp: string; HostPort: string }[]).map(
        (b) => `${c.name} ${port} ${b.HostIp}:${b.HostPort}`,
      ),
    ),
  );

test('start --ports 8080:30080 --ports 5353:53/udp --cpus 2 --memory 3g: the engine is asked for a node publishing the API server and each port on 127.0.0.1 only, with those limits', async () => {
  const { provider, created } = recordingEngine();
  const req = startRequest({
    profile: 'dev',
    ports: portsFlag('8080:30080', '5353:53/udp'),
    cpus: parseCpus('2'),
    memoryBytes: parseMemory('3g'),
  });
  await provider.provision(planCluster(req, { apiServerPort: 41234, env: {}, labels: {} }), new RunJournal());

  assert.deepEqual(
    created.map((c) => c.name),
    ['dev-control-plane'],
  );
  const node = created[0] as ContainerCreateOptions;
  assert.deepEqual(bindings(created).sort(), [
    'dev-control-plane 30080/tcp 127.0.0.1:8080',
    'dev-control-plane 53/udp 127.0.0.1:5353',
    'dev-control-plane 6443/tcp 127.0.0.1:41234',
  ]);
  assert.deepEqual(Object.keys(node.ExposedPorts ?? {}).sort(), ['30080/tcp', '53/udp', '6443/tcp']);
  assert.equal(node.HostConfig?.PublishAllPorts, undefined, 'no port the plan does not name is published');
  assert.equal(node.HostConfig?.NetworkMode, undefined, "the profile's own network, not the host's");
  assert.equal(node.HostConfig?.NanoCpus, 2e9);
  assert.equal(node.HostConfig?.Memory, 3 * 1024 ** 3);
  assert.equal(node.HostConfig?.MemorySwap, 3 * 1024 ** 3, 'no swap beyond the memory limit');
});

test('several control planes: only the load balancer publishes the API server, the first control plane --ports, all on 127.0.0.1', async () => {
  const { provider, created } = recordingEngine();
  const req = startRequest({ profile: 'ha', nodes: 4, controlPlanes: 3, ports: portsFlag('8080:80') });
  await provider.provision(planCluster(req, { apiServerPort: 40000, env: {}, labels: {} }), new RunJournal());

  assert.deepEqual(
    created.map((c) => c.name),
    ['ha-external-load-balancer', 'ha-control-plane', 'ha-control-plane2', 'ha-control-plane3', 'ha-worker1'],
  );
  assert.deepEqual(bindings(created), [
    'ha-external-load-balancer 6443/tcp 127.0.0.1:40000',
    'ha-control-plane 80/tcp 127.0.0.1:8080',
  ]);
});

test("a config file's listenAddress (another loopback address) is the engine's host address", async () => {
  const { provider, created } = recordingEngine();
  const config = parseClusterConfig(
    [
      'kind: Cluster',
      'apiVersion: kind.x-k8s.io/v1alpha4',
      'nodes:',
      '  - role: control-plane',
      '    extraPortMappings:',
      '      - { containerPort: 80, hostPort: 8081, listenAddress: 127.0.0.2 }',
    ].join('\n'),
    'cluster.yaml',
  );
  const req = startRequest({ profile: 'cfg', config });
  await provider.provision(planCluster(req, { apiServerPort: 40001, env: {}, labels: {} }), new RunJournal());
  assert.deepEqual(bindings(created).sort(), [
    'cfg-control-plane 6443/tcp 127.0.0.1:40001',
    'cfg-control-plane 80/tcp 127.0.0.2:8081',
  ]);
});

test('/lib/modules is mounted read-only only when asked', () => {
  assert.ok(
    nodeCreateOptions({ ...spec, mountLibModules: true }).HostConfig.Binds?.includes(
      '/lib/modules:/lib/modules:ro',
    ),
  );
});

test('labels record profile, role, node name and extra labels', () => {
  const l = nodeCreateOptions(spec).Labels ?? {};
  assert.equal(l[Labels.profile], 'dev');
  assert.equal(l[Labels.role], 'control-plane');
  assert.equal(l[Labels.node], 'dev-control-plane');
  assert.equal(l[Labels.managed], 'true');
  assert.equal(l['test.run'], '1');
});

test('inspect output maps back to node state', () => {
  const info = {
    Id: 'abc',
    Name: '/dev-control-plane',
    Config: { Image: 'img', Labels: { [Labels.profile]: 'dev', [Labels.role]: 'control-plane' } },
    State: { Status: 'running', Running: true, StartedAt: 't' },
    NetworkSettings: {
      Networks: { 'minilab-dev': { IPAddress: '172.18.0.2' } },
      Ports: { '6443/tcp': [{ HostIp: '127.0.0.1', HostPort: '41234' }], '80/tcp': null },
    },
  } as unknown as ContainerInspectInfo;
  const s = nodeStateFromInspect(info);
  assert.equal(s.name, 'dev-control-plane');
  assert.equal(s.profile, 'dev');
  assert.equal(s.running, true);
  assert.equal(s.ip, '172.18.0.2');
  assert.deepEqual(s.ports, [{ hostIp: '127.0.0.1', hostPort: 41234, containerPort: 6443, protocol: 'tcp' }]);
});

test('MINILAB_LABELS parses into extra labels', () => {
  assert.deepEqual(parseExtraLabels('a=1, b=x=y,c'), { a: '1', b: 'x=y', c: '' });
  assert.deepEqual(parseExtraLabels(undefined), {});
});
