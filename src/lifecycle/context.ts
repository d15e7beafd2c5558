import type { Reporter } from '../cli/output.js';
import { MinilabError } from '../errors.js';
import type { ProfileStore } from '../profile/store.js';
import type { Engine } from '../runtime/engine.js';
import { Labels } from '../runtime/labels.js';
import type { NodeState } from '../runtime/types.js';

/** What lifecycle operations need; built by the CLI, replaceable in tests. */
export interface LifecycleContext {
  engine: Engine;
  reporter: Reporter;
  profiles: ProfileStore;
  home: string;
  env: NodeJS.ProcessEnv;
  extraLabels: Record<string, string>;
}

/** A profile's node containers, found from their labels alone. */
export async function profileNodes(engine: Engine, profile: string): Promise<NodeState[]> {
  return engine.listContainers({ [Labels.profile]: profile, [Labels.kind]: 'node' });
}

/** The profile's control-plane node, or a not-found error naming the fix. */
export async function controlPlane(engine: Engine, profile: string): Promise<NodeState> {
  const nodes = await profileNodes(engine, profile);
  const node = nodes.find((n) => n.role === 'control-plane');
  if (!node) {
    throw new MinilabError('notFound', `profile "${profile}" has no cluster`, {
      hint: `create it with: minilab start -p ${profile}`,
    });
  }
  return node;
}

/** Like controlPlane, but the node must be running. */
export async function runningControlPlane(engine: Engine, profile: string): Promise<NodeState> {
  const node = await controlPlane(engine, profile);
  if (!node.running) {
    throw new MinilabError('environment', `the cluster of profile "${profile}" is stopped`, {
      hint: `start it with: minilab start -p ${profile}`,
    });
  }
  return node;
}

/**
 * Runs a bash script in a node; a non-zero exit becomes a cluster error carrying the last lines of
 * the script's output (and of any log the caller names) so the user sees why.
 */
export async function nodeShell(
  engine: Engine,
  node: string,
  script: string,
  what: string,
  opts: { input?: string; timeoutMs?: number; logCommand?: string; hint?: string } = {},
): Promise<string> {
  const run = () =>
    engine.exec(node, ['bash', '-euo', 'pipefail', '-c', script], {
      input: opts.input,
      timeoutMs: opts.timeoutMs ?? 120_000,
    });
  let r = await run();
  // The engine could not start the command at all (a passing runc failure): it never ran, so once more.
  if (r.exitCode === 126 && /OCI runtime exec failed/.test(r.stdout + r.stderr)) {
    if ((await engine.inspect(node))?.running) r = await run();
  }
  if (r.exitCode === 0) return r.stdout;
  const details = lastLines(`${r.stdout}\n${r.stderr}`, 15);
  if (opts.logCommand) {
    const log = await engine.exec(node, ['bash', '-c', opts.logCommand]).catch(() => undefined);
    if (log?.stdout.trim()) details.push('--- ' + opts.logCommand, ...lastLines(log.stdout, 15));
  }
  throw new MinilabError('clusterFailed', `${what} failed (exit ${r.exitCode})`, {
    details,
    hint: opts.hint ?? 'the lines above show why; minilab logs --export DIR collects everything',
  });
}

export function lastLines(text: string, n: number): string[] {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '')
    .slice(-n);
}
