/**
 * `minilab image load` of a set of images (about 1 GB: four images, two of them sharing a base
 * layer, one under two names), timed beside a plain `docker save | ctr import` pipe into each node
 * and beside the engine's `docker save` alone (the rate nothing downstream of it can beat), in
 * alternating order. Then the same load again, every image already there: the time to skip them.
 * Run: npm run build && node dist/bench/image-load.js [--iterations N] [--nodes N]
 * [--profile NAME] [--old PATH/dist/src/main.js] [--out FILE]. --old adds runs of another build of
 * minilab (the code before a change), alternating with this one. Makes a cluster (deleted at the
 * end) and the images in the Docker engine (removed at the end); before each load the images are
 * removed from every node's containerd (content too) and its mirror.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { imageArchive, layerFromEntries, type Layer, type LayerEntry } from '../src/image/archive.js';
import { DockerProvider } from '../src/providers/docker/provider.js';
import type { Node } from '../src/providers/types.js';
import { projectRoot } from '../src/version.js';
import { machine, median, minilab, must } from './common.js';

interface Args {
  iterations: number;
  nodes: number;
  profile: string;
  old?: string;
  out: string;
}

function parseArgs(argv: string[]): Args {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, '');
  const old = get('--old');
  return {
    iterations: Number(get('--iterations') ?? 3),
    nodes: Number(get('--nodes') ?? 1),
    profile: get('--profile') ?? 'bench-load',
    ...(old ? { old } : {}),
    out: get('--out') ?? join(projectRoot, 'bench-results', `image-load-${stamp}.json`),
  };
}

const REPO = 'minilab-bench/load';
/** The set: [name, layers as MB of random data or `files:N` (N files of 10 kB)]; "base" is shared. */
const SET: [string, string[]][] = [
  ['a:v1', ['base', '100', '100', '50']],
  ['b:v1', ['base', '250']],
  ['c:v1', ['files:10000', '100']],
  ['d:v1', ['200']],
];
/** A second name of c:v1: sent once, imported under both. */
const ALIAS = 'c:alias';
const REFS = [...SET.map(([name]) => `${REPO}-${name}`), `${REPO}-${ALIAS}`];

/** Makes the image set in the engine. */
async function makeSet(provider: DockerProvider, dir: string): Promise<void> {
  let n = 0;
  const layers = new Map<string, Layer>();
  const layer = async (kind: string): Promise<Layer> => {
    const key = kind === 'base' ? kind : `${kind}#${n++}`;
    const made = layers.get(key);
    if (made) return made;
    const out = join(dir, `layer-${n++}.tar`);
    let entries: LayerEntry[];
    if (kind.startsWith('files:')) {
      entries = Array.from({ length: Number(kind.slice('files:'.length)) }, (_, i) => ({
        type: 'file' as const,
        name: `files/${i % 100}/${i}`,
        content: randomBytes(10_000),
      }));
    } else {
      const data = join(dir, `data-${n}`);
      await writeFile(data, randomBytes(kind === 'base' ? 50e6 : Number(kind) * 1e6));
      entries = [{ type: 'host-file', name: `data-${n}`, path: data, mode: 0o644 }];
    }
    const made2 = await layerFromEntries(entries, out);
    layers.set(key, made2);
    return made2;
  };
  const specs = [];
  for (const [name, kinds] of SET) {
    const ls: Layer[] = [];
    for (const k of kinds) ls.push(await layer(k));
    specs.push({ ref: `${REPO}-${name}`, layers: ls, config: { cmd: ['/data'] } });
  }
  const c = specs[2]!;
  specs.push({ ...c, ref: `${REPO}-${ALIAS}` });
  await provider.images.load(imageArchive(specs));
}

/** The bytes of the engine's archive of the set, and the time it takes to read it. */
async function saveOnly(provider: DockerProvider): Promise<{ bytes: number; ms: number }> {
  const started = performance.now();
  let bytes = 0;
  for await (const chunk of await provider.images.save(REFS)) bytes += (chunk as Buffer).length;
  return { bytes, ms: performance.now() - started };
}

/** Removes the set from a node: images, their content and snapshots, the mirror's copies. */
async function clear(node: Node): Promise<void> {
  const script =
    'for r in $(ctr -n k8s.io images ls -q | grep minilab-bench/load); do ctr -n k8s.io images rm --sync "$r" >/dev/null; done; ' +
    'rm -rf /opt/minilab/mirror/docker /opt/minilab/mirror/hosts; sync';
  const r = await node.exec(['sh', '-c', script]);
  if (r.exitCode !== 0) throw new Error(`clearing ${node.name}: ${r.stderr}`);
}

/** The plain pipe, one per node at once: docker save | docker exec -i NODE ctr import. */
function pipe(nodes: Node[]): Promise<number> {
  const one = (n: Node) =>
    `docker save ${REFS.join(' ')} | docker exec -i ${n.name} ctr -n k8s.io images import --local - >/dev/null`;
  const script = `set -o pipefail; ${nodes.map((n) => `(${one(n)}) & `).join('')}for j in $(jobs -p); do wait $j; done`;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(performance.now() - started) : reject(new Error(`pipe exit ${code}`)),
    );
  });
}

type Variant = 'new' | 'old' | 'pipe' | 'save';

interface Sample {
  variant: Variant;
  ms: number;
  /** new and old: the same load again, every image there (the command, and the load as reported). */
  skipCommandMs?: number;
  skipLoadMs?: number;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const provider = await DockerProvider.connect(process.env);
  const dir = await mkdtemp(join(tmpdir(), 'minilab-bench-load-'));
  const env = { ...process.env, KUBECONFIG: join(dir, 'kubeconfig'), NO_COLOR: '1' };
  const samples: Sample[] = [];
  let bytes = 0;
  try {
    await makeSet(provider, dir);
    await minilab(['delete', '-p', args.profile], env);
    await must(['start', '-p', args.profile, '--nodes', String(args.nodes)], env);
    const nodes = await provider.listNodes(args.profile);
    const variants: Variant[] = ['new', 'pipe', 'save', ...(args.old ? (['old'] as const) : [])];
    for (let n = 0; n < args.iterations; n++) {
      // rotated, so that no variant always runs first or after the same one
      const order = variants.map((_, i) => variants[(i + n) % variants.length]!);
      for (const variant of order) {
        process.stderr.write(`${variant}: ${n + 1}/${args.iterations}\n`);
        await Promise.all(nodes.map(clear));
        if (variant === 'save') {
          const s = await saveOnly(provider);
          bytes = s.bytes;
          samples.push({ variant, ms: s.ms });
        } else if (variant === 'pipe') {
          samples.push({ variant, ms: await pipe(nodes) });
        } else {
          const cli = variant === 'old' ? args.old : undefined;
          const load = async () => {
            const r = await must(['image', 'load', '-p', args.profile, ...REFS, '-o', 'json'], env, cli);
            const loaded = (JSON.parse(r.stdout) as { loaded: { status: string; ms: number }[] }).loaded;
            return { ms: r.ms, loaded };
          };
          const first = await load();
          if (first.loaded.some((l) => l.status !== 'loaded')) throw new Error(`not all loaded: ${variant}`);
          const again = await load();
          if (again.loaded.some((l) => l.status !== 'unchanged')) throw new Error(`not skipped: ${variant}`);
          samples.push({
            variant,
            ms: first.ms,
            skipCommandMs: again.ms,
            // the old code loads one name per step: its skips add up
            skipLoadMs: variant === 'old' ? again.loaded.reduce((a, l) => a + l.ms, 0) : again.loaded[0]!.ms,
          });
        }
      }
    }
  } finally {
    await minilab(['delete', '-p', args.profile], env);
    for (const ref of REFS) await provider.images.remove(ref).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  const mb = bytes / 1e6;
  const summary = (['save', 'pipe', 'old', 'new'] as const)
    .map((variant) => {
      const of = samples.filter((s) => s.variant === variant);
      if (of.length === 0) return undefined;
      const ms = median(of.map((s) => s.ms));
      const skips = of.filter((s) => s.skipLoadMs !== undefined);
      return {
        variant,
        ms: Math.round(ms),
        mbPerS: Math.round(mb / (ms / 1000)),
        ...(skips.length > 0
          ? {
              skipCommandMs: Math.round(median(skips.map((s) => s.skipCommandMs!))),
              skipPerImageMs: Math.round(median(skips.map((s) => s.skipLoadMs!)) / REFS.length),
            }
          : {}),
      };
    })
    .filter((s) => s !== undefined);
  const result = {
    date: new Date().toISOString(),
    machine: await machine(provider),
    nodes: args.nodes,
    iterations: args.iterations,
    archiveBytes: bytes,
    refs: REFS,
    summary,
    samples,
  };
  await mkdir(dirname(args.out), { recursive: true });
  await writeFile(args.out, JSON.stringify(result, null, 2) + '\n');
  const pipeMs = summary.find((s) => s.variant === 'pipe')?.ms;
  console.log(`${REFS.length} names, ${mb.toFixed(0)} MB archive, ${args.nodes} node(s)`);
  console.log('variant  time      MB/s   pipe/it   skip (command, per image)');
  for (const s of summary)
    console.log(
      `${s.variant.padEnd(9)}${`${s.ms} ms`.padEnd(10)}${String(s.mbPerS).padEnd(7)}` +
        `${pipeMs ? (pipeMs / s.ms).toFixed(2) : '-'}`.padEnd(10) +
        (s.skipCommandMs !== undefined ? `${s.skipCommandMs} ms, ${s.skipPerImageMs} ms` : ''),
    );
  console.log(`(medians of ${args.iterations}; written to ${args.out})`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
