import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runScript } from '../../src/image/run-script.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Script lines that start a silent child (a "go build") and record its PID in DIR/pid. */
const startsChild = (dir: string) => `sleep 60 &\necho $! > '${join(dir, 'pid')}'\n`;

/** Asserts that the child a script recorded in DIR/pid is gone (within 5 s). */
async function assertChildGone(dir: string, message: string): Promise<void> {
  const pid = Number(await readFile(join(dir, 'pid'), 'utf8'));
  for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
  assert.equal(alive(pid), false, message);
}

/** Runs a test body with a temporary folder, removed afterwards. */
async function inTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-script-'));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a build script silent for stallMs is stopped with what it started, as a timeout naming the step', async () => {
  await inTempDir(async (dir) => {
    const script = join(dir, 'stalls.sh');
    // A "go build" that hangs: a child of the script, silent.
    await writeFile(script, `echo starting\n${startsChild(dir)}wait\n`);
    const lines: string[] = [];
    await assert.rejects(
      runScript(script, [], { what: 'building X', hint: 'h', stallMs: 500, progress: (l) => lines.push(l) }),
      (err: Error & { kind?: string; details?: string[] }) =>
        err.kind === 'timeout' && /building X printed nothing for 500ms: stopped/.test(err.message),
    );
    assert.deepEqual(lines, ['starting']);
    await assertChildGone(dir, 'the silent child was stopped too');
  });
});

test('a build script that keeps printing runs to its end; a failing one reports its exit code and last lines', async () => {
  await inTempDir(async (dir) => {
    const ok = join(dir, 'ok.sh');
    await writeFile(ok, 'for i in 1 2 3 4 5 6; do echo step $i; sleep 0.2; done\n');
    await runScript(ok, [], { what: 'building Y', hint: 'h', stallMs: 600 });
    const bad = join(dir, 'bad.sh');
    await writeFile(bad, 'echo "go: module not found" >&2\nexit 3\n');
    await assert.rejects(
      runScript(bad, [], { what: 'building Z', hint: 'h' }),
      (err: Error & { kind?: string; details?: string[] }) =>
        err.kind === 'environment' &&
        /building Z failed \(exit 3\)/.test(err.message) &&
        (err.details ?? []).includes('go: module not found'),
    );
  });
});

test('Ctrl-C reaches the build script and what it started (its own process group): the build ends, minilab reports it', async () => {
  await inTempDir(async (dir) => {
    const script = join(dir, 'long.sh');
    await writeFile(script, `${startsChild(dir)}echo started\nwait\n`);
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const build = runScript(script, [], { what: 'building W', hint: 'h', progress: () => started() });
    await running;
    process.kill(process.pid, 'SIGINT');
    await assert.rejects(build, (err: Error & { kind?: string }) => /building W failed/.test(err.message));
    await assertChildGone(dir, "the script's child ended with it");
    assert.equal(process.listenerCount('SIGINT'), 0, 'no signal handler left behind');
  });
});
