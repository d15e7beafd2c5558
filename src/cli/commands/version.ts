import type { Command } from 'commander';
import type { Context } from '../context.js';
import { DEFAULT_KUBERNETES_VERSION, minilabVersion } from '../../version.js';
import { outputOption, type OutputFormat } from '../options.js';
import { pinnedRuntime } from '../../image/runtime.js';

export function registerVersion(program: Command, ctx: Context): void {
  program
    .command('version')
    .description(
      "print minilab's version, the default Kubernetes version and the node image's container runtime",
    )
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }) => {
      const data = {
        minilab: minilabVersion,
        defaultKubernetesVersion: DEFAULT_KUBERNETES_VERSION,
        // What node images built by this minilab run (images/runtime/build.sh pins it).
        runtime: await pinnedRuntime(),
        node: process.version,
        platform: `${process.platform}/${process.arch}`,
      };
      ctx.reporter.result(
        opts.output,
        data,
        (d) =>
          `minilab ${d.minilab}\ndefault Kubernetes ${d.defaultKubernetesVersion}\n` +
          `node image runtime: containerd ${d.runtime.containerd}, runc ${d.runtime.runc}, crictl ${d.runtime.crictl}\n` +
          `Node.js ${d.node} (${d.platform})\n`,
      );
    });
}
