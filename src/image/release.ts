import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { MinilabError, formatMs, usageError } from '../errors.js';
import { privateDir, writePrivateFile } from '../private-files.js';
import { cacheKey } from './cache.js';
import { validateComponents, type Components } from './components.js';

/**
 * Where the Kubernetes project publishes its release binaries. The only place this address is
 * written; --release-url or MINILAB_RELEASE_URL point the build at a mirror with the same layout:
 * <base>/<version>/bin/linux/<arch>/<name> and <name>.sha256 beside it.
 */
export const DEFAULT_RELEASE_URL = 'https://dl.k8s.io/release';

/** The binaries a node takes from a release (the control plane runs from registry images). */
export const RELEASE_BINARIES = ['kubeadm', 'kubelet', 'kubectl'] as const;
export type ReleaseBinary = (typeof RELEASE_BINARIES)[number];

/** A download fails when no bytes arrive for this long (a slow but moving download is fine). */
const STALL_TIMEOUT_MS = 30_000;
const URL_HINT = 'check the network (and proxy), or point --release-url / MINILAB_RELEASE_URL at a mirror';

export interface ReleaseSource {
  /** Base URL, e.g. DEFAULT_RELEASE_URL or a mirror of it. */
  baseUrl: string;
  /** MINILAB_HOME/cache/release: binaries are kept in <version>/ below it. */
  cacheDir: string;
  arch?: string;
  stallTimeoutMs?: number;
  progress?: (detail: string) => void;
}

export interface VerifiedFile {
  path: string;
  sha256: string;
}

/**
 * A release base URL from --release-url or MINILAB_RELEASE_URL: https, no trailing slash. Plain
 * http is refused: the binary and the digest it is checked against come from the same server, so
 * whoever sits on the path could swap both, and the downloaded kubeadm runs here (as root when
 * minilab does) and becomes the nodes' kubelet.
 */
export function validateReleaseUrl(url: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed?.protocol === 'http:') {
    throw usageError(
      `release URL "${url}" is plain http: its binaries could be swapped on the way`,
      'serve the mirror over https (a private CA can be trusted with NODE_EXTRA_CA_CERTS=ca.pem)',
    );
  }
  if (parsed?.protocol !== 'https:') {
    throw usageError(
      `invalid release URL "${url}"`,
      'give an https base URL that serves <version>/bin/linux/<arch>/kubeadm',
    );
  }
  return url.replace(/\/+$/, '');
}

/** The release's name for this machine's architecture (node images are built for the host). */
export function releaseArch(nodeArch: string = process.arch): string {
  const arch = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[nodeArch];
  if (!arch) throw new MinilabError('environment', `no Kubernetes release binaries for ${nodeArch}`);
  return arch;
}

export const releaseFileUrl = (baseUrl: string, version: string, arch: string, name: string) =>
  `${baseUrl.replace(/\/+$/, '')}/${version}/bin/linux/${arch}/${name}`;

/**
 * kubeadm, kubelet and kubectl of a release in cacheDir/<version>/, each verified against its
 * published sha256. Files already there were verified when they arrived: no request is made.
 */
export async function ensureReleaseBinaries(
  version: string,
  source: ReleaseSource,
): Promise<Record<ReleaseBinary, VerifiedFile>> {
  const arch = source.arch ?? releaseArch();
  const dir = join(source.cacheDir, version);
  const out = {} as Record<ReleaseBinary, VerifiedFile>;
  for (const name of RELEASE_BINARIES) {
    const dest = join(dir, name);
    out[name] = existsSync(dest)
      ? { path: dest, sha256: await recordedDigest(dest) }
      : await downloadVerified(releaseFileUrl(source.baseUrl, version, arch, name), dest, {
          stallTimeoutMs: source.stallTimeoutMs,
          progress: source.progress && throttled(name, source.progress),
        });
  }
  return out;
}

/**
 * Downloads url to dest, checked against url.sha256. The bytes go to a temporary file beside
 * dest, renamed only after the digest matched: a failed or interrupted download never leaves a
 * file under dest's name. dest.sha256 records the verified digest.
 */
export async function downloadVerified(
  url: string,
  dest: string,
  opts: { stallTimeoutMs?: number; progress?: (received: number, total?: number) => void } = {},
): Promise<VerifiedFile> {
  const stall = opts.stallTimeoutMs ?? STALL_TIMEOUT_MS;
  const expected = await fetchChecksum(`${url}.sha256`, stall);
  await privateDir(dirname(dest));
  const tmp = `${dest}.partial-${process.pid}`;
  const hash = createHash('sha256');
  let received = 0;
  let total: number | undefined;
  try {
    const file = await open(tmp, 'w', 0o600);
    try {
      await fetchChunks(
        url,
        stall,
        (length) => (total = length),
        async (chunk) => {
          hash.update(chunk);
          received += chunk.length;
          opts.progress?.(received, total);
          await file.write(chunk);
        },
      );
    } finally {
      await file.close();
    }
    const actual = hash.digest('hex');
    if (actual !== expected) {
      throw new MinilabError(
        'environment',
        `checksum mismatch for ${url.split('/').pop()}: expected sha256 ${expected}, got ${actual}`,
        {
          details: [`from ${url}`],
          hint: 'the download was corrupted or the server serves other files than its .sha256 names; nothing was kept, so run again (or check --release-url)',
        },
      );
    }
    // A program for this user alone (the node image takes it with its own mode).
    await chmod(tmp, 0o700);
    await writePrivateFile(`${dest}.sha256`, `${actual}\n`);
    await rename(tmp, dest);
    return { path: dest, sha256: actual };
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Release mode's "components": the downloaded binaries, and what the downloaded kubeadm says it
 * needs (`kubeadm config images list`), in the shape images/components/build.sh reports.
 */
export async function ensureReleaseComponents(
  version: string,
  source: ReleaseSource & { localPathProvisioner: string },
): Promise<{ key: string; dir: string; info: Components }> {
  const arch = source.arch ?? releaseArch();
  const binaries = await ensureReleaseBinaries(version, { ...source, arch });
  source.progress?.('asking kubeadm for its image list');
  const kubeadm = binaries.kubeadm.path;
  const reported = (await runKubeadm(kubeadm, ['version', '-o', 'short'])).trim();
  if (reported !== version) {
    throw new MinilabError('environment', `the downloaded kubeadm says it is ${reported}, not ${version}`, {
      hint: 'check --release-url: it must serve the release named in the path',
    });
  }
  const images = (await runKubeadm(kubeadm, ['config', 'images', 'list', '--kubernetes-version', version]))
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const info: Components = validateComponents(
    {
      kubernetes: version,
      etcd: imageTag(images, 'etcd'),
      coredns: imageTag(images, 'coredns'),
      pause: imageTag(images, 'pause'),
      localPathProvisioner: source.localPathProvisioner,
      images,
    },
    `the downloaded kubeadm's image list (${kubeadm})`,
  );
  const key = await cacheKey({
    values: {
      source: 'release',
      version,
      arch,
      localPathProvisioner: info.localPathProvisioner,
      images: images.join(' '),
      ...Object.fromEntries(RELEASE_BINARIES.map((b) => [b, binaries[b].sha256])),
    },
  });
  return { key, dir: join(source.cacheDir, version), info };
}

function imageTag(images: string[], name: string): string {
  const ref = images.find((i) => i.includes(`/${name}:`));
  if (!ref) throw new MinilabError('unexpected', `kubeadm lists no ${name} image: ${images.join(', ')}`);
  return ref.slice(ref.lastIndexOf(':') + 1);
}

const execFileAsync = promisify(execFile);

async function runKubeadm(kubeadm: string, args: string[]): Promise<string> {
  try {
    return (await execFileAsync(kubeadm, args, { timeout: 60_000 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message?: string };
    throw new MinilabError('environment', `the downloaded kubeadm failed: kubeadm ${args.join(' ')}`, {
      details: (e.stderr || e.message || '').trim().split('\n').slice(-10),
      hint: 'remove the cached release binaries (MINILAB_HOME/cache/release) and run again',
      cause: err,
    });
  }
}

/** The digest a cached file was verified with (recomputed when its record is missing). */
async function recordedDigest(path: string): Promise<string> {
  try {
    return (await readFile(`${path}.sha256`, 'utf8')).trim();
  } catch {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    return hash.digest('hex');
  }
}

/** "kubelet 12/56 MB", at most twice a second and once at the end. */
function throttled(name: string, progress: (detail: string) => void) {
  let last = 0;
  const mb = (n: number) => (n / 1e6).toFixed(n < 10e6 ? 1 : 0);
  return (received: number, total?: number) => {
    const now = performance.now();
    if (now - last < 500 && received !== total) return;
    last = now;
    progress(`${name} ${mb(received)}${total ? `/${mb(total)}` : ''} MB`);
  };
}

/** The published digest: the first word of <name>.sha256, 64 hex digits. */
async function fetchChecksum(url: string, stall: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  await fetchChunks(
    url,
    stall,
    () => undefined,
    (chunk) => {
      chunks.push(chunk);
      if (chunks.length > 64) throw new MinilabError('environment', `${url} is too long for a checksum file`);
    },
  );
  const digest = Buffer.concat(chunks).toString('utf8').trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  if (!/^[0-9a-f]{64}$/.test(digest)) {
    throw new MinilabError('environment', `${url} holds no sha256 digest`, { hint: URL_HINT });
  }
  return digest;
}

/**
 * GET url, handing each chunk of the body to onChunk. The deadline restarts whenever bytes
 * arrive, so only a stalled server (or one that never answers) times out.
 */
async function fetchChunks(
  url: string,
  stallMs: number,
  onLength: (total: number | undefined) => void,
  onChunk: (chunk: Uint8Array) => Promise<void> | void,
): Promise<void> {
  const controller = new AbortController();
  let stalled = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      controller.abort();
    }, stallMs);
  };
  arm();
  try {
    const res = await fetch(url, { signal: controller.signal });
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw res.status === 404
        ? new MinilabError('notFound', `${url} does not exist (HTTP 404)`, {
            hint: 'check the Kubernetes version (an exact published release) and --release-url / MINILAB_RELEASE_URL',
          })
        : new MinilabError('environment', `${url} answered HTTP ${res.status} ${res.statusText}`, {
            hint: URL_HINT,
          });
    }
    const length = Number(res.headers.get('content-length'));
    onLength(length > 0 ? length : undefined);
    for await (const chunk of res.body) {
      arm();
      await onChunk(chunk);
    }
  } catch (err) {
    if (err instanceof MinilabError) throw err;
    if (stalled) {
      throw new MinilabError('timeout', `timed out after ${formatMs(stallMs)} waiting for ${url}`, {
        hint: URL_HINT,
        cause: err,
      });
    }
    throw new MinilabError('environment', `cannot download ${url}: ${networkReason(err)}`, {
      hint: URL_HINT,
      cause: err,
    });
  } finally {
    clearTimeout(timer);
  }
}

/** fetch says only "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND, ...) is in its cause. */
function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
}
