import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../src/version.js';

export interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * The real CLI as a long-running child (`logs -f`, `dashboard`, a start to interrupt): its output
 * can be awaited as it arrives, and it is stopped with a signal as a user would.
 */
export function spawnMinilab(args: string[], env: NodeJS.ProcessEnv) {
  const what = `minilab ${args.join(' ')}`;
  const child = spawn(process.execPath, [join(projectRoot, 'dist', 'src', 'main.js'), ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  const watchers = new Set<() => void>();
  const changed = () => [...watchers].forEach((w) => w());
  for (const stream of ['stdout', 'stderr'] as const) {
    child[stream].on('data', (c: Buffer) => {
      out[stream] += c.toString();
      changed();
    });
  }
  let ended: Ended | undefined;
  const exited = new Promise<Ended>((resolve) =>
    child.on('close', (code, signal) => {
      ended = { code, signal };
      resolve(ended);
      changed();
    }),
  );

  /** The first match of `pattern` in stdout or stderr; fails when the command ends first, or after `timeoutMs`. */
  const see = (stream: 'stdout' | 'stderr', pattern: RegExp, timeoutMs: number) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        watchers.delete(check);
      };
      const check = () => {
        const m = pattern.exec(out[stream]);
        if (m) {
          done();
          resolve(m);
        } else if (ended) {
          done();
          reject(
            new Error(
              `${what} ended (${ended.code ?? ended.signal}) before ${pattern} on ${stream}\n${out.stderr}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${what}: no ${pattern} on ${stream} within ${timeoutMs} ms\n${out.stderr}`));
      }, timeoutMs);
      watchers.add(check);
      check();
    });

  /** Sends `signal` and waits for the end; a command still running after `timeoutMs` is killed and fails the call. */
  const stop = async (signal: NodeJS.Signals, timeoutMs = 20_000): Promise<Ended> => {
    if (ended) return ended;
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${what} still ran ${timeoutMs} ms after ${signal}\n${out.stderr}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([exited, late]);
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    exited,
    see,
    stop,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    /** Ends it whatever it is doing (for finally blocks). */
    kill: () => {
      if (!ended) child.kill('SIGKILL');
    },
  };
}
