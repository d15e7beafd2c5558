import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { get } from 'node:http';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import type { DockerEngine } from '../../src/providers/docker/engine.js';
import { cleanupTestResources, connect, runId } from '../helpers/engine.js';
import {
  createDataClaim,
  deployEcho,
  echoServerArchive,
  kubeClients,
  podResult,
  sandbox,
  waitFor,
} from '../helpers/cluster.js';

const profile = `e2e-${runId}`;
const node = `${profile}-control-plane`;
const echoImage = `minilab-test/echo:${runId}`;
let s: Awaited<ReturnType<typeof sandbox>>;
let engine: DockerEngine;

before(async () => {
  s = await sandbox('lifecycle');
  engine = await connect();
});

after(async () => {
  await s.minilab(['delete', '-p', profile], { timeoutMs: 120_000 }).catch(() => undefined);
  await cleanupTestResources(engine);
  await s.cleanup();
});

const clients = () => kubeClients(s.kubeconfig, profile);

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

async function runPod(name: string, args: string[]) {
  const { core } = clients();
  await core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name },
      spec: {
        restartPolicy: 'Never',
        containers: [{ name: 'c', image: echoImage, imagePullPolicy: 'Never', args }],
      },
    },
  });
  return podResult(core, 'default', name);
}

test('start creates a working cluster and a kubeconfig context on the host', async () => {
  const r = await s.minilab(['start', '-p', profile], { timeoutMs: 20 * 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /✓ Initializing the control plane \(kubeadm init\)/);
  assert.match(r.stdout, new RegExp(`context "${profile}" in ${s.kubeconfig.replace(/[.]/g, '\\.')}`));
  assert.equal((await stat(s.kubeconfig)).mode & 0o777, 0o600);
  const kc = parse(await readFile(s.kubeconfig, 'utf8')) as {
    'current-context': string;
    clusters: { cluster: { server: string } }[];
  };
  assert.equal(kc['current-context'], profile);
  assert.match(kc.clusters[0]?.cluster.server ?? '', /^https:\/\/127\.0\.0\.1:\d+$/);

  const { core } = clients();
  const n = await core.readNode({ name: node });
  assert.equal(n.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
  const storage = new k8s.KubeConfig();
  storage.loadFromFile(s.kubeconfig);
  const sc = await storage.makeApiClient(k8s.StorageV1Api).readStorageClass({ name: 'standard' });
  assert.equal(sc.metadata?.annotations?.['storageclass.kubernetes.io/is-default-class'], 'true');
  assert.equal(sc.volumeBindingMode, 'WaitForFirstConsumer');

  const st = await s.minilab(['status', '-p', profile, '-o', 'json']);
  assert.equal(st.code, 0, st.stdout + st.stderr);
  const status = JSON.parse(st.stdout) as {
    kubelet: string;
    apiServer: { state: string };
    kubeconfig: { state: string };
  };
  assert.deepEqual(
    [status.kubelet, status.apiServer.state, status.kubeconfig.state],
    ['running', 'running', 'configured'],
  );
});

test('start on a running cluster is a no-op that re-syncs the kubeconfig', async () => {
  const before = parse(await readFile(s.kubeconfig, 'utf8')) as object;
  const r = await s.minilab(['start', '-p', profile, '--no-switch-context']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /is running/);
  assert.deepEqual(parse(await readFile(s.kubeconfig, 'utf8')), before);
});

test('a workload from a locally built image is reachable through a Service, by DNS, and from the host', async () => {
  const archive = await echoServerArchive(echoImage, s.dir);
  const load = await engine.exec.run(node, ['ctr', '-n', 'k8s.io', 'images', 'import', '-'], {
    input: archive,
  });
  assert.equal(load.exitCode, 0, load.stderr);

  const { core, config } = clients();
  await deployEcho(clients(), echoImage, { name: 'echo', port: 80 });

  const viaService = await runPod('client-svc', ['get', 'http://echo.default.svc.cluster.local/']);
  assert.equal(viaService.phase, 'Succeeded', viaService.log);
  assert.match(viaService.log, /^hello from echo-/);
  const dns = await runPod('client-dns', ['resolve', 'kubernetes.default.svc.cluster.local']);
  assert.equal(dns.phase, 'Succeeded', dns.log);
  assert.match(dns.log, /^10\.96\.0\.1\b/);

  const pods = await core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=echo' });
  const pod = pods.items[0]?.metadata?.name as string;
  const forward = new k8s.PortForward(config);
  const server = createServer((socket) => {
    void forward.portForward('default', pod, [8080], socket, null, socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const body = await httpGet(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    assert.match(body, /^hello from echo-/);
  } finally {
    server.close();
  }
});

test('a PersistentVolumeClaim binds and keeps its data across stop and start', async () => {
  const { core } = clients();
  await createDataClaim(core);
  await core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name: 'keeper', labels: { app: 'keeper' } },
      spec: {
        containers: [
          {
            name: 'keeper',
            image: echoImage,
            imagePullPolicy: 'Never',
            args: ['serve'],
            env: [
              { name: 'DATA_FILE', value: '/data/file' },
              { name: 'DATA_INIT', value: `kept-${runId}` },
            ],
            volumeMounts: [{ name: 'data', mountPath: '/data' }],
            readinessProbe: { httpGet: { path: '/data', port: 8080 }, periodSeconds: 1 },
          },
        ],
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
      },
    },
  });
  // Ready, and (after a restart) running in a container started after `since`: the pod status
  // from before the stop may still say Ready with the old IP for a moment.
  const readKept = async (name: string, since = new Date(0)) => {
    const ip = await waitFor('keeper to be ready', 180_000, async () => {
      const p = await core.readNamespacedPod({ name: 'keeper', namespace: 'default' });
      const started = p.status?.containerStatuses?.[0]?.state?.running?.startedAt;
      const ready = p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      return ready && started && new Date(started) >= since ? p.status?.podIP : undefined;
    });
    return runPod(name, ['get', `http://${ip}:8080/data`]);
  };
  const first = await readKept('read-1');
  assert.equal(first.log, `kept-${runId}`);
  const pvc = await core.readNamespacedPersistentVolumeClaim({ name: 'data', namespace: 'default' });
  assert.equal(pvc.status?.phase, 'Bound');

  const stoppedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
  const stopped = await s.minilab(['stop', '-p', profile], { timeoutMs: 120_000 });
  assert.equal(stopped.code, 0, stopped.stderr);
  const down = await s.minilab(['status', '-p', profile, '-o', 'json']);
  assert.equal(down.code, 16 + 1 + 2 + 4, 'status exit code says container, kubelet and API server are down');

  const restarted = await s.minilab(['start', '-p', profile], { timeoutMs: 600_000 });
  assert.equal(restarted.code, 0, restarted.stderr);
  assert.match(restarted.stdout, /running again/);
  const second = await readKept('read-2', stoppedAt);
  assert.equal(second.log, `kept-${runId}`, 'the file written before the stop is still there');
});

test('delete removes containers, volumes, network, kubeconfig entries and profile state', async () => {
  const r = await s.minilab(['delete', '-p', profile], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  const selector = { 'io.minilab.profile': profile };
  assert.deepEqual(await engine.containers.list(selector), []);
  assert.deepEqual(await engine.volumes.list(selector), []);
  assert.deepEqual(await engine.networks.list(selector), []);
  const kc = parse(await readFile(s.kubeconfig, 'utf8')) as {
    clusters: unknown[];
    users: unknown[];
    contexts: unknown[];
  };
  assert.deepEqual([kc.clusters, kc.users, kc.contexts], [[], [], []]);
  assert.equal(existsSync(join(s.home, 'profiles', profile)), false);
  const again = await s.minilab(['delete', '-p', profile]);
  assert.equal(again.code, 0, 'delete is idempotent');
  const st = await s.minilab(['status', '-p', profile]);
  assert.equal(st.code, 4, 'status of a deleted cluster is "not found"');
});
