import type { Command } from 'commander';
import type { Context } from '../context.js';
import { DEFAULT_KUBERNETES_VERSION, minilabVersion } from '../../version.js';
import { outputOption, type OutputFormat } from '../options.js';

export function registerVersion(program: Command, ctx: Context): void {
  program
    .command('version')
    .description('print minilab version and the default Kubernetes version')
    .addOption(outputOption())
    .action((opts: { output: OutputFormat }) => {
      const data = {
        minilab: minilabVersion,
        defaultKubernetesVersion: DEFAULT_KUBERNETES_VERSION,
        node: process.version,
        platform: `${process.platform}/${process.arch}`,
      };
      ctx.reporter.result(
        opts.output,
        data,
        (d) =>
          `minilab ${d.minilab}\ndefault Kubernetes ${d.defaultKubernetesVersion}\nnode ${d.node} (${d.platform})\n`,
      );
    });
}
