import { Option, type Command } from 'commander';
import { readFile } from 'node:fs/promises';
import type { ClusterConfig } from '../../config/cluster-config.js';
import { MAX_CONTROL_PLANES, MAX_NODES } from '../../config/limits.js';
import { MinilabError, usageError } from '../../errors.js';
import { validateDriver } from '../../providers/index.js';
import { DEFAULT_KUBERNETES_VERSION } from '../../version.js';
import type { Context } from '../context.js';
import { driverOption, outputOption, parseIntOption, profileOf, type OutputFormat } from '../options.js';
import { table } from '../output.js';

// What each command runs is imported when it runs: `minilab status` loads neither start's nor
// delete's code (test/unit/startup-imports.test.ts).

/** "4g", "2048m", "1.5GiB", "512MB" -> bytes. */
export function parseMemory(value: string): number {
  return parseSize(value, '--memory');
}

/** A size flag's value ("4g", "2048m", "1.5GiB"; megabytes when no unit) -> bytes. */
export function parseSize(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(k|m|g|t)?(i?b)?$/i.exec(value.trim());
  if (!m) throw usageError(`invalid ${flag} "${value}"`, `use a size such as 4g or 2048m`);
  const unit = (m[2] ?? 'm').toLowerCase();
  const bytes = Number(m[1]) * 1024 ** ({ k: 1, m: 2, g: 3, t: 4 } as Record<string, number>)[unit]!;
  return Math.round(bytes);
}

/** "2" -> 2 CPUs for the node (checked against the engine's when the cluster is made). */
export function parseCpus(value: string): number {
  const hint = 'give a whole number of CPUs, e.g. --cpus 2';
  if (!/^\d+$/.test(value)) throw usageError(`--cpus must be a whole number, got "${value}"`, hint);
  const n = Number(value);
  if (n < 1) throw usageError(`--cpus must be at least 1, got ${n}`, hint);
  return n;
}

/** "HOST:NODE" or "HOST:NODE/udp" -> a port mapping published on 127.0.0.1. */
export function parsePort(
  value: string,
  previous: { hostPort: number; containerPort: number; protocol: 'tcp' | 'udp' }[] = [],
) {
  const m = /^(\d{1,5}):(\d{1,5})(?:\/(tcp|udp))?$/.exec(value);
  const hint = 'use HOST:NODE, e.g. --ports 8080:80 (published on 127.0.0.1 only)';
  if (!m) throw usageError(`invalid --ports "${value}"`, hint);
  const hostPort = Number(m[1]);
  const containerPort = Number(m[2]);
  if (hostPort < 1 || hostPort > 65535 || containerPort < 1 || containerPort > 65535) {
    throw usageError(`port out of range in --ports "${value}"`, hint);
  }
  if (containerPort === 6443) throw usageError('node port 6443 is the API server, published already', hint);
  const protocol = (m[3] ?? 'tcp') as 'tcp' | 'udp';
  if (previous.some((p) => p.hostPort === hostPort && p.protocol === protocol)) {
    throw usageError(`host port ${hostPort}/${protocol} is given twice in --ports`, hint);
  }
  return [...previous, { hostPort, containerPort, protocol }];
}

/** Reads and checks a cluster config file, merged with the flags that also describe the cluster. */
async function readClusterConfig(
  file: string,
  flags: { nodes?: number; controlPlanes?: number; ports?: ReturnType<typeof parsePort> },
): Promise<ClusterConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new MinilabError(
      'notFound',
      `cannot read the config file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      {
        hint: 'give the path of a kind-format cluster config (kind: Cluster, apiVersion: kind.x-k8s.io/v1alpha4)',
      },
    );
  }
  const { mergeWithFlags, parseClusterConfig } = await import('../../config/cluster-config.js');
  return mergeWithFlags(parseClusterConfig(text, file), flags, file);
}

/** The profile: -p (or MINILAB_PROFILE), else the config file's name, else the default. Both must agree. */
function profileFor(cmd: Command, env: NodeJS.ProcessEnv, config: ClusterConfig | undefined): string {
  const given = (cmd.optsWithGlobals() as { profile?: string }).profile ?? env.MINILAB_PROFILE;
  if (config?.name && given && given !== config.name) {
    throw usageError(
      `the profile "${given}" is not the config file's name "${config.name}"`,
      `leave -p (and MINILAB_PROFILE) out to use "${config.name}", or change the file's name`,
    );
  }
  return config?.name && !given ? config.name : profileOf(cmd, env);
}

export function registerLifecycle(program: Command, ctx: Context): void {
  program
    .command('start')
    .description('create a cluster, restart a stopped one, or re-sync the kubeconfig of a running one')
    .option('--kubernetes-version <version>', `Kubernetes release (default: ${DEFAULT_KUBERNETES_VERSION})`)
    .addOption(driverOption())
    .option(
      '--nodes <n>',
      'nodes in the cluster, control planes included; the rest are workers (default: 1)',
      parseIntOption('--nodes', 1, MAX_NODES),
    )
    .option(
      '--control-planes <n>',
      'control-plane nodes, behind a load balancer when more than one; odd (default: 1)',
      parseIntOption('--control-planes', 1, MAX_CONTROL_PLANES),
    )
    .option(
      '--config <file>',
      "a cluster config file in kind's v1alpha4 format (nodes, networking, featureGates, ...; see docs/config-file.md)",
    )
    .option('--cpus <n>', 'CPUs for each node (default: no limit)', parseCpus)
    .option('--memory <size>', 'memory for each node, e.g. 4g (default: no limit; qemu: 4g)', parseMemory)
    .option('--disk-size <size>', 'the disk each node may grow to, e.g. 40g (qemu only; default 20g)', (v) =>
      parseSize(v, '--disk-size'),
    )
    .option('--ports <host:node...>', 'extra ports to publish on 127.0.0.1, e.g. 8080:30080', (v, prev) =>
      parsePort(v, prev as never),
    )
    .addOption(
      new Option('--wait <what>', 'wait for the cluster to be usable')
        .choices(['all', 'none'])
        .default('all'),
    )
    .option(
      '--addons <names>',
      'add-ons to enable once the cluster is up, comma-separated (see minilab addons list); remembered',
    )
    .option('--keep-on-failure', 'keep a half-made cluster for inspection instead of removing it')
    .option('--no-switch-context', 'do not make this cluster the current kubeconfig context')
    .addOption(outputOption())
    .action(async (opts, cmd: Command) => {
      const { validateKubernetesVersion } = await import('../../image/components.js');
      const version = validateKubernetesVersion(opts.kubernetesVersion ?? DEFAULT_KUBERNETES_VERSION);
      const { parseAddonList } = await import('../../addons/catalog.js');
      const addons = opts.addons === undefined ? undefined : parseAddonList(opts.addons as string);
      const config = opts.config
        ? await readClusterConfig(opts.config, {
            nodes: opts.nodes,
            controlPlanes: opts.controlPlanes,
            ports: opts.ports,
          })
        : undefined;
      const profile = profileFor(cmd, ctx.env, config);
      const { start } = await import('../../lifecycle/start.js');
      const { clusterShape } = await import('../../lifecycle/plan.js');
      const shape = config
        ? {
            nodes: config.nodes.length,
            controlPlanes: config.nodes.filter((n) => n.role === 'control-plane').length,
          }
        : clusterShape({ nodes: opts.nodes, controlPlanes: opts.controlPlanes });
      const result = await start(await ctx.lifecycle(profile, { driver: opts.driver, startService: true }), {
        profile,
        kubernetesVersion: version,
        explicitVersion: opts.kubernetesVersion !== undefined,
        ...shape,
        config,
        explicitNodes: opts.nodes !== undefined || opts.controlPlanes !== undefined || config !== undefined,
        cpus: opts.cpus,
        memoryBytes: opts.memory,
        diskBytes: opts.diskSize,
        ports: config ? [] : (opts.ports ?? []),
        wait: opts.wait,
        keepOnFailure: Boolean(opts.keepOnFailure),
        switchContext: opts.switchContext !== false,
        addons,
      });
      ctx.reporter.result(opts.output as OutputFormat, result, (r) =>
        [
          `Cluster "${r.profile}" is ${r.action === 'created' ? 'ready' : r.action === 'restarted' ? 'running again' : 'running'}: Kubernetes ${r.kubernetesVersion}, API server ${r.apiServer}`,
          `Kubeconfig: context "${r.kubeconfig.context}" in ${r.kubeconfig.path}${opts.switchContext !== false ? ' (now current)' : ''}`,
          `Try: kubectl --context ${r.kubeconfig.context} get nodes`,
          '',
        ].join('\n'),
      );
    });

  program
    .command('stop')
    .description('stop the cluster cleanly, keeping all of its state')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, cmd: Command) => {
      const profile = profileOf(cmd, ctx.env);
      const { stop } = await import('../../lifecycle/stop.js');
      const result = await stop(await ctx.lifecycle(profile), profile);
      ctx.reporter.result(opts.output, result, (r) =>
        r.stopped.length > 0
          ? `Stopped cluster "${r.profile}"\n`
          : `Cluster "${r.profile}" was already stopped\n`,
      );
    });

  program
    .command('delete')
    .description('delete the cluster: containers, volumes, network, kubeconfig entries and profile state')
    .option('--all', 'delete every profile')
    .addOption(outputOption())
    .action(async (opts: { all?: boolean; output: OutputFormat }, cmd: Command) => {
      const { deleteProfile } = await import('../../lifecycle/delete.js');
      const { listProfiles } = await import('../../lifecycle/profiles.js');
      const profiles = opts.all
        ? (await listProfiles(await ctx.providers(), ctx.profiles)).map((p) => ({
            name: p.name,
            driver: validateDriver(p.driver, `the profile "${p.name}"`),
          }))
        : [{ name: profileOf(cmd, ctx.env), driver: undefined }];
      // Every engine needed is reached before anything is deleted: none fails halfway through.
      const contexts = [];
      for (const p of profiles) contexts.push(await ctx.lifecycle(p.name, { driver: p.driver }));
      const results = [];
      for (const [i, p] of profiles.entries()) {
        const lc = contexts[i]!;
        results.push(await ctx.reporter.step(`Deleting "${p.name}"`, () => deleteProfile(lc, p.name)));
      }
      ctx.reporter.result(opts.output, { deleted: results }, (d) =>
        d.deleted.length === 0
          ? 'nothing to delete\n'
          : d.deleted
              .map(
                (r) =>
                  `Deleted "${r.profile}": ` +
                  (r.vms
                    ? `${r.vms.length} VM(s)`
                    : `${r.containers.length} container(s), ${r.volumes.length} volume(s)`) +
                  `${r.network ? `, network ${r.network}` : ''}${r.kubeconfig ? `, context "${r.kubeconfig.context}" from ${r.kubeconfig.path}` : ''}`,
              )
              .join('\n') + '\n',
      );
    });

  program
    .command('status')
    .description(
      `show the cluster's node, kubelet, API server and kubeconfig state (exit code: 0 all up; 16 + 1 container, 2 kubelet, 4 API server, 8 kubeconfig)`,
    )
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, cmd: Command) => {
      const profile = profileOf(cmd, ctx.env);
      const { clusterStatus, statusExitCode } = await import('../../lifecycle/status.js');
      const status = await clusterStatus(await ctx.lifecycle(profile), profile);
      ctx.exitCode = statusExitCode(status);
      ctx.reporter.result(opts.output, status, (s) =>
        table(
          ['PROFILE', 'NODE', 'ROLE', 'CONTAINER', 'KUBELET', 'API SERVER', 'KUBECONFIG'],
          [
            ...s.nodes.map((n, i) => [
              i === 0 ? s.profile : '',
              n.name,
              n.role,
              n.container,
              n.kubelet,
              i === 0 ? `${s.apiServer.state} (${s.apiServer.url})` : '',
              i === 0 ? `${s.kubeconfig.state}${s.kubeconfig.current ? ', current' : ''}` : '',
            ]),
            ...(s.loadBalancer
              ? [['', s.loadBalancer.name, 'load-balancer', s.loadBalancer.container, '-', '', '']]
              : []),
          ],
        ),
      );
    });

  program
    .command('kubeconfig')
    .description('print the cluster kubeconfig (for KUBECONFIG=...) without changing any file')
    .action(async (_opts, cmd: Command) => {
      const profile = profileOf(cmd, ctx.env);
      const { credentials, runningControlPlane } = await import('../../lifecycle/nodes.js');
      const { renderKubeconfig } = await import('../../kube/kubeconfig.js');
      const provider = await ctx.provider(profile);
      const found = await runningControlPlane(provider, profile);
      ctx.stdout.write(renderKubeconfig(await credentials(provider, found)));
    });
}
