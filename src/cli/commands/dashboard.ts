import type { Command } from 'commander';
import type { Context } from '../context.js';
import { parseIntOption, profileOf } from '../options.js';
import { credentials, runningControlPlane } from '../../lifecycle/nodes.js';
import { listProfiles } from '../../lifecycle/profiles.js';
import { interruption } from '../interrupt.js';

export function registerDashboard(program: Command, ctx: Context): void {
  program
    .command('dashboard')
    .description('serve the web dashboard of the cluster on 127.0.0.1 and open it (runs until Ctrl-C)')
    .option('--port <n>', 'local port to serve on (default: a free one)', parseIntOption('--port', 1, 65535))
    .option('--url', 'only print the URL; do not open a browser')
    .action(async (opts: { port?: number; url?: boolean }, cmd: Command) => {
      const profile = profileOf(cmd, ctx.env);
      // Any of the user's profiles: the page switches between them.
      const resolve = async (name: string) => {
        const provider = await ctx.provider(name);
        return credentials(provider, await runningControlPlane(provider, name));
      };
      const list = async () => listProfiles(await ctx.providers(), ctx.profiles);
      // The credentials are read (the engine asked, a file read in the node) while the dashboard's
      // modules load: the Kubernetes client alone takes about 0.55 s to load, here not when the CLI
      // starts. Awaited by startDashboard.
      const first = resolve(profile);
      first.catch(() => undefined);
      const { startDashboard } = await import('../../dashboard/index.js');
      const { canOpenBrowser, openDashboard } = await import('../../dashboard/browser.js');
      const dashboard = await ctx.reporter.step(`Starting the dashboard of "${profile}"`, () =>
        startDashboard({
          profile,
          first,
          port: opts.port,
          resolve,
          listProfiles: async () =>
            (await list()).map(({ name, status, driver }) => ({ name, status, driver })),
        }),
      );
      const stop = interruption();
      let removeLaunchPage = async (): Promise<void> => undefined;
      try {
        ctx.stdout.write(`${dashboard.url}\n`);
        if (!opts.url) {
          if (canOpenBrowser(ctx.env)) {
            removeLaunchPage = await openDashboard(dashboard, (reason) =>
              ctx.reporter.warn(`could not open a browser (${reason}): open the URL above`),
            );
          } else {
            ctx.reporter.info('No display to open a browser on: open the URL above.');
          }
        }
        ctx.reporter.info('Serving the dashboard; press Ctrl-C to stop.');
        await stop.happened;
      } finally {
        stop.dispose();
        await removeLaunchPage();
        await dashboard.close();
      }
      ctx.reporter.info('Dashboard stopped.');
    });
}
