/**
 * Every label key minilab writes, in one place. Labels are the record of what minilab owns:
 * status, delete and cleanup rediscover everything from them, so a lost local file cannot
 * corrupt a cluster.
 */
export const LABEL_PREFIX = 'io.minilab';
export const Labels = {
  managed: `${LABEL_PREFIX}.managed`,
  profile: `${LABEL_PREFIX}.profile`,
  role: `${LABEL_PREFIX}.role`,
  node: `${LABEL_PREFIX}.node`,
  kind: `${LABEL_PREFIX}.kind`,
  apiServerPort: `${LABEL_PREFIX}.apiserver-port`,
  /** On the registry add-on's container: its port on the host (a stopped container lists no ports). */
  registryPort: `${LABEL_PREFIX}.registry-port`,
  version: `${LABEL_PREFIX}.kubernetes-version`,
  /** On a node image: the cache key of the recipe it was built from. */
  buildKey: `${LABEL_PREFIX}.build-key`,
  /** On a node image: the flannel release preloaded in it (clusters of several nodes need one). */
  flannel: `${LABEL_PREFIX}.flannel`,
  /** On a node image: the containerd and runc it runs (built from Go modules; absent in older images). */
  containerd: `${LABEL_PREFIX}.containerd`,
  runc: `${LABEL_PREFIX}.runc`,
  /** On an image in a node's containerd: the ID it had in the engine it was loaded from. */
  imageId: `${LABEL_PREFIX}.image-id`,
  /** On an image in a node's containerd: put there by `minilab image load` (a node added later gets it too). */
  loaded: `${LABEL_PREFIX}.loaded`,
} as const;

/** The Kubernetes label every minilab node carries (set by the kubelet at registration). */
export const NODE_LABEL = 'minilab.io/node';

/** containerd's label for images the kubelet never garbage-collects (not ours, read and written). */
export const CONTAINERD_PINNED_LABEL = 'io.cri-containerd.pinned';

export type ResourceKind = 'node' | 'load-balancer' | 'registry' | 'network' | 'volume' | 'build' | 'helper';

export function ownedLabels(
  profile: string,
  kind: ResourceKind,
  extra: Record<string, string> = {},
): Record<string, string> {
  return { ...extra, [Labels.managed]: 'true', [Labels.profile]: profile, [Labels.kind]: kind };
}

/** Parses MINILAB_LABELS ("k=v,k2=v2"): extra labels put on every resource (tests use it to find what they made). */
export function parseExtraLabels(value: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of (value ?? '').split(',')) {
    const trimmed = pair.trim();
    if (!trimmed) continue;
    const eq = trimmed.indexOf('=');
    if (eq <= 0) labels[trimmed] = '';
    else labels[trimmed.slice(0, eq)] = trimmed.slice(eq + 1);
  }
  return labels;
}
