import type { Readable, Writable } from 'node:stream';
import { parseExtraLabels } from '../labels.js';
import type { LifecycleContext } from '../lifecycle/types.js';
import { ProfileStore, minilabHome } from '../profile/store.js';
import { MinilabError } from '../errors.js';
import {
  DRIVERS,
  connectProvider,
  detectDriver,
  podmanServed,
  validateDriver,
  type Driver,
} from '../providers/index.js';
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
  /** The driver a command was told to use (start's and image build's --driver). */
  driver?: Driver;
  /**
   * The provider of a profile's nodes (the driver its profile records), or with no profile (or a
   * new one) the driver asked for (--driver, else MINILAB_DRIVER) or detected; connected on first use.
   */
  provider(profile?: string): Promise<Provider>;
  /** The provider of every driver whose engine answers (commands over all profiles). */
  providers(): Promise<Provider[]>;
  /** What lifecycle operations on a profile need, with its provider connected. */
  lifecycle(profile?: string): Promise<LifecycleContext>;
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
  const connected = new Map<Driver, Promise<Provider>>();
  const connect = (driver: Driver) => {
    let provider = connected.get(driver);
    if (!provider) {
      // The driver's client (dockerode) loads only for commands that talk to an engine.
      provider = connectProvider(driver, { env: io.env, home, notify: (m) => ctx.reporter.info(m) });
      connected.set(driver, provider);
      provider.catch(() => connected.delete(driver));
    }
    return provider;
  };
  const driverFor = async (profile?: string): Promise<Driver> => {
    const config = profile ? await ctx.profiles.read(profile).catch(() => undefined) : undefined;
    if (config) {
      const recorded = validateDriver(config.driver ?? 'docker', `the profile "${profile}"`);
      if (ctx.driver && ctx.driver !== recorded) {
        throw new MinilabError('usage', `profile "${profile}" runs on ${recorded}, not ${ctx.driver}`, {
          hint: `leave --driver out, or delete the profile first (minilab delete -p ${profile})`,
        });
      }
      return recorded;
    }
    if (ctx.driver) return ctx.driver;
    if (io.env.MINILAB_DRIVER) return validateDriver(io.env.MINILAB_DRIVER, 'MINILAB_DRIVER');
    return detectDriver(io.env);
  };
  const ctx: Context = {
    ...io,
    home,
    profiles: new ProfileStore(home),
    extraLabels: parseExtraLabels(io.env.MINILAB_LABELS),
    reporter: new Reporter(io.stdout, io.stderr, io.env),
    provider: async (profile) => connect(await driverFor(profile)),
    providers: async () => {
      // A podman service is asked only where it runs: listing starts none.
      const reached = await Promise.allSettled(
        DRIVERS.filter((d) => d !== 'podman' || podmanServed(io.env)).map(connect),
      );
      const providers = reached.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      // With no engine at all, the first one's reason (and its hint) is the answer.
      if (providers.length === 0 && reached[0]?.status === 'rejected') throw reached[0].reason;
      return providers;
    },
    lifecycle: async (profile) => ({
      provider: await ctx.provider(profile),
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
