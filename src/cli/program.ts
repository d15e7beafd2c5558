import { Command } from 'commander';
import type { Context } from './context.js';
import { minilabVersion } from '../version.js';
import { validateProfileName } from '../profile/name.js';

type Register = (program: Command, ctx: Context) => void;

/**
 * Where each top-level command is registered, in the order --help lists them. A command's file
 * loads the code it runs, so loading only the one asked for keeps `minilab version` from loading
 * the lifecycle, image and add-on code (and yaml, tar and lock libraries) it never runs.
 */
const COMMAND_FILES: readonly { names: readonly string[]; load: () => Promise<Register> }[] = [
  {
    names: ['start', 'stop', 'delete', 'status', 'kubeconfig'],
    load: async () => (await import('./commands/lifecycle.js')).registerLifecycle,
  },
  {
    names: ['kubectl', 'logs', 'service', 'ssh'],
    load: async () => (await import('./commands/workflow.js')).registerWorkflow,
  },
  { names: ['version'], load: async () => (await import('./commands/version.js')).registerVersion },
  {
    names: ['completion'],
    load: async () => (await import('./commands/completion.js')).registerCompletion,
  },
  { names: ['profile'], load: async () => (await import('./commands/profile.js')).registerProfile },
  { names: ['node'], load: async () => (await import('./commands/node.js')).registerNode },
  { names: ['addons'], load: async () => (await import('./commands/addons.js')).registerAddons },
  { names: ['dashboard'], load: async () => (await import('./commands/dashboard.js')).registerDashboard },
  {
    names: ['image'],
    load: async () => {
      const { registerImage } = await import('./commands/image.js');
      return (program, ctx) =>
        registerImage(
          program.command('image').description('build and list node images; load images into a cluster'),
          ctx,
        );
    },
  },
];

/** The command word of argv: its first word that is neither an option nor -p's value. */
export function commandWord(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') return undefined;
    if (a === '-p' || a === '--profile') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/**
 * The commander program: only commands that work are registered. Given the arguments, only the
 * command they name is (all of them for --help, completion, or a word that names no command, so
 * that commander lists them or suggests the nearest).
 */
export async function buildProgram(ctx: Context, argv?: readonly string[]): Promise<Command> {
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
  const word = argv && commandWord(argv);
  const one = COMMAND_FILES.find(
    (f) => word !== undefined && word !== 'completion' && f.names.includes(word),
  );
  const files = one ? [one] : COMMAND_FILES;
  for (const register of await Promise.all(files.map((f) => f.load()))) register(program, ctx);
  const inherit = (cmd: Command) => {
    cmd.exitOverride().configureOutput(program.configureOutput());
    cmd.commands.forEach(inherit);
  };
  program.commands.forEach(inherit);
  return program;
}
