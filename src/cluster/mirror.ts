import { MinilabError } from '../errors.js';
import { lastLines } from '../providers/run.js';
import type { Node } from '../providers/types.js';

/**
 * The node's mirror of loaded images: distribution's registry (images/node/files/etc/minilab/
 * mirror.yml), started by the first pull on 127.0.0.1:10550 in the node, serving what `minilab
 * image load` put into containerd. Every registry an image was loaded from gets a hosts.toml
 * (under /opt/minilab/mirror/hosts, which containerd reads after /etc/containerd/certs.d) that
 * sends pulls to the mirror first and then to the registry itself, so a pod with
 * `imagePullPolicy: Always` runs a loaded image with no network, and a name never loaded is pulled
 * as before.
 *
 * The registry is read-only over HTTP: the node's minilab-mirror script writes its storage
 * directly, in distribution's filesystem layout, hard-linking each blob containerd has
 * (content-addressed, never changed in place), so a loaded image is on disk once and publishing
 * it costs a few file operations. The storage is beside containerd's content store
 * (/opt/minilab/containerd-content, in the node's own filesystem: see src/image/build.ts), since a
 * hard link cannot cross filesystems; like the loaded images themselves it survives stop/start
 * and an engine restart and goes with the node. This module decides names; the script does the
 * files.
 */
export const MIRROR_ADDRESS = '127.0.0.1:10550';

/** A path component of a repository name, as distribution accepts it. */
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

/** Where a reference lives in the mirror: its registry, the repository named after both, its tag. */
export interface MirrorName {
  /** The registry host as in the reference (docker.io, registry.k8s.io, localhost:5000). */
  registry: string;
  /** The repository in the mirror: the registry (`:` as `_`) and the path, "docker.io/library/app". */
  repository: string;
  tag: string;
}

/**
 * The mirror's name for a normalized reference (registry/path:tag), or undefined for one it cannot
 * hold (a digest reference, a name distribution would refuse: upper case, an IPv6 registry).
 */
export function mirrorName(ref: string): MirrorName | undefined {
  if (ref.includes('@')) return undefined;
  const slash = ref.indexOf('/');
  const colon = ref.lastIndexOf(':');
  if (slash < 0 || colon < slash) return undefined;
  const registry = ref.slice(0, slash);
  const path = ref.slice(slash + 1, colon);
  const tag = ref.slice(colon + 1);
  const repository = `${mirrorPrefix(registry)}/${path}`;
  if (!repository.split('/').every((c) => COMPONENT.test(c)) || repository.length > 255) return undefined;
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) return undefined;
  return { registry, repository, tag };
}

/** Where the mirror keeps a registry's images: its host name, a port's `:` as `_` (localhost_5000). */
export const mirrorPrefix = (registry: string) => registry.replace(/:(\d+)$/, '_$1');

/** The hosts.toml entry that sends a registry's pulls to the mirror's copies (under `prefix`). */
export const mirrorHost = (prefix: string) =>
  `[host."http://${MIRROR_ADDRESS}/v2/${prefix}"]\n` +
  '  capabilities = ["pull", "resolve"]\n' +
  '  override_path = true\n';

/** containerd's hosts.toml for a registry whose images the mirror holds under `prefix`. */
export function hostsToml(prefix: string): string {
  return (
    "# written by minilab (image load, node image build): pulls from this registry try the node's\n" +
    "# mirror of loaded images first, then the registry itself (no `server` line: containerd's\n" +
    '# default for it)\n' +
    mirrorHost(prefix)
  );
}

/** One image to publish: its reference and the digest of its target (manifest or index). */
export interface Publication {
  ref: string;
  digest: string;
}

/** What one publish does, as the arguments of `minilab-mirror publish` in the node. */
export interface PublishPlan {
  /** Operations with their arguments: image REPO TAG HEX, hosts REGISTRY TOML. */
  args: string[];
  /** The references published. */
  published: string[];
  /** The references the mirror cannot hold (by digest, or a name distribution refuses). */
  skipped: string[];
}

/** The operations that make the mirror serve each image under its name, and its registry's hosts.toml. */
export function planPublish(images: Publication[]): PublishPlan {
  const args: string[] = [];
  const published: string[] = [];
  const skipped: string[] = [];
  const registries = new Map<string, string>();
  for (const { ref, digest } of images) {
    const name = mirrorName(ref);
    if (!name || !/^sha256:[0-9a-f]{64}$/.test(digest)) {
      skipped.push(ref);
      continue;
    }
    args.push('image', name.repository, name.tag, digest.slice('sha256:'.length));
    registries.set(name.registry, name.repository.split('/')[0]!);
    published.push(ref);
  }
  for (const [registry, prefix] of registries) args.push('hosts', registry, hostsToml(prefix));
  return { args, published, skipped };
}

/**
 * Runs /usr/local/bin/minilab-mirror in the node (images/node/files: the publishing and the sweep
 * after a reloaded tag live there); undefined when the node has none: its node image predates the
 * mirror, and nothing there serves pulls.
 */
async function mirrorCommand(node: Node, args: string[], what: string): Promise<string | undefined> {
  const script = 'command -v minilab-mirror >/dev/null || exit 3; exec minilab-mirror "$@"';
  const r = await node.exec(['sh', '-c', script, 'sh', ...args], { timeoutMs: 120_000 });
  if (r.exitCode === 3 && r.started) return undefined;
  if (r.exitCode === 0) return r.stdout;
  throw new MinilabError('clusterFailed', `${what} failed (exit ${r.exitCode})`, {
    details: lastLines(`${r.stdout}\n${r.stderr}`, 15),
    hint: 'the image is loaded; load it again to retry, or use imagePullPolicy IfNotPresent meanwhile',
  });
}

/**
 * Makes the node's mirror serve these images (references as containerd names them, with their
 * targets' digests), in one exec. `available` is false on a node whose image has no mirror.
 */
export async function publishToMirror(
  node: Node,
  images: Publication[],
): Promise<PublishPlan & { available: boolean }> {
  const plan = planPublish(images);
  if (plan.published.length === 0) return { ...plan, available: true };
  const out = await mirrorCommand(node, ['publish', ...plan.args], "publishing to the node's mirror");
  return { ...plan, available: out !== undefined };
}

/** The tags the node's mirror serves, as "repository:tag" with the digest each points at. */
export async function mirroredTags(node: Node): Promise<Map<string, string>> {
  const out = (await mirrorCommand(node, ['tags'], "listing the node's mirror")) ?? '';
  const tags = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^(\S+) (sha256:[0-9a-f]{64})$/.exec(line);
    if (m) tags.set(m[1]!, m[2]!);
  }
  return tags;
}

/** Whether the mirror serves this reference at this digest. */
export function mirrorServes(tags: Map<string, string>, ref: string, digest: string): boolean {
  const name = mirrorName(ref);
  return name !== undefined && tags.get(`${name.repository}:${name.tag}`) === digest;
}
