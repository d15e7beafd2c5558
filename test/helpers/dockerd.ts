import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, readlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { DockerEngine } from '../../src/providers/docker/engine.js';
import { waitFor } from './cluster.js';
import { connect, runId, TEST_LABEL } from './engine.js';

/**
 * Restarting the Docker engine, for the suites that check a cluster survives it. The engine is
 * this machine's dockerd (as scripts/setup-docker.sh starts it): stopped with SIGTERM, started
 * again with the same command line, environment and working directory.
 */

export async function engineAnswers(): Promise<boolean> {
  try {
    await DockerEngine.connect(process.env, 2000);
    return true;
  } catch {
    return false;
  }
}

interface DockerdProcess {
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
}
/** The dockerd the last restart stopped, so an after() hook can start it if the restart failed. */
let lastDockerd: DockerdProcess | undefined;

/** Starts dockerd the way scripts/setup-docker.sh does: its own session, output to its log. */
async function startDockerd(d: DockerdProcess | undefined): Promise<void> {
  if (!d) return;
  const log = openSync('/var/log/minilab-dockerd.log', 'a');
  const child = spawn(d.argv[0] as string, d.argv.slice(1), {
    detached: true,
    stdio: ['ignore', log, log],
    env: d.env,
    cwd: d.cwd,
  });
  child.unref();
  closeSync(log);
  await waitFor('the Docker engine to answer again', 90_000, async () =>
    (await engineAnswers()) ? true : undefined,
  );
}

/** For after() hooks: when a restart failed half-way and the engine is down, starts it again. */
export async function ensureDockerdRunning(): Promise<void> {
  if (!(await engineAnswers())) await startDockerd(lastDockerd);
}

const gone = async (pid: number) => {
  const st = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  // A zombie (state Z) has exited; nothing may be left to reap it here.
  return st === undefined || / Z /.test(st.slice(st.lastIndexOf(')')));
};

/**
 * Refuses (throws) when the engine runs containers this test run did not make: an engine restart
 * would stop them too, and another person's clusters are not ours to disturb.
 */
export async function assertOnlyOurContainersRun(engine: DockerEngine): Promise<void> {
  const running = (await engine.containers.list({})).filter((c) => c.running);
  const foreign = running.filter((c) => c.labels[TEST_LABEL] !== runId).map((c) => c.name);
  if (foreign.length > 0) {
    throw new Error(
      `not restarting the Docker engine: it also runs containers this test run did not make (${foreign.join(', ')}); ` +
        'run this suite on an engine of its own (as CI does), or when nothing else runs',
    );
  }
}

/**
 * Restarts the engine: SIGTERM to dockerd, wait until it is gone and silent, start it again.
 * Returns a fresh connection to it.
 */
export async function restartDockerd(): Promise<DockerEngine> {
  const { stdout } = await promisify(execFile)('pgrep', ['-x', 'dockerd']);
  const pids = stdout.trim().split('\n').filter(Boolean).map(Number);
  assert.equal(pids.length, 1, `exactly one dockerd runs (found ${pids.length})`);
  const pid = pids[0] as number;
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
  const env = Object.fromEntries(
    (await readFile(`/proc/${pid}/environ`, 'utf8'))
      .split('\0')
      .filter((kv) => kv.includes('='))
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  lastDockerd = { argv, env, cwd: await readlink(`/proc/${pid}/cwd`) };
  process.kill(pid, 'SIGTERM');
  await waitFor('dockerd to exit', 120_000, async () => ((await gone(pid)) ? true : undefined));
  await waitFor('the engine to stop answering', 30_000, async () =>
    (await engineAnswers()) ? undefined : true,
  );
  await startDockerd(lastDockerd);
  return connect();
}
