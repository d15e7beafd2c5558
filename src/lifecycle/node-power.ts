import { MinilabError } from '../errors.js';
import { waitUntil } from '../kube/wait.js';
import { profileLocked } from '../profile/lock.js';
import type { Node } from '../providers/types.js';
import { withProfileLock } from './lock.js';
import { controlPlane, credentials, etcdQuorum, haltNode, runningControlPlane } from './nodes.js';
import { waitForBoot } from './steps/boot.js';
import { syncFirewall } from './steps/firewall.js';
import { READY_TIMEOUT_MS, whileRunning } from './steps/waits.js';
import type { LifecycleContext } from './types.js';

export interface NodeStopResult {
  profile: string;
  node: string;
  role: string;
  action: 'stopped' | 'already-stopped';
}

export interface NodeStartResult {
  profile: string;
  node: string;
  role: string;
  action: 'started' | 'already-running';
}

/** The profile's node of that name, or a not-found error listing the nodes it has. */
function findNode(profile: string, nodes: Node[], name: string): Node {
  const node = nodes.find((n) => n.name === name);
  if (!node) {
    throw new MinilabError('notFound', `profile "${profile}" has no node "${name}"`, {
      hint: `its nodes: ${nodes.map((n) => n.name).join(', ')}`,
    });
  }
  return node;
}

/**
 * The node's Ready heartbeat as the API server has it ('' before the node registered), read
 * through a control plane; undefined when the API server does not answer.
 */
async function readyHeartbeat(via: Node, name: string): Promise<string | undefined> {
  const r = await via
    .exec(
      [
        'kubectl',
        '--kubeconfig=/etc/kubernetes/admin.conf',
        // An API server without etcd's majority does not answer: the wait goes on without this check.
        '--request-timeout=10s',
        'get',
        'node',
        name,
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}',
      ],
      { timeoutMs: 30_000 },
    )
    .catch(() => undefined);
  return r?.exitCode === 0 ? r.stdout.trim() : undefined;
}

/**
 * Stops one node as `minilab stop` stops each: the kubelet first, then the container; its state
 * stays. The Node object stays in the cluster too: it goes NotReady, and Kubernetes reschedules
 * its pods by its own rules (as `minikube node stop`). The last running control plane is refused
 * (the whole cluster's stop is the command for that), and so is a control plane whose stop would
 * leave etcd without a majority, unless `force`.
 */
export async function stopNode(
  ctx: LifecycleContext,
  profile: string,
  name: string,
  opts: { force?: boolean } = {},
): Promise<NodeStopResult> {
  // A profile with no cluster, that no other command is working on, is refused before anything is written.
  if (!(await profileLocked(ctx.home, profile))) await controlPlane(ctx.provider, profile);
  return withProfileLock(ctx, profile, 'node stop', 5 * 60_000, async () => {
    const { nodes } = await controlPlane(ctx.provider, profile);
    const node = findNode(profile, nodes, name);
    const result = { profile, node: name, role: node.role };
    if (!node.state.running) return { ...result, action: 'already-stopped' };
    if (node.role === 'control-plane') {
      const members = nodes.filter((n) => n.role === 'control-plane');
      const left = members.filter((n) => n.state.running && n !== node).length;
      if (left === 0) {
        throw new MinilabError('usage', `${name} is the last running control plane of profile "${profile}"`, {
          hint: `stop the whole cluster instead: minilab stop -p ${profile}`,
        });
      }
      const needed = etcdQuorum(members.length);
      if (left < needed && !opts.force) {
        throw new MinilabError(
          'usage',
          `stopping ${name} leaves ${left} of ${members.length} control planes running: etcd needs ${needed} to answer, so the API server would stop answering`,
          {
            hint: `start another control plane first (minilab node start -p ${profile} NAME), or stop it anyway with --force`,
          },
        );
      }
      if (left < needed) {
        ctx.reporter.warn(
          `etcd has no majority now (${left} of ${members.length} members): the API server answers again once ${needed} control planes run (minilab node start -p ${profile} ${name})`,
        );
      }
    }
    await ctx.reporter.step(`Stopping ${name}`, async () => {
      await haltNode(ctx.provider, node);
    });
    return { ...result, action: 'stopped' };
  });
}

/**
 * Starts one stopped node of a running cluster: the container starts, boots (systemd, containerd),
 * and its kubelet comes back with it; done when the API server reports the node Ready from a
 * heartbeat of the restarted kubelet. A node already running is only checked for Ready. The
 * cluster needs a running control plane: a stopped cluster is started whole, by `minilab start`.
 */
export async function startNode(
  ctx: LifecycleContext,
  profile: string,
  name: string,
): Promise<NodeStartResult> {
  if (!(await profileLocked(ctx.home, profile))) await controlPlane(ctx.provider, profile);
  return withProfileLock(ctx, profile, 'node start', 10 * 60_000, async () => {
    const { nodes } = await controlPlane(ctx.provider, profile);
    const node = findNode(profile, nodes, name);
    const found = await runningControlPlane(ctx.provider, profile);
    // The API endpoint of several control planes, if it was stopped on its own: nothing answers without it.
    const lb = await ctx.provider.loadBalancer(profile);
    if (lb && !lb.state.running) {
      await ctx.reporter.step(`Starting the load balancer ${lb.name}`, () => ctx.provider.startNode(lb));
    }
    const wasRunning = node.state.running;
    // The API server keeps the Ready from before the stop until the node controller's grace period
    // (tens of seconds) runs out: Ready counts once the restarted kubelet has reported (a new heartbeat).
    let before: string | undefined;
    if (!wasRunning) {
      before = await readyHeartbeat(found.node, name);
      await ctx.reporter.step(`Starting the node container ${name}`, () => ctx.provider.startNode(node));
      await ctx.reporter.step('Booting the node (systemd, containerd)', () => waitForBoot(node));
    }
    // What publishes now (the node, a load balancer started above) is guarded again.
    await syncFirewall(ctx, profile);
    const entry = await credentials(ctx.provider, found);
    let reported = before === undefined;
    await ctx.reporter.step(`Waiting for ${name} to be Ready`, (progress) =>
      waitUntil(
        `node ${name} to be Ready`,
        READY_TIMEOUT_MS,
        () =>
          whileRunning(node, async () => {
            if (!reported) {
              const now = await readyHeartbeat(found.node, name);
              reported = now !== undefined && now !== before;
              if (!reported) return 'the kubelet has not reported since the start';
            }
            return ctx.kube.nodeReady(entry, name);
          }),
        { onState: progress },
      ),
    );
    return { profile, node: name, role: node.role, action: wasRunning ? 'already-running' : 'started' };
  });
}
