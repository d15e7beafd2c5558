import { createRequire, Module } from 'node:module';
import type Docker from 'dockerode';

const require = createRequire(import.meta.url);

/**
 * Enters a CommonJS module that exports one function in the module cache as a function that
 * loads the real module on its first call and passes every call on to it. What requires it gets
 * the stand-in, and nothing of the module is read until it is called.
 */
export function deferModule(path: string, cache: NodeJS.Require['cache'] = require.cache): void {
  if (cache[path]) return;
  let real: ((...args: unknown[]) => unknown) | undefined;
  const load = () => {
    if (!real) {
      if (cache[path] === stand) delete cache[path];
      real = require(path) as (...args: unknown[]) => unknown;
    }
    return real;
  };
  const stand = new Module(path);
  stand.filename = path;
  stand.loaded = true;
  stand.exports = function deferred(this: unknown, ...args: unknown[]) {
    return load().apply(this, args);
  };
  cache[path] = stand;
}

/**
 * dockerode, without the two parts minilab never calls read at start-up: dockerode requires its
 * BuildKit session (gRPC and protobuf) and docker-modem its SSH transport (ssh2) when they load,
 * about 90 ms of every engine command's start (see test/unit/startup-imports.test.ts). Each of
 * the two modules exports one function, called only for a BuildKit build or an ssh:// engine:
 * they load then. A dependency laid out otherwise (another version) loads as it is.
 */
function loadDockerode(): typeof Docker {
  try {
    const dockerode = require.resolve('dockerode');
    const fromDockerode = createRequire(dockerode);
    deferModule(fromDockerode.resolve('./session.js'));
    deferModule(createRequire(fromDockerode.resolve('docker-modem')).resolve('./ssh.js'));
  } catch {
    // not where this version keeps them: nothing deferred
  }
  return require('dockerode') as typeof Docker;
}

export const Dockerode = loadDockerode();
