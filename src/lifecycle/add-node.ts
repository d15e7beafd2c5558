import { MinilabError } from '../errors.js';
import { API_SERVER_PORT, caCertHash } from '../kube/kubeadm-config.js';
import { waitUntil } from '../kube/wait.js';
import { Labels } from '../labels.js';
import { resourceNames, validateNodeName } from '../profile/name.js';
import { runInNode } from '../providers/run.js';
import type { Node } from '../providers/types.js';
import { RunJournal } from './journal.js';
import { deleteBootstrapToken, kubeadmJoin } from './kubeadm.js';
import { withProfileLock } from './lock.js';
import { credentials, runningControlPlane } from './nodes.js';
import { proxyEnv } from './plan.js';
import { waitForBoot } from './steps/boot.js';
import { READY_TIMEOUT_MS, whileRunning } from './steps/waits.js';
import type { LifecycleContext } from './types.js';

export interface AddNodeResult {
  profile: string;
  node: string;
  role: 'worker';
}

/** The first worker name of the profile not taken yet (PROFILE-worker1, -worker2, ...). */
function nextWorkerName(profile: string, taken: string[]): string {
  const names = resourceNames(profile);
  for (let i = 1; ; i++) if (!taken.includes(names.node(i))) return names.node(i);
}

/**
 * Adds a worker to a running cluster: the provider makes the node on the cluster's network, it
 * boots, and joins with a fresh bootstrap token (15 minutes) made on the control plane. A failure
 * removes the node again, from the engine and, if it had registered, from the cluster.
 */
export async function addNode(
  ctx: LifecycleContext,
  profile: string,
  opts: { name?: string } = {},
): Promise<AddNodeResult> {
  if (opts.name) {
    validateNodeName(opts.name);
    // Node names carry their profile, as every name minilab gives: no clash with another cluster's.
    if (!opts.name.startsWith(`${profile}-`)) {
      throw new MinilabError('usage', `node name "${opts.name}" does not start with "${profile}-"`, {
        hint: `e.g. --name ${profile}-${opts.name}`,
      });
    }
  }
  return withProfileLock(ctx, profile, 'node add', 10 * 60_000, async () => {
    const found = await runningControlPlane(ctx.provider, profile);
    const name =
      opts.name ??
      nextWorkerName(
        profile,
        found.nodes.map((n) => n.name),
      );
    if (found.nodes.some((n) => n.name === name)) {
      throw new MinilabError('usage', `profile "${profile}" has a node named "${name}" already`, {
        hint: 'choose another --name, or leave it out for the next free worker name',
      });
    }
    const config = await ctx.profiles.read(profile);
    const cp = found.node;
    // A cluster made with one node runs the plain bridge: a second node would never get a network.
    const flannel = await cp.exec(['test', '-e', '/etc/cni/net.d/10-flannel.conflist']);
    if (flannel.exitCode !== 0) {
      throw new MinilabError(
        'usage',
        `the cluster of profile "${profile}" was made with one node (no flannel)`,
        {
          hint: `make it with workers from the start: minilab delete -p ${profile} && minilab start -p ${profile} --nodes 2`,
        },
      );
    }
    const version = cp.state.labels[Labels.version] ?? config?.kubernetesVersion ?? '';
    const { port } = ctx.provider.apiEndpoint(found.nodes);
    const journal = new RunJournal();
    let joined: Node | undefined;
    try {
      const [node] = await ctx.reporter.step(`Creating the node container ${name}`, () =>
        ctx.provider.provision(
          {
            profile,
            kubernetesVersion: version,
            image: cp.state.image,
            apiServerPort: port,
            cpus: config?.cpus,
            memoryBytes: config?.memoryBytes,
            env: proxyEnv(ctx.env),
            labels: ctx.extraLabels,
            nodes: [{ name, role: 'worker', ports: [] }],
          },
          journal,
        ),
      );
      if (!node) throw new MinilabError('unexpected', `the provider made no node ${name}`);
      await ctx.reporter.step('Booting the node (systemd, containerd)', () => waitForBoot(node));
      const entry = await credentials(ctx.provider, found);
      await ctx.reporter.step(`Joining ${name}`, async () => {
        const token = (
          await runInNode(cp, 'kubeadm token create --ttl 15m', 'making a bootstrap token')
        ).trim();
        joined = node;
        try {
          await kubeadmJoin(node, {
            nodeIp: node.state.ip as string,
            controlPlaneEndpoint: `${cp.name}:${API_SERVER_PORT}`,
            bootstrapToken: token,
            caCertHash: caCertHash(entry.certificateAuthorityData),
          });
        } finally {
          await deleteBootstrapToken(cp, token).catch(() => undefined);
        }
      });
      await ctx.reporter.step(`Waiting for ${name} to be Ready`, (progress) =>
        waitUntil(
          `node ${name} to be Ready`,
          READY_TIMEOUT_MS,
          () => whileRunning(node, () => ctx.kube.nodeReady(entry, name)),
          {
            onState: progress,
          },
        ),
      );
      return { profile, node: name, role: 'worker' };
    } catch (err) {
      if (joined) await deleteNodeObject(cp, name).catch(() => undefined);
      await ctx.provider.deleteCluster(profile, [...journal.entries].reverse()).catch(() => undefined);
      throw err;
    }
  });
}

/** Removes a Node object from the cluster, with the control plane's admin credentials. */
export async function deleteNodeObject(controlPlane: Node, name: string): Promise<void> {
  await runInNode(
    controlPlane,
    [
      'kubectl',
      '--kubeconfig=/etc/kubernetes/admin.conf',
      'delete',
      'node',
      name,
      '--ignore-not-found',
      '--wait=false',
    ],
    `removing node ${name} from the cluster`,
  );
}
