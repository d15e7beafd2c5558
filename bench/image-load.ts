/**
 * `minilab image load` timed, with the share of it that makes the node's mirror serve the image
 * (src/cluster/mirror.ts): so the load with and without that step come from the same runs.
 * Run: npm run build && node dist/bench/image-load.js [--iterations N] [--profile NAME]
 * [--sizes MB,MB] [--out FILE]. Makes a one-node cluster (deleted at the end) and, per size, an
 * image with one layer of that many MB of random data in the Docker engine (removed at the end);
 * before each load the image is removed from the node's containerd and its mirror, so that every
 * load imports and publishes it in full.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { imageArchive, layerFromEntries } from '../src/image/archive.js';
import { DockerProvider } from '../src/providers/docker/provider.js';
import { projectRoot } from '../src/version.js';
import { machine, median, minilab, must } from './common.js';

interface Args {
  iterations: number;
  profile: string;
  sizesMb: number[];
  out: string;
}

function parseArgs(argv: string[]): Args {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, '');
  return {
    iterations: Number(get('--iterations') ?? 5),
    profile: get('--profile') ?? 'bench-load',
    sizesMb: (get('--sizes') ?? '2,250').split(',').map(Number),
    out: get('--out') ?? join(projectRoot, 'bench-results', `image-load-${stamp}.json`),
  };
}

interface Sample {
  /** The command, from spawn to exit. */
  commandMs: number;
  /** The load as image load reports it (engine save, import, label, mirror). */
  loadMs: number;
  /** Of loadMs, the mirror step. */
  mirrorMs: number;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const provider = await DockerProvider.connect(process.env);
  const dir = await mkdtemp(join(tmpdir(), 'minilab-bench-load-'));
  const env = { ...process.env, KUBECONFIG: join(dir, 'kubeconfig'), NO_COLOR: '1' };
  const refs = args.sizesMb.map((mb) => `minilab-bench/load-${mb}mb:latest`);
  const results: { sizeMb: number; ref: string; samples: Sample[] }[] = [];
  try {
    for (const [i, mb] of args.sizesMb.entries()) {
      const data = join(dir, `data-${mb}`);
      await writeFile(data, randomBytes(mb * 1e6));
      const layer = await layerFromEntries(
        [{ type: 'host-file', name: 'data', path: data, mode: 0o644 }],
        join(dir, `layer-${mb}.tar`),
      );
      await provider.images.load(
        imageArchive([{ ref: refs[i]!, layers: [layer], config: { cmd: ['/data'] } }]),
      );
    }
    await minilab(['delete', '-p', args.profile], env);
    await must(['start', '-p', args.profile], env);
    for (const [i, mb] of args.sizesMb.entries()) {
      const ref = refs[i]!;
      const samples: Sample[] = [];
      for (let n = 0; n < args.iterations; n++) {
        process.stderr.write(`${ref}: load ${n + 1}/${args.iterations}\n`);
        await must(
          [
            'ssh',
            '-p',
            args.profile,
            '--',
            'sh',
            '-c',
            `ctr -n k8s.io images rm --sync docker.io/${ref} >/dev/null 2>&1; rm -rf /opt/minilab/mirror/docker /opt/minilab/mirror/hosts; sync`,
          ],
          env,
        );
        const r = await must(['image', 'load', '-p', args.profile, ref, '-o', 'json'], env);
        const loaded = (
          JSON.parse(r.stdout) as { loaded: { status: string; ms: number; mirrorMs: number }[] }
        ).loaded[0]!;
        if (loaded.status !== 'loaded') throw new Error(`${ref} was not loaded again: ${r.stdout}`);
        samples.push({ commandMs: r.ms, loadMs: loaded.ms, mirrorMs: loaded.mirrorMs });
      }
      results.push({ sizeMb: mb, ref, samples });
    }
  } finally {
    await minilab(['delete', '-p', args.profile], env);
    for (const ref of refs) await provider.images.remove(ref).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  const summary = results.map((r) => {
    const m = (f: (s: Sample) => number) => Math.round(median(r.samples.map(f)));
    return {
      sizeMb: r.sizeMb,
      commandMs: m((s) => s.commandMs),
      loadMs: m((s) => s.loadMs),
      mirrorMs: m((s) => s.mirrorMs),
      loadWithoutMirrorMs: m((s) => s.loadMs - s.mirrorMs),
      mirrorMsRange: [
        Math.round(Math.min(...r.samples.map((s) => s.mirrorMs))),
        Math.round(Math.max(...r.samples.map((s) => s.mirrorMs))),
      ],
    };
  });
  const result = {
    date: new Date().toISOString(),
    machine: await machine(provider),
    iterations: args.iterations,
    summary,
    results,
  };
  await mkdir(dirname(args.out), { recursive: true });
  await writeFile(args.out, JSON.stringify(result, null, 2) + '\n');
  console.log('size    command   load    load without the mirror step   mirror step (min-max)');
  for (const s of summary)
    console.log(
      `${`${s.sizeMb} MB`.padEnd(8)}${`${s.commandMs} ms`.padEnd(10)}${`${s.loadMs} ms`.padEnd(8)}${`${s.loadWithoutMirrorMs} ms`.padEnd(31)}${s.mirrorMs} ms (${s.mirrorMsRange[0]}-${s.mirrorMsRange[1]})`,
    );
  console.log(`(medians of ${args.iterations}; written to ${args.out})`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
