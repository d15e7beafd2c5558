import { randomBytes } from 'node:crypto';
import { lstat, mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { MinilabError, usageError } from '../errors.js';
import { openPrivateFile, privateDir, writePrivateFile } from '../private-files.js';
import { runInNode } from '../providers/run.js';
import type { Node, Provider } from '../providers/types.js';
import { minilabVersion } from '../version.js';

/** Components with logs: systemd units read from the journal, the rest from their containers. */
export const UNIT_COMPONENTS = ['kubelet', 'containerd'] as const;
export const CONTAINER_COMPONENTS = [
  'kube-apiserver',
  'etcd',
  'kube-controller-manager',
  'kube-scheduler',
  'kube-proxy',
  'coredns',
  'local-path-provisioner',
] as const;
export const COMPONENTS = [...UNIT_COMPONENTS, ...CONTAINER_COMPONENTS];

export function validateComponent(c: string): string {
  if (!(COMPONENTS as readonly string[]).includes(c)) {
    throw usageError(`unknown component "${c}"`, `use one of: ${COMPONENTS.join(', ')}`);
  }
  return c;
}

/** The node-side command printing (or following) one component's log. */
export function componentLogCommand(component: string, opts: { follow: boolean; tail: number }): string[] {
  if ((UNIT_COMPONENTS as readonly string[]).includes(component)) {
    return [
      'journalctl',
      '-u',
      component,
      '--no-pager',
      '-o',
      'short-iso',
      '-n',
      String(opts.tail),
      ...(opts.follow ? ['-f'] : []),
    ];
  }
  // The kubelet keeps every container's log under /var/log/containers/POD_NAMESPACE_CONTAINER-ID.log
  // (CRI format: time, stream, tag, message); the newest file is the running container's.
  const follow = opts.follow ? '-F' : '';
  return [
    'bash',
    '-c',
    `f=$(ls -t /var/log/containers/*_${component}-*.log 2>/dev/null | head -n1)
     if [ -z "$f" ]; then echo "no ${component} container on this node" >&2; exit 1; fi
     tail ${follow} -n ${opts.tail} "$f" | cut -d' ' -f4-`,
  ];
}

/**
 * A follow (`journalctl -f`, `tail -F | cut`) that ends in the node when its stdin ends. The engine
 * cannot stop an exec and a client going away leaves it running (moby issue 9098): a Ctrl-C of
 * `minilab logs -f` would leave its follower in the node. It runs in a session of its own, killed whole
 * once stdin reaches its end (the CLI ended it, or its connection went); the script ends as soon
 * as the follower does. Run it with stdin attached: without, stdin is empty and it ends at once.
 */
export function followUntilInputEnds(cmd: string[]): string[] {
  const script = [
    // Background commands get /dev/null as stdin: the watcher reads the input through fd 3.
    'exec 3<&0',
    'setsid "$@" </dev/null 3<&- & follower=$!',
    // Before setsid has run there is no group yet: the process itself goes.
    '{ while read -r _ <&3; do :; done; kill -- -"$follower" 2>/dev/null || kill "$follower" 2>/dev/null; } & watcher=$!',
    'wait "$follower"; code=$?',
    'kill "$watcher" 2>/dev/null; wait "$watcher"',
    'exit "$code"',
  ].join('\n');
  return ['bash', '-c', script, 'follow', ...cmd];
}

/**
 * Collects a node's logs into the folder named by its first argument (made here: a path that
 * exists already is refused). Links are never followed: `cp -r` copies them as links (which the
 * host then skips), and a container log is read only where its link resolves inside /var/log/pods.
 */
const EXPORT_SCRIPT = `
umask 077
d=$1
mkdir "$d"; mkdir "$d/containers" "$d/kubernetes"
journalctl --no-pager -b -o short-iso > "$d/journal.log" 2>&1 || true
for u in kubelet containerd; do journalctl --no-pager -b -o short-iso -u "$u" > "$d/$u.log" 2>&1 || true; done
ctr -n k8s.io containers ls > "$d/containers.txt" 2>&1 || true
ctr -n k8s.io images ls > "$d/images.txt" 2>&1 || true
for f in /var/log/containers/*.log; do
  t=$(readlink -f "$f") || continue
  case "$t" in /var/log/pods/*) [ -f "$t" ] && cut -d' ' -f4- "$t" > "$d/containers/$(basename "$f")" 2>/dev/null || true ;; esac
done
cp -r /var/log/pods "$d/pods" 2>/dev/null || true
cp /etc/minilab/kubeadm.yaml /etc/minilab/components.json /etc/minilab/runtime.json "$d/kubernetes/" 2>/dev/null || true
cp -r /etc/kubernetes/manifests "$d/kubernetes/" 2>/dev/null || true
K="kubectl --kubeconfig=/etc/kubernetes/admin.conf"
$K get nodes,pods,services,events -A -o wide > "$d/kubernetes/resources.txt" 2>&1 || true
$K describe nodes > "$d/kubernetes/nodes-describe.txt" 2>&1 || true
{ kubeadm version -o short; kubelet --version; containerd --version; runc --version; crictl --version; uname -a; cat /etc/os-release; } > "$d/versions.txt" 2>&1 || true
systemctl list-units --no-pager > "$d/systemd-units.txt" 2>&1 || true
ip addr > "$d/network.txt" 2>&1; ip route >> "$d/network.txt" 2>&1; iptables-save >> "$d/network.txt" 2>&1 || true
`;

/**
 * Writes a log bundle like `kind export logs`: for each node its logs, container and pod logs,
 * versions and config; beside them what the provider says of the nodes and itself. The bundle is
 * its user's alone (folders 0700, files 0600): it holds the cluster's config and events.
 */
export async function exportLogs(provider: Provider, nodes: Node[], dir: string): Promise<string[]> {
  const written: string[] = [];
  const failed: string[] = [];
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const node of nodes) {
    const target = join(dir, node.name);
    await privateDir(target);
    // One node that cannot give its logs (stopped, broken) does not stop the others'.
    try {
      if (node.state.running) {
        await collectNodeLogs(node, target);
        written.push(target);
      }
      const consoleLog = await node.logs({ tail: 5000 });
      const chunks: Buffer[] = [];
      for await (const c of consoleLog) chunks.push(c as Buffer);
      await writePrivateFile(join(target, 'node-console.log'), Buffer.concat(chunks));
    } catch (err) {
      await writePrivateFile(
        join(target, 'export-error.txt'),
        `${err instanceof Error ? err.message : String(err)}\n`,
      );
      written.push(join(target, 'export-error.txt'));
    }
  }
  const inspect = {
    minilab: minilabVersion,
    nodes: nodes.map((n) => n.state),
    provider: await provider.info(),
  };
  await writePrivateFile(join(dir, 'inspect.json'), JSON.stringify(inspect, null, 2) + '\n');
  written.push(join(dir, 'inspect.json'));
  if (failed.length > 0) {
    throw new MinilabError('clusterFailed', `the logs of ${failed.length} node(s) could not be collected`, {
      details: failed,
      hint: `what could be collected is in ${dir}`,
    });
  }
  return written;
}

/**
 * Collects a node's logs in a folder of the node's own for this run (two exports at once do not
 * share one), copies it out into `target`, and removes it whichever way the export ends.
 */
async function collectNodeLogs(node: Node, target: string): Promise<void> {
  const inNode = `/var/tmp/minilab-logs-${randomBytes(8).toString('hex')}`;
  const remove = () =>
    node
      .exec(['rm', '-rf', inNode], { timeoutMs: 30_000 })
      .then(() => undefined)
      .catch(() => undefined);
  await withCleanup(async () => {
    await runInNode(
      node,
      ['bash', '-euo', 'pipefail', '-c', EXPORT_SCRIPT, 'minilab-export-logs', inNode],
      'collecting logs in the node',
      { timeoutMs: 180_000 },
    );
    await extractBundle(await node.copyOut(inNode), target, basename(inNode));
  }, remove);
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Runs `fn`, then `cleanup` however it ends: also on SIGINT, SIGTERM or SIGHUP, after which the
 * signal ends the process as it would have.
 */
async function withCleanup<T>(fn: () => Promise<T>, cleanup: () => Promise<void>): Promise<T> {
  const unwatch = () => SIGNALS.forEach((signal) => process.off(signal, onSignal));
  const onSignal = (signal: NodeJS.Signals) => {
    unwatch();
    void cleanup().finally(() => process.kill(process.pid, signal));
  };
  SIGNALS.forEach((signal) => process.once(signal, onSignal));
  try {
    return await fn();
  } finally {
    unwatch();
    await cleanup();
  }
}

/**
 * Extracts a node's log folder (a tar stream whose entries sit under `top`) into `dir`, as plain
 * files (0600) and folders (0700) only. Links are skipped, a node's link could name any host file;
 * so is every name that would land outside `dir` (absolute, `..`, outside `top`, or through a link
 * already in `dir`). Returns the names skipped.
 */
export async function extractBundle(archive: Readable, dir: string, top: string): Promise<string[]> {
  const skipped: string[] = [];
  const extract = tarStream.extract();
  archive.on('error', (err) => extract.destroy(err));
  archive.pipe(extract);
  try {
    for await (const entry of extract) {
      const { name, type } = entry.header;
      const parts = name.split('/').filter((p) => p !== '' && p !== '.');
      const inside =
        !name.startsWith('/') && parts[0] === top && !parts.includes('..') ? parts.slice(1) : undefined;
      const kind =
        type === 'file' || type === 'contiguous-file' ? 'file' : type === 'directory' ? 'dir' : undefined;
      let done = false;
      if (inside && kind === 'dir') done = await dirInside(dir, inside);
      else if (
        inside &&
        inside.length > 0 &&
        kind === 'file' &&
        (await dirInside(dir, inside.slice(0, -1)))
      ) {
        done = await writeEntry(join(dir, ...inside), entry);
      }
      if (!done) skipped.push(name);
      entry.resume();
    }
  } finally {
    archive.destroy();
  }
  return skipped;
}

/** Makes the folders `parts` below `root` (0700); false when one exists as something else (a link). */
async function dirInside(root: string, parts: string[]): Promise<boolean> {
  let path = root;
  for (const part of parts) {
    path = join(path, part);
    try {
      await mkdir(path, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (!(await lstat(path)).isDirectory()) return false;
    }
  }
  return true;
}

/** Writes one entry's bytes to a new or replaced file (0600); false when a link or folder is in the way. */
async function writeEntry(path: string, body: AsyncIterable<unknown>): Promise<boolean> {
  let handle;
  try {
    handle = await openPrivateFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'EISDIR') return false;
    throw err;
  }
  await pipeline(body, handle.createWriteStream());
  return true;
}
