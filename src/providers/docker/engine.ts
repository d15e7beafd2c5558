import { DockerClient, type EngineEnv } from './client.js';
import { Containers } from './containers.js';
import { Exec } from './exec.js';
import { DockerImages } from './images.js';
import { Networks, Volumes } from './resources.js';

/** What the Docker engine says about itself. */
export interface EngineInfo {
  serverVersion: string;
  cgroupVersion: '1' | '2';
  cgroupDriver: string;
  rootDir: string;
  cpus: number;
  memoryBytes: number;
  os: string;
  rootless: boolean;
}

/**
 * One Docker engine, by concern: containers, exec, images, networks, volumes. The Docker provider
 * is built on it; tests that inspect what the engine holds use it directly.
 */
export class DockerEngine {
  readonly containers: Containers;
  readonly exec: Exec;
  readonly images: DockerImages;
  readonly networks: Networks;
  readonly volumes: Volumes;

  constructor(readonly client: DockerClient) {
    this.containers = new Containers(client);
    this.exec = new Exec(client);
    this.images = new DockerImages(client, this.containers, this.exec);
    this.networks = new Networks(client);
    this.volumes = new Volumes(client);
  }

  static async connect(env: EngineEnv, timeoutMs?: number): Promise<DockerEngine> {
    return new DockerEngine(await DockerClient.connect(env, timeoutMs));
  }

  async info(): Promise<EngineInfo> {
    const i = await this.client.call('report its info', () => this.client.docker.info());
    return {
      serverVersion: i.ServerVersion,
      cgroupVersion: i.CgroupVersion === '2' ? '2' : '1',
      cgroupDriver: i.CgroupDriver,
      rootDir: i.DockerRootDir,
      cpus: i.NCPU,
      memoryBytes: i.MemTotal,
      os: i.OperatingSystem,
      rootless: (i.SecurityOptions ?? []).some((o: string) => o.includes('rootless')),
    };
  }
}
