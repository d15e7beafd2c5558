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

/** Docker resource names for a profile's resources (one node today; the suffix leaves room for more). */
export function resourceNames(profile: string) {
  return {
    network: `minilab-${profile}`,
    node: (index = 0) => (index === 0 ? `${profile}-control-plane` : `${profile}-worker${index}`),
    varVolume: (index = 0) => `${profile}-var${index === 0 ? '' : index}`,
    context: profile,
  };
}
