import type { Command } from 'commander';
import type { Context } from '../context.js';
import { buildNodeImage } from '../../image/build.js';
import { validateKubernetesVersion } from '../../image/components.js';
import { Labels } from '../../runtime/labels.js';
import { DEFAULT_KUBERNETES_VERSION } from '../../version.js';
import { outputOption, type OutputFormat } from '../options.js';
import { table } from '../output.js';

export const formatBytes = (n: number) =>
  n >= 1e9
    ? `${(n / 1e9).toFixed(2)} GB`
    : n >= 1e6
      ? `${(n / 1e6).toFixed(0)} MB`
      : `${(n / 1e3).toFixed(0)} kB`;

export function registerImage(image: Command, ctx: Context): void {
  image
    .command('build')
    .description('build the node image (Kubernetes from Go modules, images preloaded); cached by stage')
    .option('--kubernetes-version <version>', 'Kubernetes release to build', DEFAULT_KUBERNETES_VERSION)
    .option('--force', 'rebuild the node image even when it is up to date')
    .addOption(outputOption())
    .action(async (opts: { kubernetesVersion: string; force?: boolean; output: OutputFormat }) => {
      const version = validateKubernetesVersion(opts.kubernetesVersion);
      const engine = await ctx.engine();
      const result = await buildNodeImage(
        { engine, reporter: ctx.reporter, home: ctx.home, extraLabels: ctx.extraLabels },
        version,
        { force: opts.force },
      );
      ctx.reporter.result(
        opts.output,
        result,
        (r) =>
          `${r.ref} ${formatBytes(r.sizeBytes)}${r.reused ? ' (up to date)' : ''}\npreloaded:\n` +
          r.preloaded.map((p) => `  ${p.ref} ${formatBytes(p.sizeBytes)}`).join('\n') +
          '\n',
      );
    });

  image
    .command('ls')
    .description('list node images in the Docker engine')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }) => {
      const engine = await ctx.engine();
      const images = (await engine.listImages('minilab/node'))
        .flatMap((i) =>
          i.tags.map((ref) => ({
            ref,
            version: i.labels[Labels.version] ?? '',
            sizeBytes: i.sizeBytes,
            created: i.created,
          })),
        )
        .sort((a, b) => a.ref.localeCompare(b.ref));
      ctx.reporter.result(opts.output, { images }, (d) =>
        d.images.length === 0
          ? 'no node images; build one with: minilab image build\n'
          : table(
              ['IMAGE', 'KUBERNETES', 'SIZE', 'CREATED'],
              d.images.map((i) => [i.ref, i.version, formatBytes(i.sizeBytes), i.created]),
            ),
      );
    });
}
