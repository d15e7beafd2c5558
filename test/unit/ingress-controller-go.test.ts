import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
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
