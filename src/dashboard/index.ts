import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import getPort from 'get-port';
import { MinilabError } from '../errors.js';
import type { KubeconfigEntry } from '../kube/kubeconfig.js';
import { LiveCluster } from './cluster.js';
import { createGuard, launchUrl, sessionUrl } from './security.js';
import { startServer } from './server.js';

export interface DashboardOptions {
  profile: string;
  /** The loopback port to serve on; a free one when not given. */
  port?: number;
  /** Reads the profile's admin kubeconfig entry (again after the cluster restarts). */
  resolve: () => Promise<KubeconfigEntry>;
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
 * Serves the dashboard for one profile on 127.0.0.1, as soon as the cluster's credentials are read;
 * the watches connect in the background and the page shows when they are live.
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
  let first: KubeconfigEntry | undefined = await opts.resolve();
  const apiServer = first.server;
  const port = opts.port ?? (await getPort({ host: '127.0.0.1' }));
  const guard = createGuard(port);
  const cluster = new LiveCluster({
    resolve: async () => {
      const entry = first ?? (await opts.resolve());
      first = undefined;
      return entry;
    },
  });
  cluster.start();
  try {
    const server = await startServer(
      { guard, cluster, info: { profile: opts.profile, apiServer }, assetsDir },
      port,
    );
    return {
      url: sessionUrl(guard),
      launchUrl: launchUrl(guard),
      port,
      close: async () => {
        await server.close();
        await cluster.stop();
      },
    };
  } catch (err) {
    await cluster.stop();
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
