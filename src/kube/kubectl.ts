import { spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { chmod, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { MinilabError } from '../errors.js';
import type { Node } from '../providers/types.js';
import { privateDir, writePrivateFile } from '../private-files.js';
import { renderKubeconfig, type KubeconfigEntry } from './kubeconfig.js';
import { forwardSignals } from '../signals.js';

/**
 * A kubectl of the cluster's own version on the host: the node's multi-call binary, copied out
 * once per version (it acts as kubectl when its file is named kubectl), for this user alone.
 */
export async function kubectlFor(node: Node, home: string, version: string): Promise<string> {
  const dir = join(home, 'cache', 'kubectl', version);
  const bin = join(dir, 'kubectl');
  if (existsSync(bin)) return bin;
  await privateDir(dir);
  const tmp = `${bin}.tmp-${process.pid}`;
  // Nodes built from Go modules hold the multi-call kube binary; nodes from official releases a kubectl.
  const archive = await node
    .copyOut('/usr/local/bin/kubectl')
    .catch(() => node.copyOut('/usr/local/bin/kube'));
  const extract = tarStream.extract();
  let found = false;
  extract.on('entry', (header, body, next) => {
    if (header.type === 'file' && !found) {
      found = true;
      pipeline(body, createWriteStream(tmp, { mode: 0o600 })).then(() => next(), next);
    } else {
      body.resume();
      body.on('end', () => next());
    }
  });
  await pipeline(archive, extract);
  if (!found) throw new MinilabError('unexpected', `node ${node.name} has no /usr/local/bin/kube`);
  await chmod(tmp, 0o700);
  await rename(tmp, bin);
  return bin;
}

/**
 * Runs `fn` with the profile's admin kubeconfig in a file of its own (0600, in a fresh 0700
 * folder), removed when `fn` ends, however it ends: the admin key is not left on disk.
 */
export async function withKubeconfigFile<T>(
  entry: KubeconfigEntry,
  fn: (file: string) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-kubectl-'));
  try {
    const file = join(dir, 'kubeconfig');
    await writePrivateFile(file, renderKubeconfig(entry));
    return await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs kubectl with this process's terminal (so `kubectl exec -it` works); resolves to its exit code. */
export function runKubectl(bin: string, kubeconfig: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['--kubeconfig', kubeconfig, ...args], { stdio: 'inherit' });
    // Signals meant for kubectl: passed on, so it ends (and minilab cleans up after it).
    const unwatch = forwardSignals((signal) => child.kill(signal));
    child.on('error', (err) => {
      unwatch();
      reject(err);
    });
    child.on('close', (code, signal) => {
      unwatch();
      resolve(code ?? (signal === 'SIGINT' ? 130 : 1));
    });
  });
}
