import type { Command } from 'commander';
import type { Context } from '../context.js';
import { addNode } from '../../lifecycle/add-node.js';
import { startNode, stopNode } from '../../lifecycle/node-power.js';
import { controlPlane } from '../../lifecycle/nodes.js';
import { removeNode } from '../../lifecycle/remove-node.js';
import { outputOption, profileOf, type OutputFormat } from '../options.js';
import { table } from '../output.js';

export function registerNode(program: Command, ctx: Context): void {
  const node = program.command('node').description("add, remove, stop, start and list a cluster's nodes");
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
      const r = await addNode(await ctx.lifecycle(profile), profile, {
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
      const r = await removeNode(await ctx.lifecycle(profile), profile, name);
      ctx.reporter.result(opts.output, r, (d) => `Node ${d.node} removed from cluster "${d.profile}"\n`);
    });
  node
    .command('stop')
    .description(
      'stop one node (kubelet, then container), keeping its state; it stays in the cluster, NotReady',
    )
    .argument('<name>', 'the node')
    .option(
      '--force',
      'stop a control plane even if etcd loses its majority (the API server stops answering until enough control planes run again)',
    )
    .addOption(outputOption())
    .action(async (name: string, opts: { force?: boolean; output: OutputFormat }, cmd: Command) => {
      const profile = profileOf(cmd, ctx.env);
      const r = await stopNode(await ctx.lifecycle(profile), profile, name, { force: Boolean(opts.force) });
      ctx.reporter.result(opts.output, r, (d) =>
        d.action === 'stopped'
          ? `Node ${d.node} of cluster "${d.profile}" stopped (NotReady until: minilab node start -p ${d.profile} ${d.node})\n`
          : `Node ${d.node} of cluster "${d.profile}" is already stopped\n`,
      );
    });
  node
    .command('start')
    .description('start one stopped node of a running cluster and wait for it to be Ready')
    .argument('<name>', 'the node')
    .addOption(outputOption())
    .action(async (name: string, opts: { output: OutputFormat }, cmd: Command) => {
      const profile = profileOf(cmd, ctx.env);
      const r = await startNode(await ctx.lifecycle(profile), profile, name);
      ctx.reporter.result(opts.output, r, (d) =>
        d.action === 'started'
          ? `Node ${d.node} of cluster "${d.profile}" started and Ready\n`
          : `Node ${d.node} of cluster "${d.profile}" is already running and Ready\n`,
      );
    });
  node
    .command('list')
    .description("the cluster's nodes with their role, state and address")
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, cmd: Command) => {
      const profile = profileOf(cmd, ctx.env);
      const { nodes } = await controlPlane(await ctx.provider(profile), profile);
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
