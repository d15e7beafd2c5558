import type { Readable, Writable } from 'node:stream';
import { parseExtraLabels } from '../labels.js';
import type { LifecycleContext } from '../lifecycle/types.js';
import { ProfileStore, minilabHome } from '../profile/store.js';
import { connectProvider } from '../providers/index.js';
import type { Provider } from '../providers/types.js';
import { Reporter } from '../reporter.js';

/** Everything a command needs, built once in main: environment read here and nowhere deeper. */
export interface Context {
  env: NodeJS.ProcessEnv;
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
  home: string;
  profiles: ProfileStore;
  /** Extra labels on every resource this run makes (MINILAB_LABELS). */
  extraLabels: Record<string, string>;
  reporter: Reporter;
  /** The provider of the nodes (the Docker engine today), connected on first use. */
  provider(): Promise<Provider>;
  /** What lifecycle operations need, with the provider connected. */
  lifecycle(): Promise<LifecycleContext>;
  verbose: boolean;
  /** Set by commands whose exit code reports state rather than failure (status, ssh). */
  exitCode?: number;
}

export function createContext(io: {
  env: NodeJS.ProcessEnv;
  stdin: Context['stdin'];
  stdout: Context['stdout'];
  stderr: Context['stderr'];
}): Context {
  const home = minilabHome(io.env);
  let provider: Promise<Provider> | undefined;
  const ctx: Context = {
    ...io,
    home,
    profiles: new ProfileStore(home),
    extraLabels: parseExtraLabels(io.env.MINILAB_LABELS),
    reporter: new Reporter(io.stdout, io.stderr, io.env),
    provider: () => {
      // The driver's client (dockerode) loads only for commands that talk to an engine.
      provider ??= connectProvider('docker', io.env);
      provider.catch(() => (provider = undefined));
      return provider;
    },
    lifecycle: async () => ({
      provider: await ctx.provider(),
      kube: (await import('../kube/cluster-api.js')).kubernetesApi(),
      reporter: ctx.reporter,
      profiles: ctx.profiles,
      home: ctx.home,
      env: ctx.env,
      extraLabels: ctx.extraLabels,
    }),
    verbose: false,
  };
  return ctx;
}
