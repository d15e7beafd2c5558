import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { privateDir } from '../private-files.js';
import { projectRoot } from '../version.js';
import type { LayerEntry } from './archive.js';
import { cacheKey } from './cache.js';
import { pinnedVersions, runScript } from './run-script.js';

/** What images/runtime/build.sh reports about the container runtime it built. */
export interface RuntimeVersions {
  containerd: string;
  runc: string;
  crictl: string;
  /** distribution's registry: the node's mirror of loaded images. */
  registry: string;
  /** The libseccomp runc is statically linked with. */
  libseccomp: string;
  goVersion: string;
}

export interface RuntimeStage {
  key: string;
  dir: string;
  info: RuntimeVersions;
  /** The runtime's files in the node: binaries, containerd's unit, its versions. */
  nodeFiles: LayerEntry[];
}

const imagesDir = join(projectRoot, 'images');
const script = join(imagesDir, 'runtime', 'build.sh');

/** The runtime versions this minilab's node image recipe pins (read from the build script). */
export async function pinnedRuntime(): Promise<{ containerd: string; runc: string; crictl: string }> {
  const v = await pinnedVersions(script, ['CONTAINERD', 'RUNC', 'CRICTL']);
  return { containerd: v.CONTAINERD, runc: v.RUNC, crictl: v.CRICTL };
}

/**
 * The container runtime stage: containerd, runc and crictl built from Go modules, cached by the
 * build script's contents (which pin the versions), so every Kubernetes version shares one build.
 */
export async function ensureRuntime(cache: string, progress: (s: string) => void): Promise<RuntimeStage> {
  const key = await cacheKey({
    // the stamps these set are in the binaries
    values: Object.fromEntries(
      ['MINILAB_CONTAINERD_REVISION', 'MINILAB_RUNC_COMMIT'].map((v) => [v, process.env[v] ?? '']),
    ),
    paths: [join(imagesDir, 'runtime'), join(imagesDir, 'components', 'go-build-lib.sh')],
    root: imagesDir,
  });
  const dir = join(cache, 'runtime', key);
  if (!existsSync(join(dir, 'runtime.json'))) {
    await privateDir(dir);
    await runScript(script, [dir], {
      progress,
      what: 'building containerd, runc, crictl and the registry from Go modules',
      hint: 'the Go module proxy must be reachable; runc needs gcc and libseccomp-dev (scripts/setup.sh installs them)',
    });
  }
  const info = JSON.parse(await readFile(join(dir, 'runtime.json'), 'utf8')) as RuntimeVersions;
  return { key, dir, info, nodeFiles: runtimeFiles(dir, info) };
}

/** Where each runtime file goes in the node: the paths upstream's `make install` uses. */
function runtimeFiles(dir: string, info: RuntimeVersions): LayerEntry[] {
  const bin = (name: string, to: string): LayerEntry => ({
    type: 'host-file',
    name: `${to}/${name}`,
    path: join(dir, name),
    mode: 0o755,
  });
  return [
    ...['containerd', 'containerd-shim-runc-v2', 'ctr', 'crictl', 'registry'].map((f) =>
      bin(f, 'usr/local/bin'),
    ),
    bin('runc', 'usr/local/sbin'),
    {
      type: 'host-file',
      name: 'usr/local/lib/systemd/system/containerd.service',
      path: join(dir, 'containerd.service'),
      mode: 0o644,
    },
    { type: 'file', name: 'etc/minilab/runtime.json', content: JSON.stringify(info, null, 2) + '\n' },
  ];
}
