// npm run conformance -- [options]: Kubernetes' upstream Conformance suite against a minilab
// cluster. Builds e2e.test, ginkgo and the suite's images from Go modules and Debian packages
// (cached by version and recipe), loads the images into the cluster with `minilab image load`,
// runs the parallel part (and the serial part with --serial), and writes ginkgo's JUnit and JSON
// reports with a summary. Exit 0 when every selected spec passed, 1 when one failed, and
// minilab's exit codes (2 usage, 3 environment, 4 not found) when it could not run.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { readFile, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Command } from 'commander';
import { parseIntOption } from '../../src/cli/options.js';
import { MinilabError, exitCodeOf, renderError, usageError } from '../../src/errors.js';
import { imageArchive } from '../../src/image/archive.js';
import { ensureComponents } from '../../src/image/build.js';
import { cacheKey } from '../../src/image/cache.js';
import { validateKubernetesVersion } from '../../src/image/components.js';
import { runScript } from '../../src/image/run-script.js';
import { privateDir } from '../../src/private-files.js';
import { forwardSignals } from '../../src/signals.js';
import { DEFAULT_PROFILE, validateProfileName } from '../../src/profile/name.js';
import { ProfileStore, minilabHome, writeFileAtomic } from '../../src/profile/store.js';
import { DEFAULT_KUBERNETES_VERSION, projectRoot } from '../../src/version.js';
import { conformanceImages, type SuiteBuild } from './images.js';
import { readSummary, renderSummary, type PartSummary } from './report.js';

const here = join(projectRoot, 'test', 'conformance');
const cli = join(projectRoot, 'dist', 'src', 'main.js');

/** The parallel part as upstream's CI runs it, and the serial part. */
export const PARALLEL_FILTER = 'Conformance && !Serial && !Disruptive && !Flaky';
export const SERIAL_FILTER = 'Conformance && Serial';

interface Options {
  profile: string;
  procs: number;
  focus?: string;
  skip?: string;
  serial: boolean;
  parallel: boolean;
  load: boolean;
  buildOnly: boolean;
  version?: string;
  out?: string;
  cacheDir?: string;
}

/** Set by a signal during a part: no later part starts. */
let interrupted = false;

const say = (s: string) => process.stdout.write(`conformance: ${s}\n`);

/** Runs the minilab CLI (this checkout's build), its output captured or shown. */
function minilab(args: string[], show: boolean): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [cli, ...args], {
      stdio: ['ignore', 'pipe', show ? 'inherit' : 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (c: Buffer) => (show ? process.stdout.write(c) : out.push(c)));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    child.on('error', fail);
    child.on('close', (code) => {
      if (code === 0) return done(Buffer.concat(out).toString());
      const message = Buffer.concat(err).toString().trim().split('\n')[0] || `exited ${code}`;
      fail(
        new MinilabError('environment', `minilab ${args.join(' ')}: ${message}`, {
          hint: "the line above is minilab's own error; fix that, then run the conformance suite again",
        }),
      );
    });
  });
}

/** build.sh's output for `version`, built when its recipe or the version changed. */
async function ensureSuite(
  cache: string,
  version: string,
): Promise<{ dir: string; key: string; build: SuiteBuild }> {
  const key = await cacheKey({
    values: { version },
    paths: [join(here, 'build.sh'), join(projectRoot, 'images', 'components', 'go-build-lib.sh')],
    root: projectRoot,
  });
  const dir = join(cache, 'conformance', `${version}-${key}`);
  if (!existsSync(join(dir, 'build.json'))) {
    say(`building the suite and its images' programs for ${version} (cold: about 10 minutes on 2 cores)`);
    await privateDir(dir);
    await runScript(join(here, 'build.sh'), [dir, version], {
      progress: (line) => say(line.replace(/^conformance: /, '')),
      what: `building the conformance suite for ${version}`,
      hint: "the Go module proxy and Debian's archive must be reachable; the log named above says what failed",
    });
  }
  // earlier recipes' builds of this version (1.4 GB each) are not used again
  for (const entry of await readdir(join(cache, 'conformance'))) {
    if (entry.startsWith(`${version}-`) && entry !== `${version}-${key}`) {
      await rm(join(cache, 'conformance', entry), { recursive: true, force: true });
    }
  }
  const build = JSON.parse(await readFile(join(dir, 'build.json'), 'utf8')) as SuiteBuild;
  return { dir, key, build };
}

/** One ginkgo run of e2e.test; resolves with its summary (reports under out/PART.*). */
async function runPart(
  part: string,
  filter: string,
  procs: number,
  suite: string,
  out: string,
  kubeconfig: string,
  opts: Options,
): Promise<PartSummary> {
  const json = `${part}.json`;
  const args = [
    `--procs=${procs}`,
    `--label-filter=${filter}`,
    ...(opts.focus ? [`--focus=${opts.focus}`] : []),
    ...(opts.skip ? [`--skip=${opts.skip}`] : []),
    '--timeout=6h',
    '--silence-skips',
    `--output-dir=${out}`,
    `--json-report=${json}`,
    `--junit-report=${part}.xml`,
    ...(process.stdout.isTTY ? [] : ['--no-color']),
    join(suite, 'e2e.test'),
    '--',
    '--provider=skeleton',
    `--kubeconfig=${kubeconfig}`,
    `--kubectl-path=${join(suite, 'kubectl')}`,
    `--report-dir=${join(out, part)}`,
  ];
  say(`${part} part: ginkgo ${args.slice(0, 4).join(' ')} (output also in ${join(out, `${part}.log`)})`);
  const log = createWriteStream(join(out, `${part}.log`));
  // ginkgo runs in a process group of its own, so a signal reaches it once, from here (Ctrl-C,
  // `kill`, a closed terminal): it interrupts its workers, cleans up and writes its reports, which
  // this process then summarises, running no further part. (A second interrupt would make ginkgo
  // skip its clean-up.)
  log.on('error', () => undefined);
  const code = await new Promise<number | null>((done, fail) => {
    const ginkgo = spawn(join(suite, 'ginkgo'), args, {
      cwd: out,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const unwatch = forwardSignals((signal) => {
      interrupted = true;
      ginkgo.kill(signal);
    });
    for (const stream of [ginkgo.stdout, ginkgo.stderr]) {
      stream.on('data', (c: Buffer) => {
        log.write(c);
        process.stdout.write(c);
      });
    }
    ginkgo.on('error', (err) => {
      unwatch();
      fail(err);
    });
    ginkgo.on('close', (status) => {
      unwatch();
      done(status);
    });
  });
  log.end();
  if (!existsSync(join(out, json))) {
    throw new MinilabError('unexpected', `ginkgo exited ${code} and wrote no report`, {
      hint: `its output is in ${join(out, `${part}.log`)}`,
    });
  }
  return readSummary(part, join(out, json));
}

async function main(opts: Options): Promise<number> {
  const home = minilabHome();
  const profile = validateProfileName(opts.profile);
  const config = await new ProfileStore(home).read(profile);
  const version = validateKubernetesVersion(
    opts.version ?? config?.kubernetesVersion ?? DEFAULT_KUBERNETES_VERSION,
  );
  if (!opts.buildOnly && !config) {
    throw new MinilabError('notFound', `no profile "${profile}"`, {
      hint: `start a cluster first: minilab start -p ${profile}`,
    });
  }
  if (!opts.parallel && !opts.serial && !opts.buildOnly) {
    throw usageError(
      '--no-parallel without --serial runs nothing',
      'add --serial to run the serial part only',
    );
  }

  const cache = resolve(opts.cacheDir ?? join(home, 'cache'));
  const suite = await ensureSuite(cache, version);
  const components = await ensureComponents(cache, version, (line) => say(line));
  const kubectl = join(suite.dir, 'kubectl');
  await rm(kubectl, { force: true });
  await symlink(join(components.dir, 'kube'), kubectl);
  const listed = (await readFile(join(suite.dir, 'images.txt'), 'utf8')).split('\n').filter((l) => l !== '');
  const specs = await conformanceImages({
    dir: suite.dir,
    key: suite.key,
    build: suite.build,
    coredns: join(components.dir, 'coredns'),
    listed,
  });
  const archive = join(suite.dir, 'images.tar');
  await pipeline(imageArchive(specs), createWriteStream(`${archive}.partial`, { mode: 0o600 }));
  await rename(`${archive}.partial`, archive);
  say(
    `${specs.length} images for the suite in ${archive}: ${specs.map((s) => s.ref.replace(/^.*\//, '')).join(' ')}`,
  );
  if (opts.buildOnly) return 0;

  const out = resolve(
    opts.out ?? join(home, 'conformance', `${profile}-${new Date().toISOString().replace(/[:.]/g, '-')}`),
  );
  await privateDir(out);
  const kubeconfig = join(out, 'kubeconfig');
  await writeFileAtomic(kubeconfig, await minilab(['kubeconfig', '-p', profile], false));
  if (opts.load) {
    say(`loading them into every node of "${profile}" (minilab image load)`);
    await minilab(['image', 'load', '--archive', archive, '-p', profile], true);
  }

  const parts: PartSummary[] = [];
  if (opts.parallel)
    parts.push(await runPart('parallel', PARALLEL_FILTER, opts.procs, suite.dir, out, kubeconfig, opts));
  if (opts.serial && !interrupted)
    parts.push(await runPart('serial', SERIAL_FILTER, 1, suite.dir, out, kubeconfig, opts));

  const summary = { kubernetes: version, profile, procs: opts.procs, build: suite.build, parts };
  await writeFile(join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  const text = parts.map(renderSummary).join('');
  await writeFile(join(out, 'summary.txt'), text);
  process.stdout.write(`\n${text}reports: ${out}\n`);
  if (parts.some((p) => p.selected === 0)) {
    process.stderr.write('conformance: a part selected no spec: check --focus and --skip\n');
    return 1;
  }
  return parts.every((p) => p.failed === 0 && p.succeeded) ? 0 : 1;
}

const program = new Command('conformance')
  .description("run Kubernetes' Conformance suite against a minilab cluster")
  .option('-p, --profile <name>', 'the cluster to test', process.env.MINILAB_PROFILE || DEFAULT_PROFILE)
  .option('--procs <n>', 'ginkgo processes for the parallel part', parseIntOption('--procs', 1, 64), 4)
  .option('--focus <regex>', 'run only the specs whose text matches')
  .option('--skip <regex>', 'leave out the specs whose text matches')
  .option('--serial', 'also run the serial Conformance specs (one process, after the parallel part)', false)
  .option('--no-parallel', 'leave out the parallel part (with --serial)')
  .option('--no-load', 'do not load the images (they are in the cluster already)')
  .option('--build-only', 'build the suite and its images, then stop (no cluster needed)', false)
  .option(
    '--version <v1.X.Y>',
    "the suite's Kubernetes version (default: the profile's, or minilab's default)",
  )
  .option(
    '--cache-dir <dir>',
    'where builds are kept (default: MINILAB_HOME/cache, shared with the node image)',
  )
  .option('--out <dir>', 'where reports go (default: MINILAB_HOME/conformance/PROFILE-TIME)')
  .showHelpAfterError();

// parsing inside the chain: a bad value is minilab's one-line usage error (exit 2)
Promise.resolve()
  .then(() => main(program.parse().opts<Options>()))
  .then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(renderError(err, process.env.MINILAB_VERBOSE === '1'));
      process.exit(exitCodeOf(err));
    },
  );
