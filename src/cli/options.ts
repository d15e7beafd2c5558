import { Option, type Command } from 'commander';
import { usageError } from '../errors.js';
import { DEFAULT_PROFILE, validateProfileName } from '../profile/name.js';
import { DRIVERS, validateDriver } from '../providers/index.js';

export type { OutputFormat } from '../reporter.js';

/** --driver: where a new cluster's nodes run (remembered by its profile), or where images are built. */
export function driverOption(what = 'where the nodes run'): Option {
  return new Option(
    '--driver <name>',
    `${what}: ${DRIVERS.join(' or ')} (default: $MINILAB_DRIVER, else docker where its engine is, else podman)`,
  ).argParser((v) => validateDriver(v));
}

export function outputOption(): Option {
  return new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text');
}

/** The profile every command acts on: -p/--profile, or MINILAB_PROFILE, or "minilab". */
export function profileOf(cmd: Command, env: NodeJS.ProcessEnv): string {
  const opts = cmd.optsWithGlobals() as { profile?: string };
  return validateProfileName(opts.profile ?? env.MINILAB_PROFILE ?? DEFAULT_PROFILE);
}

export function parseIntOption(name: string, min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value))
      throw usageError(`${name} must be a whole number, got "${value}"`, `e.g. ${name} ${min}`);
    const n = Number(value);
    if (n < min || n > max) {
      throw usageError(`${name} must be between ${min} and ${max}, got ${n}`, `e.g. ${name} ${min}`);
    }
    return n;
  };
}
