import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { projectRoot } from '../../src/version.js';
import { createContext } from '../../src/cli/context.js';
import { buildProgram, commandWord } from '../../src/cli/program.js';
import { deferModule } from '../../src/providers/docker/dockerode.js';

/**
 * The libraries that make up most of a command's start-up time when loaded: commands that need
 * no cluster (version, --help) must not load them, nor may importing the CLI's program do so (a
 * module imported at the top of a command file loads for every command). Found by recording every
 * module the process resolves, through a module hook.
 */
const HEAVY = ['@kubernetes/client-node', 'dockerode'];

async function modulesLoadedBy(args: string[]): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-imports-'));
  try {
    const log = join(dir, 'resolved.txt');
    const hooks = join(dir, 'hooks.mjs');
    await writeFile(
      hooks,
      `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, r.url + '\\n');
  return r;
}
`,
    );
    const register = join(dir, 'register.mjs');
    await writeFile(
      register,
      `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
    );
    await writeFile(log, '');
    await promisify(execFile)(
      process.execPath,
      ['--import', pathToFileURL(register).href, join(projectRoot, 'dist', 'src', 'main.js'), ...args],
      { env: { ...process.env, MINILAB_HOME: dir } },
    ).catch((err: { code?: unknown }) => {
      // a command may fail here (no such profile): what it loaded on the way is the point
      if (typeof err.code !== 'number') throw err;
    });
    return (await readFile(log, 'utf8')).split('\n').filter(Boolean);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The modules of one npm package among those a command loaded. */
const fromPackage = (loaded: string[], lib: string) =>
  loaded.filter((u) => u.includes(`/node_modules/${lib}/`));

for (const args of [['version'], ['--help']]) {
  test(`minilab ${args.join(' ')} loads neither the Kubernetes client nor dockerode`, async () => {
    const loaded = await modulesLoadedBy(args);
    assert.ok(
      loaded.some((u) => u.endsWith('/dist/src/cli/program.js')),
      'the program was loaded',
    );
    for (const lib of HEAVY) {
      assert.deepEqual(fromPackage(loaded, lib), [], `${lib} is loaded only by the commands that use it`);
    }
  });
}

test('minilab status of a profile that does not exist asks every provider, and loads no SSH client (ssh2) for it', async () => {
  const loaded = await modulesLoadedBy(['status', '-p', 'no-such-profile']);
  assert.ok(
    loaded.some((u) => u.endsWith('/dist/src/providers/qemu/provider.js')),
    'the qemu provider was asked',
  );
  assert.deepEqual(
    loaded.filter((u) => u.includes('/node_modules/ssh2/') || u.endsWith('/providers/qemu/ssh.js')),
    [],
  );
});

test('minilab version loads only its own command: no yaml, tar or lock library either', async () => {
  const loaded = await modulesLoadedBy(['version']);
  for (const lib of ['yaml', 'tar-stream', 'tar-fs', 'proper-lockfile']) {
    assert.deepEqual(fromPackage(loaded, lib), [], lib);
  }
  assert.ok(!loaded.some((u) => u.includes('/dist/src/cli/commands/lifecycle.js')));
});

test('minilab stop loads no yaml (27 ms): only reading the admin kubeconfig parses it', async () => {
  const loaded = await modulesLoadedBy(['stop', '-p', 'no-such-profile']);
  assert.ok(
    loaded.some((u) => u.endsWith('/dist/src/lifecycle/nodes.js')),
    'the node functions were loaded',
  );
  assert.deepEqual(fromPackage(loaded, 'yaml'), []);
});

test('each command alone: built from its own file, the same command as in the whole program', async () => {
  const ctx = createContext({
    env: {},
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
  });
  const whole = await buildProgram(ctx);
  const names = whole.commands.map((c) => c.name());
  assert.ok(names.includes('start') && names.includes('image') && names.includes('version'));
  for (const name of names) {
    const alone = await buildProgram(ctx, ['-p', 'demo', name, '--help']);
    const cmd = alone.commands.find((c) => c.name() === name);
    assert.ok(cmd, `${name} is registered when named`);
    // completion walks every command to write its script.
    if (name !== 'completion') assert.ok(alone.commands.length < names.length, `${name}: not every command`);
    assert.equal(cmd.helpInformation(), whole.commands.find((c) => c.name() === name)?.helpInformation());
  }
  // No command word, completion (which walks every command) or an unknown word: all of them.
  for (const argv of [[], ['--help'], ['completion', 'bash'], ['stat'], ['help', 'start']]) {
    assert.deepEqual(
      (await buildProgram(ctx, argv)).commands.map((c) => c.name()),
      names,
      argv.join(' '),
    );
  }
});

test('the command word skips options and -p/--profile values', () => {
  assert.equal(commandWord(['-p', 'x', 'status']), 'status');
  assert.equal(commandWord(['--profile', 'start', 'stop']), 'stop');
  assert.equal(commandWord(['-v', 'version']), 'version');
  assert.equal(commandWord(['--', 'start']), undefined);
  assert.equal(commandWord([]), undefined);
});

test("the Docker client loads dockerode without its BuildKit session (gRPC) or docker-modem's SSH transport; an ssh:// engine still loads ssh2 when used", async () => {
  const script = `
const { Dockerode } = await import(${JSON.stringify(pathToFileURL(join(projectRoot, 'dist', 'src', 'providers', 'docker', 'dockerode.js')).href)});
const { createRequire } = await import('node:module');
const cache = createRequire(import.meta.url).cache;
const loaded = () => ['@grpc', 'protobufjs', 'ssh2'].filter((m) => Object.keys(cache).some((k) => k.includes('/node_modules/' + m + '/')));
const before = loaded();
const docker = new Dockerode({ protocol: 'ssh', host: '127.0.0.1', port: 1, username: 'nobody' });
await docker.ping().catch(() => undefined);
console.log(JSON.stringify({ before, after: loaded(), ctor: typeof Dockerode }));
`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    cwd: projectRoot,
  });
  const r = JSON.parse(stdout) as { before: string[]; after: string[]; ctor: string };
  assert.equal(r.ctor, 'function');
  assert.deepEqual(r.before, [], 'nothing of gRPC, protobuf or ssh2 loads with dockerode');
  assert.deepEqual(r.after, ['ssh2'], 'the SSH transport loads on its first use');
});

test('deferModule: the module is read on its stand-in’s first call, which it answers with this and arguments passed on', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-defer-'));
  try {
    const file = join(dir, 'm.cjs');
    await writeFile(
      file,
      'globalThis.__deferredLoads = (globalThis.__deferredLoads ?? 0) + 1;\nmodule.exports = function (a, b) { return [this && this.tag, a + b]; };\n',
    );
    const g = globalThis as { __deferredLoads?: number };
    const req = createRequire(import.meta.url);
    deferModule(file);
    const fn = req(file) as (this: unknown, a: number, b: number) => [string, number];
    assert.equal(g.__deferredLoads, undefined, 'not read when required');
    assert.deepEqual(fn.call({ tag: 't' }, 1, 2), ['t', 3]);
    assert.deepEqual(fn(2, 3), [undefined, 5]);
    assert.equal(g.__deferredLoads, 1, 'read once');
    deferModule(file);
    assert.equal(req(file), req(file), 'a module already loaded is left as it is');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
