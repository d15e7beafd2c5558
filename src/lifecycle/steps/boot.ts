import { runInNode } from '../../providers/run.js';
import type { Node } from '../../providers/types.js';
import { markCreating } from '../kubeadm.js';
import { servingCerts } from '../serving-certs.js';
import { controlPlaneOf, nodeNoun, type Step } from './state.js';

/**
 * Present in the node from boot until the cluster is complete (control plane, add-ons, readiness):
 * a start that was interrupted leaves it behind, so the next start does not take the half-made
 * cluster for a working one.
 */
export const CREATING_MARKER = '/etc/minilab/creating';

/** Waits for a node's systemd to finish booting and containerd to answer. */
export async function waitForBoot(node: Node): Promise<void> {
  await runInNode(
    node,
    `for i in $(seq 1 300); do
       if [ -S /run/containerd/containerd.sock ] && ctr --timeout 2s version >/dev/null 2>&1; then exit 0; fi
       sleep 0.1
     done
     echo "containerd did not answer within 30 s" >&2
     systemctl is-system-running || true
     systemctl --failed --no-legend || true
     exit 1`,
    'waiting for the node to boot (systemd, containerd)',
    { timeoutMs: 60_000, logCommand: 'journalctl -b --no-pager -n 30' },
  );
}

const BOOT_TITLE = 'Booting the node (systemd, containerd)';

/**
 * A new cluster's nodes boot; meanwhile the control plane is marked as being created and each
 * node gets its serving certificates.
 */
export const bootStep: Step = {
  title: BOOT_TITLE,
  run: async (s) => {
    const [, probe] = await Promise.all([
      Promise.all(s.nodes.map(waitForBoot)),
      markCreating(controlPlaneOf(s), CREATING_MARKER),
      Promise.all(s.nodes.map(servingCerts)),
    ]);
    s.conntrackWritable = probe.conntrackWritable;
  },
};

/** Restart: the nodes that were stopped are started (the load balancer first) and boot. */
export const startNodesStep: Step = {
  title: (s) =>
    `Starting the node ${nodeNoun(s, s.nodes.length)} ${s.nodes
      .filter((n) => !n.state.running)
      .map((n) => n.name)
      .join(', ')}`,
  skip: (s) => s.wasRunning === true,
  run: async (s) => {
    const lb = s.loadBalancer;
    if (lb && !lb.state.running) await s.ctx.provider.startNode(lb);
    for (const node of s.nodes) if (!node.state.running) await s.ctx.provider.startNode(node);
    // The registry add-on's container too: pods may pull from it as soon as the nodes run, and
    // its port is guarded with the others (next step).
    for (const r of await s.ctx.provider.services('registry', s.req.profile)) {
      if (!r.state.running) await s.ctx.provider.startNode(r);
    }
  },
};

export const rebootStep: Step = {
  title: BOOT_TITLE,
  skip: (s) => s.wasRunning === true,
  run: async (s) => {
    await Promise.all(s.nodes.filter((n) => !n.state.running).map(waitForBoot));
  },
};
