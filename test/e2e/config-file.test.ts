import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import getPort from 'get-port';
import { Labels } from '../../src/labels.js';
import type { DockerEngine } from '../../src/providers/docker/engine.js';
import { cleanupTestResources, connect, runId, TEST_LABEL } from '../helpers/engine.js';
import { kubeClients, podResult, sandbox, waitFor } from '../helpers/cluster.js';

/**
 * A cluster made from a kind-format config file (one control plane, one labelled worker with a
 * port mapping and a host directory, other subnets, nftables kube-proxy, feature gates, runtime
 * config and a kubeadm patch), checked for each of those as a user would see it. Bad files are
 * refused before anything is made.
 */
const profile = `cf-${runId}`;
const worker = `${profile}-worker1`;
const controlPlane = `${profile}-control-plane`;
const HELPER_IMAGE = 'docker.io/minilab/storage-helper:v1';
let s: Awaited<ReturnType<typeof sandbox>>;
let engine: DockerEngine;
let hostPort: number;
let file: string;

before(async () => {
  s = await sandbox('config-file');
  engine = await connect();
  hostPort = await getPort({ host: '127.0.0.1' });
  await mkdir(join(s.dir, 'shared'));
  await writeFile(join(s.dir, 'shared', 'hello.txt'), 'from the host\n');
  file = join(s.dir, 'cluster.yaml');
  await writeFile(
    file,
    `kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
name: ${profile}
nodes:
  - role: control-plane
  - role: worker
    labels:
      tier: web
    extraPortMappings:
      - containerPort: 30080
        hostPort: ${hostPort}
    extraMounts:
      - hostPath: ${join(s.dir, 'shared')}
        containerPath: /shared
        readOnly: true
networking:
  podSubnet: 10.10.0.0/16
  serviceSubnet: 10.20.0.0/16
  kubeProxyMode: nftables
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
`,
  );
});

after(async () => {
  await s.minilab(['delete', '-p', profile], { timeoutMs: 120_000 }).catch(() => undefined);
  await cleanupTestResources(engine);
  await s.cleanup();
});

const clients = () => kubeClients(s.kubeconfig, profile);

/** The body of a 200 answer, else undefined (node:http: its timeout keeps the test's event loop alive). */
function httpGet(url: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const req = get(url, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(res.statusCode === 200 ? body : undefined));
    });
    req.setTimeout(3000, () => req.destroy(new Error('no answer within 3 s')));
    req.on('error', reject);
  });
}

async function nothingMade(name: string): Promise<void> {
  const mine = { [TEST_LABEL]: runId, [Labels.profile]: name };
  assert.deepEqual(await engine.containers.list(mine), [], 'no container');
  assert.deepEqual(await engine.volumes.list(mine), [], 'no volume');
  assert.deepEqual(await engine.networks.list(mine), [], 'no network');
}

test('a file with a field minilab does not support, or a broken YAML line, is refused at its line; nothing is made', async () => {
  const bad = join(s.dir, 'bad.yaml');
  await writeFile(
    bad,
    'kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: cf-bad\nnodes:\n  - role: control-plane\n    image: kindest/node:v1.30.0\n',
  );
  const r = await s.minilab(['start', '--config', bad]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /bad\.yaml:6: .*nodes\[0\]\.image/);
  assert.match(r.stderr, /hint: /);
  await writeFile(bad, 'kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: [worker\n');
  const broken = await s.minilab(['start', '-p', 'cf-bad', '--config', bad]);
  assert.equal(broken.code, 2, broken.stderr);
  assert.match(broken.stderr, /bad\.yaml:\d+/);
  const disagree = await s.minilab(['start', '--config', file, '--nodes', '3']);
  assert.equal(disagree.code, 2, disagree.stderr);
  assert.match(disagree.stderr, /--nodes 3 disagrees with .*cluster\.yaml, which has 2 nodes/);
  await nothingMade('cf-bad');
  await nothingMade(profile);
});

test('start --config makes the file cluster: its name, nodes, labels, subnets and kube-proxy mode', async () => {
  const r = await s.minilab(['start', '--config', file], { timeoutMs: 15 * 60_000 });
  assert.equal(r.code, 0, r.stderr);
  const { core } = clients();
  const nodes = await core.listNode();
  assert.deepEqual(nodes.items.map((n) => n.metadata?.name).sort(), [controlPlane, worker]);
  const w = nodes.items.find((n) => n.metadata?.name === worker);
  assert.equal(w?.metadata?.labels?.tier, 'web');
  assert.ok(w?.spec?.podCIDR?.startsWith('10.10.'), `pod CIDR ${w?.spec?.podCIDR}`);
  const kubernetes = await core.readNamespacedService({ name: 'kubernetes', namespace: 'default' });
  assert.equal(kubernetes.spec?.clusterIP, '10.20.0.1');
  const proxy = await core.readNamespacedConfigMap({ name: 'kube-proxy', namespace: 'kube-system' });
  assert.match(proxy.data?.['config.conf'] ?? '', /^mode: nftables$/m);
});

test('feature gates, runtime config and the kubeadm patch reach the API server', async () => {
  const { core } = clients();
  // The API server's mirror pod: the kubelet's first try to create it can be refused (the API
  // server has not made the system priority classes yet) and its next comes up to 10 s later.
  const pod = await waitFor('the API server mirror pod', 30_000, () =>
    core.readNamespacedPod({ name: `kube-apiserver-${controlPlane}`, namespace: 'kube-system' }),
  );
  const command = pod.spec?.containers[0]?.command ?? [];
  for (const flag of [
    '--feature-gates=InPlacePodVerticalScaling=true',
    '--runtime-config=api/alpha=false',
    '--audit-log-maxage=3',
    '--service-cluster-ip-range=10.20.0.0/16',
  ]) {
    assert.ok(command.includes(flag), `${flag} in ${command.join(' ')}`);
  }
});

test('the host directory is in the worker; a NodePort answers on the host through extraPortMappings; DNS resolves it', async () => {
  const cat = await engine.exec.run(worker, ['cat', '/shared/hello.txt']);
  assert.equal(cat.stdout, 'from the host\n');
  const { core } = clients();
  await core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name: 'web', labels: { app: 'web' } },
      spec: {
        nodeSelector: { tier: 'web' },
        containers: [
          {
            name: 'c',
            image: HELPER_IMAGE,
            imagePullPolicy: 'Never',
            command: [
              'sh',
              '-c',
              'mkdir -p /w && echo nodeport-ok > /w/index.html && exec httpd -f -p 8080 -h /w',
            ],
          },
        ],
      },
    },
  });
  await core.createNamespacedService({
    namespace: 'default',
    body: {
      metadata: { name: 'web' },
      spec: {
        type: 'NodePort',
        selector: { app: 'web' },
        ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }],
      },
    },
  });
  const body = await waitFor('the NodePort on the host', 120_000, () =>
    httpGet(`http://127.0.0.1:${hostPort}/`),
  );
  assert.equal(body, 'nodeport-ok\n');
  await core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name: 'dns' },
      spec: {
        restartPolicy: 'Never',
        containers: [
          {
            name: 'c',
            image: HELPER_IMAGE,
            imagePullPolicy: 'Never',
            command: ['sh', '-c', 'wget -qO- http://web.default.svc.cluster.local'],
          },
        ],
      },
    },
  });
  const dns = await podResult(core, 'default', 'dns');
  assert.equal(dns.phase, 'Succeeded', dns.log);
  assert.equal(dns.log, 'nodeport-ok\n');
});

test('node stop and node start take one worker down and back: its pods answer again on the host', async () => {
  const stopped = await s.minilab(['node', 'stop', '-p', profile, worker]);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.equal((await engine.containers.inspect(worker))?.running, false);
  const st = await s.minilab(['status', '-p', profile, '-o', 'json']);
  assert.equal(st.code, 16 + 1 + 2, 'status says a node container and its kubelet are down');
  const last = await s.minilab(['node', 'stop', '-p', profile, controlPlane]);
  assert.equal(last.code, 2, last.stderr);
  assert.match(last.stderr, /last running control plane/);
  assert.equal((await engine.containers.inspect(controlPlane))?.running, true, 'the refusal changed nothing');
  const started = await s.minilab(['node', 'start', '-p', profile, worker], { timeoutMs: 5 * 60_000 });
  assert.equal(started.code, 0, started.stderr);
  const { core } = clients();
  const node = await core.readNode({ name: worker });
  assert.equal(node.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
  const body = await waitFor('the NodePort on the host again', 180_000, () =>
    httpGet(`http://127.0.0.1:${hostPort}/`),
  );
  assert.equal(body, 'nodeport-ok\n');
});

test('delete removes the cluster made from the file', async () => {
  const r = await s.minilab(['delete', '-p', profile], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  await nothingMade(profile);
});
