import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { MinilabError } from '../errors.js';

/** What the user asked for, per profile: the engine holds the truth about what exists. */
export interface ProfileConfig {
  name: string;
  kubernetesVersion: string;
  /** The driver its nodes run on (absent in profiles made before podman: docker). */
  driver?: string;
  cpus?: number;
  memoryBytes?: number;
  diskBytes?: number;
  ports: { hostPort: number; containerPort: number; protocol: 'tcp' | 'udp' }[];
  /** The kubeconfig file and context that start wrote, so delete removes exactly those entries. */
  kubeconfig?: { path: string; context: string };
  /** Enabled add-ons (minilab addons enable), applied again by every start. */
  addons?: string[];
  createdAt: string;
}

export function minilabHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.MINILAB_HOME || join(homedir(), '.minilab');
}

/** Writes a file atomically: a temporary file beside it, then a rename. */
export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    await writeFile(tmp, data, { mode });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export class ProfileStore {
  constructor(readonly home: string) {}

  dir(name: string): string {
    return join(this.home, 'profiles', name);
  }

  private file(name: string): string {
    return join(this.dir(name), 'profile.json');
  }

  async read(name: string): Promise<ProfileConfig | undefined> {
    let text: string;
    try {
      text = await readFile(this.file(name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      return JSON.parse(text) as ProfileConfig;
    } catch (err) {
      throw new MinilabError('environment', `profile file ${this.file(name)} is not valid JSON`, {
        hint: `fix or remove it, then run the command again (minilab delete -p ${name} removes it)`,
        cause: err,
      });
    }
  }

  async write(config: ProfileConfig): Promise<void> {
    await mkdir(this.dir(config.name), { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.file(config.name), JSON.stringify(config, null, 2) + '\n');
  }

  async remove(name: string): Promise<void> {
    await rm(this.dir(name), { recursive: true, force: true });
  }

  async list(): Promise<string[]> {
    try {
      const entries = await readdir(join(this.home, 'profiles'), { withFileTypes: true });
      return entries
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }
}
