import type { Readable, Writable } from 'node:stream';
import type { Engine } from '../runtime/engine.js';
import { parseExtraLabels } from '../runtime/labels.js';
import { ProfileStore, minilabHome } from '../profile/store.js';
import { Reporter } from './output.js';

/** Everything a command needs, built once in main: environment read here and nowhere deeper. */
export interface Context {
  env: NodeJS.ProcessEnv;
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
  home: string;
  profiles: ProfileStore;
  /** Extra labels on every resource this run makes (MINILAB_LABELS). */
  extraLabels: Record<string, string>;
  reporter: Reporter;
  engine(): Promise<Engine>;
  verbose: boolean;
  /** Set by commands whose exit code reports state rather than failure (status, ssh). */
  exitCode?: number;
}

export function createContext(io: {
  env: NodeJS.ProcessEnv;
  stdin: Context['stdin'];
  stdout: Context['stdout'];
  stderr: Context['stderr'];
}): Context {
  const home = minilabHome(io.env);
  let engine: Promise<Engine> | undefined;
  return {
    ...io,
    home,
    profiles: new ProfileStore(home),
    extraLabels: parseExtraLabels(io.env.MINILAB_LABELS),
    reporter: new Reporter(io.stdout, io.stderr, io.env),
    engine: () => {
      // dockerode loads only for commands that talk to the engine.
      engine ??= import('../runtime/engine.js').then(({ Engine }) => Engine.connect(io.env.DOCKER_HOST));
      engine.catch(() => (engine = undefined));
      return engine;
    },
    verbose: false,
  };
}
