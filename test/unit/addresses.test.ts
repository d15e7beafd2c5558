import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addressingOf,
  isFixedAddressing,
  nextFixedAddress,
  overlaps,
  pickSubnet,
} from '../../src/providers/docker/addresses.js';
import { nodeCreateOptions, serviceCreateOptions } from '../../src/providers/docker/translate.js';

test('a node network gets the first free 192.168.x.0/24 in minikube steps, clear of the engine and host subnets', () => {
  assert.deepEqual(pickSubnet([]), {
    subnet: '192.168.49.0/24',
    gateway: '192.168.49.1',
    ipRange: '192.168.49.128/25',
  });
  assert.equal(pickSubnet(['172.17.0.0/16', '192.168.49.0/24'])?.subnet, '192.168.58.0/24');
  // A wide host route covering several candidates skips them all.
  assert.equal(pickSubnet(['192.168.48.0/20'])?.subnet, '192.168.67.0/24');
  assert.equal(pickSubnet([], 2)?.subnet, '192.168.67.0/24');
  assert.equal(pickSubnet(['192.168.0.0/16']), undefined);
  assert.ok(overlaps('10.0.0.0/8', '10.244.0.0/16'));
  assert.ok(!overlaps('192.168.49.0/24', '192.168.58.0/24'));
  assert.ok(!overlaps('192.168.49.0/24', 'fd00::/64'));
});

test('fixed addresses come from the lower half, lowest free first; the engine keeps the upper half', () => {
  const net = addressingOf('192.168.58.0/24');
  assert.ok(isFixedAddressing({ Subnet: '192.168.58.0/24', IPRange: '192.168.58.128/25' }));
  assert.ok(!isFixedAddressing({ Subnet: '172.18.0.0/16' }));
  assert.equal(nextFixedAddress(net, new Set()), '192.168.58.2');
  assert.equal(nextFixedAddress(net, new Set(['192.168.58.2', '192.168.58.4'])), '192.168.58.3');
  const full = new Set(Array.from({ length: 126 }, (_, i) => `192.168.58.${i + 2}`));
  assert.equal(nextFixedAddress(net, full), undefined);
});

test('nodes and the load balancer ask the engine for their fixed address on the network', () => {
  const spec = {
    name: 'ha-control-plane',
    hostname: 'ha-control-plane',
    image: 'minilab/node:v1.37.2',
    profile: 'ha',
    role: 'control-plane' as const,
    network: 'minilab-ha',
    varVolume: 'ha-var',
    ports: [],
    labels: {},
    mountLibModules: false,
  };
  assert.deepEqual(nodeCreateOptions({ ...spec, ipv4Address: '192.168.49.3' }).NetworkingConfig, {
    EndpointsConfig: {
      'minilab-ha': { Aliases: ['ha-control-plane'], IPAMConfig: { IPv4Address: '192.168.49.3' } },
    },
  });
  assert.deepEqual(nodeCreateOptions(spec).NetworkingConfig, {
    EndpointsConfig: { 'minilab-ha': { Aliases: ['ha-control-plane'] } },
  });
  const lb = serviceCreateOptions({
    name: 'ha-external-load-balancer',
    role: 'load-balancer',
    image: 'minilab/node:v1.37.2',
    network: 'minilab-ha',
    ports: [{ hostIp: '127.0.0.1', hostPort: 40000, containerPort: 6443, protocol: 'tcp' }],
    command: ['/bin/sh', '-c', 'true'],
    labels: {},
    ipv4Address: '192.168.49.2',
  });
  assert.equal(lb.HostConfig?.Privileged, undefined);
  assert.deepEqual(lb.HostConfig?.PortBindings, { '6443/tcp': [{ HostIp: '127.0.0.1', HostPort: '40000' }] });
  assert.deepEqual(lb.Entrypoint, ['/bin/sh', '-c', 'true']);
});
