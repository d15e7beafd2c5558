import { runInNode } from '../providers/run.js';
import type { Node } from '../providers/types.js';

/**
 * The node's mirror of loaded images: distribution's registry (images/node/files/etc/minilab/
 * mirror.yml), started by the first pull on 127.0.0.1:10550 in the node, serving what `minilab
 * image load` put into containerd. Every registry an image was loaded from gets a hosts.toml
 * under MIRROR_HOSTS that sends pulls to the mirror first and then to the registry itself, so a
 * pod with `imagePullPolicy: Always` runs a loaded image with no network, and a name never loaded
 * is pulled as before.
 *
 * The registry is read-only over HTTP: minilab writes its storage directly, in distribution's
 * filesystem layout, hard-linking each blob containerd has (content-addressed and never changed in
 * place), so a loaded image is on disk once and publishing it costs a few file operations.
 */
/**
 * Beside containerd's content store (/opt/minilab/containerd-content, in the node's own filesystem:
 * see src/image/build.ts), since a hard link cannot cross filesystems. Like the loaded images
 * themselves it survives stop/start and an engine restart and goes with the node.
 */
export const MIRROR_ROOT = '/opt/minilab/mirror';
/** Where containerd looks (after the user's /etc/containerd/certs.d) for per-registry hosts.toml. */
export const MIRROR_HOSTS = `${MIRROR_ROOT}/hosts`;
export const MIRROR_ADDRESS = '127.0.0.1:10550';
const STORE = `${MIRROR_ROOT}/docker/registry/v2`;
const CONTENT = '/var/lib/containerd/io.containerd.content.v1.content/blobs/sha256';

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
  const repository = `${registry.replace(/:(\d+)$/, '_$1')}/${path}`;
  if (!repository.split('/').every((c) => COMPONENT.test(c)) || repository.length > 255) return undefined;
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) return undefined;
  return { registry, repository, tag };
}

/** containerd's hosts.toml for a registry whose images the mirror holds under `prefix`. */
export function hostsToml(prefix: string): string {
  return (
    "# written by minilab image load: pulls from this registry try the node's mirror of loaded\n" +
    "# images first, then the registry itself (no `server` line: containerd's default for it)\n" +
    `[host."http://${MIRROR_ADDRESS}/v2/${prefix}"]\n` +
    '  capabilities = ["pull", "resolve"]\n' +
    '  override_path = true\n'
  );
}

/** One image to publish: its reference and the digest of its target (manifest or index). */
export interface Publication {
  ref: string;
  digest: string;
}

/** What one publish does, as arguments of PUBLISH_SCRIPT. */
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
 * Carries out a plan in the node, in one exec. For each image, from its target in containerd's
 * content store: every blob hard-linked into the registry's storage (copied where a link cannot be
 * made) and linked into the repository: an index as a manifest revision with the platform
 * manifests containerd has (recursively), a manifest as a revision with its config and layers as
 * layers. The digests a manifest names are found with grep (a digest in an annotation is linked
 * too, when containerd has that blob: harmless); layers themselves are never read. Links are
 * replaced at once (written aside, then renamed), a tag's last, so that a running registry never
 * reads half a file. Idempotent. Arguments: the registry's storage (docker/registry/v2), the
 * content store's sha256 folder, the hosts folder, then the plan's.
 */
export const PUBLISH_SCRIPT = `set -eu
store=$1 content=$2 hosts=$3
shift 3
put() { mkdir -p "\${1%/*}"; printf '%s' "$2" >"$1.tmp"; mv "$1.tmp" "$1"; }
blob() {
  f=$store/blobs/sha256/\${1%"\${1#??}"}/$1/data
  [ -f "$f" ] && return 0
  mkdir -p "\${f%/data}"
  ln -f "$content/$1" "$f" 2>/dev/null || { cp "$content/$1" "$f.tmp" && mv "$f.tmp" "$f"; }
}
link() { [ -f "$1" ] || put "$1" "sha256:$2"; }
named() { grep -oE 'sha256:[0-9a-f]{64}' "$content/$1" | sed 's/^sha256://' | sort -u; }
manifest() {
  local repo=$1 hex=$2 depth=$3 d
  [ -f "$content/$hex" ] || return 0
  blob "$hex"
  link "$store/repositories/$repo/_manifests/revisions/sha256/$hex/link" "$hex"
  if grep -q '"manifests"' "$content/$hex"; then
    [ "$depth" -lt 3 ] || return 0
    for d in $(named "$hex"); do manifest "$repo" "$d" $((depth + 1)); done
  else
    for d in $(named "$hex"); do
      [ -f "$content/$d" ] || continue
      blob "$d"
      link "$store/repositories/$repo/_layers/sha256/$d/link" "$d"
    done
  fi
}
while [ $# -gt 0 ]; do
  case $1 in
    image)
      [ -f "$content/$4" ] || { echo "$2:$3: sha256:$4 is not in containerd's content store" >&2; exit 1; }
      manifest "$2" "$4" 0
      t=$store/repositories/$2/_manifests/tags/$3
      put "$t/index/sha256/$4/link" "sha256:$4"
      put "$t/current/link" "sha256:$4"
      shift 4 ;;
    hosts) put "$hosts/$2/hosts.toml" "$3"; shift 3 ;;
    *) echo "unknown operation $1" >&2; exit 2 ;;
  esac
done`;

/**
 * Makes the node's mirror serve these images (references as containerd names them, with their
 * targets' digests), in one exec. Returns what was published and what the mirror cannot hold.
 */
export async function publishToMirror(node: Node, images: Publication[]): Promise<PublishPlan> {
  const plan = planPublish(images);
  if (plan.published.length > 0)
    await runInNode(
      node,
      ['sh', '-c', PUBLISH_SCRIPT, 'sh', STORE, CONTENT, MIRROR_HOSTS, ...plan.args],
      "publishing to the node's mirror",
    );
  return plan;
}

/** The tags the node's mirror serves, as "repository:tag" with the digest each points at. */
export async function mirroredTags(node: Node): Promise<Map<string, string>> {
  const out = await runInNode(
    node,
    [
      'sh',
      '-c',
      `[ -d ${STORE}/repositories ] || exit 0; find ${STORE}/repositories -path '*/_manifests/tags/*/current/link' -exec sh -c 'for f; do printf "%s %s\\n" "$f" "$(cat "$f")"; done' sh {} +`,
    ],
    "listing the node's mirror",
  );
  const tags = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /\/repositories\/(.+)\/_manifests\/tags\/([^/]+)\/current\/link (sha256:[0-9a-f]{64})$/.exec(
      line,
    );
    if (m) tags.set(`${m[1]}:${m[2]}`, m[3]!);
  }
  return tags;
}

/** Whether the mirror serves this reference at this digest. */
export function mirrorServes(tags: Map<string, string>, ref: string, digest: string): boolean {
  const name = mirrorName(ref);
  return name !== undefined && tags.get(`${name.repository}:${name.tag}`) === digest;
}
