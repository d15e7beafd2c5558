import type { Readable, Writable } from 'node:stream';
import { parseExtraLabels } from '../labels.js';
import type { LifecycleContext } from '../lifecycle/types.js';
import { ProfileStore, minilabHome, type ProfileConfig } from '../profile/store.js';
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

export interface ProviderOptions {
  /** The driver the user named (start's and image build's --driver, delete --all's listing). */
  driver?: Driver;
  /** May start the podman service when none runs (start, image build: commands that make things). */
  startService?: boolean;
}

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
  /**
   * The provider of a profile's nodes: the driver its state records (absent: docker), else the
   * engine that holds nodes of that profile, else (a new cluster, or no profile) `opts.driver`
   * (--driver), MINILAB_DRIVER, or the one detected. A --driver other than the profile's is a usage
   * error. Connected on first use; only `opts.startService` may start a podman service.
   */
  provider(profile?: string, opts?: ProviderOptions): Promise<Provider>;
  /** The provider of every driver whose engine answers (commands over all profiles); starts nothing. */
  providers(): Promise<Provider[]>;
  /** What lifecycle operations on a profile need, with its provider connected. */
  lifecycle(profile?: string, opts?: ProviderOptions): Promise<LifecycleContext>;
  verbose: boolean;
  /** Set by commands whose exit code reports state rather than failure (status, ssh). */
  exitCode?: number;
}

/** A --driver that is not the one the profile's nodes run on: refused before anything is done. */
const otherDriver = (profile: string, theirs: Driver, asked: Driver) =>
  new MinilabError('usage', `profile "${profile}" runs on ${theirs}, not ${asked}`, {
    hint: `leave --driver out, or delete the profile first (minilab delete -p ${profile})`,
  });

export function createContext(io: {
  env: NodeJS.ProcessEnv;
  stdin: Context['stdin'];
  stdout: Context['stdout'];
  stderr: Context['stderr'];
}): Context {
  const home = minilabHome(io.env);
  const connected = new Map<Driver, Promise<Provider>>();
  const connect = (driver: Driver, startService = false) => {
    let provider = connected.get(driver);
    if (!provider) {
      // The driver's client (dockerode) loads only for commands that talk to an engine.
      provider = connectProvider(driver, {
        env: io.env,
        home,
        startService,
        notify: (m) => ctx.reporter.info(m),
      });
      connected.set(driver, provider);
      provider.catch(() => connected.delete(driver));
    }
    return provider;
  };
  /** Every engine that answers, without starting any: a podman service only where one is served. */
  const reachable = async () => {
    const drivers = DRIVERS.filter((d) => d !== 'podman' || podmanServed(io.env));
    const reached = await Promise.allSettled(drivers.map((d) => connect(d)));
    return reached.map((r, i) => ({ driver: drivers[i]!, result: r }));
  };
  const driverFor = async (profile: string | undefined, asked: Driver | undefined): Promise<Driver> => {
    let config: ProfileConfig | undefined;
    try {
      config = profile ? await ctx.profiles.read(profile) : undefined;
    } catch {
      // Unreadable state: the engines say where its nodes are (below), so delete still finds them.
    }
    if (config) {
      const recorded = DRIVERS.find((d) => d === (config.driver ?? 'docker'));
      if (!recorded) {
        throw new MinilabError(
          'environment',
          `the profile "${profile}" records an unknown driver "${config.driver}"`,
          {
            hint: `fix its profile.json (${DRIVERS.join(' or ')}), or remove the folder ${ctx.profiles.dir(profile ?? '')}`,
          },
        );
      }
      if (asked && asked !== recorded) throw otherDriver(profile ?? '', recorded, asked);
      return recorded;
    }
    if (profile) {
      // No state (made under another MINILAB_HOME, or lost): the engine holding its nodes.
      for (const { driver, result } of await reachable()) {
        if (result.status !== 'fulfilled' || driver === asked) continue;
        const nodes = await result.value.listNodes(profile).catch(() => []);
        if (nodes.length > 0) {
          if (asked) throw otherDriver(profile, driver, asked);
          return driver;
        }
      }
    }
    if (asked) return asked;
    if (io.env.MINILAB_DRIVER) return validateDriver(io.env.MINILAB_DRIVER, 'MINILAB_DRIVER');
    return detectDriver(io.env);
  };
  const ctx: Context = {
    ...io,
    home,
    profiles: new ProfileStore(home),
    extraLabels: parseExtraLabels(io.env.MINILAB_LABELS),
    reporter: new Reporter(io.stdout, io.stderr, io.env),
    provider: async (profile, opts = {}) => connect(await driverFor(profile, opts.driver), opts.startService),
    providers: async () => {
      const reached = await reachable();
      const providers = reached.flatMap((r) => (r.result.status === 'fulfilled' ? [r.result.value] : []));
      // With no engine at all, the first one's reason (and its hint) is the answer.
      const first = reached[0]?.result;
      if (providers.length === 0 && first?.status === 'rejected') throw first.reason;
      return providers;
    },
    lifecycle: async (profile, opts) => ({
      provider: await ctx.provider(profile, opts),
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
