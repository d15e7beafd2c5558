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

const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

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

interface Descriptor {
  digest: string;
  mediaType?: string;
}

interface ManifestJson {
  mediaType?: string;
  manifests?: Descriptor[];
  config?: Descriptor;
  layers?: Descriptor[];
}

const isDigest = (d: unknown): d is string => typeof d === 'string' && /^sha256:[0-9a-f]{64}$/.test(d);

/**
 * The blobs of containerd's content store with these digests (base64 over one exec), absent ones
 * left out: an index may name platforms whose content was never loaded.
 */
async function readBlobs(node: Node, digests: string[]): Promise<Map<string, Buffer>> {
  if (digests.length === 0) return new Map();
  const out = await runInNode(
    node,
    [
      'sh',
      '-c',
      `for d; do f=${CONTENT}/\${d#sha256:}; if [ -f "$f" ]; then printf '%s ' "$d"; base64 -w0 "$f"; echo; else echo "$d -"; fi; done`,
      'sh',
      ...digests,
    ],
    'reading image manifests in the node',
  );
  const blobs = new Map<string, Buffer>();
  for (const line of out.split('\n')) {
    const [digest, data] = line.split(' ');
    if (digest && data && data !== '-') blobs.set(digest, Buffer.from(data, 'base64'));
  }
  return blobs;
}

function parseManifest(blob: Buffer | undefined): ManifestJson | undefined {
  if (!blob) return undefined;
  try {
    const json = JSON.parse(blob.toString('utf8')) as unknown;
    return json && typeof json === 'object' ? (json as ManifestJson) : undefined;
  } catch {
    return undefined;
  }
}

/** One image to publish: its reference and the digest of its target (manifest or index). */
export interface Publication {
  ref: string;
  digest: string;
}

/** What one publish does, as arguments of PUBLISH_SCRIPT. */
export interface PublishPlan {
  /** Operation words with their arguments: blob HEX, layer REPO HEX, manifest REPO HEX, tag REPO TAG HEX, hosts REGISTRY TOML. */
  args: string[];
  /** The references published. */
  published: string[];
  /** The references the mirror cannot hold (by digest, or a name distribution refuses). */
  skipped: string[];
}

/**
 * The file operations that make the mirror serve each image: every blob of its manifests that
 * containerd has, linked into the repository (manifests as revisions, configs and layers as
 * layers), its tag pointing at its target, and its registry's hosts.toml. `manifests` are the
 * manifest and index blobs read from the node.
 */
export function planPublish(images: Publication[], manifests: Map<string, Buffer>): PublishPlan {
  const args: string[] = [];
  const published: string[] = [];
  const skipped: string[] = [];
  const blobs = new Set<string>();
  const registries = new Map<string, string>();
  const hex = (d: string) => d.slice('sha256:'.length);
  for (const { ref, digest } of images) {
    const name = mirrorName(ref);
    const top = manifests.get(digest);
    if (!name || !top || !isDigest(digest)) {
      skipped.push(ref);
      continue;
    }
    const repo = name.repository;
    const link = (kind: 'layer' | 'manifest', d: string) => {
      blobs.add(d);
      args.push(kind, repo, hex(d));
    };
    // configs and layers are linked when the mirror has them (the script checks): they are not read
    const linkManifest = (d: string, json: ManifestJson | undefined) => {
      link('manifest', d);
      for (const child of [json?.config, ...(json?.layers ?? [])])
        if (child && isDigest(child.digest)) link('layer', child.digest);
    };
    const json = parseManifest(top);
    if (json && (INDEX_TYPES.has(json.mediaType ?? '') || Array.isArray(json.manifests))) {
      link('manifest', digest);
      for (const m of json.manifests ?? [])
        if (isDigest(m.digest) && manifests.has(m.digest))
          linkManifest(m.digest, parseManifest(manifests.get(m.digest)));
    } else {
      linkManifest(digest, json);
    }
    args.push('tag', repo, name.tag, hex(digest));
    registries.set(name.registry, name.repository.split('/')[0]!);
    published.push(ref);
  }
  for (const [registry, prefix] of registries) args.push('hosts', registry, hostsToml(prefix));
  return { args: [...[...blobs].flatMap((d) => ['blob', hex(d)]), ...args], published, skipped };
}

/**
 * Carries out a plan in the node: blobs hard-linked from containerd's content store (copied where
 * a link cannot be made), links written (a tag's last, each replaced at once, so that the running
 * registry never reads half a file), hosts.toml written for each registry. Idempotent.
 */
const PUBLISH_SCRIPT = `set -eu
store=${STORE} content=${CONTENT} hosts=${MIRROR_HOSTS}
data() { echo "$store/blobs/sha256/\${1%"\${1#??}"}/$1/data"; }
put() { mkdir -p "\${1%/*}"; printf '%s' "$2" >"$1.tmp"; mv "$1.tmp" "$1"; }
while [ $# -gt 0 ]; do
  case $1 in
    blob) f=$(data "$2")
      if [ ! -f "$f" ] && [ -f "$content/$2" ]; then
        mkdir -p "\${f%/data}"
        ln -f "$content/$2" "$f" 2>/dev/null || { cp "$content/$2" "$f.tmp" && mv "$f.tmp" "$f"; }
      fi
      shift 2 ;;
    layer | manifest) l=$store/repositories/$2/_layers/sha256/$3/link
      [ "$1" = layer ] || l=$store/repositories/$2/_manifests/revisions/sha256/$3/link
      if [ -f "$(data "$3")" ] && [ ! -f "$l" ]; then put "$l" "sha256:$3"; fi
      shift 3 ;;
    tag) t=$store/repositories/$2/_manifests/tags/$3
      put "$t/index/sha256/$4/link" "sha256:$4"
      put "$t/current/link" "sha256:$4"
      shift 4 ;;
    hosts) put "$hosts/$2/hosts.toml" "$3"; shift 3 ;;
    *) echo "unknown operation $1" >&2; exit 2 ;;
  esac
done`;

/**
 * Makes the node's mirror serve these images (references as containerd names them, with their
 * targets' digests). Returns what was published and what the mirror cannot hold.
 */
export async function publishToMirror(node: Node, images: Publication[]): Promise<PublishPlan> {
  const top = await readBlobs(node, [...new Set(images.map((i) => i.digest))]);
  const children = [...top.values()].flatMap((b) =>
    (parseManifest(b)?.manifests ?? []).map((m) => m.digest).filter(isDigest),
  );
  const manifests = new Map([...top, ...(await readBlobs(node, [...new Set(children)]))]);
  const plan = planPublish(images, manifests);
  if (plan.published.length > 0)
    await runInNode(
      node,
      ['sh', '-c', PUBLISH_SCRIPT, 'sh', ...plan.args],
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
