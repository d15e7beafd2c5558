/** What the benchmarks share: running minilab's CLI, timed, and describing the machine. */
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { DockerProvider } from '../src/providers/docker/provider.js';
import { projectRoot } from '../src/version.js';

export interface Run {
  code: number;
  /** From spawn to exit. */
  ms: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built CLI (dist/src/main.js, or another build's given as `cli`) with these arguments
 * and environment.
 */
export function minilab(args: string[], env: NodeJS.ProcessEnv, cli?: string): Promise<Run> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli ?? join(projectRoot, 'dist/src/main.js'), ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code: code ?? 1, ms: performance.now() - started, stdout, stderr }),
    );
  });
}

/** As minilab(), failing with its stderr when it exits non-zero. */
export async function must(args: string[], env: NodeJS.ProcessEnv, cli?: string): Promise<Run> {
  const r = await minilab(args, env, cli);
  if (r.code !== 0) throw new Error(`minilab ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
  return r;
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The machine a benchmark ran on, for its JSON. */
export async function machine(provider: DockerProvider) {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    engine: (await provider.info()).engine.version,
  };
}
