import { PassThrough } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildProgram } from '../../src/cli/program.js';
import type { Context } from '../../src/cli/context.js';
import { exitCodeOf, renderError } from '../../src/errors.js';
import { nodeImageRef } from '../../src/image/components.js';
import { FIRST_POD_CIDR } from '../../src/lifecycle/kubeadm.js';
import type { StartRequest } from '../../src/lifecycle/start.js';
import type { LifecycleContext } from '../../src/lifecycle/types.js';
import { ProfileStore } from '../../src/profile/store.js';
import { Reporter } from '../../src/reporter.js';
import { FakeProvider, FakeWorld, fakeClusterApi } from './fake-provider.js';

export const VERSION = 'v1.37.2';

/** A start of profile "demo": one node, defaults otherwise. */
export const startRequest = (over: Partial<StartRequest> = {}): StartRequest => ({
  profile: 'demo',
  kubernetesVersion: VERSION,
  explicitVersion: false,
  nodes: 1,
  ports: [],
  wait: 'all',
  keepOnFailure: false,
  switchContext: true,
  ...over,
});

/**
 * A lifecycle context on the fake provider, in a directory of its own: the world to inspect, what
 * the reporter wrote (stdout text, stderr lines), and the CLI run in-process against the same
 * context (exit code and output as main renders them).
 */
export async function lifecycleFixture(name: string, podCidr = FIRST_POD_CIDR) {
  const dir = await mkdtemp(join(tmpdir(), `minilab-${name}-`));
  const world = new FakeWorld();
  world.images.add(nodeImageRef(VERSION));
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const lines: string[] = [];
  stdout.on('data', (c: Buffer) => out.push(c.toString()));
  stderr.on('data', (c: Buffer) => lines.push(...c.toString().split('\n').filter(Boolean)));
  const ctx: LifecycleContext = {
    provider: new FakeProvider(world),
    kube: fakeClusterApi(world, podCidr),
    reporter: new Reporter(stdout, stderr, {}),
    profiles: new ProfileStore(join(dir, 'home')),
    home: join(dir, 'home'),
    env: { KUBECONFIG: join(dir, 'kubeconfig'), PATH: process.env.PATH },
    extraLabels: {},
  };
  const cli = async (args: string[]) => {
    out.length = 0;
    lines.length = 0;
    const cliCtx: Context = {
      env: ctx.env,
      stdin: new PassThrough(),
      stdout,
      stderr,
      home: ctx.home,
      profiles: ctx.profiles,
      extraLabels: {},
      reporter: ctx.reporter,
      provider: async () => ctx.provider,
      providers: async () => [ctx.provider],
      lifecycle: async () => ctx,
      verbose: false,
    };
    let code = 0;
    try {
      await (await buildProgram(cliCtx)).parseAsync(args, { from: 'user' });
    } catch (err) {
      stderr.write(renderError(err, false));
      code = exitCodeOf(err);
    }
    await new Promise((r) => setImmediate(r));
    return { code, stdout: out.join(''), stderr: lines };
  };
  return { dir, world, ctx, lines, cli, done: () => rm(dir, { recursive: true, force: true }) };
}

export type LifecycleFixture = Awaited<ReturnType<typeof lifecycleFixture>>;

/** Runs a case on a fresh fixture and removes its files afterwards, whatever happened. */
export async function withFixture(
  run: (f: LifecycleFixture) => Promise<void>,
  opts: { name?: string; podCidr?: string } = {},
): Promise<void> {
  const f = await lifecycleFixture(opts.name ?? 'lifecycle', opts.podCidr);
  try {
    await run(f);
  } finally {
    await f.done();
  }
}
