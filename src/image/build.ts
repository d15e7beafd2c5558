import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createReadStream } from 'node:fs';
import tarFs from 'tar-fs';
import type { Readable } from 'node:stream';
import type { Reporter } from '../cli/output.js';
import { MinilabError } from '../errors.js';
import type { Engine } from '../runtime/engine.js';
import { Labels, ownedLabels } from '../runtime/labels.js';
import { projectRoot } from '../version.js';
import { imageArchive, layerFromEntries, normalizeRef, type ImageSpec, type Layer } from './archive.js';
import { cacheKey } from './cache.js';
import {
  KUBE_COMMANDS,
  nodeImageRef,
  readComponents,
  storageImages,
  validateKubernetesVersion,
  type Components,
} from './components.js';
import { runScript } from './run-script.js';

export const BUILD_KEY_LABEL = 'io.minilab.build-key';

export interface BuildContext {
  engine: Engine;
  reporter: Reporter;
  home: string;
  extraLabels: Record<string, string>;
}

export interface BuildResult {
  ref: string;
  sizeBytes: number;
  reused: boolean;
  components: Components;
  preloaded: { ref: string; sizeBytes: number }[];
}

const imagesDir = join(projectRoot, 'images');

/**
 * Builds the node image for a Kubernetes version in named, cached stages:
 * base root filesystem -> Kubernetes components (go build) -> component images -> node image.
 * A second run with nothing changed reuses every stage.
 */
export async function buildNodeImage(
  ctx: BuildContext,
  version: string,
  opts: { force?: boolean } = {},
): Promise<BuildResult> {
  validateKubernetesVersion(version);
  const { reporter } = ctx;
  const cache = join(ctx.home, 'cache');

  const base = await reporter.step('Base root filesystem (Debian trixie, systemd, containerd)', (progress) =>
    ensureBase(ctx, cache, progress),
  );
  const components = await reporter.step(`Kubernetes ${version} components (go build)`, (progress) =>
    ensureComponents(cache, version, progress),
  );
  const images = await reporter.step('Component images (kubeadm list + storage)', () =>
    componentImages(cache, components, base.toolsLayer),
  );

  const nodeKey = await cacheKey({
    values: { base: base.key, components: components.key, images: images.key, version },
    // The recipe below is an input too: a change to this file rebuilds the node image.
    paths: [join(imagesDir, 'node'), fileURLToPath(import.meta.url)],
    root: imagesDir,
  });
  const ref = nodeImageRef(version);
  const existing = await ctx.engine.imageInfo(ref);
  if (existing && existing.labels[BUILD_KEY_LABEL] === nodeKey && !opts.force) {
    reporter.info(`✓ Node image ${ref} is up to date`);
    return {
      ref,
      sizeBytes: existing.sizeBytes,
      reused: true,
      components: components.info,
      preloaded: images.preloaded,
    };
  }
  await reporter.step(
    `Node image ${ref} (preloading ${images.specs.length} images into containerd)`,
    (progress) =>
      assembleNode(ctx, { ref, key: nodeKey, baseRef: base.ref, components, images: images.specs }, progress),
  );
  const info = await ctx.engine.imageInfo(ref);
  return {
    ref,
    sizeBytes: info?.sizeBytes ?? 0,
    reused: false,
    components: components.info,
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
  await mkdir(dir, { recursive: true });
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
  if (!(await ctx.engine.imageInfo(ref))) {
    progress('importing into the Docker engine');
    await ctx.engine.importRootfs(createReadStream(rootfs), ref, [
      'CMD ["/sbin/init"]',
      `LABEL ${Labels.managed}=true`,
    ]);
  }
  return { key, ref, toolsLayer };
}

async function ensureComponents(cache: string, version: string, progress: (s: string) => void) {
  const key = await cacheKey({
    values: { version },
    paths: [join(imagesDir, 'components')],
    root: imagesDir,
  });
  const dir = join(cache, 'components', `${version}-${key}`);
  if (!existsSync(join(dir, 'components.json'))) {
    await runScript(join(imagesDir, 'components', 'build.sh'), [version, dir], {
      progress,
      what: `building Kubernetes ${version} from Go modules`,
      hint: 'the Go module proxy must be reachable and the version must exist there (go list -m -versions k8s.io/kubernetes)',
    });
  }
  return { key, dir, info: await readComponents(dir) };
}

/** Finds the image kubeadm expects for a component (e.g. "kube-apiserver", "coredns/coredns"). */
function kubeadmImage(c: Components, name: string): string {
  const ref = c.images.find((i) => i.replace(/:[^:/]+$/, '').endsWith(`/${name}`));
  if (!ref) throw new MinilabError('unexpected', `kubeadm lists no ${name} image for ${c.kubernetes}`);
  return ref;
}

async function componentImages(
  cache: string,
  components: { key: string; dir: string; info: Components },
  toolsPath: string,
) {
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
  const tools: Layer = { path: toolsPath, ...(await digestOf(toolsPath)) };
  const storage = storageImages(c);
  const specs: ImageSpec[] = [
    { ref: kubeadmImage(c, 'kube-apiserver'), layers: [kube], config: {} },
    { ref: kubeadmImage(c, 'kube-controller-manager'), layers: [kube], config: {} },
    { ref: kubeadmImage(c, 'kube-scheduler'), layers: [kube], config: {} },
    { ref: kubeadmImage(c, 'kube-proxy'), layers: [tools, kube], config: {} },
    { ref: kubeadmImage(c, 'etcd'), layers: [etcd], config: {} },
    { ref: kubeadmImage(c, 'coredns'), layers: [coredns], config: { entrypoint: ['/coredns'] } },
    { ref: kubeadmImage(c, 'pause'), layers: [pause], config: { entrypoint: ['/pause'] } },
    { ref: storage.provisioner, layers: [tools, lpp], config: { entrypoint: ['local-path-provisioner'] } },
    { ref: storage.helper, layers: [tools], config: { cmd: ['/bin/sh'] } },
  ];
  const key = await cacheKey({
    values: Object.fromEntries(specs.map((s) => [s.ref, s.layers.map((l) => l.digest).join(',')])),
  });
  const preloaded = specs.map((s) => ({ ref: s.ref, sizeBytes: s.layers.reduce((n, l) => n + l.size, 0) }));
  return { key, specs, preloaded };
}

const digestCache = new Map<string, { digest: string; size: number }>();
async function digestOf(path: string): Promise<{ digest: string; size: number }> {
  const hit = digestCache.get(path);
  if (hit) return hit;
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  const result = { digest: `sha256:${hash.digest('hex')}`, size: (await stat(path)).size };
  digestCache.set(path, result);
  return result;
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
    components: { dir: string; info: Components };
    images: ImageSpec[];
  },
  progress: (s: string) => void,
): Promise<void> {
  const { engine } = ctx;
  const name = `minilab-build-${job.key}`;
  await engine.remove(name);
  await engine.createPlain({
    name,
    image: job.baseRef,
    entrypoint: ['sleep', 'infinity'],
    labels: ownedLabels('', 'build', ctx.extraLabels),
    privileged: true,
  });
  try {
    await engine.start(name);
    const sh = async (script: string, what: string, input?: Readable) => {
      const r = await engine.exec(name, ['bash', '-euo', 'pipefail', '-c', script], { input });
      if (r.exitCode !== 0) {
        throw new MinilabError('environment', `node image build: ${what} failed`, {
          details: (r.stderr || r.stdout).trim().split('\n').slice(-15),
        });
      }
      return r.stdout;
    };
    progress('copying node files and Kubernetes binaries');
    await engine.putArchive(name, '/', nodeFiles());
    const c = job.components.info;
    const binLayer = await layerFromEntries(
      [
        {
          type: 'host-file',
          name: 'usr/local/bin/kube',
          path: join(job.components.dir, 'kube'),
          mode: 0o755,
        },
        ...KUBE_COMMANDS.map((cmd) => ({
          type: 'symlink' as const,
          name: `usr/bin/${cmd}`,
          target: '/usr/local/bin/kube',
        })),
        { type: 'file', name: 'etc/minilab/sandbox-image', content: `${kubeadmImage(c, 'pause')}\n` },
        { type: 'file', name: 'etc/minilab/components.json', content: JSON.stringify(c, null, 2) + '\n' },
      ],
      join(ctx.home, 'cache', 'layers', `node-bin-${job.key}.tar`),
    );
    await engine.putArchive(name, '/', createReadStream(binLayer.path));
    await sh(
      `sed -i "s|^\\(\\s*sandbox_image = \\).*|\\1\\"$(cat /etc/minilab/sandbox-image)\\"|" /etc/containerd/config.toml
       mkdir -p /run/containerd
       nohup containerd >/tmp/containerd.log 2>&1 &
       for i in $(seq 1 50); do [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done
       cat /tmp/containerd.log >&2; exit 1`,
      'starting containerd',
    );
    progress(`importing ${job.images.length} images`);
    await sh(
      'ctr -n k8s.io images import --no-unpack --all-platforms - >/dev/null',
      'importing images into containerd',
      imageArchive(job.images),
    );
    const refs = job.images.map((i) => normalizeRef(i.ref));
    const listed = (await sh('ctr -n k8s.io images ls -q', 'listing images')).split('\n');
    const missing = refs.filter((r) => !listed.includes(r));
    if (missing.length > 0)
      throw new MinilabError('unexpected', `containerd lacks ${missing.join(', ')} after import`);
    // Pinned images are never garbage-collected by the kubelet.
    await sh(
      refs
        .map((r) => `ctr -n k8s.io images label ${r} io.cri-containerd.pinned=pinned >/dev/null`)
        .join('\n'),
      'pinning the preloaded images',
    );
    progress('stopping containerd and committing');
    await sh(
      `pkill containerd || true
       for i in $(seq 1 50); do pgrep -x containerd >/dev/null || break; sleep 0.1; done
       rm -rf /tmp/* /run/containerd /var/log/*.log`,
      'stopping containerd',
    );
    await engine.commit(name, job.ref, [
      'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
      'CMD []',
      'STOPSIGNAL SIGRTMIN+3',
      'ENV container=docker',
      `LABEL ${Labels.managed}=true`,
      `LABEL ${Labels.version}=${c.kubernetes}`,
      `LABEL ${BUILD_KEY_LABEL}=${job.key}`,
    ]);
  } finally {
    await engine.remove(name);
    await rm(join(ctx.home, 'cache', 'layers', `node-bin-${job.key}.tar`), { force: true });
  }
}
