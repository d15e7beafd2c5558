import type { Command } from 'commander';
import type { Context } from '../context.js';
import { listProfiles } from '../../lifecycle/profiles.js';
import { outputOption, type OutputFormat } from '../options.js';
import { table } from '../output.js';

export function registerProfile(program: Command, ctx: Context): void {
  const profile = program.command('profile').description('list and inspect profiles (one cluster each)');
  profile
    .command('list')
    .description(
      'list profiles with their driver and state, read from each engine that answers (Docker, podman)',
    )
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }) => {
      const profiles = await listProfiles(await ctx.providers(), ctx.profiles);
      ctx.reporter.result(opts.output, { profiles }, (d) =>
        d.profiles.length === 0
          ? 'no profiles; create one with: minilab start\n'
          : table(
              ['PROFILE', 'STATUS', 'DRIVER', 'NODES', 'VERSION', 'API SERVER'],
              d.profiles.map((p) => [
                p.name,
                p.status,
                p.driver,
                String(p.nodes.length),
                p.kubernetesVersion ?? '-',
                p.apiServer ?? '-',
              ]),
            ),
      );
    });
}
