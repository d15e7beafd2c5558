import { stat } from 'node:fs/promises';

/** Where the podman service's API is looked for, and whether that is a rootless service (no client library loads here: detection stays cheap). */
export interface PodmanSocket {
  /** unix:///path or tcp://host:port, as CONTAINER_HOST spells it. */
  address: string;
  rootless: boolean;
  /** Why this one: CONTAINER_HOST, or the rootful or rootless default. */
  from: 'CONTAINER_HOST' | 'rootful' | 'rootless';
}

export const ROOTFUL_SOCKET = '/run/podman/podman.sock';

/**
 * The sockets podman's own clients use, in their order: CONTAINER_HOST when set (and only it);
 * else root's /run/podman/podman.sock for root, and for anyone else their rootless service's
 * socket in XDG_RUNTIME_DIR, then the rootful one (usable by members of its group).
 */
export function podmanSockets(env: NodeJS.ProcessEnv, uid: number | undefined): PodmanSocket[] {
  if (env.CONTAINER_HOST) {
    return [{ address: env.CONTAINER_HOST, rootless: false, from: 'CONTAINER_HOST' }];
  }
  const rootful: PodmanSocket = { address: `unix://${ROOTFUL_SOCKET}`, rootless: false, from: 'rootful' };
  if (uid === 0 || uid === undefined) return [rootful];
  const runtime = env.XDG_RUNTIME_DIR || `/run/user/${uid}`;
  return [{ address: `unix://${runtime}/podman/podman.sock`, rootless: true, from: 'rootless' }, rootful];
}

/** The file of a unix:// address, or undefined for a TCP one. */
export function socketPath(address: string): string | undefined {
  return address.startsWith('unix://') ? address.slice('unix://'.length) : undefined;
}

/**
 * Whether the service behind a unix socket runs rootless, from the socket file's owner (a rootful
 * service's belongs to root, a rootless one's to its user): a stat, where GET /libpod/info takes
 * 0.4 s. Undefined for a TCP address or a socket that cannot be read.
 */
export async function rootlessBySocket(address: string): Promise<boolean | undefined> {
  const path = socketPath(address);
  if (path === undefined) return undefined;
  try {
    return (await stat(path)).uid !== 0;
  } catch {
    return undefined;
  }
}
