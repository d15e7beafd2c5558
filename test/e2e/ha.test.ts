import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import type { DockerEngine } from '../../src/providers/docker/engine.js';
import {
  cleanupTestResources,
  connect,
  profileAddresses,
  runId,
  waitForProfileRunning,
} from '../helpers/engine.js';
import {
  abortAfter,
  kubeClients,
  readClaimFile,
  readyNodes,
  sandbox,
  waitFor,
  waitForReadyNodes,
  writeClaimFile,
} from '../helpers/cluster.js';
import { assertOnlyOurContainersRun, ensureDockerdRunning, restartDockerd } from '../helpers/dockerd.js';

/**
 * One highly available cluster (three control planes with stacked etcd behind the load balancer,
 * and a worker) shared by every case below, in order: each case builds on what the one before
 * left, as a user's session would.
 */
const profile = `ha-${runId}`;
const EVEN = `ha-${runId}-even`;
const controlPlanes = [`${profile}-control-plane`, `${profile}-control-plane2`, `${profile}-control-plane3`];
const [firstControlPlane] = controlPlanes as [string, ...string[]];
const worker = `${profile}-worker1`;
const nodes = [...controlPlanes, worker];
const loadBalancer = `${profile}-external-load-balancer`;
const DATA = `kept-${runId}`;
const DOWN_DATA = `made-while-down-${runId}`;
const CONTROL_PLANE_TAINT = 'node-role.kubernetes.io/control-plane';
let s: Awaited<ReturnType<typeof sandbox>>;
let engine: DockerEngine;

before(async () => {
  s = await sandbox('ha');
  engine = await connect();
});

after(async () => {
  // The engine may be down if the restart case failed half-way: bring it back first.
  await ensureDockerdRunning().catch(() => undefined);
  engine = await connect().catch(() => engine);
  for (const p of [profile, EVEN])
    await s.minilab(['delete', '-p', p], { timeoutMs: 180_000 }).catch(() => undefined);
  await cleanupTestResources(engine);
  await s.cleanup();
});

/** Set by the first case: the later ones need its cluster (a plain `start` would make another). */
let made = false;
function clients() {
  if (!made) throw new Error(`the cluster of profile ${profile} was not made (see the first case)`);
  return kubeClients(s.kubeconfig, profile);
}

/** kubectl in a control-plane node, against that node's own API server (not the load balancer). */
function localKubectl(node: string, args: string[]) {
  return engine.exec.run(
    node,
    ['kubectl', '--kubeconfig', '/etc/kubernetes/admin.conf', '--server', 'https://127.0.0.1:6443', ...args],
    { timeoutMs: 30_000 },
  );
}

/** Waits until a control plane's own API server says its etcd is ok (/readyz/etcd). */
async function assertEtcdReady(node: string, what: string): Promise<void> {
  let last = '';
  await waitFor(`${node}: /readyz/etcd ok (${what})`, 180_000, async () => {
    const r = await localKubectl(node, ['get', '--raw', '/readyz/etcd']);
    last = `exit ${r.exitCode}: ${r.stdout}${r.stderr}`;
    return r.exitCode === 0 && r.stdout.trim() === 'ok' ? true : undefined;
  }).catch((err: unknown) => {
    throw new Error(`${String(err)}\nlast answer: ${last}`);
  });
}

/**
 * The etcd members, by name, as a control plane's local etcd lists them (etcd's JSON gateway on
 * its client port, reached with socat: the node has no etcdctl or curl).
 */
async function etcdMembers(node: string): Promise<string[]> {
  const request =
    'POST /v3/cluster/member/list HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nContent-Type: application/json\\r\\n' +
    'Content-Length: 2\\r\\nConnection: close\\r\\n\\r\\n{}';
  const pki = '/etc/kubernetes/pki';
  const target =
    `OPENSSL:127.0.0.1:2379,cafile=${pki}/etcd/ca.crt,` +
    `cert=${pki}/apiserver-etcd-client.crt,key=${pki}/apiserver-etcd-client.key,` +
    // Not half-closed when the request is sent: etcd would take that for a client gone (499).
    'shut-none';
  const r = await engine.exec.run(node, ['sh', '-c', `printf '${request}' | socat -t 10 - ${target}`], {
    timeoutMs: 30_000,
  });
  assert.equal(r.exitCode, 0, `${node}: listing etcd members\n${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^HTTP\/1\.1 200 /, `${node}: listing etcd members`);
  const body = r.stdout.slice(r.stdout.indexOf('{'));
  const members = [...body.matchAll(/"name":"([^"]*)"/g)].map((m) => m[1] as string);
  assert.ok(members.length > 0, `${node}: etcd members in ${r.stdout}`);
  return members.sort();
}

/** The load balancer's HAProxy configuration: the control planes it forwards to. */
async function loadBalancerBackends(): Promise<string[]> {
  const r = await engine.exec.run(loadBalancer, ['cat', '/etc/haproxy/minilab.cfg']);
  assert.equal(r.exitCode, 0, r.stderr);
  return [...r.stdout.matchAll(/^\s*server (\S+) /gm)].map((m) => m[1] as string).sort();
}

test('start --control-planes 3 --nodes 4: every node Ready behind the load balancer the kubeconfig names', async () => {
  const r = await s.minilab(['start', '-p', profile, '--control-planes', '3', '--nodes', '4'], {
    timeoutMs: 20 * 60_000,
  });
  assert.equal(r.code, 0, r.stderr);
  made = true;
  const { core } = clients();
  assert.deepEqual(await readyNodes(core), [...nodes].sort());
  // With a worker to run pods, every control plane keeps them off (kubeadm's taint).
  const list = await core.listNode();
  const tainted = (name: string) =>
    list.items
      .find((n) => n.metadata?.name === name)
      ?.spec?.taints?.some((t) => t.key === CONTROL_PLANE_TAINT && t.effect === 'NoSchedule');
  for (const cp of controlPlanes) assert.equal(tainted(cp), true, `${cp} has the control-plane taint`);
  assert.notEqual(tainted(worker), true, `${worker} takes pods`);

  const st = await s.minilab(['status', '-p', profile, '-o', 'json']);
  assert.equal(st.code, 0, st.stdout + st.stderr);
  const status = JSON.parse(st.stdout) as {
    nodes: { name: string; role: string; container: string; kubelet: string }[];
    loadBalancer?: { name: string; container: string; ip?: string };
  };
  assert.deepEqual(
    status.nodes.map((n) => [n.name, n.role, n.container, n.kubelet]),
    [
      ...controlPlanes.map((n) => [n, 'control-plane', 'running', 'running']),
      [worker, 'worker', 'running', 'running'],
    ],
  );
  assert.equal(status.loadBalancer?.name, loadBalancer);
  assert.equal(status.loadBalancer?.container, 'running');
  assert.match(status.loadBalancer?.ip ?? '', /^\d+\.\d+\.\d+\.\d+$/);

  // The kubeconfig names the port the load balancer publishes; no control plane publishes one.
  const lb = await engine.containers.inspect(loadBalancer);
  const published = lb?.ports.find((p) => p.containerPort === 6443);
  assert.equal(published?.hostIp, '127.0.0.1');
  const config = new k8s.KubeConfig();
  config.loadFromFile(s.kubeconfig);
  assert.equal(config.getCluster(profile)?.server, `https://127.0.0.1:${published?.hostPort}`);
  for (const cp of controlPlanes) {
    const ports = (await engine.containers.inspect(cp))?.ports ?? [];
    assert.ok(!ports.some((p) => p.containerPort === 6443), `${cp} publishes no API server port`);
  }
  assert.deepEqual(await loadBalancerBackends(), [...controlPlanes].sort());
  assert.deepEqual(await etcdMembers(firstControlPlane), [...controlPlanes].sort());
});

test('a pod on the worker writes a file to a PVC', async () => {
  const { core } = clients();
  await writeClaimFile(core, worker, DATA);
  assert.equal(await readClaimFile(core, worker, 'read-first'), DATA);
});

test('with the first control plane stopped, the API answers through the load balancer and takes writes', async (t) => {
  const { core } = clients();
  const began = Date.now();
  let stopped: number | undefined;
  let stopFailed: unknown;
  const stopping = engine.containers.stop(firstControlPlane).then(
    () => void (stopped = Date.now()),
    (err: unknown) => void (stopFailed = err ?? new Error('the stop failed')),
  );
  // Poll the API through the host's kubeconfig while the node stops and after: every failure seen.
  const failures: { at: number; error: string }[] = [];
  let answeredAfterStop: number | undefined;
  while (answeredAfterStop === undefined && stopFailed === undefined) {
    const at = Date.now();
    try {
      await core.listNode({}, abortAfter(5000));
      if (stopped !== undefined && at >= stopped) answeredAfterStop = Date.now();
    } catch (err) {
      failures.push({ at, error: String(err).split('\n')[0] ?? '' });
    }
    if (Date.now() - (stopped ?? began) > 60_000) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  await stopping;
  if (stopFailed !== undefined) throw stopFailed;
  const outage =
    failures.length === 0 ? 0 : ((answeredAfterStop ?? Date.now()) - (failures[0]?.at ?? 0)) / 1000;
  t.diagnostic(
    `stopping ${firstControlPlane} took ${(((stopped ?? began) - began) / 1000).toFixed(1)} s; ` +
      `${failures.length} failed API calls through the load balancer, ` +
      `from the first failure to the next answer: ${outage.toFixed(1)} s; ` +
      `first answer ${(((answeredAfterStop ?? NaN) - (stopped ?? NaN)) / 1000).toFixed(1)} s after the stop returned` +
      (failures.length > 0 ? `; first failure: ${failures[0]?.error}` : ''),
  );
  assert.ok(
    answeredAfterStop !== undefined,
    `the API answered within 60 s of the stop (${failures.length} failures)`,
  );
  assert.equal((await engine.containers.inspect(firstControlPlane))?.running, false, 'the node is stopped');

  // A write needs etcd's quorum (two members of three); a new leader may take a moment.
  await waitFor('a ConfigMap to be created with a control plane down', 60_000, async () => {
    try {
      await core.createNamespacedConfigMap(
        { namespace: 'default', body: { metadata: { name: 'made-while-down' }, data: { value: DOWN_DATA } } },
        abortAfter(10_000),
      );
    } catch (err) {
      // A create whose answer was lost may have been done: then it exists.
      if ((err as { code?: number }).code !== 409) throw err;
    }
    return true;
  });
  const cm = await core.readNamespacedConfigMap({ name: 'made-while-down', namespace: 'default' });
  assert.equal(cm.data?.value, DOWN_DATA);
});

test('start brings the stopped control plane back: Ready, etcd ok everywhere, the write made without it there', async () => {
  const { core } = clients();
  const r = await s.minilab(['start', '-p', profile], { timeoutMs: 600_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await engine.containers.inspect(firstControlPlane))?.running, true);
  await waitForReadyNodes(core, nodes, 240_000);
  for (const cp of controlPlanes) await assertEtcdReady(cp, 'after the restart of the first control plane');
  // Read through the returned node's own API server and etcd member: it caught up.
  const local = await localKubectl(firstControlPlane, [
    'get',
    'configmap',
    'made-while-down',
    '-o',
    'jsonpath={.data.value}',
  ]);
  assert.equal(local.exitCode, 0, local.stderr);
  assert.equal(local.stdout, DOWN_DATA);
  const st = await s.minilab(['status', '-p', profile]);
  assert.equal(st.code, 0, st.stdout + st.stderr);
});

test('node add --control-plane warns about 4; node delete of it leaves 3 healthy etcd members', async () => {
  const added = `${profile}-control-plane4`;
  const { core } = clients();
  const add = await s.minilab(['node', 'add', '-p', profile, '--control-plane'], { timeoutMs: 600_000 });
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stderr, /4 control planes survive no more failures than 3/);
  await waitForReadyNodes(core, [...nodes, added], 240_000);
  assert.deepEqual(await loadBalancerBackends(), [...controlPlanes, added].sort());
  assert.deepEqual(await etcdMembers(firstControlPlane), [...controlPlanes, added].sort());

  const del = await s.minilab(['node', 'delete', added, '-p', profile], { timeoutMs: 600_000 });
  assert.equal(del.code, 0, del.stderr);
  assert.doesNotMatch(del.stderr, /error|refuse/i);
  assert.equal(await engine.containers.inspect(added), undefined, 'its container is gone');
  assert.deepEqual(await engine.volumes.list({ 'io.minilab.node': added }), [], 'its volume too');
  assert.ok(!(await core.listNode()).items.some((n) => n.metadata?.name === added), 'gone from the cluster');
  assert.deepEqual(await loadBalancerBackends(), [...controlPlanes].sort());
  for (const cp of controlPlanes) {
    assert.deepEqual(await etcdMembers(cp), [...controlPlanes].sort(), `etcd members as ${cp} lists them`);
    await assertEtcdReady(cp, 'after the fourth control plane left');
  }
});

test('after the Docker engine restarts, every container has its address again, and nodes, etcd and data are back', async () => {
  const { core } = clients();
  await assertOnlyOurContainersRun(engine);
  const addresses = await profileAddresses(engine, profile);
  assert.deepEqual(Object.keys(addresses).sort(), [...nodes, loadBalancer].sort());
  engine = await restartDockerd();
  await waitForProfileRunning(engine, profile, nodes.length + 1, 180_000);
  assert.deepEqual(await profileAddresses(engine, profile), addresses, 'the same address for each container');
  await waitForReadyNodes(core, nodes, 300_000);
  for (const cp of controlPlanes) await assertEtcdReady(cp, 'after the engine restart');
  assert.equal(await readClaimFile(core, worker, 'read-after-engine-restart'), DATA);
  const cm = await core.readNamespacedConfigMap({ name: 'made-while-down', namespace: 'default' });
  assert.equal(cm.data?.value, DOWN_DATA);
  const st = await s.minilab(['status', '-p', profile]);
  assert.equal(st.code, 0, st.stdout + st.stderr);
});

test('--control-planes 2 is refused (an even number) and makes nothing', async () => {
  const r = await s.minilab(['start', '-p', EVEN, '--control-planes', '2']);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /--control-planes 2 is an even number/);
  const selector = { 'io.minilab.profile': EVEN };
  assert.deepEqual(await engine.containers.list(selector), []);
  assert.deepEqual(await engine.volumes.list(selector), []);
  assert.deepEqual(await engine.networks.list(selector), []);
  assert.equal(await engine.containers.inspect(`${EVEN}-control-plane`), undefined);
});

test('delete removes every container (the load balancer too), the volumes and the network', async () => {
  const r = await s.minilab(['delete', '-p', profile], { timeoutMs: 180_000 });
  assert.equal(r.code, 0, r.stderr);
  const selector = { 'io.minilab.profile': profile };
  assert.deepEqual(await engine.containers.list(selector), []);
  assert.deepEqual(await engine.volumes.list(selector), []);
  assert.deepEqual(await engine.networks.list(selector), []);
  assert.equal(await engine.containers.inspect(loadBalancer), undefined, 'the load balancer is gone');
  assert.ok(!(await engine.networks.list({})).includes(`minilab-${profile}`), 'the network is gone');
});
