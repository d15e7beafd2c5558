import { usageError } from '../errors.js';

export const DEFAULT_PROFILE = 'minilab';
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** Profile names become container, volume, network and kubeconfig names: they must be DNS labels. */
export function validateProfileName(name: string): string {
  const hint =
    'use lowercase letters, digits and "-", starting and ending with a letter or digit, e.g. -p dev-1';
  if (name.length === 0) throw usageError('the profile name is empty', hint);
  if (name.length > 63)
    throw usageError(`profile name "${name.slice(0, 20)}…" is longer than 63 characters`, hint);
  if (!DNS_LABEL.test(name)) throw usageError(`invalid profile name "${name}"`, hint);
  return name;
}

/** Node names become container and Kubernetes node names: DNS labels too. */
export function validateNodeName(name: string): string {
  if (!DNS_LABEL.test(name) || name.length > 63) {
    throw usageError(
      `invalid node name "${name.slice(0, 63)}"`,
      'use lowercase letters, digits and "-", starting and ending with a letter or digit',
    );
  }
  return name;
}

/** Names of a profile's resources: its network, its nodes and each node's /var volume. */
export function resourceNames(profile: string) {
  const node = (index = 0) => (index === 0 ? `${profile}-control-plane` : `${profile}-worker${index}`);
  return {
    network: `minilab-${profile}`,
    node,
    /** The i-th control plane (0-based): PROFILE-control-plane, then -control-plane2, -control-plane3. */
    controlPlane: (index: number) => `${profile}-control-plane${index === 0 ? '' : index + 1}`,
    /** The API endpoint of a cluster with several control planes (kind's name for it). */
    loadBalancer: `${profile}-external-load-balancer`,
    /** The registry add-on's container (its volume: the same name with -data). */
    registry: `${profile}-registry`,
    /** A node's /var volume, by the node's name (the first control plane's keeps its first name). */
    varVolume: (nodeName: string) => (nodeName === node(0) ? `${profile}-var` : `${nodeName}-var`),
    context: profile,
  };
}
