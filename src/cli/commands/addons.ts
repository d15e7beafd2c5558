import type { Command } from 'commander';
import type { Context } from '../context.js';
import { describeEnabled, disableAddons, enableAddons, listAddons } from '../../addons/manage.js';
import { ADDONS, addonsNamed } from '../../addons/catalog.js';
import { runLoadBalancerAgent } from '../../addons/loadbalancer.js';
import { AGENT_USERS, type AgentUser } from '../../addons/loadbalancer-ports.js';
import { credentials, runningControlPlane } from '../../lifecycle/nodes.js';
import { outputOption, profileOf, type OutputFormat } from '../options.js';
import { table } from '../output.js';

export function registerAddons(program: Command, ctx: Context): void {
  const addons = program
    .command('addons')
    .description(`list, enable and disable add-ons (${ADDONS.map((a) => a.name).join(', ')})`);
  addons
    .command('list')
    .description("the add-ons and whether the profile's cluster has each enabled")
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, cmd: Command) => {
      const profile = profileOf(cmd, ctx.env);
      const list = await listAddons(ctx, profile, () => ctx.lifecycle(profile));
      ctx.reporter.result(opts.output, { profile, addons: list }, (d) =>
        table(
          ['ADD-ON', 'ENABLED', 'DESCRIPTION'],
          d.addons.map((a) => [
            a.name,
            a.enabled ? `yes${a.status ? `: ${a.status}` : ''}` : 'no',
            a.description,
          ]),
        ),
      );
    });
  addons
    .command('enable')
    .description(
      'build (cached), load and apply add-ons in the running cluster; returns once they work; remembered by the profile',
    )
    .argument('<names...>', 'add-ons to enable')
    .addOption(outputOption())
    .action(async (names: string[], opts: { output: OutputFormat }, cmd: Command) => {
      addonsNamed(names); // unknown names are refused before anything is looked at
      const profile = profileOf(cmd, ctx.env);
      const r = await enableAddons(await ctx.lifecycle(profile), profile, names);
      ctx.reporter.result(opts.output, r, describeEnabled);
    });
  addons
    .command('disable')
    .description(
      "remove what an add-on's enable made and forget it (metrics-server's images stay in the nodes; the registry's container goes with the images pushed to it)",
    )
    .argument('<names...>', 'add-ons to disable')
    .addOption(outputOption())
    .action(async (names: string[], opts: { output: OutputFormat }, cmd: Command) => {
      addonsNamed(names);
      const profile = profileOf(cmd, ctx.env);
      const r = await disableAddons(await ctx.lifecycle(profile), profile, names);
      ctx.reporter.result(
        opts.output,
        r,
        (d) =>
          [
            ...d.disabled.map((n) => `${n} is disabled in cluster "${d.profile}"`),
            ...d.notEnabled.map((n) => `${n} was not enabled in cluster "${d.profile}": nothing to do`),
          ].join('\n') + '\n',
      );
    });
  addons
    .command('loadbalancer-agent', { hidden: true })
    .description("internal: the loadbalancer add-on's agent, run in the background by enable and start")
    .option('--for <add-ons>', 'the add-ons whose Services it serves (loadbalancer, ingress)', 'loadbalancer')
    .action(async (opts: { for: string }, cmd: Command) => {
      const users = opts.for.split(',').filter((u): u is AgentUser => (AGENT_USERS as string[]).includes(u));
      const profile = profileOf(cmd, ctx.env);
      const lifecycle = await ctx.lifecycle(profile);
      const entry = await credentials(
        lifecycle.provider,
        await runningControlPlane(lifecycle.provider, profile),
      );
      await runLoadBalancerAgent(entry, ctx.profiles.dir(profile), users);
      // nothing it opened may keep a stopped agent alive (a watch reconnecting, a socket closing)
      process.exit(0);
    });
}
