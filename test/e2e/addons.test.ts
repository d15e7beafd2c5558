import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { pinnedAddons } from '../../src/addons/images.js';
import type { DockerEngine } from '../../src/providers/docker/engine.js';
import { cleanupTestResources, connect, runId } from '../helpers/engine.js';
import { kubeClients, sandbox } from '../helpers/cluster.js';

// One cluster for every add-on case: made with --addons, so creation with add-ons is tested too.
const profile = `addons-${runId}`;
const node = `${profile}-control-plane`;
let s: Awaited<ReturnType<typeof sandbox>>;
let engine: DockerEngine;

before(async () => {
  s = await sandbox('addons');
  engine = await connect();
  // the add-ons' images are built from Go modules the first time (a few minutes cold)
  const r = await s.minilab(['start', '-p', profile, '--addons', 'metrics-server'], {
    timeoutMs: 25 * 60_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Waiting for metrics-server to work/);
});

after(async () => {
  await s.minilab(['delete', '-p', profile], { timeoutMs: 120_000 }).catch(() => undefined);
  await cleanupTestResources(engine);
  await s.cleanup();
});

const storedAddons = async () =>
  (
    JSON.parse(await readFile(join(s.home, 'profiles', profile, 'profile.json'), 'utf8')) as {
      addons?: string[];
    }
  ).addons;

const listed = async () => {
  const r = await s.minilab(['addons', 'list', '-p', profile, '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { addons: { name: string; enabled: boolean }[] }).addons;
};

/** kubectl top nodes and pods through `minilab kubectl`, as a user runs them. */
async function assertTopAnswers(): Promise<void> {
  const nodes = await s.minilab(['kubectl', '-p', profile, '--', 'top', 'nodes', '--no-headers']);
  assert.equal(nodes.code, 0, nodes.stderr);
  assert.match(nodes.stdout, new RegExp(`^${node}\\s+\\d+m\\s+\\d+%\\s+\\d+Mi\\s+\\d+%`, 'm'));
  const pods = await s.minilab(['kubectl', '-p', profile, '--', 'top', 'pods', '-A', '--no-headers']);
  assert.equal(pods.code, 0, pods.stderr);
  assert.match(pods.stdout, new RegExp(`^kube-system\\s+kube-apiserver-${node}\\s+\\d+m\\s+\\d+Mi`, 'm'));
}

test('start --addons metrics-server: kubectl top answers when start returns; the profile remembers it', async () => {
  await assertTopAnswers();
  assert.deepEqual(await storedAddons(), ['metrics-server']);
  assert.equal((await listed()).find((a) => a.name === 'metrics-server')?.enabled, true);
  // the image is laid out as upstream's: the binary at the root as the entrypoint, run as nobody
  const { metricsServer } = await pinnedAddons();
  const image = await engine.client.docker
    .getImage(`registry.k8s.io/metrics-server/metrics-server:${metricsServer}`)
    .inspect();
  assert.deepEqual(image.Config.Entrypoint, ['/metrics-server']);
  assert.equal(image.Config.User, '65534');
});

test('enable on a stopped cluster is refused (exit 3, nothing changed); start brings the add-on back working', async () => {
  const stop = await s.minilab(['stop', '-p', profile]);
  assert.equal(stop.code, 0, stop.stderr);
  const refused = await s.minilab(['addons', 'enable', '-p', profile, 'metrics-server']);
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(refused.stderr, /is stopped/);
  assert.match(refused.stderr, /hint: start it with: minilab start/);
  assert.deepEqual(await storedAddons(), ['metrics-server']);
  const start = await s.minilab(['start', '-p', profile], { timeoutMs: 5 * 60_000 });
  assert.equal(start.code, 0, start.stderr);
  assert.match(start.stderr, /Waiting for metrics-server to work/);
  await assertTopAnswers();
});

test('disable removes every object enable made and forgets it; again is a no-op that says so; enable brings it back', async () => {
  const off = await s.minilab(['addons', 'disable', '-p', profile, 'metrics-server', '-o', 'json']);
  assert.equal(off.code, 0, off.stderr);
  assert.deepEqual(JSON.parse(off.stdout), { profile, disabled: ['metrics-server'], notEnabled: [] });
  assert.deepEqual(await storedAddons(), []);
  const { config, core, apps } = kubeClients(s.kubeconfig, profile);
  const gone = async (what: string, read: () => Promise<unknown>) => {
    await assert.rejects(read, (err: { code?: number }) => err.code === 404, `${what} is removed`);
  };
  await gone('the APIService', () =>
    config.makeApiClient(k8s.ApiregistrationV1Api).readAPIService({ name: 'v1beta1.metrics.k8s.io' }),
  );
  await gone('the Deployment', () =>
    apps.readNamespacedDeployment({ name: 'metrics-server', namespace: 'kube-system' }),
  );
  await gone('the Service', () =>
    core.readNamespacedService({ name: 'metrics-server', namespace: 'kube-system' }),
  );
  const rbac = config.makeApiClient(k8s.RbacAuthorizationV1Api);
  await gone('the ClusterRole', () => rbac.readClusterRole({ name: 'system:metrics-server' }));
  await gone('the ClusterRoleBinding', () =>
    rbac.readClusterRoleBinding({ name: 'metrics-server:system:auth-delegator' }),
  );
  const top = await s.minilab(['kubectl', '-p', profile, '--', 'top', 'nodes']);
  assert.notEqual(top.code, 0, 'no metrics API once disabled');

  const again = await s.minilab(['addons', 'disable', '-p', profile, 'metrics-server']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /metrics-server was not enabled in cluster ".*": nothing to do/);

  const on = await s.minilab(['addons', 'enable', '-p', profile, 'metrics-server', '-o', 'json']);
  assert.equal(on.code, 0, on.stderr);
  const enabled = JSON.parse(on.stdout) as { enabled: { name: string; ms: number }[] };
  assert.equal(enabled.enabled[0]?.name, 'metrics-server');
  await assertTopAnswers();
  assert.deepEqual(await storedAddons(), ['metrics-server']);
});
