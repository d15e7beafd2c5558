import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { MinilabError } from '../errors.js';

/**
 * Runs one of the project's build scripts (bash, from images/), reporting each output line as
 * progress and keeping the last lines for the error when it fails.
 */
export async function runScript(
  script: string,
  args: string[],
  opts: { progress?: (line: string) => void; env?: NodeJS.ProcessEnv; what: string; hint: string },
): Promise<void> {
  const child = spawn('bash', [script, ...args], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  const onLine = (line: string) => {
    tail.push(line);
    if (tail.length > 25) tail.shift();
    if (line.trim()) opts.progress?.(line.trim().slice(0, 120));
  };
  createInterface({ input: child.stdout }).on('line', onLine);
  createInterface({ input: child.stderr }).on('line', onLine);
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? 1));
  });
  if (code !== 0) {
    throw new MinilabError('environment', `${opts.what} failed (exit ${code})`, {
      details: tail,
      hint: opts.hint,
    });
  }
}
