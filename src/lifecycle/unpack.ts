import { flannelImage, storageImages, type Components } from '../image/components.js';
import { runInNode } from '../providers/run.js';
import type { Node } from '../providers/types.js';

/** kubeadm's images whose references match `re`. */
const named = (c: Components, re: RegExp) => c.images.filter((ref) => re.test(ref));

/**
 * The preloaded images a new cluster's first pods run on the first control plane, in the order
 * they are needed, that the node image keeps compressed (only the kube layer is unpacked when the
 * image is built; see src/image/build.ts): pause, which every pod's sandbox runs, meant to be
 * unpacked before the kubelet starts its first; then, with several nodes, flannel's image, whose
 * container writes the CNI configuration the node's Ready waits for; CoreDNS, whose readiness
 * `start` waits for; kube-proxy and, when it runs on this node, the storage provisioner, which
 * start at the same moment as CoreDNS and would otherwise be decompressed beside it.
 */
export function firstPodImages(
  c: Components,
  opts: { flannel: boolean; provisioner: boolean },
): { sandbox: string[]; pods: string[] } {
  return {
    sandbox: named(c, /\/pause:/),
    pods: [
      ...(opts.flannel && c.flannel ? [flannelImage(c)] : []),
      ...named(c, /\/coredns:/),
      ...named(c, /\/kube-proxy:/),
      ...(opts.provisioner ? [storageImages(c).provisioner] : []),
    ],
  };
}

/** What a joining node's first pods run: pause, flannel's image and kube-proxy's (firstPodImages). */
export function joiningNodeImages(c: Components): string[] {
  return [...named(c, /\/pause:/), ...(c.flannel ? [flannelImage(c)] : []), ...named(c, /\/kube-proxy:/)];
}

/**
 * Runs a node's join while the node unpacks its first pods' images (joiningNodeImages): its
 * kubelet starts them only after the join's TLS bootstrap and the node's registration.
 * `components` settles once the node can unpack (it has booted). The unpacking never fails the
 * join, and is over when this returns, so nothing runs on in a node a failed join's rollback
 * removes.
 */
export async function joinUnpacking(
  node: Node,
  components: Promise<Components>,
  join: () => Promise<void>,
): Promise<void> {
  const unpacked = components.then(joiningNodeImages, () => []).then((refs) => unpackImages(node, refs));
  try {
    await join();
  } finally {
    await unpacked;
  }
}

/**
 * Unpacks images into containerd's snapshots ahead of their first container, which would
 * otherwise decompress them on its way to starting (CoreDNS's 14 MiB of zstd into 50 MiB: about
 * 0.15 s of an idle core, 0.17-0.38 s of its CreateContainer during a start; pause 0.03 s).
 * `ctr images mount` unpacks an image as containerd's CRI does (same snapshotter, and the image
 * keeps its snapshots), then the view is unmounted and removed, also when the script ends early.
 * Only time is at stake: an image not unpacked here is unpacked at its first use as before, so a
 * failure is not the start's, and this never rejects.
 */
export async function unpackImages(node: Node, refs: string[]): Promise<void> {
  if (refs.length === 0) return;
  await runInNode(
    node,
    // The references are the script's arguments, never part of its text.
    [
      'bash',
      '-u',
      '-c',
      `dir=$(mktemp -d /run/minilab-unpack.XXXXXX) || exit 1
trap 'ctr -n k8s.io images unmount --rm "$dir" >/dev/null 2>&1; rmdir "$dir"' EXIT
trap 'exit 1' TERM INT
rc=0
for ref; do
  ctr -n k8s.io images mount --rw=false "$ref" "$dir" >/dev/null || { rc=1; continue; }
  ctr -n k8s.io images unmount --rm "$dir" >/dev/null || { rc=1; break; }
done
exit $rc`,
      'unpack',
      ...refs,
    ],
    'unpacking images',
    { timeoutMs: 30_000 },
  ).catch(() => undefined);
}
