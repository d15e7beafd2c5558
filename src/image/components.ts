import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MinilabError, usageError } from '../errors.js';
import { isImageReference } from './archive.js';

/** What images/components/build.sh reports about the binaries it built. */
export interface Components {
  kubernetes: string;
  etcd: string;
  coredns: string;
  pause: string;
  localPathProvisioner: string;
  /** flannel's release (node images built from Go modules; absent in older ones and release builds). */
  flannel?: string;
  /** Where the flannel CNI plugin was built from. */
  flannelCniPlugin?: string;
  /** Exactly what `kubeadm config images list` prints for this version. */
  images: string[];
  goVersion?: string;
}

export const KUBE_COMMANDS = [
  'kubeadm',
  'kubelet',
  'kubectl',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kube-proxy',
] as const;

export async function readComponents(dir: string): Promise<Components> {
  const c = JSON.parse(await readFile(join(dir, 'components.json'), 'utf8')) as Components;
  return validateComponents(c, `${join(dir, 'components.json')} (from kubeadm config images list)`);
}

/**
 * Components as kubeadm and the build reported them, checked before they go anywhere: every image
 * they name (kubeadm's list, the storage and flannel images made from reported versions) must be
 * an image reference, since they end up in commands and config files in the node.
 */
export function validateComponents(c: Components, from: string): Components {
  const refs = [...c.images, ...Object.values(storageImages(c)), ...(c.flannel ? [flannelImage(c)] : [])];
  const bad = refs.find((ref) => !isImageReference(ref));
  if (bad !== undefined) {
    throw new MinilabError('environment', `${from} names ${JSON.stringify(bad)}, not an image reference`, {
      hint: 'the Kubernetes build or release is not what minilab expects: remove MINILAB_HOME/cache and build again',
    });
  }
  return c;
}

const VERSION = /^v1\.(\d+)\.(\d+)$/;
export const MIN_MINOR = 34;

/** Kubernetes versions are exact releases, v1.X.Y with X >= 34. */
export function validateKubernetesVersion(version: string): string {
  const m = VERSION.exec(version);
  const hint = 'give an exact release such as v1.36.5 (see `minilab image ls --node-images` for built ones)';
  if (!m) throw usageError(`invalid Kubernetes version "${version}"`, hint);
  if (Number(m[1]) < MIN_MINOR)
    throw usageError(`Kubernetes ${version} is older than v1.${MIN_MINOR}, the oldest minilab builds`, hint);
  return version;
}

/** The image name a node of this version runs. */
export const nodeImageRef = (version: string) => `minilab/node:${version}`;

/** Images the default StorageClass needs besides kubeadm's list. */
export const storageImages = (c: Components) => ({
  provisioner: `docker.io/rancher/local-path-provisioner:${c.localPathProvisioner}`,
  helper: 'docker.io/minilab/storage-helper:v1',
});

/** The flannel image preloaded into nodes built from Go modules (named as flannel publishes it). */
export function flannelImage(c: Components): string {
  if (!c.flannel) {
    throw new MinilabError('environment', `the node image of Kubernetes ${c.kubernetes} has no flannel`, {
      hint: 'clusters of several nodes need a node image built from Go modules: minilab image build --force',
    });
  }
  return `ghcr.io/flannel-io/flannel:${c.flannel}`;
}
