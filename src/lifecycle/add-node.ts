import { clusterImages, copyImage, imagesToCopy } from '../cluster/images.js';
import { MinilabError } from '../errors.js';
import {
  API_SERVER_PORT,
  MAX_CONTROL_PLANES,
  caCertHash,
  newCertificateKey,
} from '../kube/kubeadm-config.js';
import { waitUntil } from '../kube/wait.js';
import { Labels } from '../labels.js';
import { resourceNames, validateNodeName } from '../profile/name.js';
import { runInNode } from '../providers/run.js';
import type { Node, NodeRole } from '../providers/types.js';
import { configureLoadBalancer } from './load-balancer.js';
import { RunJournal } from './journal.js';
import { clusterServiceSubnet, deleteBootstrapToken, kubeadmJoin } from './kubeadm.js';
import { withProfileLock } from './lock.js';
import { credentials, evenControlPlanesWarning, runningControlPlane } from './nodes.js';
import { proxyEnv } from './plan.js';
import { waitForBoot } from './steps/boot.js';
import { READY_TIMEOUT_MS, whileRunning } from './steps/waits.js';
import type { LifecycleContext } from './types.js';

export interface AddNodeResult {
  profile: string;
  node: string;
  role: NodeRole;
}

/** The first name of the role not taken yet (PROFILE-worker1, -worker2, ...; -control-plane2, ...). */
function nextName(profile: string, role: NodeRole, taken: string[]): string {
  const names = resourceNames(profile);
  const name = role === 'worker' ? names.node : names.controlPlane;
  for (let i = role === 'worker' ? 1 : 0; ; i++) if (!taken.includes(name(i))) return name(i);
}

/**
 * Adds a worker, or a control plane to a cluster with a load balancer, to a running cluster: the
 * provider makes the node on the cluster's network, it boots, and joins with a fresh bootstrap
 * token (15 minutes) made on a control plane; a control plane also gets the control-plane
 * certificates, uploaded again under a fresh key, and the load balancer learns its name. A failure
 * removes the node again: from etcd and the cluster if it got that far, then from the engine.
 */
export async function addNode(
  ctx: LifecycleContext,
  profile: string,
  opts: { name?: string; controlPlane?: boolean } = {},
): Promise<AddNodeResult> {
  const role: NodeRole = opts.controlPlane ? 'control-plane' : 'worker';
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
      nextName(
        profile,
        role,
        found.nodes.map((n) => n.name),
      );
    if (found.nodes.some((n) => n.name === name)) {
      throw new MinilabError('usage', `profile "${profile}" has a node named "${name}" already`, {
        hint: 'choose another --name, or leave it out for the next free worker name',
      });
    }
    const cp = found.node;
    const [config, flannel, lb] = await Promise.all([
      ctx.profiles.read(profile),
      cp.exec(['test', '-e', '/etc/cni/net.d/10-flannel.conflist']),
      ctx.provider.loadBalancer(profile),
    ]);
    // A cluster made with one node runs the plain bridge: a second node would never get a network.
    if (flannel.exitCode !== 0) {
      throw new MinilabError(
        'usage',
        `the cluster of profile "${profile}" was made with one node (no flannel)`,
        {
          hint: `make it with workers from the start: minilab delete -p ${profile} && minilab start -p ${profile} --nodes 2`,
        },
      );
    }
    const controlPlanes = found.nodes.filter((n) => n.role === 'control-plane');
    if (role === 'control-plane') {
      // One control plane is its own API endpoint: a second one would have nothing in front of both.
      if (!lb) {
        throw new MinilabError(
          'usage',
          `the cluster of profile "${profile}" has one control plane and no load balancer`,
          {
            hint: `make it highly available from the start: minilab delete -p ${profile} && minilab start -p ${profile} --control-planes 3`,
          },
        );
      }
      if (controlPlanes.length >= MAX_CONTROL_PLANES) {
        throw new MinilabError(
          'usage',
          `profile "${profile}" has ${controlPlanes.length} control planes, the most a cluster has`,
          { hint: 'add a worker instead: minilab node add (without --control-plane)' },
        );
      }
      const even = evenControlPlanesWarning(controlPlanes.length + 1);
      if (even) ctx.reporter.warn(`${even}; add one more for the next step up`);
    }
    const version = cp.state.labels[Labels.version] ?? config?.kubernetesVersion ?? '';
    const { port } = ctx.provider.apiEndpoint(found.nodes);
    const journal = new RunJournal();
    // What the join needs from a control plane is fetched while the node is made and boots.
    const token = runInNode(cp, 'kubeadm token create --ttl 15m', 'making a bootstrap token').then((t) =>
      t.trim(),
    );
    const running = found.nodes.filter((n) => n.state.running);
    const prepared = Promise.all([
      token,
      credentials(ctx.provider, found),
      clusterServiceSubnet(cp),
      role === 'control-plane' ? uploadCertificates(cp) : undefined,
      Promise.all(running.map(async (n) => ({ node: n, images: await clusterImages(n) }))),
    ]);
    prepared.catch(() => undefined); // awaited below, or dropped when the node is not made
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
            nodes: [{ name, role, ports: [] }],
          },
          journal,
        ),
      );
      if (!node) throw new MinilabError('unexpected', `the provider made no node ${name}`);
      const [bootstrapToken, entry, serviceSubnet, certificateKey, sources] = await prepared;
      const join = async () => {
        joined = node;
        await kubeadmJoin(node, {
          serviceSubnet,
          nodeIp: node.state.ip as string,
          controlPlaneEndpoint: `${lb?.name ?? cp.name}:${API_SERVER_PORT}`,
          bootstrapToken,
          caCertHash: caCertHash(entry.certificateAuthorityData),
          controlPlane: certificateKey
            ? { certificateKey, taint: found.nodes.some((n) => n.role === 'worker') }
            : undefined,
        });
        if (lb && role === 'control-plane') {
          await configureLoadBalancer(lb, [...controlPlanes.map((n) => n.name), name]);
        }
      };
      const asControlPlane = role === 'control-plane' ? ' as a control plane' : '';
      // The node image's own images are pinned on every node: any other was loaded into the
      // cluster (or pulled by it) and goes to the new node before its kubelet starts, since a pod
      // may land there at once.
      const pinned = sources.flatMap((s) => s.images.filter((i) => i.pinned));
      if (imagesToCopy(sources, pinned).length > 0) {
        await ctx.reporter.step('Booting the node (systemd, containerd)', () => waitForBoot(node));
        const copies = imagesToCopy(sources, await clusterImages(node));
        await ctx.reporter.step(
          `Copying ${copies.length === 1 ? 'the image' : `${copies.length} images`} loaded into the cluster`,
          async (progress) => {
            for (const { image, from } of copies) {
              progress(image.ref);
              await copyImage(from, node, image);
            }
          },
        );
        await ctx.reporter.step(`Joining ${name}${asControlPlane}`, join);
      } else {
        // Nothing to copy: kubeadm starts while the node boots (the kubelet, enabled in the node
        // image, starts with systemd in any case); a boot that fails is reported as such at once.
        await ctx.reporter.step(`Booting and joining ${name}${asControlPlane}`, () =>
          Promise.all([waitForBoot(node), join()]),
        );
      }
      // The token has served: it goes while the node turns Ready.
      const tokenGone = deleteBootstrapToken(cp, bootstrapToken).catch(() => undefined);
      await ctx.reporter.step(`Waiting for ${name} to be Ready`, (progress) =>
        waitUntil(
          `node ${name} to be Ready`,
          READY_TIMEOUT_MS,
          () => whileRunning(node, () => ctx.kube.nodeReady(entry, name)),
          // The one thing left to wait for, and a cheap read: asked more often than the default.
          { onState: progress, intervalMs: 100 },
        ),
      );
      await tokenGone;
      return { profile, node: name, role };
    } catch (err) {
      await token.then((t) => deleteBootstrapToken(cp, t)).catch(() => undefined);
      // A control plane may have become an etcd member: kubeadm reset removes it from etcd first;
      // the load balancer goes back to the control planes there were.
      if (joined && role === 'control-plane') await resetNode(joined).catch(() => undefined);
      if (lb && role === 'control-plane') {
        await configureLoadBalancer(
          lb,
          controlPlanes.map((n) => n.name),
        ).catch(() => undefined);
      }
      if (joined) await deleteNodeObject(cp, name).catch(() => undefined);
      await ctx.provider.deleteCluster(profile, [...journal.entries].reverse()).catch(() => undefined);
      throw err;
    }
  });
}

/**
 * The control-plane certificates uploaded again under a fresh key, which the new control plane
 * joins with: the ones init uploaded are deleted after two hours.
 */
async function uploadCertificates(cp: Node): Promise<string> {
  const certificateKey = newCertificateKey();
  await runInNode(
    cp,
    [
      'kubeadm',
      'init',
      'phase',
      'upload-certs',
      '--upload-certs',
      '--skip-certificate-key-print',
      '--certificate-key',
      certificateKey,
    ],
    'uploading the control-plane certificates',
  );
  return certificateKey;
}

/** kubeadm reset on a node: a control plane leaves etcd; local state goes (the node is removed next). */
export async function resetNode(node: Node): Promise<void> {
  await runInNode(node, 'kubeadm reset -f -v=1', `leaving the cluster (${node.name})`, {
    timeoutMs: 120_000,
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
