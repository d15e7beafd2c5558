import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExitCode, MinilabError, exitCodeOf, renderError, withTimeout } from '../../src/errors.js';

test('exit codes are distinct per kind', () => {
  const codes = Object.values(ExitCode);
  assert.equal(new Set(codes).size, codes.length);
  assert.equal(new MinilabError('usage', 'x').exitCode, 2);
  assert.equal(new MinilabError('environment', 'x').exitCode, 3);
  assert.equal(new MinilabError('notFound', 'x').exitCode, 4);
  assert.equal(new MinilabError('timeout', 'x').exitCode, 5);
  assert.equal(exitCodeOf(new Error('boom')), 1);
});

test('errors render as one line plus hint; causes only when verbose', () => {
  const err = new MinilabError('environment', 'engine down\nsecond line', {
    hint: 'start it',
    cause: new Error('connect ECONNREFUSED'),
  });
  assert.equal(renderError(err, false), 'error: engine down\nhint: start it\n');
  const verbose = renderError(err, true);
  assert.match(verbose, /cause: connect ECONNREFUSED/);
});

test('details lines are shown under the message', () => {
  const err = new MinilabError('clusterFailed', 'kubeadm init failed', {
    details: ['last log line'],
    hint: 'h',
  });
  assert.equal(renderError(err, false), 'error: kubeadm init failed\n  last log line\nhint: h\n');
});

test('withTimeout rejects with a timeout error naming what it waited for', async () => {
  await assert.rejects(
    withTimeout(new Promise(() => undefined), 50, 'the moon'),
    (err: unknown) => err instanceof MinilabError && err.exitCode === 5 && /the moon/.test(err.message),
  );
  assert.equal(await withTimeout(Promise.resolve(7), 50, 'x'), 7);
});
