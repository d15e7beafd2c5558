/**
 * Where an engine that speaks Docker's API behaves otherwise than Docker. The podman service
 * answers the same API (testcontainers and dockerode reach it the same way), so the Docker
 * provider's code serves both; each of podman's differences is named here and nowhere else.
 */
export interface Dialect {
  /** The driver's name, as users pass it to --driver. */
  driver: 'docker' | 'podman';
  /** How messages name the engine. */
  engine: string;
  /** The engine's own command line, named in hints. */
  cli: string;
  /** What to do when it does not answer or misbehaves. */
  hint: string;
  /** The `container` variable a node's systemd reads (podman sets "podman" in its own containers). */
  containerEnv: string;
  /**
   * The third octet of the first 192.168.x.0/24 a node network is given (then x + 9, ...). The two
   * engines never take the same one: netavark makes a network's bridge only while a container
   * uses it, so neither engine can see a stopped cluster's subnet of the other.
   */
  firstSubnet: number;
  /** An image name as users write it, from the name the engine answers with. */
  shortName(name: string): string;
  /**
   * What an exec's start carries for its terminal's first size: Docker takes it when the exec is
   * made (ConsoleSize), podman only when it starts (h and w), so a command never sees a 0x0 TTY.
   */
  execStartSize(rows: number, columns: number): Record<string, number>;
  /**
   * Whether a running container is killed (SIGKILL) before its forced removal: the podman service
   * took 0.59 s to force-remove a booted node container here, 0.10 s to kill it and 0.16 s to
   * remove it then; Docker's forced removal is its kill.
   */
  killBeforeRemove: boolean;
  /**
   * The /_ping header that carries the engine's version, read from the ping that checks it answers
   * (podman's Libpod-Api-Version, in every podman since 2.0; its compatible /version takes 0.4 s).
   */
  versionHeader?: string;
}

export const DOCKER_DIALECT: Dialect = {
  driver: 'docker',
  engine: 'Docker engine',
  cli: 'docker',
  hint: 'check that the Docker engine is healthy',
  containerEnv: 'docker',
  firstSubnet: 49,
  shortName: (name) => name,
  execStartSize: () => ({}),
  killBeforeRemove: false,
};

/**
 * Podman's compatible API qualifies every short name it stores ("minilab/node:v1.37.2" is listed as
 * "docker.io/minilab/node:v1.37.2"); minilab's names, and users', are the short ones.
 */
export function unqualified(name: string): string {
  if (!name.startsWith('docker.io/')) return name;
  const rest = name.slice('docker.io/'.length);
  const official = /^library\/([^/]+)$/.exec(rest);
  return official ? official[1]! : rest;
}

export const PODMAN_DIALECT: Dialect = {
  driver: 'podman',
  engine: 'podman service',
  cli: 'podman',
  hint: 'check that the podman service is healthy (podman system service, or systemctl status podman.socket)',
  containerEnv: 'podman',
  firstSubnet: 53,
  shortName: unqualified,
  execStartSize: (rows, columns) => ({ h: rows, w: columns }),
  killBeforeRemove: true,
  versionHeader: 'libpod-api-version',
};
