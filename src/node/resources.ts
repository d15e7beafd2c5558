import type { Engine } from '../runtime/engine.js';
import { nodeShell } from '../lifecycle/context.js';

export interface NodeResources {
  /** Memory as `docker stats` counts it: usage minus inactive file cache. */
  memoryBytes: number;
  /** CPU time used by everything in the node since it started. */
  cpuSeconds: number;
}

/**
 * The node's own cgroup figures, read inside the node (its cgroup namespace makes its cgroup the
 * root). The engine's stats come back empty for nodes whose systemd re-arranges cgroups on v1
 * hosts, so this reads the same counters Docker would.
 */
export async function nodeResources(engine: Engine, node: string): Promise<NodeResources> {
  const fromEngine = await engine.stats(node).catch(() => undefined);
  if (fromEngine && fromEngine.memoryBytes > 0) return fromEngine;
  const out = await nodeShell(
    engine,
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
