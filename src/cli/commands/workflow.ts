import { rm } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Command } from 'commander';
import type { Context } from '../context.js';
import { MinilabError } from '../../errors.js';
import { controlPlane, credentials, runningControlPlane } from '../../lifecycle/nodes.js';
import { kubectlFor, runKubectl, withKubeconfigFile } from '../../kube/kubectl.js';
import { nodeSession } from '../../cluster/shell.js';
import {
  COMPONENTS,
  componentLogCommand,
  exportLogs,
  followUntilInputEnds,
  validateComponent,
} from '../../cluster/logs.js';
import { listForwards, stopForwards } from '../../profile/services.js';
import { Labels } from '../../labels.js';
import type { Node } from '../../providers/types.js';
import { interruption } from '../interrupt.js';
import { parseIntOption, profileOf } from '../options.js';

/** The running cluster a command acts on, and the node it means (--node picks one by name). */
async function targetNode(ctx: Context, cmd: Command, nodeName?: string) {
  const profile = profileOf(cmd, ctx.env);
  const provider = await ctx.provider(profile);
  const found = await runningControlPlane(provider, profile);
  const node = nodeName ? found.nodes.find((n) => n.name === nodeName) : found.node;
  if (!node) {
    throw new MinilabError('notFound', `profile "${profile}" has no node "${nodeName}"`, {
      hint: `its nodes: ${found.nodes.map((n) => n.name).join(', ')}`,
    });
  }
  return { profile, provider, found, node };
}

/** The running cluster and its admin credentials. */
async function profileAccess(ctx: Context, cmd: Command) {
  const { profile, provider, found, node } = await targetNode(ctx, cmd);
  return { profile, node, entry: await credentials(provider, found) };
}

/**
 * Prints a log as it grows until it ends, or until Ctrl-C (or SIGTERM), which ends the follow in
 * the node too (see followUntilInputEnds); an interrupted follow is a success, as journalctl's is.
 */
async function followLog(ctx: Context, node: Node, command: string[]): Promise<number> {
  const input = new PassThrough();
  const stop = interruption();
  void stop.happened.then(() => input.end());
  try {
    const code = await node.execStream(followUntilInputEnds(command), {
      stdin: input,
      stdout: ctx.stdout,
      stderr: ctx.stderr,
    });
    return input.writableEnded ? 0 : code;
  } finally {
    stop.dispose();
  }
}

export function registerWorkflow(program: Command, ctx: Context): void {
  program
    .command('ssh')
    .description('open a shell in the node, or run a command there (minilab ssh -- CMD ARGS...)')
    .option('--node <name>', 'the node (default: the control plane)')
    .argument('[command...]', 'command to run instead of a login shell')
    .action(async (command: string[], opts: { node?: string }, cmd: Command) => {
      const { node } = await targetNode(ctx, cmd, opts.node);
      ctx.exitCode = await nodeSession(node, command, {
        stdin: ctx.stdin,
        stdout: ctx.stdout,
        stderr: ctx.stderr,
      });
    });

  program
    .command('kubectl')
    .description(
      "run a kubectl of the cluster's version against the profile (minilab kubectl -- get pods -A)",
    )
    .argument('[args...]', 'kubectl arguments')
    .allowUnknownOption()
    .action(async (args: string[], _opts, cmd: Command) => {
      const { profile, node, entry } = await profileAccess(ctx, cmd);
      const version = node.state.labels[Labels.version] ?? 'unknown';
      const bin = await kubectlFor(node, ctx.home, version);
      // Earlier versions left the admin kubeconfig here: it goes.
      await rm(join(ctx.profiles.dir(profile), 'kubeconfig'), { force: true });
      ctx.exitCode = await withKubeconfigFile(entry, (file) => runKubectl(bin, file, args));
    });

  program
    .command('logs')
    .description(`show node and control-plane logs (components: ${COMPONENTS.join(', ')})`)
    .option('--component <name>', 'one component', validateComponent)
    .option('-f, --follow', 'keep printing new lines (with --component)')
    .option('--tail <n>', 'lines per component', parseIntOption('--tail', 1, 1_000_000), 50)
    .option('--export <dir>', 'write a bundle of every log, the config and versions to DIR')
    .action(
      async (opts: { component?: string; follow?: boolean; tail: number; export?: string }, cmd: Command) => {
        const profile = profileOf(cmd, ctx.env);
        if (opts.export) {
          const provider = await ctx.provider(profile);
          const { nodes } = await controlPlane(provider, profile);
          const dir = resolvePath(opts.export);
          await ctx.reporter.step(`Exporting logs of ${nodes.map((n) => n.name).join(', ')}`, () =>
            exportLogs(provider, nodes, dir),
          );
          ctx.stdout.write(`Logs of "${profile}" written to ${dir}\n`);
          return;
        }
        if (opts.follow && !opts.component)
          throw new MinilabError('usage', '--follow needs --component', {
            hint: 'e.g. minilab logs --component kubelet -f',
          });
        const { node } = await targetNode(ctx, cmd);
        const components = opts.component ? [opts.component] : COMPONENTS;
        let failed = 0;
        for (const c of components) {
          if (!opts.component) ctx.stdout.write(`==> ${c} <==\n`);
          const command = componentLogCommand(c, { follow: Boolean(opts.follow), tail: opts.tail });
          const code = opts.follow
            ? await followLog(ctx, node, command)
            : await node.execStream(command, { stdout: ctx.stdout, stderr: ctx.stderr });
          if (code !== 0) failed++;
        }
        if (opts.component && failed > 0) ctx.exitCode = 6;
      },
    );

  program
    .command('service')
    .description('reach a Service from the host: a 127.0.0.1 URL forwarded to a ready endpoint')
    .argument('[name]', 'the Service')
    .option('-n, --namespace <ns>', 'its namespace', 'default')
    .option(
      '--port <n>',
      'the service port to reach (default: its first)',
      parseIntOption('--port', 1, 65535),
    )
    .option(
      '--url',
      'print the URL and keep forwarding in the background (until --stop or the cluster stops)',
    )
    .option('--stop', 'stop background forwards (of NAME, or all of the profile)')
    .option('--list', 'list background forwards')
    .option('--background-child', 'internal: run as the background forwarder')
    .action(
      async (
        name: string | undefined,
        opts: {
          namespace: string;
          port?: number;
          url?: boolean;
          stop?: boolean;
          list?: boolean;
          backgroundChild?: boolean;
        },
        cmd: Command,
      ) => {
        const profile = profileOf(cmd, ctx.env);
        const dir = ctx.profiles.dir(profile);
        if (opts.stop) {
          const stopped = await stopForwards(
            dir,
            name ? { namespace: opts.namespace, service: name } : undefined,
          );
          ctx.stdout.write(
            stopped.length === 0
              ? 'no background forwards to stop\n'
              : stopped.map((f) => `stopped ${f.namespace}/${f.service} (${f.url})\n`).join(''),
          );
          return;
        }
        if (opts.list) {
          const forwards = await listForwards(dir);
          ctx.stdout.write(
            forwards.map((f) => `${f.namespace}/${f.service}\t${f.url}\n`).join('') ||
              'no background forwards\n',
          );
          return;
        }
        if (!name)
          throw new MinilabError('usage', 'which service?', {
            hint: 'minilab service NAME [-n NAMESPACE] [--url]',
          });
        const { entry } = await profileAccess(ctx, cmd);
        const { forwardTarget, serveForward, startBackgroundForward } = await import('../../kube/forward.js');
        const req = { profile, dir, namespace: opts.namespace, service: name, port: opts.port };
        const target = await forwardTarget(entry, req);
        if (opts.url && !opts.backgroundChild) {
          ctx.stdout.write(`${await startBackgroundForward(req, ctx.env)}\n`);
          return;
        }
        await serveForward(entry, req, target, {
          background: Boolean(opts.backgroundChild),
          onServing: (url) => {
            if (opts.backgroundChild) return;
            ctx.stdout.write(`${url}\n`);
            ctx.reporter.info(
              `forwarding ${url} -> service ${opts.namespace}/${name}:${target.servicePort} (pod ${target.pod}); Ctrl-C to stop`,
            );
          },
        });
        if (!opts.backgroundChild) ctx.reporter.info('stopped forwarding');
      },
    );
}
