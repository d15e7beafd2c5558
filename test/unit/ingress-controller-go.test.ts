import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../../src/version.js';

// The ingress add-on's controller is Go (images/addons/ingress): its own unit tests (routing
// precedence, filters, proxying, certificates, statuses) run here, so `npm test` runs them too.
test('the ingress controller: go vet and go test ./... pass in its module', async () => {
  const dir = join(projectRoot, 'images', 'addons', 'ingress');
  const env = { ...process.env, GOFLAGS: '-mod=readonly', GOWORK: 'off', CGO_ENABLED: '0' };
  const run = (args: string[]) =>
    promisify(execFile)('go', args, { cwd: dir, env, maxBuffer: 16 * 1024 * 1024, timeout: 15 * 60_000 });
  await run(['vet', './...']);
  const { stdout } = await run(['test', '-count=1', './...']);
  // every package with tests reports ok; none failed (a failure rejects above with its output)
  const ok = stdout.split('\n').filter((l) => l.startsWith('ok '));
  assert.ok(ok.length >= 3, `route, certs and controller report ok:\n${stdout}`);
  assert.doesNotMatch(stdout, /^(FAIL|---\s*FAIL)/m);
});

/**
 * The controller's image is named by INGRESS_VERSION, and a node keeps an image whose name it
 * has: a source change under the same version would leave running clusters on the old binary.
 * So build.sh pins the source's digest beside the version, and a change to one needs the other.
 */
test("the ingress controller's source digest is the one build.sh pins with INGRESS_VERSION (bump both)", async () => {
  const dir = join(projectRoot, 'images', 'addons', 'ingress');
  const files = (await readdir(dir, { recursive: true }))
    .filter((f) => (f.endsWith('.go') && !f.endsWith('_test.go')) || f === 'go.mod' || f === 'go.sum')
    .sort();
  const hash = createHash('sha256');
  for (const f of files)
    hash
      .update(`${f}\0`)
      .update(await readFile(join(dir, f)))
      .update('\0');
  const digest = hash.digest('hex');
  const script = await readFile(join(projectRoot, 'images', 'addons', 'build.sh'), 'utf8');
  const pinned = /^INGRESS_SOURCE_SHA256=([0-9a-f]{64})$/m.exec(script)?.[1];
  assert.equal(
    pinned,
    digest,
    `the source changed: raise INGRESS_VERSION and set INGRESS_SOURCE_SHA256=${digest}`,
  );
});
