import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import type { DockerEngine } from '../../src/providers/docker/engine.js';
import {
  cleanupTestResources,
  connect,
  profileAddresses,
  runId,
  waitForProfileRunning,
} from '../helpers/engine.js';
import {
  createEchoDeployment,
  echoServerArchive,
  kubeClients,
  podResult,
  readClaimFile,
  runPodOnce,
  sandbox,
  unpackedBeforeFirstUse,
  waitFor,
  waitForReadyNodes,
  writeClaimFile,
} from '../helpers/cluster.js';
import { assertOnlyOurContainersRun, ensureDockerdRunning, restartDockerd } from '../helpers/dockerd.js';

/**
 * One cluster of three nodes (a control plane and two workers, flannel as the network) shared by
 * every case below, in order: the cases build on each other as a user's session would.
 */
const profile = `mn-${runId}`;
const controlPlane = `${profile}-control-plane`;
const workers = [`${profile}-worker1`, `${profile}-worker2`];
const nodes = [controlPlane, ...workers];
const echoImage = `minilab-test/echo:${runId}`;
const TOLERATE_ALL = [{ operator: 'Exists' }];
let s: Awaited<ReturnType<typeof sandbox>>;
let engine: DockerEngine;

before(async () => {
  s = await sandbox('multinode');
  engine = await connect();
});

after(async () => {
  // The engine may be down if the restart case failed half-way: bring it back first.
  await ensureDockerdRunning().catch(() => undefined);
  engine = await connect().catch(() => engine);
  await s.minilab(['delete', '-p', profile], { timeoutMs: 120_000 }).catch(() => undefined);
  await cleanupTestResources(engine);
  await s.cleanup();
});

const clients = () => kubeClients(s.kubeconfig, profile);

/** A pod on one node that runs the echo fixture once (get URL, resolve NAME) and exits. */
/** A pod on `node` running the echo image with these arguments; Always pulls it through the node's mirror. */
async function runOn(
  node: string,
  name: string,
  args: string[],
  imagePullPolicy: 'Never' | 'Always' = 'Never',
) {
  return runPodOnce(clients().core, name, echoImage, args, {
    spec: { nodeName: node, tolerations: TOLERATE_ALL },
    container: { imagePullPolicy },
  });
}

test('start --nodes 3 makes a control plane and two Ready workers; status lists every node', async () => {
  const r = await s.minilab(['start', '-p', profile, '--nodes', '3'], { timeoutMs: 20 * 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /✓ Joining 2 workers/);
  assert.match(r.stderr, /✓ Installing the pod network \(flannel\)/);
  const { core } = clients();
  const list = await core.listNode();
  const ready = list.items
    .filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
    .map((n) => n.metadata?.name)
    .sort();
  assert.deepEqual(ready, [...nodes].sort());
  const cp = list.items.find((n) => n.metadata?.name === controlPlane);
  assert.ok(
    cp?.spec?.taints?.some((t) => t.key === 'node-role.kubernetes.io/control-plane'),
    'the control plane keeps pods off when there are workers',
  );
  const provisioner = await core.listNamespacedPod({
    namespace: 'local-path-storage',
    labelSelector: 'app=local-path-provisioner',
  });
  assert.deepEqual(
    provisioner.items.map((p) => workers.includes(p.spec?.nodeName ?? '')),
    [true],
    'the storage provisioner runs on a worker, off the control plane',
  );
  const st = await s.minilab(['status', '-p', profile, '-o', 'json']);
  assert.equal(st.code, 0, st.stdout + st.stderr);
  const status = JSON.parse(st.stdout) as { nodes: { name: string; role: string; kubelet: string }[] };
  assert.deepEqual(
    status.nodes.map((n) => [n.name, n.role, n.kubelet]),
    [[controlPlane, 'control-plane', 'running'], ...workers.map((w) => [w, 'worker', 'running'])],
  );
});

test("image load puts an image on every node and in every node's mirror", async () => {
  const archive = join(s.dir, 'echo.tar');
  await pipeline(await echoServerArchive(echoImage, s.dir), createWriteStream(archive));
  const r = await s.minilab(['image', 'load', '--archive', archive, '-p', profile], { timeoutMs: 300_000 });
  assert.equal(r.code, 0, r.stderr);
  for (const node of nodes) {
    const ls = await engine.exec.run(node, ['ctr', '-n', 'k8s.io', 'images', 'ls', '-q']);
    assert.ok(
      ls.stdout.split('\n').some((l) => l.includes(`minilab-test/echo:${runId}`)),
      `${node}: ${ls.stdout}`,
    );
    const hosts = await engine.exec.run(node, ['cat', '/opt/minilab/mirror/hosts/docker.io/hosts.toml']);
    assert.match(
      hosts.stdout,
      /127\.0\.0\.1:10550\/v2\/docker\.io/,
      `${node}: pulls from docker.io go to its mirror`,
    );
  }
});

test('pods on different nodes reach each other by pod IP, a Service and DNS from every node', async () => {
  const { apps, core } = clients();
  const labels = { app: 'echo-ds' };
  // One echo server on every node.
  await apps.createNamespacedDaemonSet({
    namespace: 'default',
    body: {
      metadata: { name: 'echo-ds' },
      spec: {
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            tolerations: TOLERATE_ALL,
            containers: [
              { name: 'echo', image: echoImage, imagePullPolicy: 'Never', ports: [{ containerPort: 8080 }] },
            ],
          },
        },
      },
    },
  });
  await core.createNamespacedService({
    namespace: 'default',
    body: {
      metadata: { name: 'echo-ds' },
      spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] },
    },
  });
  const servers = await waitFor('an echo server Running on every node', 180_000, async () => {
    const pods = (await core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=echo-ds' })).items;
    const running = pods.filter((p) => p.status?.phase === 'Running' && p.status.podIP);
    return running.length === nodes.length ? running : undefined;
  });
  // From a pod on each worker, every server by its pod IP (two of them on other nodes).
  for (const [i, node] of workers.entries()) {
    for (const [j, server] of servers.entries()) {
      const r = await runOn(node, `get-${i}-${j}`, ['get', `http://${server.status?.podIP}:8080/`]);
      assert.equal(r.phase, 'Succeeded', `${node} -> ${server.spec?.nodeName}: ${r.log}`);
      assert.match(r.log, new RegExp(`^hello from ${server.metadata?.name}`));
    }
  }
  // The Service by name, and cluster DNS, from a pod on every node.
  for (const [i, node] of nodes.entries()) {
    const svc = await runOn(node, `svc-${i}`, ['get', 'http://echo-ds.default.svc.cluster.local/']);
    assert.equal(svc.phase, 'Succeeded', `${node}: ${svc.log}`);
    assert.match(svc.log, /^hello from echo-ds-/);
    const dns = await runOn(node, `dns-${i}`, ['resolve', 'kubernetes.default.svc.cluster.local']);
    assert.equal(dns.phase, 'Succeeded', `${node}: ${dns.log}`);
    assert.match(dns.log, /^10\.96\.0\.1\b/);
  }
});

test('ssh --node reaches a worker; a name that is no node is refused with the node list', async () => {
  const r = await s.minilab(['ssh', '-p', profile, '--node', workers[1] as string, '--', 'hostname']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), workers[1]);
  const bad = await s.minilab(['ssh', '-p', profile, '--node', `${profile}-worker9`, '--', 'true']);
  assert.equal(bad.code, 4);
  assert.match(bad.stderr, new RegExp(`its nodes: ${controlPlane}, ${workers.join(', ')}`));
});

test('node add joins a worker that runs pods; node delete drains and removes it', async () => {
  const added = `${profile}-worker3`;
  const r = await s.minilab(['node', 'add', '-p', profile, '-o', 'json'], { timeoutMs: 300_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { profile, node: added, role: 'worker' });
  const list = await s.minilab(['node', 'list', '-p', profile, '-o', 'json']);
  assert.deepEqual(
    (JSON.parse(list.stdout) as { nodes: { name: string; role: string }[] }).nodes.map((n) => [
      n.name,
      n.role,
    ]),
    [[controlPlane, 'control-plane'], ...[...workers, added].map((w) => [w, 'worker'])],
  );
  // The image loaded into the cluster before was copied to the new node: no load again.
  const ls = await engine.exec.run(added, ['ctr', '-n', 'k8s.io', 'images', 'ls', '-q']);
  assert.ok(
    ls.stdout.split('\n').some((l) => l.includes(`minilab-test/echo:${runId}`)),
    `${added}: ${ls.stdout}`,
  );
  // Beside the join it unpacked its first pods' images: flannel's before flannel's pod came.
  const u = await unpackedBeforeFirstUse((cmd) => engine.exec.run(added, cmd), '/flannel:', 'kube-flannel');
  assert.ok(Number.isFinite(u.unpacked) && u.sandbox > 0 && u.unpacked < u.sandbox, u.raw);
  assert.deepEqual([u.mounts, u.dirs], ['0', '0']);
  // The scheduler places a pod there (no nodeName), and it reaches a Service over the pod network.
  const { core } = clients();
  await core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name: 'on-added' },
      spec: {
        nodeSelector: { 'kubernetes.io/hostname': added },
        restartPolicy: 'Never',
        containers: [
          {
            name: 'c',
            image: echoImage,
            imagePullPolicy: 'Never',
            args: ['get', 'http://echo-ds.default.svc.cluster.local/'],
          },
        ],
      },
    },
  });
  const onAdded = await podResult(core, 'default', 'on-added');
  assert.equal(onAdded.phase, 'Succeeded', onAdded.log);
  // the copy reached the new node's mirror too: a pull with Always is served there
  const pulled = await runOn(
    added,
    'always-on-added',
    ['resolve', 'kubernetes.default.svc.cluster.local'],
    'Always',
  );
  assert.equal(pulled.phase, 'Succeeded', pulled.log);

  // A Deployment's pod that prefers the new node runs there; draining the node moves it elsewhere.
  await createEchoDeployment(clients().apps, 'drained', echoImage, {
    affinity: {
      nodeAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          {
            weight: 100,
            preference: {
              matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [added] }],
            },
          },
        ],
      },
    },
  });
  const readyOn = async () => {
    const pods = await core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=drained' });
    const ready = pods.items.filter(
      (p) =>
        !p.metadata?.deletionTimestamp &&
        p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    return ready.length === 1 ? ready[0]?.spec?.nodeName : undefined;
  };
  assert.equal(await waitFor('the Deployment pod on the new node', 120_000, readyOn), added);

  const del = await s.minilab(['node', 'delete', added, '-p', profile], { timeoutMs: 300_000 });
  assert.equal(del.code, 0, del.stderr);
  const movedTo = await waitFor('the drained pod Ready on another node', 120_000, async () => {
    const node = await readyOn();
    return node && node !== added ? node : undefined;
  });
  assert.ok(workers.includes(movedTo), `rescheduled onto a worker (${movedTo})`);
  assert.ok(!(await core.listNode()).items.some((n) => n.metadata?.name === added), 'gone from the cluster');
  assert.equal(await engine.containers.inspect(added), undefined, 'gone from the engine');
  assert.deepEqual(await engine.volumes.list({ 'io.minilab.node': added }), [], 'its volume too');
  const cp = await s.minilab(['node', 'delete', controlPlane, '-p', profile]);
  assert.equal(cp.code, 2);
  assert.match(cp.stderr, /cannot be removed/);
});

test('stop and start bring every node back Ready with the workloads', async () => {
  const stopped = await s.minilab(['stop', '-p', profile], { timeoutMs: 180_000 });
  assert.equal(stopped.code, 0, stopped.stderr);
  for (const node of nodes) assert.equal((await engine.containers.inspect(node))?.running, false, node);
  const started = await s.minilab(['start', '-p', profile], { timeoutMs: 600_000 });
  assert.equal(started.code, 0, started.stderr);
  assert.match(started.stdout, /running again/);
  const { core, apps } = clients();
  await waitFor('every node Ready', 180_000, async () => {
    const list = await core.listNode();
    const ready = list.items.filter((n) =>
      n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    return ready.length === nodes.length ? true : undefined;
  });
  // The workloads come back by themselves: flannel and the echo servers Ready on every node again.
  for (const [namespace, name] of [
    ['kube-flannel', 'kube-flannel-ds'],
    ['default', 'echo-ds'],
  ] as const) {
    await waitFor(`${namespace}/${name} Ready on every node`, 180_000, async () => {
      const ds = await apps.readNamespacedDaemonSet({ namespace, name });
      const st = ds.status;
      return st?.numberReady === nodes.length && st.updatedNumberScheduled === nodes.length
        ? true
        : undefined;
    });
  }
  // Pods restart after the node does; their Ready status can lag that: a client retries, bounded.
  let after = { phase: '', log: '' };
  for (let attempt = 1; attempt <= 6 && after.phase !== 'Succeeded'; attempt++) {
    if (attempt > 1) await new Promise((r) => setTimeout(r, 5000));
    after = await runOn(workers[0] as string, `after-restart-${attempt}`, [
      'get',
      'http://echo-ds.default.svc.cluster.local/',
    ]);
  }
  assert.equal(after.phase, 'Succeeded', after.log);
});

test('after the Docker engine restarts, every node is back Ready at its address, with the PVC file and the kubeconfig working', async () => {
  const { core } = clients();
  const data = `kept-${runId}`;
  await writeClaimFile(core, workers[0] as string, data);
  await assertOnlyOurContainersRun(engine);
  const addresses = await profileAddresses(engine, profile);
  assert.deepEqual(Object.keys(addresses).sort(), [...nodes].sort());
  engine = await restartDockerd();
  await waitForProfileRunning(engine, profile, nodes.length, 180_000);
  assert.deepEqual(await profileAddresses(engine, profile), addresses, 'the same address for each node');
  // Through the host's kubeconfig, as it was before the restart.
  await waitForReadyNodes(core, nodes, 300_000);
  assert.equal(await readClaimFile(core, workers[0] as string, 'read-after-engine-restart'), data);
  // the image loaded at the start is still served by each worker's mirror
  for (const w of workers) {
    const pulled = await runOn(
      w,
      `always-after-engine-restart-${w.slice(-1)}`,
      ['resolve', 'kubernetes.default.svc.cluster.local'],
      'Always',
    );
    assert.equal(pulled.phase, 'Succeeded', `${w}: ${pulled.log}`);
  }
  const st = await s.minilab(['status', '-p', profile]);
  assert.equal(st.code, 0, st.stdout + st.stderr);
});

test('delete removes every node, volume and the network', async () => {
  const r = await s.minilab(['delete', '-p', profile], { timeoutMs: 180_000 });
  assert.equal(r.code, 0, r.stderr);
  const selector = { 'io.minilab.profile': profile };
  assert.deepEqual(await engine.containers.list(selector), []);
  assert.deepEqual(await engine.volumes.list(selector), []);
  assert.deepEqual(await engine.networks.list(selector), []);
});
