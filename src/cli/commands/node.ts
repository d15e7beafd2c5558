import type { Command } from 'commander';
import type { Context } from '../context.js';
import { addNode } from '../../lifecycle/add-node.js';
import { controlPlane } from '../../lifecycle/nodes.js';
import { removeNode } from '../../lifecycle/remove-node.js';
import { outputOption, profileOf, type OutputFormat } from '../options.js';
import { table } from '../output.js';

export function registerNode(program: Command, ctx: Context): void {
  const node = program.command('node').description("add, remove and list a cluster's nodes");
  node
    .command('add')
    .description(
      'add a worker, or a control plane, to the running cluster (it joins with a fresh bootstrap token)',
    )
    .option(
      '--name <name>',
      'the node name (default: the next free PROFILE-workerN or PROFILE-control-planeN)',
    )
    .option('--control-plane', 'add a control plane (clusters made with --control-planes 3 or more)')
    .addOption(outputOption())
    .action(async (opts: { name?: string; controlPlane?: boolean; output: OutputFormat }, cmd: Command) => {
      const profile = profileOf(cmd, ctx.env);
      const r = await addNode(await ctx.lifecycle(), profile, {
        name: opts.name,
        controlPlane: Boolean(opts.controlPlane),
      });
      ctx.reporter.result(opts.output, r, (d) => `Node ${d.node} joined cluster "${d.profile}"\n`);
    });
  node
    .command('delete')
    .description(
      'drain a node, remove it from the cluster (a control plane also from etcd and the load balancer), then its container and volume',
    )
    .argument('<name>', 'the node')
    .addOption(outputOption())
    .action(async (name: string, opts: { output: OutputFormat }, cmd: Command) => {
      const profile = profileOf(cmd, ctx.env);
      const r = await removeNode(await ctx.lifecycle(), profile, name);
      ctx.reporter.result(opts.output, r, (d) => `Node ${d.node} removed from cluster "${d.profile}"\n`);
    });
  node
    .command('list')
    .description("the cluster's nodes with their role, state and address")
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, cmd: Command) => {
      const { nodes } = await controlPlane(await ctx.provider(), profileOf(cmd, ctx.env));
      const list = nodes.map((n) => ({
        name: n.name,
        role: n.role,
        status: n.state.status,
        ip: n.state.ip ?? '',
      }));
      ctx.reporter.result(opts.output, { nodes: list }, (d) =>
        table(
          ['NAME', 'ROLE', 'STATUS', 'IP'],
          d.nodes.map((n) => [n.name, n.role, n.status, n.ip]),
        ),
      );
    });
}
