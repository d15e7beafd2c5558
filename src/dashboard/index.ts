import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import getPort from 'get-port';
import { MinilabError } from '../errors.js';
import type { KubeconfigEntry } from '../kube/kubeconfig.js';
import { LiveCluster } from './cluster.js';
import type { ProfileEntry } from './model.js';
import { ProfileSessions, type ProfileView } from './profiles.js';
import { UsageSampler } from './sampler.js';
import { createGuard, launchUrl, sessionUrl } from './security.js';
import { startServer } from './server.js';

export interface DashboardOptions {
  /** The profile served first (the page can switch to any other of the user's). */
  profile: string;
  /** The loopback port to serve on; a free one when not given. */
  port?: number;
  /** The first profile's entry, when its read began before (else read with `resolve`). */
  first?: Promise<KubeconfigEntry>;
  /** Reads a profile's admin kubeconfig entry (again after the cluster restarts). */
  resolve: (profile: string) => Promise<KubeconfigEntry>;
  /** The user's profiles with their state, for the page's switcher. */
  listProfiles: () => Promise<ProfileEntry[]>;
  /** The built web UI; defaults to the one built beside this module. */
  assetsDir?: string;
}

export interface Dashboard {
  /** The URL to print: it carries this run's token, in the fragment. */
  url: string;
  /** A one-time URL without the token, for the browser minilab starts (see browser.ts). */
  launchUrl: string;
  port: number;
  close(): Promise<void>;
}

export const defaultAssetsDir = () => fileURLToPath(new URL('./web/', import.meta.url));

/**
 * A profile's live view: watches that connect in the background, starting with credentials already
 * read when given (the first profile's, read before the server listens). Its API server is the one
 * of the last credentials read (a restarted cluster may listen on another port).
 */
export function openProfile(
  name: string,
  resolve: DashboardOptions['resolve'],
  first: Promise<KubeconfigEntry> = resolve(name),
): ProfileView {
  let apiServer = '';
  const read = (entry: Promise<KubeconfigEntry>) => {
    entry.then(
      (e) => (apiServer = e.server),
      () => undefined,
    );
    return entry;
  };
  let pending: Promise<KubeconfigEntry> | undefined = read(first);
  const cluster = new LiveCluster({
    resolve: () => {
      const entry = pending ?? read(resolve(name));
      pending = undefined;
      return entry;
    },
  });
  cluster.start();
  const usage = new UsageSampler(() => cluster.clients());
  usage.start();
  return {
    cluster,
    usage,
    info: async () => {
      await first.catch(() => undefined);
      return { profile: name, apiServer };
    },
    close: () => {
      usage.stop();
      return cluster.stop();
    },
  };
}

/**
 * Serves the dashboard on 127.0.0.1, as soon as the first profile's credentials are read; the
 * watches connect in the background and the page shows when they are live. Other profiles start
 * when a page first asks for one.
 */
export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const assetsDir = opts.assetsDir ?? defaultAssetsDir();
  if (!existsSync(join(assetsDir, 'index.html'))) {
    throw new MinilabError(
      'environment',
      `the dashboard web UI is not built (no ${join(assetsDir, 'index.html')})`,
      {
        hint: 'run npm run build in the minilab checkout',
      },
    );
  }
  const first = await (opts.first ?? opts.resolve(opts.profile));
  const port = opts.port ?? (await getPort({ host: '127.0.0.1' }));
  const guard = createGuard(port);
  const profiles = new ProfileSessions({
    initial: opts.profile,
    list: opts.listProfiles,
    open: (name) =>
      openProfile(name, opts.resolve, name === opts.profile ? Promise.resolve(first) : undefined),
  });
  // The first profile's watches start at once, not when the page first asks.
  await profiles.view(opts.profile);
  try {
    const server = await startServer({ guard, profiles, assetsDir }, port);
    return {
      url: sessionUrl(guard),
      launchUrl: launchUrl(guard),
      port,
      close: async () => {
        await server.close();
        await profiles.close();
      },
    };
  } catch (err) {
    await profiles.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') {
      throw new MinilabError('environment', `cannot listen on 127.0.0.1:${port} (${code})`, {
        hint: 'choose another port with --port, or leave it out to get a free one',
        cause: err,
      });
    }
    throw err;
  }
}
