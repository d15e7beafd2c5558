import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeCreateOptions, nodeStateFromInspect } from '../../src/providers/docker/translate.js';
import { Labels, ownedLabels, parseExtraLabels } from '../../src/labels.js';
import type { ContainerSpec } from '../../src/providers/docker/types.js';
import type { ContainerInspectInfo } from 'dockerode';

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

test('ports are published on loopback only', () => {
  const o = nodeCreateOptions(spec);
  assert.deepEqual(o.HostConfig.PortBindings, { '6443/tcp': [{ HostIp: '127.0.0.1', HostPort: '41234' }] });
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
