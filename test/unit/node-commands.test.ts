import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { copyImage } from '../../src/cluster/images.js';
import { MinilabError } from '../../src/errors.js';
import { isImageReference } from '../../src/image/archive.js';
import { readComponents } from '../../src/image/components.js';
import { Labels } from '../../src/labels.js';
import { writeFilesScript } from '../../src/lifecycle/kubeadm.js';
import type { ClusterPlan, Journal } from '../../src/providers/types.js';
import { FakeProvider, FakeWorld } from '../helpers/fake-provider.js';

/** What a shell would run if it were ever pasted into one: spaces, both quotes, $(...), `...`, ; */
const HOSTILE = `my app:"v1" 'x' $(touch /tmp/pwned) \`id\`; reboot`;

async function twoNodes() {
  const world = new FakeWorld();
  const provider = new FakeProvider(world);
  const plan: ClusterPlan = {
    profile: 'inj',
    kubernetesVersion: 'v1.37.2',
    image: 'minilab/node:v1.37.2',
    nodes: [
      { name: 'inj-control-plane', role: 'control-plane', ports: [] },
      { name: 'inj-worker', role: 'worker', ports: [] },
    ],
    apiServerPort: 6443,
    env: {},
    labels: {},
  };
  const journal: Journal = { entries: [], record: () => undefined, forget: () => undefined };
  const [from, to] = await provider.provision(plan, journal);
  return { world, from: from!, to: to! };
}

test('an image reference and ID from a node reach ctr as one argument each, never as shell text', async () => {
  const { world, from, to } = await twoNodes();
  await copyImage(from, to, {
    ref: HOSTILE,
    id: 'sha256:1',
    digest: 'sha256:1',
    sizeBytes: 1,
    pinned: false,
    loaded: true,
    engineId: `sha256:2; ${HOSTILE}`,
  });
  const label = world.argv.find((c) => c.node === to.name && c.argv.includes('label'));
  assert.deepEqual(label?.argv, [
    'ctr',
    '-n',
    'k8s.io',
    'images',
    'label',
    HOSTILE,
    `${Labels.loaded}=true`,
    `${Labels.imageId}=sha256:2; ${HOSTILE}`,
  ]);
  const exported = world.argv.find((c) => c.node === from.name && c.argv.includes('export'));
  assert.equal(exported?.argv.at(-1), HOSTILE, 'ctr export names it as its own argument too');
  for (const { argv } of world.argv) {
    const script = argv[argv.indexOf('-c') + 1];
    if (argv.includes('-c')) assert.ok(!script?.includes('pwned'), `no shell script holds it: ${script}`);
  }
});

test('a written file holding a line like the here-document delimiter ends where it should', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-heredoc-'));
  try {
    const file = join(dir, 'etc', 'kubeadm.yaml');
    const text = `a: 1\nMINILAB_EOF\ntouch ${join(dir, 'pwned')}\nMINILAB_EOF_\n${HOSTILE}\n`;
    await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', writeFilesScript({ [file]: text })]);
    assert.equal(await readFile(file, 'utf8'), text, 'the file holds exactly the text');
    assert.deepEqual(await readdir(dir), ['etc'], 'nothing in the text ran');
    assert.equal(existsSync(join(dir, 'pwned')), false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('image references: what kubeadm and registries name passes, shell text does not', () => {
  for (const ok of [
    'registry.k8s.io/kube-apiserver:v1.37.2',
    'registry.k8s.io/coredns/coredns:v1.12.4',
    'registry.k8s.io/etcd:3.6.5-0',
    'localhost:5000/my_app:dev',
    'docker.io/rancher/local-path-provisioner:v0.0.31',
    `busybox@sha256:${'a'.repeat(64)}`,
    '[::1]:5000/x:1',
  ]) {
    assert.ok(isImageReference(ok), ok);
  }
  for (const bad of [HOSTILE, 'pause:3.10 ; id', 'x:$(id)', 'x|e', '-h', 'x\nMINILAB_EOF', 'x"', '']) {
    assert.ok(!isImageReference(bad), JSON.stringify(bad));
  }
});

test("components that name something other than an image are refused before reaching a node's scripts", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-components-'));
  try {
    const components = {
      kubernetes: 'v1.37.2',
      etcd: '3.6.5-0',
      coredns: 'v1.12.4',
      pause: '3.10.1',
      localPathProvisioner: 'v0.0.31',
      images: ['registry.k8s.io/kube-apiserver:v1.37.2', 'registry.k8s.io/pause:3.10.1'],
    };
    await writeFile(join(dir, 'components.json'), JSON.stringify(components));
    assert.deepEqual((await readComponents(dir)).images, components.images);
    await writeFile(
      join(dir, 'components.json'),
      JSON.stringify({
        ...components,
        images: [...components.images, `registry.k8s.io/pause:3.10.1 ${HOSTILE}`],
      }),
    );
    await assert.rejects(readComponents(dir), (err: unknown) => {
      assert.ok(err instanceof MinilabError);
      assert.equal(err.exitCode, 3);
      assert.match(err.message, /not an image reference$/);
      assert.ok(!err.message.includes('\n'), 'one line');
      return true;
    });
    await writeFile(
      join(dir, 'components.json'),
      JSON.stringify({ ...components, localPathProvisioner: 'v1;id' }),
    );
    await assert.rejects(readComponents(dir), /local-path-provisioner:v1;id/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
