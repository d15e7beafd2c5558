import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { followUntilInputEnds } from '../../src/cluster/logs.js';
import { waitFor } from '../helpers/cluster.js';

/**
 * Runs a follow the way `minilab logs -f` runs it in the node (bash and setsid are on this machine
 * too), with its stdin left open until the test ends it.
 */
function follow(cmd: string[]) {
  const [bin, ...args] = followUntilInputEnds(cmd);
  const child = spawn(bin as string, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, exited, stdout: () => stdout };
}

/** Whether a process runs (a zombie waiting for its parent to reap it does not). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\S+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

test('a follow ends, with every process it started, when its input ends', { timeout: 20_000 }, async () => {
  // Like `tail -F | cut`: a shell with a child of its own.
  const f = follow(['bash', '-c', 'sleep 300 & echo "$$ $!"; wait']);
  try {
    const pids = await waitFor('the follower to start', 5000, async () =>
      /^(\d+) (\d+)\n/.exec(f.stdout())?.slice(1).map(Number),
    );
    assert.ok(pids.every(running), 'the follower runs while its input is open');
    f.child.stdin.end();
    await f.exited;
    await waitFor('the follower and its child to end', 5000, async () =>
      pids.some(running) ? undefined : true,
    );
  } finally {
    f.child.kill('SIGKILL');
  }
});

test(
  'a follow that ends by itself ends at once with its exit code, its input still open',
  { timeout: 20_000 },
  async () => {
    const f = follow(['sh', '-c', 'echo no such container; exit 3']);
    try {
      assert.equal(await f.exited, 3);
      assert.equal(f.stdout(), 'no such container\n');
    } finally {
      f.child.kill('SIGKILL');
    }
  },
);
