import { runInNode } from '../providers/run.js';
import type { Node, NodeResources } from '../providers/types.js';

/**
 * The node's own cgroup figures, read inside the node (its cgroup namespace makes its cgroup the
 * root). The provider's stats come back empty for nodes whose systemd re-arranges cgroups on v1
 * hosts, so this reads the same counters Docker would.
 */
export async function nodeResources(node: Node): Promise<NodeResources> {
  const fromProvider = await node.stats().catch(() => undefined);
  if (fromProvider && fromProvider.memoryBytes > 0) return fromProvider;
  const out = await runInNode(
    node,
    `if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
       echo "mem $(cat /sys/fs/cgroup/memory.current)"
       echo "inactive $(awk '$1=="inactive_file"{print $2}' /sys/fs/cgroup/memory.stat)"
       echo "cpu_usec $(awk '$1=="usage_usec"{print $2}' /sys/fs/cgroup/cpu.stat)"
     else
       echo "mem $(cat /sys/fs/cgroup/memory/memory.usage_in_bytes)"
       echo "inactive $(awk '$1=="total_inactive_file"{print $2}' /sys/fs/cgroup/memory/memory.stat)"
       echo "cpu_nsec $(cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null || cat /sys/fs/cgroup/cpu,cpuacct/cpuacct.usage)"
     fi`,
    'reading the node cgroup counters',
  );
  const v = Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string]),
  );
  const cpuSeconds = v.cpu_usec !== undefined ? Number(v.cpu_usec) / 1e6 : Number(v.cpu_nsec ?? 0) / 1e9;
  return { memoryBytes: Math.max(0, Number(v.mem ?? 0) - Number(v.inactive ?? 0)), cpuSeconds };
}
