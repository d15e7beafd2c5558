import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostsToml, mirrorName, mirrorServes, planPublish } from '../../src/cluster/mirror.js';

/** A digest made of one character (letters beyond f mapped to hex digits, so that names read well). */
const hex = (c: string) =>
  ((({ m: '3', i: '4', g: '5', n: '6', o: '7' }) as Record<string, string>)[c] ?? c).repeat(64);
const d = (c: string) => `sha256:${hex(c)}`;
const json = (o: unknown) => Buffer.from(JSON.stringify(o));

test('mirror names: the registry (its port after _) and the path make the repository; digests and refused names have none', () => {
  assert.deepEqual(mirrorName('docker.io/library/app:latest'), {
    registry: 'docker.io',
    repository: 'docker.io/library/app',
    tag: 'latest',
  });
  assert.deepEqual(mirrorName('localhost:5000/team/app:v1.2'), {
    registry: 'localhost:5000',
    repository: 'localhost_5000/team/app',
    tag: 'v1.2',
  });
  assert.equal(
    mirrorName('registry.k8s.io/e2e-test-images/agnhost:2.59')?.repository,
    'registry.k8s.io/e2e-test-images/agnhost',
  );
  assert.equal(mirrorName(`docker.io/library/app@${d('a')}`), undefined, 'by digest');
  assert.equal(mirrorName('Example.com/app:1'), undefined, 'upper case: distribution refuses it');
  assert.equal(mirrorName('[::1]:5000/app:1'), undefined, 'an IPv6 registry');
  assert.equal(mirrorName('docker.io/../etc:1'), undefined, 'no path component may leave the store');
  assert.equal(mirrorName('app:latest'), undefined, 'not normalized');
});

test("hosts.toml: the mirror first, under the registry's prefix, then the registry itself (no server line)", () => {
  const toml = hostsToml('docker.io');
  assert.match(toml, /^\[host\."http:\/\/127\.0\.0\.1:10550\/v2\/docker\.io"\]$/m);
  assert.match(toml, /capabilities = \["pull", "resolve"\]/);
  assert.match(toml, /override_path = true/);
  assert.doesNotMatch(toml, /^server/m);
});

test('publish plan: an image manifest links its blobs, its config and layers, its tag and its registry', () => {
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { digest: d('c') },
    layers: [{ digest: d('1') }, { digest: d('2') }],
  };
  const plan = planPublish(
    [{ ref: 'example.com/team/demo:latest', digest: d('m') }],
    new Map([[d('m'), json(manifest)]]),
  );
  const repo = 'example.com/team/demo';
  assert.deepEqual(plan.published, ['example.com/team/demo:latest']);
  assert.deepEqual(plan.skipped, []);
  assert.deepEqual(plan.args, [
    ...['m', 'c', '1', '2'].flatMap((c) => ['blob', hex(c)]),
    'manifest',
    repo,
    hex('m'),
    'layer',
    repo,
    hex('c'),
    'layer',
    repo,
    hex('1'),
    'layer',
    repo,
    hex('2'),
    'tag',
    repo,
    'latest',
    hex('m'),
    'hosts',
    'example.com',
    hostsToml('example.com'),
  ]);
});

test('publish plan: an index links itself and the platform manifests containerd has, not the missing ones', () => {
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ digest: d('a') }, { digest: d('b') }],
  };
  const amd64 = { schemaVersion: 2, config: { digest: d('c') }, layers: [{ digest: d('1') }] };
  const plan = planPublish(
    [
      { ref: 'docker.io/library/app:1', digest: d('i') },
      { ref: 'docker.io/library/app:latest', digest: d('i') },
    ],
    new Map([
      [d('i'), json(index)],
      [d('a'), json(amd64)],
    ]),
  );
  const ops = plan.args.filter((a) => ['manifest', 'layer', 'tag', 'hosts'].includes(a));
  assert.equal(ops.filter((o) => o === 'hosts').length, 1, 'one hosts.toml per registry');
  assert.ok(plan.args.includes(hex('a')) && !plan.args.includes(hex('b')), 'the absent platform is left out');
  const tags = plan.args.flatMap((a, i) => (a === 'tag' ? [plan.args[i + 2]] : []));
  assert.deepEqual(tags, ['1', 'latest']);
});

test('publish plan: a digest reference or a manifest containerd lacks is skipped, the rest published', () => {
  const plan = planPublish(
    [
      { ref: `docker.io/library/app@${d('m')}`, digest: d('m') },
      { ref: 'docker.io/library/gone:1', digest: d('g') },
      { ref: 'docker.io/library/ok:1', digest: d('m') },
    ],
    new Map([[d('m'), json({ schemaVersion: 2, config: { digest: d('c') }, layers: [] })]]),
  );
  assert.deepEqual(plan.skipped, [`docker.io/library/app@${d('m')}`, 'docker.io/library/gone:1']);
  assert.deepEqual(plan.published, ['docker.io/library/ok:1']);
});

test('the mirror serves a reference when its tag points at the digest containerd has for it', () => {
  const tags = new Map([['docker.io/library/app:latest', d('n')]]);
  assert.equal(mirrorServes(tags, 'docker.io/library/app:latest', d('n')), true);
  assert.equal(mirrorServes(tags, 'docker.io/library/app:latest', d('o')), false, 'reloaded since');
  assert.equal(mirrorServes(tags, 'docker.io/library/app:1', d('n')), false);
});
