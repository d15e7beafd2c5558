import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MinilabError } from '../../src/errors.js';
import { withProfileLock } from '../../src/lifecycle/lock.js';
import { lockProfile, profileLocked } from '../../src/profile/lock.js';
import type { Reporter } from '../../src/reporter.js';

/** proper-lockfile's shortest: a lock is stale after 2 s, refreshed every second. */
const STALE_MS = 2000;
const lockModule = new URL('../../src/profile/lock.js', import.meta.url).href;

/**
 * Another minilab process wanting profile p's lock: it says "waiting" when it finds it held,
 * "taken" once it holds it, then holds it for holdMs; a wait that times out says "failed: ...".
 */
function contender(home: string, opts: { timeoutMs: number; holdMs: number }) {
  const script = `
    const { lockProfile } = await import(${JSON.stringify(lockModule)});
    try {
      const release = await lockProfile(${JSON.stringify(home)}, 'p', {
        timeoutMs: ${opts.timeoutMs},
        staleMs: ${STALE_MS},
        purpose: 'minilab delete -p p',
        onWait: () => console.log('waiting'),
      });
      console.log('taken');
      await new Promise((r) => setTimeout(r, ${opts.holdMs}));
      await release();
      console.log('released');
    } catch (err) {
      console.log('failed: ' + err.message);
      process.exitCode = 5;
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const said = async (word: string) => {
    const started = Date.now();
    while (!out.includes(word)) {
      assert.ok(Date.now() - started < 15_000, `the contender never said "${word}": ${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { said, exited, output: () => out };
}

/** Blocks this process (no timer runs, the lock is not refreshed) as a Ctrl-Z would, until `until` holds. */
function suspendUntil(until: () => boolean, maxMs: number): void {
  const started = Date.now();
  const cell = new Int32Array(new SharedArrayBuffer(4));
  while (!until() && Date.now() - started < maxMs) Atomics.wait(cell, 0, 0, 50);
}

async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const home = await mkdtemp(join(tmpdir(), 'minilab-lock-'));
  try {
    await fn(home);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

test('a live holder keeps refreshing its lock: a contender waiting twice its staleness never gets it', async () => {
  await withHome(async (home) => {
    let lost = false;
    const release = await lockProfile(home, 'p', {
      timeoutMs: 1000,
      staleMs: STALE_MS,
      purpose: 'minilab start -p p',
      onLost: () => (lost = true),
    });
    try {
      const other = contender(home, { timeoutMs: 2 * STALE_MS, holdMs: 0 });
      assert.equal(await other.exited, 5, other.output());
      assert.match(other.output(), /failed: profile "p" is still locked after 4\.0s by: minilab start -p p/);
      assert.equal(lost, false);
    } finally {
      await release();
    }
    assert.equal(await profileLocked(home, 'p'), false);
  });
});

test('a holder suspended until its lock was taken over fails with a one-line error on resume, not a crash', async () => {
  await withHome(async (home) => {
    const holderFile = join(home, 'locks', 'p.holder');
    const reporter = { info: () => undefined } as unknown as Reporter;
    let finishWork: (value: string) => void = () => undefined;
    let other: ReturnType<typeof contender> | undefined;
    const started = Date.now();
    const outcome = withProfileLock(
      { home, reporter },
      'p',
      'start',
      1000,
      async () => {
        other = contender(home, { timeoutMs: 20_000, holdMs: 3000 });
        await other.said('waiting');
        // Suspended (no refresh) until the contender has taken the stale lock over.
        suspendUntil(() => readFileSync(holderFile, 'utf8').startsWith('minilab delete'), 15_000);
        // Resumed: the rest of the work would take long.
        return new Promise<string>((resolve) => (finishWork = resolve));
      },
      { staleMs: STALE_MS },
    );
    await assert.rejects(outcome, (err: unknown) => {
      assert.ok(err instanceof MinilabError, String(err));
      assert.match(
        err.message,
        /^profile "p" was taken over by another command while this one was suspended/,
      );
      assert.ok(!err.message.includes('\n'), 'one line');
      assert.match(err.hint ?? '', /minilab status/);
      return true;
    });
    assert.ok(Date.now() - started < 12_000, 'it failed on resume, not when its work ended');
    // The lock and its holder file are the new holder's: the old one removed neither.
    assert.match(await readFile(holderFile, 'utf8'), /^minilab delete -p p \(pid \d+\)$/);
    assert.equal(await profileLocked(home, 'p'), true);
    finishWork('done');
    assert.equal(await other?.exited, 0, other?.output());
    assert.match(other?.output() ?? '', /taken\nreleased/);
    assert.equal(await profileLocked(home, 'p'), false);
  });
});
