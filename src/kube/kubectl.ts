import { spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { chmod, mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { MinilabError } from '../errors.js';
import type { Node } from '../providers/types.js';
import { writeFileAtomic } from '../profile/store.js';
import { renderKubeconfig, type KubeconfigEntry } from './kubeconfig.js';

/**
 * A kubectl of the cluster's own version on the host: the node's multi-call binary, copied out
 * once per version (it acts as kubectl when its file is named kubectl).
 */
export async function kubectlFor(node: Node, home: string, version: string): Promise<string> {
  const dir = join(home, 'cache', 'kubectl', version);
  const bin = join(dir, 'kubectl');
  if (existsSync(bin)) return bin;
  await mkdir(dir, { recursive: true });
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
      pipeline(body, createWriteStream(tmp)).then(() => next(), next);
    } else {
      body.resume();
      body.on('end', () => next());
    }
  });
  await pipeline(archive, extract);
  if (!found) throw new MinilabError('unexpected', `node ${node.name} has no /usr/local/bin/kube`);
  await chmod(tmp, 0o755);
  await rename(tmp, bin);
  return bin;
}

/** The profile's kubeconfig as a private file for child processes (0600 under MINILAB_HOME). */
export async function profileKubeconfigFile(dir: string, entry: KubeconfigEntry): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'kubeconfig');
  await writeFileAtomic(file, renderKubeconfig(entry));
  return file;
}

/** Runs kubectl with this process's terminal (so `kubectl exec -it` works); resolves to its exit code. */
export function runKubectl(bin: string, kubeconfig: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['--kubeconfig', kubeconfig, ...args], { stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? (signal === 'SIGINT' ? 130 : 1));
    });
  });
}
