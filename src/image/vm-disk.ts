import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import tarFs from 'tar-fs';
import { MinilabError } from '../errors.js';
import { ownedLabels } from '../labels.js';
import { acquireLock } from '../profile/lock.js';
import { writeFileAtomic } from '../profile/store.js';
import { runInNode } from '../providers/run.js';
import type { ImageStore } from '../providers/types.js';
import { projectRoot } from '../version.js';
import { cacheKey } from './cache.js';

const vmDir = join(projectRoot, 'images', 'vm');

/** A node image's other packaging: the disk, kernel and initrd a node VM boots (images/vm). */
export interface VmDisk {
  dir: string;
  disk: string;
  kernel: string;
  initrd: string;
  /** The node image it was made from, by tag and ID. */
  image: string;
  imageId: string;
  /** The disk's sha256, checked before a node is made on it. */
  sha256: string;
  sizeBytes: number;
  builtAt?: string;
}

type DiskRecord = Omit<VmDisk, 'dir' | 'disk' | 'kernel' | 'initrd'>;

const files = (dir: string) => ({
  disk: join(dir, 'disk.qcow2'),
  kernel: join(dir, 'vmlinuz'),
  initrd: join(dir, 'initrd.img'),
  record: join(dir, 'disk.json'),
});

/** A file's sha256, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Runs a host command to its end; its stderr becomes the error. */
export function runTool(cmd: string, args: string[], what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', (err) =>
      reject(new MinilabError('environment', `${what}: ${cmd} could not run (${err.message})`)),
    );
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(
            new MinilabError('environment', `${what} failed (${cmd} exit ${code})`, {
              details: stderr.trim().split('\n').slice(-10),
            }),
          ),
    );
  });
}

/** Where the disk of a node image is kept: by its ID and the images/vm recipe, so either change makes a new one. */
export async function vmDiskDir(home: string, imageId: string): Promise<string> {
  const key = await cacheKey({
    values: { image: imageId },
    paths: [vmDir, fileURLToPath(import.meta.url)],
    root: vmDir,
  });
  return join(home, 'cache', 'vm', key);
}

/**
 * The newest disk made for a key: `KEY`, or `KEY-N` when a forced rebuild made another beside it
 * (the older one stays: clusters' overlays name it).
 */
async function latestVmDisk(dir: string): Promise<VmDisk | undefined> {
  const parent = join(dir, '..');
  const key = basename(dir);
  const names = (await readdir(parent).catch(() => [] as string[])).filter(
    (n) => n === key || (n.startsWith(`${key}-`) && !n.endsWith('.partial')),
  );
  const disks = (await Promise.all(names.map((n) => readVmDisk(join(parent, n))))).filter(
    (d): d is VmDisk => d !== undefined,
  );
  return disks.sort((a, b) => (b.builtAt ?? '').localeCompare(a.builtAt ?? ''))[0];
}

/** The disk of a node image, if it was made. */
export async function findVmDisk(images: ImageStore, ref: string, home: string): Promise<VmDisk | undefined> {
  const info = await images.info(ref);
  if (!info) return undefined;
  return latestVmDisk(await vmDiskDir(home, info.id));
}

export async function readVmDisk(dir: string): Promise<VmDisk | undefined> {
  const f = files(dir);
  try {
    const record = JSON.parse(await readFile(f.record, 'utf8')) as DiskRecord;
    return { ...record, dir, disk: f.disk, kernel: f.kernel, initrd: f.initrd };
  } catch {
    return undefined;
  }
}

/**
 * The node image as a VM disk (the qemu driver's packaging of the same recipe): a build container
 * from the node image runs images/vm/build-disk.sh, which adds the kernel's modules, an SSH server
 * and the VM's own files, and writes the root file system as ext4 with the kernel and an initrd
 * beside it, into a host folder bound into the container; here the disk becomes a compact qcow2
 * (each node's overlay is made on it) with its checksum. Cached by image ID and recipe.
 */
export async function ensureVmDisk(
  ctx: { images: ImageStore; home: string; extraLabels: Record<string, string>; qemuImg: string },
  ref: string,
  progress: (s: string) => void,
  opts: { force?: boolean } = {},
): Promise<VmDisk> {
  const info = await ctx.images.info(ref);
  if (!info) {
    throw new MinilabError('notFound', `there is no node image ${ref} to make a VM disk from`, {
      hint: 'build it first: minilab image build',
    });
  }
  const key = await vmDiskDir(ctx.home, info.id);
  if (!opts.force) {
    const made = await latestVmDisk(key);
    if (made) return made;
  }
  // One build at a time per machine (they share the build container's name and the cache).
  const root = join(key, '..');
  await mkdir(root, { recursive: true });
  const release = await acquireLock(root, 'the VM disk cache', {
    timeoutMs: 30 * 60_000,
    purpose: `making the VM disk of ${ref}`,
    onWait: () => progress('waiting for another VM disk build'),
  });
  try {
    if (!opts.force) {
      const made = await latestVmDisk(key);
      if (made) return made;
    }
    // A forced rebuild goes beside the disk it replaces, which clusters' overlays still name.
    const dir = existsSync(key) ? `${key}-${Date.now().toString(36)}` : key;
    return await buildVmDisk(ctx, ref, info.id, dir, progress);
  } finally {
    await release();
  }
}

async function buildVmDisk(
  ctx: { images: ImageStore; extraLabels: Record<string, string>; qemuImg: string },
  ref: string,
  imageId: string,
  dir: string,
  progress: (s: string) => void,
): Promise<VmDisk> {
  const work = `${dir}.partial`;
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    await buildInto(ctx, ref, work, progress);
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    throw err;
  }
  const f = files(work);
  const sha256 = await sha256File(f.disk);
  const { size } = await stat(f.disk);
  const record: DiskRecord = {
    image: ref,
    imageId,
    sha256,
    sizeBytes: size,
    builtAt: new Date().toISOString(),
  };
  // read-only: every cluster's overlay reads this disk; nothing may write it
  for (const p of [f.disk, f.kernel, f.initrd]) await chmod(p, 0o444);
  await writeFileAtomic(f.record, JSON.stringify(record, null, 2) + '\n', 0o644);
  await rename(work, dir);
  const disk = await readVmDisk(dir);
  if (!disk) throw new MinilabError('unexpected', `the VM disk in ${dir} cannot be read back`);
  return disk;
}

/** Runs the disk build in a container from the node image, then converts its disk on the host. */
async function buildInto(
  ctx: { images: ImageStore; extraLabels: Record<string, string>; qemuImg: string },
  ref: string,
  work: string,
  progress: (s: string) => void,
): Promise<void> {
  const builder = await ctx.images.builder({
    name: `minilab-vm-build-${basename(work, '.partial')}`,
    image: ref,
    labels: ownedLabels('', 'build', ctx.extraLabels),
    // :z relabels it for SELinux hosts (Fedora's podman); a no-op elsewhere
    binds: [`${work}:/out:z`],
  });
  try {
    progress('copying the VM files');
    await builder.node.copyIn('/', pack(join(vmDir, 'files')));
    await builder.node.copyIn(
      '/',
      pack(vmDir, (name) => name.startsWith(join(vmDir, 'files')), 'opt/minilab/vm-build/'),
    );
    progress('kernel, modules, SSH server and the ext4 root file system (about a minute)');
    await runInNode(builder.node, ['/opt/minilab/vm-build/build-disk.sh', '/out'], 'VM disk build', {
      kind: 'environment',
      timeoutMs: 30 * 60_000,
      hint: 'the lines above show why (apt needs the Debian archive)',
    });
  } finally {
    await builder.remove();
  }
  progress('converting the disk to qcow2');
  const f = files(work);
  await runTool(
    ctx.qemuImg,
    ['convert', '-O', 'qcow2', join(work, 'disk.raw'), f.disk],
    'converting the VM disk',
  );
  await rm(join(work, 'disk.raw'));
  for (const p of [f.kernel, f.initrd, f.disk]) {
    if (!existsSync(p)) throw new MinilabError('environment', `the VM disk build made no ${p}`);
  }
}

/** A folder as a tar stream owned by root, for a build container. */
function pack(dir: string, ignore?: (name: string) => boolean, prefix = ''): Readable {
  return tarFs.pack(dir, {
    ignore: (name) => name.endsWith('.keep') || (ignore?.(name) ?? false),
    map: (h) => ({ ...h, name: prefix + h.name, uid: 0, gid: 0 }),
  }) as unknown as Readable;
}
