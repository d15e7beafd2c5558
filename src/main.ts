#!/usr/bin/env node
import { CommanderError } from 'commander';
import { pathToFileURL } from 'node:url';
import { realpathSync } from 'node:fs';
import { ExitCode, MinilabError, exitCodeOf, renderError } from './errors.js';
import { createContext, type Context } from './cli/context.js';
import { buildProgram } from './cli/program.js';

/** Runs the CLI in-process and returns the exit code; never calls process.exit. */
export async function run(
  argv: string[],
  io?: Partial<Pick<Context, 'env' | 'stdin' | 'stdout' | 'stderr'>>,
): Promise<number> {
  const ctx = createContext({
    env: io?.env ?? process.env,
    stdin: io?.stdin ?? process.stdin,
    stdout: io?.stdout ?? process.stdout,
    stderr: io?.stderr ?? process.stderr,
  });
  const program = await buildProgram(ctx, argv);
  ctx.verbose = argv.includes('-v') || argv.includes('--verbose');
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitCode ?? ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return ExitCode.ok;
      const [first = '', ...rest] = err.message.replace(/^error:\s*/, '').split('\n');
      // commander's "(Did you mean start?)" becomes the hint rather than a second line.
      const suggestion = /Did you mean (.+)\?/.exec(rest.join(' '))?.[1];
      const message = first;
      const usage = new MinilabError('usage', message, {
        hint: suggestion
          ? `did you mean ${suggestion}? (minilab --help lists them)`
          : 'run minilab --help, or minilab COMMAND --help',
      });
      ctx.stderr.write(renderError(usage, false));
      return ExitCode.usage;
    }
    ctx.stderr.write(renderError(err, ctx.verbose));
    return exitCodeOf(err);
  }
}

const invokedDirectly = (() => {
  try {
    return import.meta.url === pathToFileURL(realpathSync(process.argv[1] ?? '')).href;
  } catch {
    return false;
  }
})();

if (invokedDirectly) {
  process.exitCode = await run(process.argv.slice(2));
}
