import { Command } from 'commander';
import type { Context } from './context.js';
import { minilabVersion } from '../version.js';
import { validateProfileName } from '../profile/name.js';
import { registerVersion } from './commands/version.js';
import { registerProfile } from './commands/profile.js';
import { registerImage } from './commands/image.js';
import { registerLifecycle } from './commands/lifecycle.js';
import { registerDashboard } from './commands/dashboard.js';
import { registerWorkflow } from './commands/workflow.js';
import { registerCompletion } from './commands/completion.js';
import { registerNode } from './commands/node.js';
import { registerAddons } from './commands/addons.js';

/** The commander program: only commands that work are registered. */
export function buildProgram(ctx: Context): Command {
  const program = new Command('minilab')
    .description('Local Kubernetes clusters in Docker containers')
    .version(minilabVersion, '--version', 'print the minilab version')
    .option(
      '-p, --profile <name>',
      'the profile (cluster) to act on (default: "minilab", or $MINILAB_PROFILE)',
    )
    .option('-v, --verbose', 'show causes and stack traces of errors')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
      // Errors are rendered once, by main, with a hint.
      outputError: () => undefined,
    });
  program.hook('preAction', (_this, action) => {
    const opts = action.optsWithGlobals() as { verbose?: boolean; profile?: string };
    ctx.verbose = Boolean(opts.verbose);
    // Every command validates -p, even those that do not act on one profile.
    if (opts.profile !== undefined) validateProfileName(opts.profile);
  });
  registerLifecycle(program, ctx);
  registerWorkflow(program, ctx);
  registerVersion(program, ctx);
  registerCompletion(program, ctx);
  registerProfile(program, ctx);
  registerNode(program, ctx);
  registerAddons(program, ctx);
  registerDashboard(program, ctx);
  registerImage(
    program.command('image').description('build and list node images; load images into a cluster'),
    ctx,
  );
  const inherit = (cmd: Command) => {
    cmd.exitOverride().configureOutput(program.configureOutput());
    cmd.commands.forEach(inherit);
  };
  program.commands.forEach(inherit);
  return program;
}
