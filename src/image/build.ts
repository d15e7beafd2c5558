import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createReadStream } from 'node:fs';
import tarFs from 'tar-fs';
import type { Readable } from 'node:stream';
import type { Reporter } from '../reporter.js';
import { MinilabError } from '../errors.js';
import { CONTAINERD_PINNED_LABEL, Labels, ownedLabels } from '../labels.js';
import { runInNode } from '../providers/run.js';
import { parseImageList } from '../cluster/images.js';
import { planPublish } from '../cluster/mirror.js';
import type { ImageStore } from '../providers/types.js';
import { privateDir } from '../private-files.js';
import { projectRoot } from '../version.js';
import {
  fileLayer,
  zstdLayer,
  imageArchive,
  layerFromEntries,
  normalizeRef,
  type ImageSpec,
  type Layer,
  type LayerEntry,
} from './archive.js';
import { cacheKey } from './cache.js';
import {
  KUBE_COMMANDS,
  flannelImage,
  nodeImageRef,
  readComponents,
  storageImages,
  validateKubernetesVersion,
  type Components,
} from './components.js';
import { DEFAULT_RELEASE_URL, RELEASE_BINARIES, ensureReleaseComponents } from './release.js';
import { runScript } from './run-script.js';
import { ensureRuntime, type RuntimeStage, type RuntimeVersions } from './runtime.js';

export interface BuildContext {
  /** The engine's image store the node image is built in. */
  images: ImageStore;
  reporter: Reporter;
  home: string;
  extraLabels: Record<string, string>;
}

/** Where Kubernetes comes from: built from Go modules (offline) or official releases (internet). */
export type ComponentSource = 'go' | 'release';

export interface BuildOptions {
  force?: boolean;
  source?: ComponentSource;
  /** Base URL of the release downloads (source "release"); DEFAULT_RELEASE_URL when not given. */
  releaseUrl?: string;
}

export interface BuildResult {
  ref: string;
  source: ComponentSource;
  sizeBytes: number;
  reused: boolean;
  components: Components;
  runtime: RuntimeVersions;
  preloaded: { ref: string; sizeBytes: number }[];
}

const imagesDir = join(projectRoot, 'images');

/**
 * Builds the node image for a Kubernetes version in named, cached stages:
 * base root filesystem, container runtime, Kubernetes components -> component images -> node image.
 * Components and their images come from Go modules (go build, our own image layers) or, with
 * source "release", from official release binaries (sha256-verified) and registry images.
 * A second run with nothing changed reuses every stage.
 */
/** Where a node keeps containerd's content store (outside the /var volume; see assembleNode). */
const CONTENT_DIR = '/opt/minilab/containerd-content';
/** Where a node keeps the snapshots unpacked at build time (linked from containerd's, in /var). */
const SNAPSHOT_DIR = '/opt/minilab/containerd-snapshots';

export async function buildNodeImage(
  ctx: BuildContext,
  version: string,
  opts: BuildOptions = {},
): Promise<BuildResult> {
  validateKubernetesVersion(version);
  const { reporter } = ctx;
  const cache = join(ctx.home, 'cache');
  await privateDir(cache);
  const source = opts.source ?? 'go';
  const release = source === 'release';

  const base = await reporter.step('Base root filesystem (Debian trixie, systemd)', (progress) =>
    ensureBase(ctx, cache, progress),
  );
  const runtime = await reporter.step(
    'Container runtime (containerd, runc, crictl, registry: go build)',
    (progress) => ensureRuntime(cache, progress),
  );
  const components = await reporter.step(
    `Kubernetes ${version} ${release ? 'release binaries (download, sha256-verified)' : 'components (go build)'}`,
    (progress) =>
      release
        ? ensureRelease(cache, version, opts.releaseUrl ?? DEFAULT_RELEASE_URL, progress)
        : ensureComponents(cache, version, progress),
  );
  const images = await reporter.step(
    `Component images (${release ? 'registry pulls' : 'kubeadm list'} + storage)`,
    (progress) =>
      release
        ? pulledImages(ctx, components, base.toolsLayer, progress)
        : componentImages(cache, components, base.toolsLayer),
  );

  const nodeKey = await cacheKey({
    values: { base: base.key, runtime: runtime.key, components: components.key, images: images.key, version },
    // The recipe below is an input too: a change to this file rebuilds the node image.
    paths: [
      join(imagesDir, 'node'),
      fileURLToPath(import.meta.url),
      // where the runtime's files go in the node
      fileURLToPath(new URL('./runtime.js', import.meta.url)),
    ],
    root: imagesDir,
  });
  const ref = nodeImageRef(version);
  const existing = await ctx.images.info(ref);
  if (existing && existing.labels[Labels.buildKey] === nodeKey && !opts.force) {
    reporter.info(`✓ Node image ${ref} is up to date`);
    return {
      ref,
      source,
      sizeBytes: existing.sizeBytes,
      reused: true,
      components: components.info,
      runtime: runtime.info,
      preloaded: images.preloaded,
    };
  }
  await reporter.step(
    `Node image ${ref} (preloading ${images.preloaded.length} images into containerd)`,
    (progress) =>
      assembleNode(ctx, { ref, key: nodeKey, baseRef: base.ref, runtime, components, images }, progress),
  );
  const info = await ctx.images.info(ref);
  return {
    ref,
    source,
    sizeBytes: info?.sizeBytes ?? 0,
    reused: false,
    components: components.info,
    runtime: runtime.info,
    preloaded: images.preloaded,
  };
}

async function ensureBase(ctx: BuildContext, cache: string, progress: (s: string) => void) {
  const baseDir = join(imagesDir, 'base');
  const key = await cacheKey({
    paths: ['packages.txt', 'build-rootfs.sh', 'clean-rootfs.sh'].map((f) => join(baseDir, f)),
    root: imagesDir,
  });
  const dir = join(cache, 'base', key);
  const rootfs = join(dir, 'rootfs.tar');
  const toolsKey = await cacheKey({ paths: [join(baseDir, 'build-tools-layer.sh')], root: imagesDir });
  const toolsLayer = join(dir, `tools-layer-${toolsKey}.tar`);
  await privateDir(dir);
  if (!existsSync(rootfs)) {
    progress('debootstrap (about a minute)');
    await runScript(join(baseDir, 'build-rootfs.sh'), [rootfs], {
      progress,
      what: 'building the base root filesystem',
      hint: 'debootstrap needs root and Debian archive access; see the lines above',
    });
  }
  if (!existsSync(toolsLayer)) {
    await runScript(join(baseDir, 'build-tools-layer.sh'), [rootfs, toolsLayer], {
      progress,
      what: 'building the tools layer',
      hint: 'see the lines above',
    });
  }
  const ref = `minilab/base:${key}`;
  if (!(await ctx.images.info(ref))) {
    progress(`importing into the ${ctx.images.engine.name}`);
    await ctx.images.importRootfs(createReadStream(rootfs), ref, [
      'CMD ["/sbin/init"]',
      `LABEL ${Labels.managed}=true`,
    ]);
  }
  return { key, ref, toolsLayer };
}

/** The Kubernetes binaries and versions a node image is made from, whichever the source. */
interface ComponentsStage {
  key: string;
  dir: string;
  info: Components;
  /** Files and /usr/bin links that put the Kubernetes commands on the node. */
  nodeBinaries: LayerEntry[];
}

/**
 * The node's Kubernetes binaries in /usr/local/bin with the /usr/bin links the node files expect:
 * the multi-call `kube` for every command (go), or the release's own kubeadm, kubelet, kubectl.
 */
function nodeBinaries(dir: string, multiCall: boolean): LayerEntry[] {
  const files = multiCall ? ['kube'] : RELEASE_BINARIES;
  const commands = multiCall ? KUBE_COMMANDS : RELEASE_BINARIES;
  // flannel's CNI plugin, where containerd looks for CNI plugins (built with the Go components).
  const cni: LayerEntry[] = multiCall
    ? [{ type: 'host-file', name: 'usr/lib/cni/flannel', path: join(dir, 'flannel'), mode: 0o755 }]
    : [];
  return [
    ...cni,
    ...files.map((f) => ({
      type: 'host-file' as const,
      name: `usr/local/bin/${f}`,
      path: join(dir, f),
      mode: 0o755,
    })),
    ...commands.map((cmd) => ({
      type: 'symlink' as const,
      name: `usr/bin/${cmd}`,
      target: `/usr/local/bin/${multiCall ? 'kube' : cmd}`,
    })),
  ];
}

/** The Kubernetes components of `version` built from Go modules (cached by recipe and version). */
export async function ensureComponents(
  cache: string,
  version: string,
  progress: (s: string) => void,
): Promise<ComponentsStage> {
  const key = await cacheKey({
    values: { version },
    paths: [join(imagesDir, 'components')],
    root: imagesDir,
  });
  const dir = join(cache, 'components', `${version}-${key}`);
  if (!existsSync(join(dir, 'components.json'))) {
    await privateDir(dir);
    await runScript(join(imagesDir, 'components', 'build.sh'), [version, dir], {
      progress,
      what: `building Kubernetes ${version} from Go modules`,
      hint: 'the Go module proxy must be reachable and the version must exist there (go list -m -versions k8s.io/kubernetes)',
    });
  }
  return { key, dir, info: await readComponents(dir), nodeBinaries: nodeBinaries(dir, true) };
}

async function ensureRelease(
  cache: string,
  version: string,
  baseUrl: string,
  progress: (s: string) => void,
): Promise<ComponentsStage> {
  // The provisioner version the Go build pins, so both sources preload the same one.
  const script = await readFile(join(imagesDir, 'components', 'build.sh'), 'utf8');
  const pinned = /^DEFAULT_LPP_VERSION=(v[0-9.]+)$/m.exec(script)?.[1];
  if (!pinned) throw new MinilabError('unexpected', 'images/components/build.sh pins no DEFAULT_LPP_VERSION');
  const c = await ensureReleaseComponents(version, {
    baseUrl,
    cacheDir: join(cache, 'release'),
    localPathProvisioner: pinned,
    progress,
  });
  return { ...c, nodeBinaries: nodeBinaries(c.dir, false) };
}

/** Finds the image kubeadm expects for a component (e.g. "kube-apiserver", "coredns/coredns"). */
function kubeadmImage(c: Components, name: string): string {
  const ref = c.images.find((i) => i.replace(/:[^:/]+$/, '').endsWith(`/${name}`));
  if (!ref) throw new MinilabError('unexpected', `kubeadm lists no ${name} image for ${c.kubernetes}`);
  return ref;
}

/** The images preloaded into the node: written by our archive writer, or pulled by the engine. */
interface ImageSet {
  key: string;
  specs: ImageSpec[];
  pulled: string[];
  preloaded: { ref: string; sizeBytes: number }[];
  /** Images unpacked into snapshots at build time (see assembleNode). */
  unpacked: string[];
}

async function imageSet(
  specs: ImageSpec[],
  pulled: { ref: string; id: string; sizeBytes: number }[],
  unpacked: string[] = [],
): Promise<ImageSet> {
  const key = await cacheKey({
    values: Object.fromEntries([
      ...specs.map((s) => [s.ref, s.layers.map((l) => l.digest).join(',')]),
      ...pulled.map((p) => [p.ref, p.id]),
    ]),
  });
  const preloaded = [
    ...specs.map((s) => ({ ref: s.ref, sizeBytes: s.layers.reduce((n, l) => n + l.size, 0) })),
    ...pulled.map((p) => ({ ref: p.ref, sizeBytes: p.sizeBytes })),
  ];
  return { key, specs, pulled: pulled.map((p) => p.ref), preloaded, unpacked };
}

/** The storage helper pod's image (a shell and coreutils): our tools layer, whichever the source. */
const storageHelper = (c: Components, tools: Layer): ImageSpec => ({
  ref: storageImages(c).helper,
  layers: [tools],
  config: { cmd: ['/bin/sh'] },
});

async function componentImages(
  cache: string,
  components: ComponentsStage,
  toolsPath: string,
): Promise<ImageSet> {
  const c = components.info;
  const dir = join(cache, 'layers', components.key);
  const bin = (name: string) => join(components.dir, name);
  const layer = async (name: string, entries: Parameters<typeof layerFromEntries>[0]): Promise<Layer> =>
    layerFromEntries(entries, join(dir, `${name}.tar`));
  const kube = await layer('kube', [
    { type: 'host-file', name: 'usr/local/bin/kube', path: bin('kube'), mode: 0o755 },
    ...KUBE_COMMANDS.map((cmd) => ({
      type: 'symlink' as const,
      name: `usr/local/bin/${cmd}`,
      target: 'kube',
    })),
  ]);
  const etcd = await layer('etcd', [
    { type: 'host-file', name: 'usr/local/bin/etcd', path: bin('etcd'), mode: 0o755 },
  ]);
  const coredns = await layer('coredns', [
    { type: 'host-file', name: 'coredns', path: bin('coredns'), mode: 0o755 },
  ]);
  const pause = await layer('pause', [{ type: 'host-file', name: 'pause', path: bin('pause'), mode: 0o755 }]);
  const lpp = await layer('local-path-provisioner', [
    {
      type: 'host-file',
      name: 'usr/bin/local-path-provisioner',
      path: bin('local-path-provisioner'),
      mode: 0o755,
    },
  ]);
  const flannel = await layer('flannel', [
    { type: 'host-file', name: 'opt/bin/flanneld', path: bin('flanneld'), mode: 0o755 },
    { type: 'host-file', name: 'opt/bin/install-conf', path: bin('install-conf'), mode: 0o755 },
  ]);
  // Every layer goes into the node image zstd-compressed (its blobs: 317 MB plain). The kube
  // layer's two chains are unpacked at build time (assembleNode), so a start does not decompress
  // them; the others are unpacked by containerd on first use, as before.
  const zst = (l: Layer) => zstdLayer(l, join(dir, `${l.digest.slice(7, 23)}.tar.zst`));
  const z = {
    kube: await zst(kube),
    etcd: await zst(etcd),
    coredns: await zst(coredns),
    pause: await zst(pause),
    lpp: await zst(lpp),
    flannel: await zst(flannel),
    tools: await zst(await fileLayer(toolsPath)),
  };
  const storage = storageImages(c);
  const specs: ImageSpec[] = [
    { ref: kubeadmImage(c, 'kube-apiserver'), layers: [z.kube], config: {} },
    { ref: kubeadmImage(c, 'kube-controller-manager'), layers: [z.kube], config: {} },
    { ref: kubeadmImage(c, 'kube-scheduler'), layers: [z.kube], config: {} },
    { ref: kubeadmImage(c, 'kube-proxy'), layers: [z.tools, z.kube], config: {} },
    { ref: kubeadmImage(c, 'etcd'), layers: [z.etcd], config: {} },
    { ref: kubeadmImage(c, 'coredns'), layers: [z.coredns], config: { entrypoint: ['/coredns'] } },
    { ref: kubeadmImage(c, 'pause'), layers: [z.pause], config: { entrypoint: ['/pause'] } },
    {
      ref: storage.provisioner,
      layers: [z.tools, z.lpp],
      config: { entrypoint: ['local-path-provisioner'] },
    },
    storageHelper(c, z.tools),
    // iptables (through the tools layer's wrapper) for flannel's masquerading rules.
    { ref: flannelImage(c), layers: [z.tools, z.flannel], config: { entrypoint: ['/opt/bin/flanneld'] } },
  ];
  const withKube = specs.filter((s) => s.layers.includes(z.kube)).map((s) => s.ref);
  return imageSet(specs, [], withKube);
}

/**
 * Release mode: kubeadm's images and the local-path-provisioner as their projects publish them,
 * pulled by the Docker engine (once: a tag already in the engine is used as it is).
 */
async function pulledImages(
  ctx: BuildContext,
  components: ComponentsStage,
  toolsPath: string,
  progress: (s: string) => void,
): Promise<ImageSet> {
  const c = components.info;
  const pulled: { ref: string; id: string; sizeBytes: number }[] = [];
  for (const ref of [...c.images, storageImages(c).provisioner]) {
    if (!(await ctx.images.info(ref))) {
      progress(`pulling ${ref}`);
      await ctx.images.pull(ref, (d) => progress(`pulling ${ref}: ${d}`));
    }
    const info = await ctx.images.info(ref);
    if (!info) throw new MinilabError('unexpected', `${ref} is not in the Docker engine after pulling it`);
    pulled.push({ ref, id: info.id, sizeBytes: info.sizeBytes });
  }
  return imageSet([storageHelper(c, await fileLayer(toolsPath))], pulled);
}

/** Files of images/node/files, owned by root, as a tar stream for the build container. */
function nodeFiles(): Readable {
  return tarFs.pack(join(imagesDir, 'node', 'files'), {
    ignore: (name) => name.endsWith('.keep'),
    map: (h) => ({ ...h, uid: 0, gid: 0 }),
  }) as unknown as Readable;
}

async function assembleNode(
  ctx: BuildContext,
  job: {
    ref: string;
    key: string;
    baseRef: string;
    runtime: RuntimeStage;
    components: ComponentsStage;
    images: ImageSet;
  },
  progress: (s: string) => void,
): Promise<void> {
  const builder = await ctx.images.builder({
    name: `minilab-build-${job.key}`,
    image: job.baseRef,
    labels: ownedLabels('', 'build', ctx.extraLabels),
  });
  const { node } = builder;
  try {
    const sh = (command: string | string[], what: string, input?: Readable) =>
      runInNode(node, command, `node image build: ${what}`, {
        input,
        kind: 'environment',
        timeoutMs: 30 * 60_000,
        hint: 'the lines above show why; run the build again with -v for details',
      });
    progress('copying node files, the container runtime and Kubernetes binaries');
    await node.copyIn('/', nodeFiles());
    const c = job.components.info;
    const binLayer = await layerFromEntries(
      [
        ...job.runtime.nodeFiles,
        ...job.components.nodeBinaries,
        { type: 'file', name: 'etc/minilab/sandbox-image', content: `${kubeadmImage(c, 'pause')}\n` },
        { type: 'file', name: 'etc/minilab/components.json', content: JSON.stringify(c, null, 2) + '\n' },
      ],
      join(ctx.home, 'cache', 'layers', `node-bin-${job.key}.tar`),
    );
    await node.copyIn('/', createReadStream(binLayer.path));
    // containerd's content store (the preloaded images' blobs) lives in the image's own filesystem,
    // linked from /var: /var is a volume in a node, and the engine copies an image's /var into a
    // new volume when it creates the container (263 MB of blobs made that take 0.5 s). Snapshots
    // stay under /var (overlayfs cannot stack its upper directories on overlayfs).
    await sh(
      `mkdir -p ${CONTENT_DIR} /var/lib/containerd
       store=/var/lib/containerd/io.containerd.content.v1.content
       if [ -e "$store" ] && [ ! -L "$store" ]; then rm -rf "$store"; fi
       ln -sfn ${CONTENT_DIR} "$store"
       sed -i "s|^\\(\\s*sandbox = \\).*|\\1'$(cat /etc/minilab/sandbox-image)'|" /etc/containerd/config.toml
       mkdir -p /run/containerd
       nohup containerd >/tmp/containerd.log 2>&1 &
       for i in $(seq 1 50); do [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done
       cat /tmp/containerd.log >&2; exit 1`,
      'starting containerd',
    );
    const { specs, pulled, unpacked } = job.images;
    const importImages = 'ctr -n k8s.io images import --local --no-unpack --all-platforms - >/dev/null';
    progress(`importing ${specs.length + pulled.length} images`);
    const unpackNow = specs.filter((s) => unpacked.includes(s.ref));
    await sh(
      importImages,
      'importing images into containerd',
      imageArchive(specs.filter((s) => !unpackNow.includes(s))),
    );
    if (unpackNow.length > 0) {
      progress(`importing and unpacking ${unpackNow.map((s) => s.ref).join(', ')}`);
      // The unpacker applies each layer straight into its snapshot's directory (no mount), so
      // this works on the build container's overlay root; see below for where they are kept.
      await sh(
        'ctr -n k8s.io images import --local - >/dev/null',
        'importing and unpacking images',
        imageArchive(unpackNow),
      );
    }
    for (const ref of pulled) {
      progress(`importing ${ref}`);
      await sh(importImages, `importing ${ref} into containerd`, await ctx.images.save(ref));
    }
    const refs = [...specs.map((i) => i.ref), ...pulled].map(normalizeRef);
    // one listing: the check that every image is there, then the digests the mirror is given
    const listed = parseImageList(await sh('ctr -n k8s.io images ls', 'listing images'));
    const missing = refs.filter((r) => !listed.some((i) => i.ref === r));
    if (missing.length > 0)
      throw new MinilabError('unexpected', `containerd lacks ${missing.join(', ')} after import`);
    // Pinned images are never garbage-collected by the kubelet. The references (kubeadm's output)
    // are the script's arguments, never part of its text.
    await sh(
      [
        'bash',
        '-euo',
        'pipefail',
        '-c',
        `for ref; do ctr -n k8s.io images label "$ref" ${CONTAINERD_PINNED_LABEL}=pinned >/dev/null; done`,
        'pin',
        ...refs,
      ],
      'pinning the preloaded images',
    );
    // The node's mirror of loaded images serves the preloaded ones too, so that a pull of one
    // with imagePullPolicy Always works offline: hard links within the image's own filesystem.
    const preloaded = listed
      .filter((i) => refs.includes(i.ref))
      .map((i) => ({ ref: i.ref, digest: i.digest }));
    const plan = planPublish(preloaded);
    if (plan.skipped.length > 0)
      throw new MinilabError('unexpected', `the mirror cannot hold ${plan.skipped.join(', ')}`);
    await sh(['minilab-mirror', 'publish', ...plan.args], 'publishing the preloaded images to the mirror');
    progress('stopping containerd and committing');
    await sh(
      `pkill containerd || true
       for i in $(seq 1 50); do pgrep -x containerd >/dev/null || break; sleep 0.1; done
       rm -rf /tmp/* /run/containerd /var/log/*.log`,
      'stopping containerd',
    );
    if (unpackNow.length > 0)
      await sh(
        // Snapshots made here live in the image's own filesystem, linked from /var as the content
        // store is (the engine copies /var into each new node's volume). They are only ever lower
        // layers of a pod's overlay mount, which may sit on the node's overlay root; containers'
        // upper directories are still made in the volume. The kube binary in them is the node's
        // /usr/local/bin/kube (hard links: the image holds it once).
        `set -eu
         snapshots=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots
         mkdir -p ${SNAPSHOT_DIR}
         for d in "$snapshots"/*; do
           [ -d "$d" ] && [ ! -L "$d" ] || continue
           mv "$d" ${SNAPSHOT_DIR}/
           ln -s ${SNAPSHOT_DIR}/"\${d##*/}" "$d"
         done
         linked=0
         for f in ${SNAPSHOT_DIR}/*/fs/usr/local/bin/kube; do
           [ -f "$f" ] && cmp -s "$f" /usr/local/bin/kube || continue
           ln -f /usr/local/bin/kube "$f"
           linked=$((linked + 1))
         done
         if [ "$linked" -eq 0 ]; then echo "no unpacked snapshot holds /usr/local/bin/kube" >&2; exit 1; fi`,
        'moving the unpacked snapshots into the image',
      );
    await builder.commit(job.ref, [
      'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
      'CMD []',
      'STOPSIGNAL SIGRTMIN+3',
      'ENV container=docker',
      // ctr asks the daemon for its deprecations on every call and prints them (on cgroup v1 hosts:
      // one line per call). containerd's own log says it once; `ctr deprecations list` shows them.
      'ENV CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS=1',
      `LABEL ${Labels.managed}=true`,
      `LABEL ${Labels.version}=${c.kubernetes}`,
      `LABEL ${Labels.buildKey}=${job.key}`,
      ...(c.flannel ? [`LABEL ${Labels.flannel}=${c.flannel}`] : []),
      `LABEL ${Labels.containerd}=${job.runtime.info.containerd}`,
      `LABEL ${Labels.runc}=${job.runtime.info.runc}`,
    ]);
  } finally {
    await builder.remove();
    await rm(join(ctx.home, 'cache', 'layers', `node-bin-${job.key}.tar`), { force: true });
  }
}
