import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tarFs from 'tar-fs';
import { MinilabError, usageError } from '../errors.js';
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

const EXPORT_SCRIPT = `
d=/var/tmp/minilab-logs
rm -rf "$d"; mkdir -p "$d/containers" "$d/kubernetes"
journalctl --no-pager -b -o short-iso > "$d/journal.log" 2>&1 || true
for u in kubelet containerd; do journalctl --no-pager -b -o short-iso -u "$u" > "$d/$u.log" 2>&1 || true; done
ctr -n k8s.io containers ls > "$d/containers.txt" 2>&1 || true
ctr -n k8s.io images ls > "$d/images.txt" 2>&1 || true
for f in /var/log/containers/*.log; do [ -e "$f" ] && cut -d' ' -f4- "$f" > "$d/containers/$(basename "$f")" 2>/dev/null || true; done
cp -rL /var/log/pods "$d/pods" 2>/dev/null || true
cp /etc/minilab/kubeadm.yaml /etc/minilab/components.json "$d/kubernetes/" 2>/dev/null || true
cp -r /etc/kubernetes/manifests "$d/kubernetes/" 2>/dev/null || true
K="kubectl --kubeconfig=/etc/kubernetes/admin.conf"
$K get nodes,pods,services,events -A -o wide > "$d/kubernetes/resources.txt" 2>&1 || true
$K describe nodes > "$d/kubernetes/nodes-describe.txt" 2>&1 || true
{ kubeadm version -o short; kubelet --version; containerd --version; runc --version; uname -a; cat /etc/os-release; } > "$d/versions.txt" 2>&1 || true
systemctl list-units --no-pager > "$d/systemd-units.txt" 2>&1 || true
ip addr > "$d/network.txt" 2>&1; ip route >> "$d/network.txt" 2>&1; iptables-save >> "$d/network.txt" 2>&1 || true
`;

/**
 * Writes a log bundle like `kind export logs`: for each node its logs, container and pod logs,
 * versions and config; beside them what the provider says of the nodes and itself.
 */
export async function exportLogs(provider: Provider, nodes: Node[], dir: string): Promise<string[]> {
  const written: string[] = [];
  const failed: string[] = [];
  for (const node of nodes) {
    const target = join(dir, node.name);
    await mkdir(target, { recursive: true });
    // One node that cannot give its logs (stopped, broken) does not stop the others'.
    try {
      if (node.state.running) {
        await runInNode(node, EXPORT_SCRIPT, 'collecting logs in the node', { timeoutMs: 180_000 });
        const archive = await node.copyOut('/var/tmp/minilab-logs');
        await pipeline(
          archive,
          tarFs.extract(target, { map: (h) => ({ ...h, name: h.name.replace(/^minilab-logs\/?/, '') }) }),
        );
        await node.exec(['rm', '-rf', '/var/tmp/minilab-logs']);
        written.push(target);
      }
      const consoleLog = await node.logs({ tail: 5000 });
      const chunks: Buffer[] = [];
      for await (const c of consoleLog) chunks.push(c as Buffer);
      await writeFile(join(target, 'node-console.log'), Buffer.concat(chunks));
    } catch (err) {
      await writeFile(
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
  await writeFile(join(dir, 'inspect.json'), JSON.stringify(inspect, null, 2) + '\n');
  written.push(join(dir, 'inspect.json'));
  if (failed.length > 0) {
    throw new MinilabError('clusterFailed', `the logs of ${failed.length} node(s) could not be collected`, {
      details: failed,
      hint: `what could be collected is in ${dir}`,
    });
  }
  return written;
}
