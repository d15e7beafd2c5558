import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { normalizeRef } from '../../src/image/archive.js';
import { buildNodeImage, type BuildContext } from '../../src/image/build.js';
import { Labels } from '../../src/labels.js';
import type { ImageBuilder, ImageInfo, ImageStore, Node } from '../../src/providers/types.js';
import { Reporter } from '../../src/reporter.js';

const VERSION = 'v1.37.2';

/** What images/components/build.sh would report (kubeadm's image list for the version included). */
const COMPONENTS = {
  kubernetes: VERSION,
  etcd: 'v3.6.6',
  coredns: 'v1.13.1',
  pause: '3.10.2',
  localPathProvisioner: 'v0.0.32',
  flannel: 'v0.28.10',
  images: [
    `registry.k8s.io/kube-apiserver:${VERSION}`,
    `registry.k8s.io/kube-controller-manager:${VERSION}`,
    `registry.k8s.io/kube-scheduler:${VERSION}`,
    `registry.k8s.io/kube-proxy:${VERSION}`,
    'registry.k8s.io/coredns/coredns:v1.13.1',
    'registry.k8s.io/pause:3.10.2',
    'registry.k8s.io/etcd:3.6.6-0',
  ],
};

/** What images/runtime/build.sh would report. */
const RUNTIME = {
  containerd: 'v2.3.7',
  runc: 'v1.4.4',
  crictl: 'v1.37.0',
  registry: 'v3.1.2',
  libseccomp: '2.5.4',
  goVersion: 'go1.26.8',
};

/** The stage scripts a build from nothing runs, in order. */
const STAGES = [
  'base/build-rootfs.sh',
  'base/build-tools-layer.sh',
  'runtime/build.sh',
  'components/build.sh',
];

/**
 * A `bash` first on PATH for the build's stage scripts (debootstrap, the tools layer, go build):
 * it records each script it is asked to run and writes small stand-ins for what that script makes.
 */
async function stageScripts(dir: string) {
  const bin = join(dir, 'bin');
  const log = join(dir, 'stages.log');
  const components = join(dir, 'components.json');
  await mkdir(bin);
  await writeFile(log, '');
  await writeFile(components, JSON.stringify(COMPONENTS));
  await writeFile(
    join(bin, 'bash'),
    `#!/bin/sh
if [ "$1" = --minilab-stub ]; then echo stub; exit 0; fi
stage="$(basename "$(dirname "$1")")/$(basename "$1")"
echo "$stage" >> '${log}'
case "$stage" in
  base/build-rootfs.sh) printf 'a root filesystem' > "$2" ;;
  base/build-tools-layer.sh) printf 'a tools layer' > "$3" ;;
  runtime/build.sh)
    mkdir -p "$2"
    for f in containerd containerd-shim-runc-v2 ctr runc crictl registry containerd.service; do printf '%s' "$f" > "$2/$f"; done
    printf '%s' '${JSON.stringify(RUNTIME)}' > "$2/runtime.json" ;;
  components/build.sh)
    mkdir -p "$3"
    for f in kube etcd coredns pause local-path-provisioner flanneld install-conf flannel; do printf '%s' "$f" > "$3/$f"; done
    cp '${components}' "$3/components.json" ;;
  *) exit 1 ;;
esac
`,
  );
  await chmod(join(bin, 'bash'), 0o755);
  return {
    bin,
    /** The stage scripts run so far, in order. */
    ran: async () => (await readFile(log, 'utf8')).split('\n').filter(Boolean),
  };
}

/** The RepoTags of an image archive's docker manifest. */
async function repoTags(archive: Readable): Promise<string[]> {
  let tags: string[] = [];
  const extract = tarStream.extract();
  extract.on('entry', (header, body, next) => {
    if (header.name !== 'manifest.json') {
      body.resume();
      body.on('end', () => next());
      return;
    }
    text(body).then((t) => {
      tags = (JSON.parse(t) as { RepoTags: string[] }[]).flatMap((m) => m.RepoTags);
      next();
    }, next);
  });
  await pipeline(archive, extract);
  return tags;
}

const drain = async (stream: Readable) => {
  for await (const _chunk of stream);
};

interface Build {
  name: string;
  image: string;
  /** What `ctr images import` was given in the build container. */
  imported: string[];
  /** The images `minilab-mirror publish` was given (REPO:TAG). */
  mirrored: string[];
  committed?: { ref: string; labels: Record<string, string> };
}

/**
 * An engine image store holding what was imported and committed, whose build containers run
 * every command successfully, keep what was imported into them and list it as containerd would.
 */
function fakeImages() {
  const images = new Map<string, ImageInfo>();
  const builds: Build[] = [];
  const keep = (ref: string, labels: Record<string, string>) =>
    images.set(ref, { id: `sha256:${images.size}`, tags: [ref], sizeBytes: 1000, created: '', labels });
  const store: Partial<ImageStore> = {
    engine: { name: 'fake engine', cli: 'fake' },
    info: async (ref) => images.get(ref),
    importRootfs: async (rootfs, ref) => {
      await drain(rootfs);
      keep(ref, {});
    },
    builder: async (opts): Promise<ImageBuilder> => {
      const build: Build = { name: opts.name, image: opts.image, imported: [], mirrored: [] };
      builds.push(build);
      const node = {
        name: opts.name,
        copyIn: async (_dir: string, tar: Readable) => drain(tar),
        refresh: async () => ({ running: true }),
        exec: async (cmd: string[], o: { input?: unknown } = {}) => {
          if (o.input instanceof Readable) build.imported.push(...(await repoTags(o.input)));
          const refs = build.imported.map(normalizeRef);
          let stdout = '';
          // as ctr lists them: REF TYPE DIGEST SIZE UNIT PLATFORMS LABELS
          if (cmd.at(-1) === 'ctr -n k8s.io images ls')
            stdout = [
              'REF TYPE DIGEST SIZE PLATFORMS LABELS',
              ...refs.map((r) => `${r} oci sha256:${'ab'.repeat(32)} 1.0 MiB linux/amd64 -`),
            ].join('\n');
          if (cmd[0] === 'minilab-mirror')
            cmd.forEach((a, i) => a === 'image' && build.mirrored.push(`${cmd[i + 1]}:${cmd[i + 2]}`));
          return { exitCode: 0, stdout, stderr: '', started: true };
        },
      };
      return {
        node: node as unknown as Node,
        commit: async (ref, changes) => {
          const labels = Object.fromEntries(
            changes
              .filter((c) => c.startsWith('LABEL '))
              .map((c) => c.slice('LABEL '.length).split('=') as [string, string]),
          );
          build.committed = { ref, labels };
          keep(ref, labels);
        },
        remove: async () => undefined,
      };
    },
  };
  return { images: store as ImageStore, builds };
}

test(
  'image build --force makes the node image again from the cached stages; without it an up-to-date image is reused',
  { timeout: 60_000 },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'minilab-build-'));
    const path = process.env.PATH;
    try {
      const scripts = await stageScripts(dir);
      process.env.PATH = `${scripts.bin}:${path}`;
      // The build runs its scripts with this bash, never the real one (which would run debootstrap).
      assert.equal(execFileSync('bash', ['--minilab-stub'], { env: process.env }).toString(), 'stub\n');
      const engine = fakeImages();
      const ctx: BuildContext = {
        images: engine.images,
        reporter: new Reporter(new PassThrough(), new PassThrough(), {}, true),
        home: join(dir, 'home'),
        extraLabels: {},
      };
      const preloaded = [
        ...COMPONENTS.images,
        `docker.io/rancher/local-path-provisioner:${COMPONENTS.localPathProvisioner}`,
        'docker.io/minilab/storage-helper:v1',
        `ghcr.io/flannel-io/flannel:${COMPONENTS.flannel}`,
      ].sort();

      const first = await buildNodeImage(ctx, VERSION);
      assert.equal(first.reused, false);
      assert.deepEqual(await scripts.ran(), STAGES);
      assert.deepEqual(first.runtime, RUNTIME);
      const made = engine.builds[0];
      assert.ok(made?.committed);
      assert.equal(made.committed.ref, `minilab/node:${VERSION}`);
      const key = made.committed.labels[Labels.buildKey];
      assert.match(key ?? '', /^[0-9a-f]{16}$/);
      assert.equal(made.committed.labels[Labels.containerd], RUNTIME.containerd);
      assert.equal(made.committed.labels[Labels.runc], RUNTIME.runc);
      assert.deepEqual([...made.imported].sort(), preloaded);
      assert.deepEqual(
        [...made.mirrored].sort(),
        preloaded.map(normalizeRef).sort(),
        'every preloaded image in the mirror',
      );

      const again = await buildNodeImage(ctx, VERSION);
      assert.equal(again.reused, true, 'up to date: reused');
      assert.equal(engine.builds.length, 1, 'no build container');

      const forced = await buildNodeImage(ctx, VERSION, { force: true });
      assert.equal(forced.reused, false);
      assert.equal(engine.builds.length, 2, '--force assembles the node image again');
      assert.deepEqual(
        await scripts.ran(),
        STAGES,
        'no stage before it ran again (no debootstrap, no go build)',
      );
      const remade = engine.builds[1] as Build;
      assert.equal(remade.image, made.image, 'from the same base image');
      assert.deepEqual([...remade.imported].sort(), preloaded, 'every image preloaded again');
      assert.deepEqual(remade.committed, made.committed, 'the same reference, build key and labels');
    } finally {
      process.env.PATH = path;
      await rm(dir, { recursive: true, force: true });
    }
  },
);
