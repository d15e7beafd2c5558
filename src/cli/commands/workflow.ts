import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { resolve as resolvePath, join } from 'node:path';
import type { Command } from 'commander';
import type { Context } from '../context.js';
import { MinilabError } from '../../errors.js';
import { controlPlane, runningControlPlane } from '../../lifecycle/context.js';
import { adminKubeconfig } from '../../lifecycle/kubeadm.js';
import { apiServerPort } from '../../lifecycle/node.js';
import { kubectlFor, profileKubeconfigFile, runKubectl } from '../../kube/kubectl.js';
import { apiServerReady } from '../../kube/readyz.js';
import { nodeSession } from '../../node/shell.js';
import { COMPONENTS, componentLogCommand, exportLogs, validateComponent } from '../../node/logs.js';
import { listForwards, readForward, recordForward, stopForwards } from '../../profile/services.js';
import { Labels } from '../../runtime/labels.js';
import { parseIntOption, profileOf } from '../options.js';
import { projectRoot } from '../../version.js';

/** The running node a command acts on (--node picks one by name; one node per profile today). */
async function targetNode(ctx: Context, cmd: Command, nodeName?: string) {
  const profile = profileOf(cmd, ctx.env);
  const engine = await ctx.engine();
  const node = await runningControlPlane(engine, profile);
  if (nodeName && nodeName !== node.name) {
    throw new MinilabError('notFound', `profile "${profile}" has no node "${nodeName}"`, {
      hint: `its node is ${node.name}`,
    });
  }
  return { profile, engine, node };
}

async function profileAccess(ctx: Context, cmd: Command) {
  const { profile, engine, node } = await targetNode(ctx, cmd);
  const entry = await adminKubeconfig(engine, node.name, profile, apiServerPort(node));
  return { profile, engine, node, entry };
}

export function registerWorkflow(program: Command, ctx: Context): void {
  program
    .command('ssh')
    .description('open a shell in the node, or run a command there (minilab ssh -- CMD ARGS...)')
    .option('--node <name>', 'the node (default: the control plane)')
    .argument('[command...]', 'command to run instead of a login shell')
    .action(async (command: string[], opts: { node?: string }, cmd: Command) => {
      const { engine, node } = await targetNode(ctx, cmd, opts.node);
      ctx.exitCode = await nodeSession(engine, node.name, command, {
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
      const { profile, engine, node, entry } = await profileAccess(ctx, cmd);
      const version = node.labels[Labels.version] ?? 'unknown';
      const bin = await kubectlFor(engine, node.name, ctx.home, version);
      const file = await profileKubeconfigFile(ctx.profiles.dir(profile), entry);
      ctx.exitCode = await runKubectl(bin, file, args);
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
        const engine = await ctx.engine();
        if (opts.export) {
          const node = await controlPlane(engine, profile);
          const dir = resolvePath(opts.export);
          await ctx.reporter.step(`Exporting logs of ${node.name}`, () => exportLogs(engine, node, dir));
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
          const code = await engine.execStream(
            node.name,
            componentLogCommand(c, { follow: Boolean(opts.follow), tail: opts.tail }),
            {
              stdout: ctx.stdout,
              stderr: ctx.stderr,
            },
          );
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
        const { kubeClients } = await import('../../kube/client.js');
        const { forwardToPod, serviceTarget } = await import('../../kube/service.js');
        const clients = kubeClients(entry);
        const target = await serviceTarget(clients.config, opts.namespace, name, opts.port);
        if (opts.url && !opts.backgroundChild) {
          const existing = await readForward(dir, opts.namespace, name);
          if (existing && (await listForwards(dir)).some((f) => f.pid === existing.pid)) {
            ctx.stdout.write(`${existing.url}\n`);
            return;
          }
          const log = join(dir, 'services', `${opts.namespace}.${name}.log`);
          await mkdir(join(dir, 'services'), { recursive: true, mode: 0o700 });
          const out = openSync(log, 'a');
          const child = spawn(
            process.execPath,
            [
              join(projectRoot, 'dist', 'src', 'main.js'),
              'service',
              name,
              '-n',
              opts.namespace,
              '-p',
              profile,
              '--url',
              '--background-child',
              ...(opts.port ? ['--port', String(opts.port)] : []),
            ],
            { detached: true, stdio: ['ignore', out, out], env: ctx.env },
          );
          child.unref();
          const started = Date.now();
          while (Date.now() - started < 15_000) {
            const f = await readForward(dir, opts.namespace, name);
            if (f && f.pid === child.pid) {
              ctx.stdout.write(`${f.url}\n`);
              return;
            }
            if (child.exitCode !== null) break;
            await new Promise((r) => setTimeout(r, 100));
          }
          throw new MinilabError('unexpected', `the background forward for ${name} did not start`, {
            hint: `see ${log}`,
          });
        }
        const { url, stop } = await forwardToPod(clients.config, target);
        if (opts.backgroundChild) {
          await recordForward(dir, {
            pid: process.pid,
            url,
            namespace: opts.namespace,
            service: name,
            startedAt: new Date().toISOString(),
          });
        } else {
          ctx.stdout.write(`${url}\n`);
          ctx.reporter.info(
            `forwarding ${url} -> service ${opts.namespace}/${name}:${target.servicePort} (pod ${target.pod}); Ctrl-C to stop`,
          );
        }
        await new Promise<void>((resolve) => {
          const done = () => {
            clearInterval(liveness);
            process.off('SIGINT', done);
            process.off('SIGTERM', done);
            stop();
            resolve();
          };
          let failures = 0;
          // The forward ends with the cluster: three failed API checks in a row (15 s) stop it.
          const liveness = setInterval(() => {
            void apiServerReady(entry).then((r) => {
              failures = r === true ? 0 : failures + 1;
              if (failures >= 3) done();
            });
          }, 5000);
          process.on('SIGINT', done);
          process.on('SIGTERM', done);
        });
        if (!opts.backgroundChild) ctx.reporter.info('stopped forwarding');
      },
    );
}
