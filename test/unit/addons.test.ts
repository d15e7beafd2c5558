import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ADDONS, addonsNamed, parseAddonList } from '../../src/addons/catalog.js';
import { listAddons, remember } from '../../src/addons/manage.js';
import { metricsServerManifest } from '../../src/addons/metrics-server.js';
import { MinilabError } from '../../src/errors.js';
import { ProfileStore } from '../../src/profile/store.js';
import { runCli } from '../helpers/cli.js';

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  [k: string]: unknown;
}
const docsOf = (manifest: string) => parseAllDocuments(manifest).map((d) => d.toJS() as Doc);

test('add-on names: known ones each once, an unknown one a usage error listing the catalog', () => {
  assert.deepEqual(
    addonsNamed(['metrics-server', 'metrics-server']).map((a) => a.name),
    ['metrics-server'],
  );
  assert.throws(
    () => addonsNamed(['metrics-server', 'dashboard']),
    (err: unknown) =>
      err instanceof MinilabError &&
      err.kind === 'usage' &&
      /unknown add-on "dashboard"/.test(err.message) &&
      (err.hint ?? '').includes('metrics-server'),
  );
  assert.deepEqual(parseAddonList(' metrics-server ,'), ['metrics-server']);
  assert.throws(() => parseAddonList(','), /names no add-on/);
  assert.throws(() => parseAddonList('metrics-server,nope'), /unknown add-on "nope"/);
});

test("metrics-server's manifest: upstream's objects, selectors that match, the image given", () => {
  const docs = docsOf(metricsServerManifest('registry.k8s.io/metrics-server/metrics-server:v9.9.9'));
  assert.deepEqual(
    docs.map((d) => `${d.kind}/${d.metadata.name}`),
    [
      'ServiceAccount/metrics-server',
      'ClusterRole/system:aggregated-metrics-reader',
      'ClusterRole/system:metrics-server',
      'RoleBinding/metrics-server-auth-reader',
      'ClusterRoleBinding/metrics-server:system:auth-delegator',
      'ClusterRoleBinding/system:metrics-server',
      'Service/metrics-server',
      'Deployment/metrics-server',
      'APIService/v1beta1.metrics.k8s.io',
    ],
  );
  for (const d of docs) assert.equal(d.metadata.labels?.['k8s-app'], 'metrics-server', d.kind);
  const deploy = docs.find((d) => d.kind === 'Deployment') as Doc & {
    spec: {
      selector: { matchLabels: Record<string, string> };
      template: {
        metadata: { labels: Record<string, string> };
        spec: { containers: { image: string; args: string[]; ports: { name: string }[] }[] };
      };
    };
  };
  const service = docs.find((d) => d.kind === 'Service') as Doc & {
    spec: { selector: Record<string, string>; ports: { targetPort: string }[] };
  };
  assert.deepEqual(deploy.spec.selector.matchLabels, deploy.spec.template.metadata.labels);
  assert.deepEqual(service.spec.selector, deploy.spec.template.metadata.labels);
  const container = deploy.spec.template.spec.containers[0];
  assert.equal(container?.image, 'registry.k8s.io/metrics-server/metrics-server:v9.9.9');
  assert.ok(container?.args.includes('--kubelet-insecure-tls'), "kubeadm's kubelets serve self-signed");
  assert.equal(container?.ports[0]?.name, service.spec.ports[0]?.targetPort);
  const api = docs.find((d) => d.kind === 'APIService') as Doc & {
    spec: { service: { name: string; namespace: string }; group: string };
  };
  assert.deepEqual(api.spec.service, { name: 'metrics-server', namespace: 'kube-system' });
  assert.equal(api.spec.group, 'metrics.k8s.io');
});

test('enabled add-ons are kept in the profile, in catalog order, each once', async () => {
  const home = await mkdtemp(join(tmpdir(), 'minilab-addons-'));
  try {
    const profiles = new ProfileStore(home);
    const ctx = { profiles } as Parameters<typeof remember>[0];
    await profiles.write({ name: 'p', kubernetesVersion: 'v1.37.2', ports: [], createdAt: 'now' });
    assert.deepEqual(
      (await listAddons({ profiles }, 'p')).map((a) => [a.name, a.enabled]),
      ADDONS.map((a) => [a.name, false]),
    );
    await remember(ctx, 'p', (list) => [...list, 'metrics-server', 'metrics-server', 'unknown']);
    assert.deepEqual((await profiles.read('p'))?.addons, ['metrics-server']);
    assert.equal(
      (await listAddons({ profiles }, 'p')).find((a) => a.name === 'metrics-server')?.enabled,
      true,
    );
    await remember(ctx, 'p', (list) => list.filter((n) => n !== 'metrics-server'));
    assert.deepEqual((await profiles.read('p'))?.addons, []);
    await remember(ctx, 'nobody', (list) => [...list, 'metrics-server']);
    assert.equal(await profiles.read('nobody'), undefined, 'no profile is made by remembering');
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

test('addons: unknown names and an empty --addons are usage errors before any engine is asked; a missing profile is not found', async () => {
  const env = { ...process.env, DOCKER_HOST: 'unix:///nonexistent', MINILAB_HOME: '/nonexistent/minilab' };
  for (const args of [
    ['addons', 'enable', 'nope'],
    ['addons', 'disable', 'metrics-server', 'nope'],
    ['start', '--addons', 'metrics-server,nope'],
    ['start', '--addons', ','],
  ]) {
    const r = await runCli(args, env);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^error: /);
    assert.match(r.stderr, /\nhint: /);
  }
  const missing = await runCli(['addons', 'list', '-p', 'nope'], env);
  assert.equal(missing.code, 4, missing.stderr);
  assert.match(missing.stderr, /profile "nope" does not exist/);
  const home = await mkdtemp(join(tmpdir(), 'minilab-addons-cli-'));
  try {
    await new ProfileStore(home).write({
      name: 'p',
      kubernetesVersion: 'v1.37.2',
      ports: [],
      createdAt: 'now',
    });
    const list = await runCli(['addons', 'list', '-p', 'p', '-o', 'json'], { ...env, MINILAB_HOME: home });
    assert.equal(list.code, 0, list.stderr);
    const data = JSON.parse(list.stdout) as { addons: { name: string; enabled: boolean }[] };
    assert.deepEqual(
      data.addons.map((a) => a.name),
      ADDONS.map((a) => a.name),
    );
    assert.ok(data.addons.every((a) => !a.enabled));
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});
