import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Labels } from '../../src/labels.js';
import { resourceNames } from '../../src/profile/name.js';
import { Chain, runCommand } from '../../src/providers/iptables.js';
import type { PodmanProvider } from '../../src/providers/podman/provider.js';
import { cleanupTestResources, connect, connectPodman, runId } from '../helpers/engine.js';
import {
  deployEcho,
  echoServerArchive,
  kubeClients,
  readClaimFile,
  runPodOnce,
  sandbox,
  SERVICE_CLIENT_SPEC,
  waitFor,
  writeClaimFile,
} from '../helpers/cluster.js';

// One cluster on the podman service (rootful: this host is cgroup v1, where rootless podman is
// refused; test/unit/podman.test.ts covers that refusal), taken through what users do with it.
// Two nodes, beside Docker's FORWARD policy DROP: minilab lets the podman network's bridge through.
const profile = `pm-${runId}`;
const names = resourceNames(profile);
const node = names.node(0);
const worker = names.node(1);
/** The name pods use; podman's store holds it as `stored`, as it names images built there. */
const echoImage = `minilab-test/echo-pm:${runId}`;
const stored = `localhost/${echoImage}`;
let s: Awaited<ReturnType<typeof sandbox>>;
let podman: PodmanProvider;

before(async () => {
  s = await sandbox('podman');
  podman = await connectPodman();
  // The first start on a podman store builds the node image there from the cached stages.
  const r = await s.minilab(['start', '-p', profile, '--driver', 'podman', '--nodes', '2'], {
    timeoutMs: 20 * 60_000,
  });
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  // before() may have failed anywhere: clean what was made.
  await s?.minilab(['delete', '-p', profile], { timeoutMs: 120_000 }).catch(() => undefined);
  if (podman) {
    await podman.images.remove(stored).catch(() => undefined);
    await cleanupTestResources(podman.engine);
  }
  await s?.cleanup();
});

const clients = () => kubeClients(s.kubeconfig, profile);

/** The profile's rules in the host's FORWARD path (DOCKER-USER, where Docker made it, as here). */
async function forwardRules(): Promise<string[]> {
  const rules = await Promise.all(
    ['DOCKER-USER', 'FORWARD'].map((chain) => new Chain(runCommand, 'filter', chain).tagged(profile)),
  );
  return rules.flat().map((r) => r.join(' '));
}

test('start --driver podman: the nodes are podman containers, the profile says podman, and ssh, kubectl and status work', async () => {
  const nodes = await podman.listNodes(profile);
  assert.deepEqual(nodes.map((n) => [n.name, n.role, n.state.running]).sort(), [
    [node, 'control-plane', true],
    [worker, 'worker', true],
  ]);
  // Its bridge let through Docker's FORWARD policy DROP: the two rules, in DOCKER-USER.
  const bridge = await podman.bridgeOf(names.network);
  assert.ok(bridge);
  assert.deepEqual(
    (await forwardRules()).map((r) => r.replace(/ -m comment --comment \S+/, '')),
    [`-i ${bridge} -j ACCEPT`, `-o ${bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`],
  );
  // Nothing of it in the Docker engine (the default driver here).
  const docker = await connect();
  assert.deepEqual(await docker.containers.list({ [Labels.profile]: profile }), []);

  const list = await s.minilab(['profile', 'list', '-o', 'json']);
  assert.equal(list.code, 0, list.stderr);
  const listed = (JSON.parse(list.stdout) as { profiles: { name: string; driver: string; status: string }[] })
    .profiles;
  assert.deepEqual(
    listed.filter((p) => p.name === profile).map((p) => [p.driver, p.status]),
    [['podman', 'running']],
  );
  const status = await s.minilab(['status', '-p', profile]);
  assert.equal(status.code, 0, status.stdout + status.stderr);
  const ssh = await s.minilab(['ssh', '-p', profile, '--', 'sh', '-c', 'echo "$container on $(hostname)"']);
  assert.equal(ssh.code, 0, ssh.stderr);
  assert.equal(ssh.stdout, `podman on ${node}\n`);
  const kubectl = await s.minilab(['kubectl', '-p', profile, '--', 'get', 'nodes', '-o', 'name']);
  assert.equal(kubectl.code, 0, kubectl.stderr);
  assert.equal(kubectl.stdout, `node/${node}\nnode/${worker}\n`);
  // The same profile on another driver is refused, changing nothing.
  const other = await s.minilab(['start', '-p', profile, '--driver', 'docker']);
  assert.equal(other.code, 2);
  assert.match(other.stderr, /runs on podman, not docker/);
});

test("image load takes an image from podman's store (named localhost/... there); a pod runs it behind a Service", async () => {
  await podman.images.load(await echoServerArchive(stored, s.dir));
  const load = await s.minilab(['image', 'load', '-p', profile, echoImage, '-o', 'json']);
  assert.equal(load.code, 0, load.stderr);
  assert.equal((JSON.parse(load.stdout) as { loaded: { status: string }[] }).loaded[0]?.status, 'loaded');
  const missing = await s.minilab(['image', 'load', '-p', profile, `minilab-test/absent:${runId}`]);
  assert.equal(missing.code, 4);
  assert.match(missing.stderr, /not in the podman service\nhint: .*podman images/);

  await deployEcho(clients(), echoImage, { name: 'echo', port: 80 });
  // The server where the scheduler put it (the worker: the control plane is tainted), the client
  // on the other node: the Service's traffic crosses the podman network, through Docker's FORWARD.
  const server = (await clients().core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=echo' }))
    .items[0];
  const other = server?.spec?.nodeName === node ? worker : node;
  const viaService = await runPodOnce(
    clients().core,
    'client-svc',
    echoImage,
    ['get', 'http://echo.default.svc.cluster.local/'],
    { spec: { ...SERVICE_CLIENT_SPEC, nodeName: other } },
  );
  assert.equal(viaService.phase, 'Succeeded', `${other} -> ${server?.spec?.nodeName}: ${viaService.log}`);
  assert.match(viaService.log, /^hello from echo-/);
  // An exec into a pod: runc in the node joins the pod's cgroups (on a cgroup v1 host podman gives
  // the node no cgroup namespace, and the node's entrypoint keeps systemd to the v1 hierarchies).
  const exec = await s.minilab([
    'kubectl',
    '-p',
    profile,
    '--',
    'exec',
    'deploy/echo',
    '--',
    '/echo-server',
    'resolve',
    'kubernetes.default.svc.cluster.local',
  ]);
  assert.equal(exec.code, 0, exec.stderr);
  assert.match(exec.stdout, /^10\.96\.0\.1\b/);
});

test('a PersistentVolumeClaim keeps its file across stop and start on podman', async () => {
  const { core } = clients();
  await writeClaimFile(core, worker, `kept-${runId}`);

  const stopped = await s.minilab(['stop', '-p', profile], { timeoutMs: 120_000 });
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.deepEqual(
    (await podman.listNodes(profile)).map((n) => n.state.running),
    [false, false],
  );
  const started = await s.minilab(['start', '-p', profile], { timeoutMs: 600_000 });
  assert.equal(started.code, 0, started.stderr);
  assert.equal(await readClaimFile(core, worker, 'claim-reader'), `kept-${runId}`);
});

test("logs --export writes the node's bundle", async () => {
  const dir = join(s.dir, 'logs');
  const exported = await s.minilab(['logs', '-p', profile, '--export', dir]);
  assert.equal(exported.code, 0, exported.stderr);
  for (const n of [node, worker]) assert.ok((await readdir(join(dir, n))).includes('kubelet.log'), n);
});

test('delete leaves nothing of the cluster in podman: containers, volumes, network, FORWARD rules', async () => {
  const deleted = await s.minilab(['delete', '-p', profile], { timeoutMs: 120_000 });
  assert.equal(deleted.code, 0, deleted.stderr);
  const owned = { [Labels.profile]: profile };
  const { containers, volumes, networks } = podman.engine;
  await waitFor('podman to forget the cluster', 10_000, async () => {
    const left = [
      ...(await containers.list(owned)).map((c) => c.name),
      ...(await volumes.list(owned)),
      ...(await networks.list(owned)),
    ];
    return left.length === 0 ? true : undefined;
  });
  assert.deepEqual(await forwardRules(), []);
  const list = await s.minilab(['profile', 'list', '-o', 'json']);
  assert.ok(!list.stdout.includes(`"${profile}"`), list.stdout);
});
