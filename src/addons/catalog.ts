import { usageError } from '../errors.js';
import { ingress } from './ingress.js';
import { loadBalancer } from './loadbalancer.js';
import { metricsServer } from './metrics-server.js';
import { registry } from './registry.js';
import type { Addon } from './types.js';

/** Every add-on, in the order `addons list` shows them. */
export const ADDONS: readonly Addon[] = [metricsServer, registry, loadBalancer, ingress];

/** The add-ons of these names, each once; an unknown name is a usage error listing the known ones. */
export function addonsNamed(names: string[]): Addon[] {
  const found: Addon[] = [];
  for (const name of names) {
    const addon = ADDONS.find((a) => a.name === name);
    if (!addon) {
      throw usageError(
        `unknown add-on "${name}"`,
        `the add-ons are: ${ADDONS.map((a) => a.name).join(', ')} (minilab addons list)`,
      );
    }
    if (!found.includes(addon)) found.push(addon);
  }
  return found;
}

/** `--addons a,b`: names separated by commas, checked against the catalog. */
export function parseAddonList(value: string): string[] {
  const names = value
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  if (names.length === 0) throw usageError('--addons names no add-on', 'e.g. --addons metrics-server');
  return addonsNamed(names).map((a) => a.name);
}
