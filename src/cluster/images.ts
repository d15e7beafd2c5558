import { constants, createReadStream, type Stats } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { PassThrough, Readable, Transform, Writable } from 'node:stream';
import { MinilabError, STREAM_STALL_MS, formatMs } from '../errors.js';
import { normalizeRef } from '../image/archive.js';
import { CONTAINERD_PINNED_LABEL, Labels } from '../labels.js';
import { runInNode } from '../providers/run.js';
import { mirroredTags, mirrorServes, publishToMirror, type Publication } from './mirror.js';
import type { ImageStore, Node } from '../providers/types.js';

export interface ClusterImage {
  ref: string;
  id: string;
  /** The digest of the image's target in containerd (its manifest or index). */
  digest: string;
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
  /**
   * The time of the load it was part of: names loaded together (`batch` of them, in one stream
   * per set of nodes) share one time, the whole batch's, not a time of their own.
   */
  ms: number;
  /**
   * Of `ms`, the time spent making the node's mirror serve it (src/cluster/mirror.ts): the
   * longest of the nodes' mirror steps, each one publish for the whole batch.
   */
  mirrorMs: number;
  /** How many names share `ms` and `mirrorMs` (1 for an archive). */
  batch: number;
  /** Why pulls of it are not served by the node's mirror, when they are not. */
  notMirrored?: string;
}

/** What a node's mirror step did: its time, whether the node has a mirror, the names it cannot hold. */
interface MirrorStep {
  ms: number;
  available: boolean;
  skipped: string[];
}

const NO_MIRROR_STEP: MirrorStep = { ms: 0, available: true, skipped: [] };

/** Why the mirror does not serve `ref` (every name the step left out, without one), if it does not. */
function notMirrored(step: MirrorStep, ref?: string): string | undefined {
  if (!step.available) {
    return "the node's image predates the mirror of loaded images: run it with imagePullPolicy IfNotPresent, or recreate the cluster";
  }
  const skipped = ref === undefined ? step.skipped : step.skipped.filter((s) => s === ref);
  return skipped.length > 0
    ? `the mirror cannot hold ${skipped.join(', ')} (a name by digest, or one a registry refuses): run it with imagePullPolicy IfNotPresent`
    : undefined;
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
        digest: f[2]!,
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

/**
 * The bytes of `source`, counted, with the size and rate reported now and then. A failed read
 * ends the stream early, as if the source had ended, and is kept in `failed`: an errored input
 * given to an exec that is not attached yet would never end, and `ctr import` would wait for it.
 */
function metered(
  source: Readable,
  total: number | undefined,
  progress: (s: string) => void,
  failed: { error?: Error },
): Readable {
  // At once, not when the import starts reading: a file that cannot be opened fails before that.
  source.on('error', (err) => (failed.error ??= err));
  async function* chunks() {
    let bytes = 0;
    let lastReport = 0;
    const started = performance.now();
    try {
      for await (const chunk of source) {
        bytes += (chunk as Buffer).length;
        const now = performance.now();
        if (now - lastReport > 500) {
          lastReport = now;
          const rate = bytes / 1e6 / ((now - started) / 1000);
          progress(
            `${(bytes / 1e6).toFixed(0)}${total ? `/${(total / 1e6).toFixed(0)}` : ''} MB, ${rate.toFixed(0)} MB/s`,
          );
        }
        yield chunk as Buffer;
      }
    } catch (err) {
      failed.error ??= err instanceof Error ? err : new Error(String(err));
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}

/** An image to mark as loaded by minilab, with the ID it had in the engine, if it came from one. */
interface Loaded extends Publication {
  engineId?: string;
}

/**
 * Marks images in a node as loaded by minilab, with the engine's image ID where there is one (all
 * at once: each is an exec of its own). The references come from the user or from ctr's output:
 * each is one argument, never shell text.
 */
async function labelLoaded(node: Node, images: Loaded[]): Promise<void> {
  await Promise.all(
    images.map(({ ref, engineId }) =>
      runInNode(
        node,
        [
          'ctr',
          '-n',
          'k8s.io',
          'images',
          'label',
          ref,
          `${Labels.loaded}=true`,
          ...(engineId ? [`${Labels.imageId}=${engineId}`] : []),
        ],
        `labelling ${ref}`,
      ),
    ),
  );
}

/**
 * Makes the node's mirror serve these images under their names, so that a pull with
 * `imagePullPolicy: Always` finds them (src/cluster/mirror.ts). A name the mirror cannot hold (a
 * digest reference) or a node whose image has no mirror leaves them loaded, said in notMirrored.
 */
async function mirror(node: Node, images: Publication[]): Promise<MirrorStep> {
  const started = performance.now();
  const r = await publishToMirror(node, images);
  return { ms: performance.now() - started, available: r.available, skipped: r.skipped };
}

/** Labels images just imported as loaded by minilab, then makes the node's mirror serve them. */
async function markLoaded(node: Node, images: Loaded[]): Promise<MirrorStep> {
  await labelLoaded(node, images);
  return mirror(node, images);
}

/**
 * The images `ctr images import --local` says it unpacked ("unpacking REF (DIGEST)...done"), with
 * their targets' digests. Every ctr image command here takes `--local` (containerd's client-side
 * path, as in 1.7): the transfer service, ctr's default in 2.x, prints a progress table instead
 * and ignores `tag --force`.
 */
export function importedRefs(out: string): Publication[] {
  return [...out.matchAll(/unpacking (\S+) \((sha256:[0-9a-f]+)\)/g)].map((m) => ({
    ref: m[1]!,
    digest: m[2]!,
  }));
}

/** `ctr images import` of the archive on stdin, into the namespace the kubelet uses. */
const IMPORT = ['ctr', '-n', 'k8s.io', 'images', 'import', '--local', '-'];

/**
 * A copy of the archive for one node's import. `onStall` is called once data has waited in it
 * unread for `stallMs` (the import stopped reading); a copy that is empty waits for the source,
 * which is not the node's doing, and never stalls.
 */
function importCopy(stallMs: number, onStall: () => void): Transform {
  let passed = 0;
  const copy = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      passed += chunk.length;
      cb(null, chunk);
    },
  });
  let read = 0;
  let since = performance.now();
  const timer = setInterval(
    () => {
      const now = performance.now();
      const out = passed - copy.readableLength;
      if (out !== read || (copy.readableLength === 0 && copy.writableLength === 0)) {
        read = out;
        since = now;
      } else if (now - since >= stallMs) {
        clearInterval(timer);
        onStall();
      }
    },
    Math.min(1000, stallMs / 4),
  );
  copy.on('close', () => clearInterval(timer));
  // the import reports its own failure (a cut archive); a copy destroyed is unpiped, not a crash
  copy.on('error', () => undefined);
  return copy;
}

/** How an import of an archive into nodes is told and watched. */
interface ImportOptions {
  total?: number;
  progress?: (d: string) => void;
  /** Name the node in a failure's message (a cluster of several nodes): the default when there are several here. */
  nameNodes?: boolean;
  /** How long a node's import may leave its copy of the archive unread before it is given up. */
  stallMs?: number;
}

/**
 * Streams one archive into `ctr images import` in each node at once (one read of it, however many
 * nodes: the slowest sets the pace, and one that stops reading for `stallMs` is given up) and
 * returns, per node, what it imported or why it failed. When reading the archive fails, that
 * failure is the error, for all of them (ctr, given a cut archive, fails too, with less to say).
 */
async function importStream(
  nodes: Node[],
  source: Readable,
  what: string,
  {
    total,
    progress = () => undefined,
    nameNodes = nodes.length > 1,
    stallMs = STREAM_STALL_MS,
  }: ImportOptions = {},
): Promise<PromiseSettledResult<Publication[]>[]> {
  const failed: { error?: Error } = {};
  const input = metered(source, total, progress, failed);
  const imports = await Promise.allSettled(
    nodes.map(async (node) => {
      const into = `importing ${what} into containerd${nameNodes ? ` on ${node.name}` : ''}`;
      let stalled!: (err: Error) => void;
      const stall = new Promise<never>((_, reject) => (stalled = reject));
      const copy = importCopy(stallMs, () => {
        const err = new MinilabError('timeout', `${into} stopped: it read nothing for ${formatMs(stallMs)}`, {
          hint: `the node may be out of disk or its containerd stuck (minilab ssh${nameNodes ? ` --node ${node.name}` : ''}, then df -h and journalctl -u containerd); load it again`,
        });
        // the import sees its input end early (a cut archive) and this node is left out of the tee
        copy.destroy(err);
        stalled(err);
      });
      // pipe() to several streams waits for the slowest; one that is destroyed is unpiped
      input.pipe(copy);
      const run = runInNode(node, IMPORT, into, {
        input: copy,
        timeoutMs: 30 * 60_000,
        hint: 'is it an image archive (docker save or OCI layout)? the lines above show what containerd said',
      }).finally(() => copy.destroy());
      run.catch(() => undefined);
      return importedRefs(await Promise.race([run, stall]));
    }),
  );
  // ctr may have stopped before the end: nothing else reads the rest.
  input.destroy();
  source.destroy();
  if (failed.error) {
    throw new MinilabError('environment', `reading ${what} failed: ${failed.error.message}`, {
      cause: failed.error,
      hint: 'nothing was loaded from it; check that it can be read, then load it again',
    });
  }
  return imports;
}

/** What the one node of an import imported, or its failure thrown. */
function only(results: PromiseSettledResult<Publication[]>[]): Publication[] {
  const [r] = results;
  if (r!.status === 'rejected') throw r!.reason;
  return r!.value;
}

/** An image to load from the engine: the name asked for, as containerd names it, and the engine's record. */
interface Wanted {
  ref: string;
  name: string;
  id: string;
  sizeBytes: number;
}

/**
 * The image ID (config digest) of an image containerd imported, read from its manifest (or its
 * index's first manifest).
 */
async function importedId(node: Node, digest: string): Promise<string | undefined> {
  const doc = JSON.parse(
    await runInNode(node, ['ctr', '-n', 'k8s.io', 'content', 'get', digest], `reading ${digest}`),
  ) as { config?: { digest?: string }; manifests?: { digest: string }[] };
  if (doc.config?.digest) return doc.config.digest;
  const first = doc.manifests?.[0]?.digest;
  return first ? importedId(node, first) : undefined;
}

/** A name asked for that could not be given to an imported image, and why. */
interface Unplaced {
  wanted: Wanted;
  reason: string;
}

/**
 * Names the images just imported as asked and marks them loaded (labels, then one publish to the
 * node's mirror). The engine may name an image otherwise than asked (podman: localhost/app:dev
 * for app:dev), and an archive from docker save never holds a name by digest: the name asked for
 * is the one pods use, so it is given too, tagged from an image with its ID (a name placed
 * already, else an imported name not asked for, whose ID is read from its manifest). Every name
 * that can be placed is marked; those that cannot are returned.
 */
async function nameImported(
  node: Node,
  sent: Wanted[],
  imported: Publication[],
): Promise<{ step: MirrorStep; unplaced: Unplaced[] }> {
  const byName = new Map(imported.map((i) => [i.ref, i.digest]));
  const loaded: Loaded[] = [];
  const unnamed = sent.filter((w) => {
    const digest = byName.get(w.name);
    if (digest) loaded.push({ ref: w.name, digest, engineId: w.id });
    return !digest;
  });
  const unplaced: Unplaced[] = [];
  if (unnamed.length > 0) {
    const placed = [...loaded];
    const others = imported.filter((i) => !sent.some((w) => w.name === i.ref));
    // read only when needed, and a manifest that cannot be read is one image fewer to tag from
    const ids = unnamed.some((w) => !placed.some((p) => p.engineId === w.id))
      ? await Promise.all(others.map((i) => importedId(node, i.digest).catch(() => undefined)))
      : [];
    for (const w of unnamed) {
      const from = placed.find((p) => p.engineId === w.id) ?? others[ids.indexOf(w.id)];
      if (!from) {
        unplaced.push({ wanted: w, reason: 'no image with its ID was in the archive' });
        continue;
      }
      try {
        await runInNode(
          node,
          ['ctr', '-n', 'k8s.io', 'images', 'tag', '--local', '--force', from.ref, w.name],
          `tagging ${from.ref} as ${w.name}`,
        );
        loaded.push({ ref: w.name, digest: from.digest, engineId: w.id });
      } catch (err) {
        unplaced.push({ wanted: w, reason: err instanceof Error ? err.message : String(err) });
      }
    }
  }
  return { step: await markLoaded(node, loaded), unplaced };
}

/** The error of names a node could not be given (`on` names the node, in a cluster of several). */
function unplacedError(unplaced: Unplaced[], on: string): MinilabError {
  const list = unplaced.map((u) => `${u.wanted.ref} (${u.wanted.id})`).join(', ');
  return new MinilabError('clusterFailed', `containerd${on} has no image ${list} after the import`, {
    details: unplaced.map((u) => `${u.wanted.ref}: ${u.reason}`),
    hint: 'docker save never puts a name by digest in its archive: load a tag of the image with it (minilab image load my/app:dev my/app@sha256:...); otherwise check the image in the engine, then load it again',
  });
}

/** A failure of a load on some nodes. */
interface NodeFailure {
  nodes: Node[];
  error: Error;
}

const asError = (err: unknown) => (err instanceof Error ? err : new Error(String(err)));

/**
 * One error for every node a load failed on, each with its reason. In a cluster of one node, its
 * failure as it is.
 */
function loadFailure(what: string, failures: NodeFailure[], nodes: Node[]): Error {
  if (nodes.length === 1) return failures[0]!.error;
  const failed = nodes.filter((n) => failures.some((f) => f.nodes.includes(n)));
  const first = failures[0]!.error;
  const details = failures.flatMap(({ nodes: on, error }) => [
    `${on.map((n) => n.name).join(', ')}: ${error.message}`,
    ...(error instanceof MinilabError ? error.details.map((d) => `  ${d}`) : []),
  ]);
  const own = failures.length === 1 && first instanceof MinilabError ? first.hint : undefined;
  return new MinilabError(
    first instanceof MinilabError ? first.kind : 'clusterFailed',
    `loading ${what} failed on ${failed.map((n) => n.name).join(', ')} (${failed.length} of ${nodes.length} nodes)`,
    {
      cause: first,
      details,
      hint:
        (own ? `${own}; ` : '') +
        'the other nodes have the images loaded; load them again once fixed (what a node has already is skipped)',
    },
  );
}

/** A node's part in a load: the images it lacks, and the mirror step of those it has. */
interface NodePlan {
  node: Node;
  send: Wanted[];
  unchanged: Wanted[];
  present: ClusterImage[];
}

/**
 * Makes the node's mirror serve the images it already has (a cluster made before the mirror may
 * not serve them yet), reading the mirror's tags only when there are any.
 */
async function mirrorUnchanged(plan: NodePlan): Promise<MirrorStep> {
  if (plan.unchanged.length === 0) return NO_MIRROR_STEP;
  const tags = await mirroredTags(plan.node);
  const stale = plan.unchanged
    .map((w) => plan.present.find((p) => p.ref === w.name)!)
    .filter((p) => !mirrorServes(tags, p.ref, p.digest));
  return stale.length > 0 ? mirror(plan.node, stale) : NO_MIRROR_STEP;
}

/**
 * Streams images from the host's engine into every node's containerd: one `docker save` of all
 * the images a node lacks (an image under several names, and layers images share, are in it
 * once) piped straight into one `ctr import` (no temporary copy on disk), and teed to every node
 * that lacks the same ones. An image a node has already, with the same ID, is not sent to it;
 * the decision is made per image and per node before anything is sent. One report per name:
 * loaded when some node loaded it.
 */
export async function loadImagesEverywhere(
  images: ImageStore,
  nodes: Node[],
  refs: string[],
  progress: (detail: string) => void,
  { stallMs = STREAM_STALL_MS }: { stallMs?: number } = {},
): Promise<LoadReport[]> {
  if (nodes.length === 0) return [];
  const started = performance.now();
  const names = [...new Set(refs)];
  const [infos, presents] = await Promise.all([
    Promise.all(names.map((r) => images.info(r))),
    Promise.all(nodes.map(clusterImages)),
  ]);
  const absent = names.filter((_, i) => !infos[i]);
  if (absent.length > 0) {
    throw new MinilabError('notFound', `image "${absent.join('", "')}" is not in the ${images.engine.name}`, {
      hint: `build or pull it first (${images.engine.cli} images lists what there is); nothing was loaded`,
    });
  }
  const wanted: Wanted[] = names.map((ref, i) => ({
    ref,
    name: normalizeRef(ref),
    id: infos[i]!.id,
    sizeBytes: infos[i]!.sizeBytes,
  }));
  const plans: NodePlan[] = nodes.map((node, i) => {
    const present = presents[i]!;
    const has = (w: Wanted) => present.some((p) => p.ref === w.name && p.id === w.id);
    return { node, present, send: wanted.filter((w) => !has(w)), unchanged: wanted.filter(has) };
  });
  // Nodes that lack the same images share one stream out of the engine.
  const groups = new Map<string, NodePlan[]>();
  for (const plan of plans.filter((p) => p.send.length > 0)) {
    const key = plan.send.map((w) => w.ref).join('\n');
    groups.set(key, [...(groups.get(key) ?? []), plan]);
  }
  const several = nodes.length > 1;
  // Per node: the mirror step of what it imported, and of what it had already.
  const loadedStep = new Map<NodePlan, MirrorStep>();
  const unchangedStep = new Map<NodePlan, MirrorStep>();
  const failures: NodeFailure[] = [];
  const fail = (on: NodePlan[], err: unknown) =>
    failures.push({ nodes: on.map((p) => p.node), error: asError(err) });
  await Promise.all([
    ...[...groups.values()].map(async (group) => {
      const send = group[0]!.send;
      const what = send.map((w) => w.ref).join(', ');
      const total = [...new Map(send.map((w) => [w.id, w.sizeBytes])).values()].reduce((a, b) => a + b, 0);
      // streams of several groups run at once: each says whose it is
      const whose =
        groups.size < 2
          ? ''
          : group.length <= 3
            ? group.map((p) => p.node.name).join(', ')
            : `${group.length} nodes`;
      let results: PromiseSettledResult<Publication[]>[];
      try {
        results = await importStream(
          group.map((p) => p.node),
          await images.save(send.map((w) => w.ref)),
          what,
          {
            total,
            progress: whose ? (d) => progress(`${whose}: ${d}`) : progress,
            nameNodes: several,
            stallMs,
          },
        );
      } catch (err) {
        fail(group, err);
        return;
      }
      // every node whose import succeeded is named and marked, whatever the others did
      await Promise.all(
        group.map(async (plan, i) => {
          const r = results[i]!;
          if (r.status === 'rejected') return fail([plan], r.reason);
          try {
            const { step, unplaced } = await nameImported(plan.node, send, r.value);
            loadedStep.set(plan, step);
            if (unplaced.length > 0)
              fail([plan], unplacedError(unplaced, several ? ` on ${plan.node.name}` : ''));
          } catch (err) {
            fail([plan], err);
          }
        }),
      );
    }),
    ...plans.map(async (plan) => {
      try {
        unchangedStep.set(plan, await mirrorUnchanged(plan));
      } catch (err) {
        fail([plan], err);
      }
    }),
  ]);
  if (failures.length > 0) throw loadFailure(names.join(', '), failures, nodes);
  const ms = performance.now() - started;
  return wanted.map((w) => {
    const sentTo = plans.filter((p) => p.send.includes(w));
    // each node's step for this name: of its import where it was sent, else of what it had
    const steps = plans.map(
      (p) => (sentTo.includes(p) ? loadedStep.get(p) : unchangedStep.get(p)) ?? NO_MIRROR_STEP,
    );
    const why = steps.map((s) => notMirrored(s, w.name)).find(Boolean);
    return {
      ref: w.ref,
      status: sentTo.length > 0 ? 'loaded' : 'unchanged',
      sizeBytes: w.sizeBytes,
      ms,
      mirrorMs: Math.max(...steps.map((s) => s.ms)),
      batch: wanted.length,
      ...(why ? { notMirrored: why } : {}),
    };
  });
}

/** As loadImagesEverywhere, into one node. */
export function loadImages(
  images: ImageStore,
  node: Node,
  refs: string[],
  progress: (ref: string, detail: string) => void,
): Promise<LoadReport[]> {
  return loadImagesEverywhere(images, [node], refs, (d) => progress(refs.join(', '), d));
}

/** The size of an archive to load, once it is known to be a file this process can read. */
async function archiveSize(file: string): Promise<number> {
  const hint = 'give the path of a docker save or OCI archive file';
  let info: Stats;
  try {
    info = await stat(file);
  } catch {
    throw new MinilabError('notFound', `archive ${file} does not exist`, { hint });
  }
  if (!info.isFile()) throw new MinilabError('usage', `archive ${file} is not a file`, { hint });
  try {
    await access(file, constants.R_OK);
  } catch {
    throw new MinilabError('usage', `archive ${file} cannot be read (permission denied)`, {
      hint: `${hint} that this user can read`,
    });
  }
  return info.size;
}

/** Streams an image archive file (docker save or OCI layout tar) into the node. */
export async function loadArchive(
  node: Node,
  file: string,
  progress: (d: string) => void,
): Promise<LoadReport> {
  const size = await archiveSize(file);
  const started = performance.now();
  const imported = only(await importStream([node], createReadStream(file), file, { total: size, progress }));
  const step = await markLoaded(node, imported);
  const why = notMirrored(step);
  return {
    ref: file,
    status: 'loaded',
    sizeBytes: size,
    ms: performance.now() - started,
    mirrorMs: step.ms,
    batch: 1,
    ...(why ? { notMirrored: why } : {}),
  };
}

export const describeLoad = (r: LoadReport) =>
  `${r.ref}: ${r.status} (${(r.sizeBytes / 1e6).toFixed(0)} MB` +
  (r.batch > 1 ? `; ${formatMs(r.ms)} for the ${r.batch} names together)` : ` in ${formatMs(r.ms)})`) +
  (r.notMirrored ? `; not served to pulls: ${r.notMirrored}` : '');

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
    .execStream(['ctr', '-n', 'k8s.io', 'images', 'export', '--local', '-', image.ref], {
      stdout: archive,
      stderr,
      timeoutMs: 30 * 60_000,
      // as an image load from the engine: a stream that stops is a failure, not a wait of 30 minutes
      stallMs: STREAM_STALL_MS,
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
  const [exportDone, importDone] = await Promise.allSettled([
    exported,
    importStream([to], archive, image.ref).then(only),
  ]);
  if (exportDone.status === 'rejected') throw exportDone.reason;
  if (importDone.status === 'rejected') throw importDone.reason;
  // as containerd named it here (the same digest as there, unless the export changed it)
  const copied = importDone.value.find((i) => i.ref === image.ref) ?? {
    ref: image.ref,
    digest: image.digest,
  };
  await markLoaded(to, [{ ...copied, ...(image.engineId ? { engineId: image.engineId } : {}) }]);
}
