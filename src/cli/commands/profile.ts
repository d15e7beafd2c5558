import type { Command } from 'commander';
import type { Context } from '../context.js';
import { Labels } from '../../runtime/labels.js';
import { outputOption, type OutputFormat } from '../options.js';
import { table } from '../output.js';

export interface ProfileSummary {
  name: string;
  status: 'running' | 'stopped' | 'partial' | 'missing';
  nodes: { name: string; status: string }[];
  kubernetesVersion?: string;
  apiServer?: string;
}

/** Profiles known from the state directory and from labelled containers, with state read from the engine. */
export async function listProfiles(ctx: Context): Promise<ProfileSummary[]> {
  const engine = await ctx.engine();
  const [stored, containers] = await Promise.all([
    ctx.profiles.list(),
    engine.listContainers({ [Labels.managed]: 'true', [Labels.kind]: 'node' }),
  ]);
  const names = new Set([...stored, ...containers.map((c) => c.profile).filter(Boolean)]);
  const summaries: ProfileSummary[] = [];
  for (const name of [...names].sort()) {
    const config = await ctx.profiles.read(name).catch(() => undefined);
    const nodes = containers.filter((c) => c.profile === name);
    const running = nodes.filter((n) => n.running).length;
    const status =
      nodes.length === 0
        ? 'missing'
        : running === nodes.length
          ? 'running'
          : running === 0
            ? 'stopped'
            : 'partial';
    const api = nodes.flatMap((n) => n.ports).find((p) => p.containerPort === 6443);
    summaries.push({
      name,
      status,
      nodes: nodes.map((n) => ({ name: n.name, status: n.status })),
      kubernetesVersion: config?.kubernetesVersion ?? nodes[0]?.labels[Labels.version],
      apiServer: api ? `https://${api.hostIp}:${api.hostPort}` : undefined,
    });
  }
  return summaries;
}

export function registerProfile(program: Command, ctx: Context): void {
  const profile = program.command('profile').description('list and inspect profiles (one cluster each)');
  profile
    .command('list')
    .description('list profiles with their state read from the Docker engine')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }) => {
      const profiles = await listProfiles(ctx);
      ctx.reporter.result(opts.output, { profiles }, (d) =>
        d.profiles.length === 0
          ? 'no profiles; create one with: minilab start\n'
          : table(
              ['PROFILE', 'STATUS', 'NODES', 'VERSION', 'API SERVER'],
              d.profiles.map((p) => [
                p.name,
                p.status,
                String(p.nodes.length),
                p.kubernetesVersion ?? '-',
                p.apiServer ?? '-',
              ]),
            ),
      );
    });
}
