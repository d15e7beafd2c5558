import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PassThrough, Transform, Writable, type Readable } from 'node:stream';
import { MinilabError, formatMs } from '../errors.js';
import { normalizeRef } from '../image/archive.js';
import { CONTAINERD_PINNED_LABEL, Labels } from '../labels.js';
import { runInNode } from '../providers/run.js';
import type { ImageStore, Node } from '../providers/types.js';

export interface ClusterImage {
  ref: string;
  id: string;
  sizeBytes: number;
  pinned: boolean;
  /** Put there by `minilab image load` (not preloaded, not pulled by the cluster). */
  loaded: boolean;
  /** The ID the image had in the engine it was loaded from (images loaded from an archive have none). */
  engineId?: string;
}

export interface LoadReport {
  ref: string;
  status: 'loaded' | 'unchanged';
  sizeBytes: number;
  ms: number;
}

const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** Parses `ctr images ls` (REF TYPE DIGEST SIZE UNIT PLATFORMS LABELS), skipping digest-only names. */
export function parseImageList(out: string): ClusterImage[] {
  return out
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length >= 7 && !f[0]!.startsWith('sha256:') && !f[0]!.includes('@'))
    .map((f) => {
      const labels = Object.fromEntries(
        (f[6] ?? '').split(',').map((kv) => kv.split('=') as [string, string]),
      );
      return {
        ref: f[0]!,
        id: labels[Labels.imageId] ?? f[2]!,
        sizeBytes: Math.round(Number(f[3]) * (UNITS[f[4] ?? 'B'] ?? 1)),
        pinned: labels[CONTAINERD_PINNED_LABEL] === 'pinned',
        loaded: labels[Labels.loaded] === 'true' || labels[Labels.imageId] !== undefined,
        ...(labels[Labels.imageId] ? { engineId: labels[Labels.imageId] } : {}),
      };
    })
    .sort((a, b) => a.ref.localeCompare(b.ref));
}

/** Images in the node's containerd (the k8s.io namespace the kubelet uses). */
export async function clusterImages(node: Node): Promise<ClusterImage[]> {
  return parseImageList(await runInNode(node, 'ctr -n k8s.io images ls', 'listing images in the node'));
}

/** Counts bytes going through, reporting size and rate now and then. */
function meter(total: number | undefined, progress: (s: string) => void): Transform {
  let bytes = 0;
  let lastReport = 0;
  const started = performance.now();
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      const now = performance.now();
      if (now - lastReport > 500) {
        lastReport = now;
        const rate = bytes / 1e6 / ((now - started) / 1000);
        progress(
          `${(bytes / 1e6).toFixed(0)}${total ? `/${(total / 1e6).toFixed(0)}` : ''} MB, ${rate.toFixed(0)} MB/s`,
        );
      }
      cb(null, chunk);
    },
  });
}

/** Marks images in a node as loaded by minilab, with the engine's image ID where there is one. */
async function labelLoaded(node: Node, refs: string[], engineId?: string): Promise<void> {
  if (refs.length === 0) return;
  const labels = `${Labels.loaded}=true${engineId ? ` ${Labels.imageId}=${engineId}` : ''}`;
  await runInNode(
    node,
    refs.map((ref) => `ctr -n k8s.io images label ${ref} ${labels} >/dev/null`).join('\n'),
    `labelling ${refs.join(', ')}`,
  );
}

/** The images `ctr images import` says it unpacked ("unpacking REF (DIGEST)...done"). */
export function importedRefs(out: string): string[] {
  return [...out.matchAll(/unpacking (\S+) \(sha256:[0-9a-f]+\)/g)].map((m) => m[1]!);
}

async function importStream(node: Node, archive: Readable, what: string): Promise<string[]> {
  const out = await runInNode(
    node,
    ['ctr', '-n', 'k8s.io', 'images', 'import', '-'],
    `importing ${what} into containerd`,
    {
      input: archive,
      timeoutMs: 30 * 60_000,
      hint: 'is it an image archive (docker save or OCI layout)? the lines above show what containerd said',
    },
  );
  return importedRefs(out);
}

/**
 * Streams images from the host's Docker engine into the node's containerd (docker save piped
 * straight into ctr import: no temporary copy on disk). Images already there with the same ID
 * are skipped.
 */
export async function loadImages(
  images: ImageStore,
  node: Node,
  refs: string[],
  progress: (ref: string, detail: string) => void,
): Promise<LoadReport[]> {
  const present = await clusterImages(node);
  const reports: LoadReport[] = [];
  for (const ref of refs) {
    const info = await images.info(ref);
    if (!info) {
      throw new MinilabError('notFound', `image "${ref}" is not in the Docker engine`, {
        hint: `build or pull it first (docker images lists what there is); nothing was loaded${reports.length ? ' after ' + reports.map((r) => r.ref).join(', ') : ''}`,
      });
    }
    const started = performance.now();
    const wanted = normalizeRef(ref);
    if (present.some((p) => p.ref === wanted && p.id === info.id)) {
      reports.push({ ref, status: 'unchanged', sizeBytes: info.sizeBytes, ms: performance.now() - started });
      continue;
    }
    const saved = await images.save(ref);
    await importStream(node, saved.pipe(meter(info.sizeBytes, (d) => progress(ref, d))), ref);
    await labelLoaded(node, [wanted], info.id);
    reports.push({ ref, status: 'loaded', sizeBytes: info.sizeBytes, ms: performance.now() - started });
  }
  return reports;
}

/** Streams an image archive file (docker save or OCI layout tar) into the node. */
export async function loadArchive(
  node: Node,
  file: string,
  progress: (d: string) => void,
): Promise<LoadReport> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch {
    throw new MinilabError('notFound', `archive ${file} does not exist`, {
      hint: 'give the path of a docker save or OCI archive',
    });
  }
  const started = performance.now();
  const refs = await importStream(node, createReadStream(file).pipe(meter(size, progress)), file);
  await labelLoaded(node, refs);
  return { ref: file, status: 'loaded', sizeBytes: size, ms: performance.now() - started };
}

export const describeLoad = (r: LoadReport) =>
  `${r.ref}: ${r.status} (${(r.sizeBytes / 1e6).toFixed(0)} MB in ${formatMs(r.ms)})`;

/**
 * Runs one load on every node in parallel (a pod may be scheduled on any of them): the report is
 * a node's that loaded, or the first node's when every node had the image already.
 */
export async function loadOnEveryNode(
  nodes: Node[],
  load: (node: Node, progress: (detail: string) => void) => Promise<LoadReport | undefined>,
  progress: (detail: string) => void,
): Promise<LoadReport | undefined> {
  const reports = await Promise.all(
    nodes.map((n) => load(n, (d) => progress(nodes.length > 1 ? `${n.name}: ${d}` : d))),
  );
  return reports.find((r) => r?.status === 'loaded') ?? reports[0];
}

/**
 * The images loaded into the cluster (`minilab image load`) that some nodes have and a node lacks
 * (by reference and ID), each with a node to copy it from, given every node's image list. Images
 * the cluster pulled are left out: the node pulls them itself (and containerd here keeps no
 * layers of a pulled image to export).
 */
export function imagesToCopy(
  sources: { node: Node; images: ClusterImage[] }[],
  present: ClusterImage[],
): { image: ClusterImage; from: Node }[] {
  const have = new Set(present.map((i) => `${i.ref} ${i.id}`));
  const wanted = new Map<string, { image: ClusterImage; from: Node }>();
  for (const { node, images } of sources) {
    for (const image of images) {
      const key = `${image.ref} ${image.id}`;
      if (image.loaded && !have.has(key) && !wanted.has(image.ref))
        wanted.set(image.ref, { image, from: node });
    }
  }
  return [...wanted.values()];
}

/**
 * Streams an image from one node's containerd into another's (ctr export piped into ctr import,
 * no copy on disk), labelled as it was there. Both commands are over when this settles.
 */
export async function copyImage(from: Node, to: Node, image: ClusterImage): Promise<void> {
  const archive = new PassThrough();
  // A failed export destroys the stream; the import reports its own failure, this one is kept.
  archive.on('error', () => undefined);
  let errors = '';
  const stderr = new Writable({
    write(chunk: Buffer, _enc, cb) {
      errors += chunk.toString();
      cb();
    },
  });
  const exported = from
    .execStream(['ctr', '-n', 'k8s.io', 'images', 'export', '-', image.ref], {
      stdout: archive,
      stderr,
      timeoutMs: 30 * 60_000,
    })
    .then((code) => {
      if (code !== 0) throw new Error(errors.trim() || `exit ${code}`);
      archive.end();
    })
    .catch((err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      archive.destroy(e);
      throw new MinilabError('clusterFailed', `exporting ${image.ref} from ${from.name} failed`, {
        details: [e.message],
        hint: `load it again: minilab image load ${image.ref}`,
      });
    });
  const [exportDone, importDone] = await Promise.allSettled([exported, importStream(to, archive, image.ref)]);
  if (exportDone.status === 'rejected') throw exportDone.reason;
  if (importDone.status === 'rejected') throw importDone.reason;
  await labelLoaded(to, [image.ref], image.engineId);
}
