import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { projectRoot } from '../../src/version.js';

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
    await promisify(execFile)(process.execPath, [
      '--import',
      pathToFileURL(register).href,
      join(projectRoot, 'dist', 'src', 'main.js'),
      ...args,
    ]);
    return (await readFile(log, 'utf8')).split('\n').filter(Boolean);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

for (const args of [['version'], ['--help']]) {
  test(`minilab ${args.join(' ')} loads neither the Kubernetes client nor dockerode`, async () => {
    const loaded = await modulesLoadedBy(args);
    assert.ok(
      loaded.some((u) => u.endsWith('/dist/src/cli/program.js')),
      'the program was loaded',
    );
    for (const lib of HEAVY) {
      assert.deepEqual(
        loaded.filter((u) => u.includes(`/node_modules/${lib}/`)),
        [],
        `${lib} is loaded only by the commands that use it`,
      );
    }
  });
}
