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
import { cleanupTestResources, connect, loadBusyboxImage, runId } from '../helpers/engine.js';
import {
  createDataClaim,
  deployEcho,
  echoServerArchive,
  kubeClients,
  podResult,
  runPodOnce,
  sandbox,
  SERVICE_CLIENT_SPEC,
  unpackedBeforeFirstUse,
  waitFor,
} from '../helpers/cluster.js';

const profile = `e2e-${runId}`;
const node = `${profile}-control-plane`;
const echoImage = `minilab-test/echo:${runId}`;
/**
 * Loaded images pulled through the node's mirror. Their registry is under a reserved name
 * (.example): a pull that missed the mirror could reach no registry and would fail.
 */
const mirrored = `registry.minilab-test.example/team/app-${runId}`;
let s: Awaited<ReturnType<typeof sandbox>>;
let engine: DockerEngine;

before(async () => {
  s = await sandbox('lifecycle');
  engine = await connect();
});

after(async () => {
  await s.minilab(['delete', '-p', profile], { timeoutMs: 120_000 }).catch(() => undefined);
  for (const tag of ['latest', 'v1']) await engine.images.remove(`${mirrored}:${tag}`).catch(() => undefined);
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

async function runPod(
  name: string,
  args: string[],
  container: Partial<k8s.V1Container> = { image: echoImage, imagePullPolicy: 'Never' },
) {
  const { core } = clients();
  await core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name },
      spec: { restartPolicy: 'Never', containers: [{ name: 'c', args, ...container }] },
    },
  });
  return podResult(core, 'default', name);
}

/** A pod of a loaded image with the given pull policy (none: the default for its tag); its log and image digest. */
async function runMirrored(name: string, image: string, imagePullPolicy?: 'Always') {
  const r = await runPod(name, [], { image, ...(imagePullPolicy ? { imagePullPolicy } : {}) });
  const pod = await clients().core.readNamespacedPod({ name, namespace: 'default' });
  return { ...r, imageID: pod.status?.containerStatuses?.[0]?.imageID ?? '' };
}

/** Loads a tiny image that prints `text` under each name (one image, several tags). */
async function loadPrinting(text: string, refs: string[]) {
  await loadBusyboxImage(engine, refs[0]!, ['/bin/echo', text]);
  for (const ref of refs.slice(1)) {
    const [repo, tag] = [ref.slice(0, ref.lastIndexOf(':')), ref.slice(ref.lastIndexOf(':') + 1)];
    await engine.client.docker.getImage(refs[0]!).tag({ repo, tag });
  }
  const r = await s.minilab(['image', 'load', '-p', profile, ...refs], { timeoutMs: 300_000 });
  assert.equal(r.code, 0, r.stderr);
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

test('the control plane runs from the kube snapshots unpacked when the node image was built: no copy of kube is made at start', async () => {
  // Each line: how many names /usr/local/bin/kube has; how many mounted overlays have a lower
  // layer in the image's own snapshots; how many snapshots in the volume hold a kube binary.
  const script = `stat -c %h /usr/local/bin/kube
     snapshots=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots
     n=0
     for lower in $(grep -o 'lowerdir=[^,]*' /proc/mounts | cut -d= -f2 | tr ':' ' '); do
       case "$(readlink -f "$lower")" in /opt/minilab/containerd-snapshots/*) n=$((n + 1)) ;; esac
     done
     echo "$n"
     c=0
     for d in "$snapshots"/*; do
       [ -L "$d" ] || [ ! -e "$d/fs/usr/local/bin/kube" ] || c=$((c + 1))
     done
     echo "$c"`;
  const r = await s.minilab(['ssh', '-p', profile, '--', 'sh', '-c', script]);
  assert.equal(r.code, 0, r.stderr);
  const [links, lowers, copies] = r.stdout.trim().split('\n').map(Number);
  // the node's binary and the two unpacked chains' (the kube layer alone, and on the tools layer)
  assert.equal(links, 3, r.stdout);
  // API server, controller manager, scheduler and kube-proxy at least
  assert.ok((lowers ?? 0) >= 4, `overlays on the image's snapshots: ${r.stdout}`);
  assert.equal(copies, 0, r.stdout);
});

/** Each running container in the node: its pod's namespace and name, and its parent process (its shim). */
async function containerShims(): Promise<{ namespace: string; pod: string; shim: string }[]> {
  const template =
    '{{.info.pid}} {{index .status.labels "io.kubernetes.pod.namespace"}} {{index .status.labels "io.kubernetes.pod.name"}}';
  const script = `for c in $(crictl ps -q); do
       set -- $(crictl inspect -o go-template --template '${template}' "$c")
       echo "$2 $3 $(ps -o ppid= -p "$1")"
     done`;
  const r = await s.minilab(['ssh', '-p', profile, '--', 'sh', '-c', script]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .trim()
    .split('\n')
    .map((line) => {
      const [namespace = '', pod = '', shim = ''] = line.trim().split(/\s+/);
      return { namespace, pod, shim };
    });
}

const SYSTEM_NAMESPACES = new Set(['kube-system', 'local-path-storage']);

test("the cluster's own pods share one containerd shim", async () => {
  // etcd, API server, controller manager, scheduler, kube-proxy, CoreDNS, the storage provisioner
  // (start does not wait for the provisioner's container: it may still be starting)
  const system = await waitFor("the cluster's seven containers to run", 60_000, async () => {
    const running = (await containerShims()).filter((c) => SYSTEM_NAMESPACES.has(c.namespace));
    return running.length === 7 ? running : undefined;
  });
  assert.equal(new Set(system.map((c) => c.shim)).size, 1, JSON.stringify(system));
});

test("CoreDNS's image was unpacked before its pod's first sandbox, and the unpacking left no mount or folder behind", async () => {
  const r = await unpackedBeforeFirstUse((cmd) => engine.exec.run(node, cmd), '/coredns:', 'coredns');
  assert.ok(Number.isFinite(r.unpacked) && r.sandbox > 0, r.raw);
  assert.ok(
    r.unpacked < r.sandbox,
    `unpacked at ${new Date(r.unpacked).toISOString()}, first sandbox at ${new Date(r.sandbox).toISOString()}`,
  );
  assert.deepEqual([r.mounts, r.dirs], ['0', '0']);
});

test('the kubelet, controller manager and scheduler serve the ECDSA certificates written while the node booted; none generated its own', async () => {
  const r = await engine.exec.run(node, [
    'bash',
    '-c',
    `for port in 10250 10257 10259; do
       echo | openssl s_client -connect 127.0.0.1:$port 2>/dev/null | openssl x509 -noout -pubkey | openssl pkey -pubin -noout -text | head -1
     done
     for c in kube-controller-manager kube-scheduler; do crictl logs $(crictl ps -q --name $c) 2>&1 | grep -c 'Generated self-signed cert' || true; done`,
  ]);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), [
    'Public-Key: (256 bit)',
    'Public-Key: (256 bit)',
    'Public-Key: (256 bit)',
    '0',
    '0',
  ]);
});

test("nodes may read the cluster's own pods' ConfigMaps before such a pod is bound to them, and no other ConfigMap", async () => {
  const { config } = clients();
  const authz = config.makeApiClient(k8s.AuthorizationV1Api);
  const mayList = async (namespace: string, name: string) =>
    (
      await authz.createSubjectAccessReview({
        body: {
          spec: {
            user: 'system:node:no-such-node',
            groups: ['system:nodes', 'system:authenticated'],
            resourceAttributes: { namespace, verb: 'list', resource: 'configmaps', name },
          },
        },
      })
    ).status?.allowed;
  assert.equal(await mayList('kube-system', 'coredns'), true);
  assert.equal(await mayList('kube-system', 'kube-root-ca.crt'), true);
  assert.equal(await mayList('local-path-storage', 'local-path-config'), true);
  assert.equal(await mayList('kube-system', 'extension-apiserver-authentication'), false);
  assert.equal(await mayList('default', 'kube-root-ca.crt'), false);
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

  const viaService = await runPodOnce(
    core,
    'client-svc',
    echoImage,
    ['get', 'http://echo.default.svc.cluster.local/'],
    { spec: SERVICE_CLIENT_SPEC },
  );
  assert.equal(viaService.phase, 'Succeeded', viaService.log);
  assert.match(viaService.log, /^hello from echo-/);
  // A workload's pod has a shim of its own, apart from the cluster's.
  const shims = await containerShims();
  const echo = shims.find((c) => c.pod.startsWith('echo-'));
  const systemShims = new Set(shims.filter((c) => SYSTEM_NAMESPACES.has(c.namespace)).map((c) => c.shim));
  assert.ok(echo && !systemShims.has(echo.shim), JSON.stringify(shims));
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

test("loaded images are pulled through the node's mirror: :latest with the default policy and Always run with no registry; a reloaded :latest reaches the next pod; an unloaded name fails", async () => {
  await loadPrinting('first build', [`${mirrored}:latest`, `${mirrored}:v1`]);
  // :latest defaults to imagePullPolicy Always: the kubelet pulls, and only the mirror can answer
  const latest = await runMirrored('mirror-latest', `${mirrored}:latest`);
  assert.equal(latest.phase, 'Succeeded', latest.log);
  assert.equal(latest.log.trim(), 'first build');
  const pinned = await runMirrored('mirror-v1', `${mirrored}:v1`, 'Always');
  assert.equal(pinned.phase, 'Succeeded', pinned.log);
  const { core } = clients();
  const events = await core.listNamespacedEvent({
    namespace: 'default',
    fieldSelector: 'involvedObject.name=mirror-latest',
  });
  assert.ok(
    events.items.some((e) => e.reason === 'Pulled' && /Successfully pulled/.test(e.message ?? '')),
    `the kubelet pulled the image: ${events.items.map((e) => e.message).join(' | ')}`,
  );

  const ls = await s.minilab(['image', 'ls', '-p', profile, '-o', 'json']);
  const listed = (JSON.parse(ls.stdout) as { images: { ref: string; mirrored: boolean }[] }).images;
  assert.deepEqual(
    listed.filter((i) => i.ref.startsWith(mirrored)).map((i) => [i.ref, i.mirrored]),
    [
      [`${mirrored}:latest`, true],
      [`${mirrored}:v1`, true],
    ],
  );
  // the preloaded images are in the mirror from the node image on
  assert.ok(
    listed.some((i) => i.ref.startsWith('registry.k8s.io/pause:') && i.mirrored),
    'preloaded: mirrored',
  );
  const pause = listed.find((i) => i.ref.startsWith('registry.k8s.io/pause:'))!.ref;
  await core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name: 'preloaded-always' },
      spec: { containers: [{ name: 'c', image: pause, imagePullPolicy: 'Always' }] },
    },
  });
  await waitFor(`a pod of ${pause} pulled with Always to run`, 60_000, async () => {
    const p = await core.readNamespacedPod({ name: 'preloaded-always', namespace: 'default' });
    return p.status?.phase === 'Running' ? true : undefined;
  });
  await core.deleteNamespacedPod({ name: 'preloaded-always', namespace: 'default', gracePeriodSeconds: 0 });

  // the dev loop: rebuild the same tag, load it, and the next pod runs the new image
  await loadPrinting('second build', [`${mirrored}:latest`]);
  const rebuilt = await runMirrored('mirror-rebuilt', `${mirrored}:latest`);
  assert.equal(rebuilt.log.trim(), 'second build');
  assert.match(rebuilt.imageID, /@sha256:[0-9a-f]{64}$/);
  assert.notEqual(rebuilt.imageID, latest.imageID, 'a new digest');

  // Never loaded: a registry no image came from fails with the network's error; one the mirror
  // answers for fails with the mirror's "not found" (containerd keeps the first host's answer).
  const absent = [
    { pod: 'absent-unknown', image: 'minilab-test.invalid/never-loaded:1', why: /no such host/ },
    { pod: 'absent-mirrored', image: `${mirrored}:never-loaded`, why: /not found/ },
  ];
  for (const a of absent) {
    await core.createNamespacedPod({
      namespace: 'default',
      body: { metadata: { name: a.pod }, spec: { containers: [{ name: 'c', image: a.image }] } },
    });
  }
  for (const a of absent) {
    const failed = await waitFor(`the pull of ${a.image} to fail`, 60_000, async () => {
      const list = await core.listNamespacedEvent({
        namespace: 'default',
        fieldSelector: `involvedObject.name=${a.pod},reason=Failed`,
      });
      return list.items.find((e) => (e.message ?? '').includes(a.image));
    });
    assert.match(failed.message ?? '', /failed to resolve reference/);
    assert.match(failed.message ?? '', a.why);
    // the pod's status follows the event
    const reason = await waitFor(`${a.pod} to say why it waits`, 30_000, async () => {
      const pod = await core.readNamespacedPod({ name: a.pod, namespace: 'default' });
      const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting?.reason;
      return waiting && waiting !== 'ContainerCreating' ? waiting : undefined;
    });
    assert.match(reason, /^(ErrImagePull|ImagePullBackOff)$/);
    await core.deleteNamespacedPod({ name: a.pod, namespace: 'default', gracePeriodSeconds: 0 });
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
  // The stop killed the API server first, so etcd, left without its client, ended cleanly on the
  // halt's SIGTERM (before, it was killed at the 1 s stop timeout): its log before the restart
  // ends with its own shutdown.
  const etcdLog = await engine.exec.run(node, [
    'sh',
    '-c',
    'cd /var/log/pods/kube-system_etcd-*/etcd && tail -n 30 "$(ls -v | tail -n 2 | head -n 1)"',
  ]);
  assert.equal(etcdLog.exitCode, 0, etcdLog.stderr);
  assert.match(etcdLog.stdout, /server has stopped/, 'etcd stopped cleanly');
});

test("the node's mirror keeps the loaded images across stop and start: an Always pull still runs", async () => {
  const r = await runMirrored('mirror-after-restart', `${mirrored}:v1`, 'Always');
  assert.equal(r.phase, 'Succeeded', r.log);
  assert.equal(r.log.trim(), 'first build');
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
