import { MinilabError, type ErrorKind, type ErrorOptions } from '../errors.js';
import { Labels } from '../labels.js';
import type { Node } from './types.js';

/**
 * What went wrong in the infrastructure, as a type rather than an engine's error text (as k3d's
 * sentinel errors do): only a provider reads its engine's messages; everyone else reads `reason`.
 */
export type ProviderFailure =
  /** A host port a node publishes is taken by another process. */
  | { reason: 'port-taken'; hostPort: number }
  /** A resource of that name exists already. */
  | { reason: 'name-in-use'; name: string }
  /** The resource does not exist. */
  | { reason: 'not-found'; name: string }
  /** The engine (Docker daemon, podman service, hypervisor) does not answer. */
  | { reason: 'unreachable' };

const KIND: Record<ProviderFailure['reason'], ErrorKind> = {
  'port-taken': 'environment',
  'name-in-use': 'environment',
  'not-found': 'notFound',
  unreachable: 'environment',
};

export class ProviderError extends MinilabError {
  constructor(
    readonly failure: ProviderFailure,
    message: string,
    options: ErrorOptions = {},
  ) {
    super(KIND[failure.reason], message, options);
    this.name = 'ProviderError';
  }
}

/** The failure of a provider error of one reason, or undefined for anything else. */
export function providerFailure<R extends ProviderFailure['reason']>(
  err: unknown,
  reason: R,
): Extract<ProviderFailure, { reason: R }> | undefined {
  return err instanceof ProviderError && err.failure.reason === reason
    ? (err.failure as Extract<ProviderFailure, { reason: R }>)
    : undefined;
}

/**
 * The API server's address on the host: the port the control-plane node's labels record (its
 * container, or its VM, publishes it on 127.0.0.1).
 */
export function apiEndpointOf(nodes: readonly Node[]): { host: string; port: number } {
  const cp = nodes.find((n) => n.role === 'control-plane');
  const port = Number(cp?.state.labels[Labels.apiServerPort]);
  if (!cp || !port) {
    throw new ProviderError(
      { reason: 'not-found', name: Labels.apiServerPort },
      `no control-plane node of profile "${nodes[0]?.profile ?? ''}" records its API server port`,
      { hint: 'delete the cluster and start it again' },
    );
  }
  return { host: '127.0.0.1', port };
}
