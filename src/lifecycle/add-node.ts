import { ADDONS } from '../addons/catalog.js';
import { clusterImages, copyImage, imagesToCopy } from '../cluster/images.js';
import { MAX_CONTROL_PLANES } from '../config/limits.js';
import { MinilabError } from '../errors.js';
import { API_SERVER_PORT, caCertHash, newCertificateKey } from '../kube/kubeadm-config.js';
import { waitUntil } from '../kube/wait.js';
import { Labels } from '../labels.js';
import { resourceNames, validateNodeName } from '../profile/name.js';
import { runInNode } from '../providers/run.js';
import type { Node, NodeRole } from '../providers/types.js';
import { configureLoadBalancer } from './load-balancer.js';
import { RunJournal } from './journal.js';
import { clusterSubnets, deleteBootstrapToken, kubeadmJoin, nodeComponents } from './kubeadm.js';
import { withProfileLock } from './lock.js';
import { servingCerts } from './serving-certs.js';
import { joinUnpacking } from './unpack.js';
import { credentials, evenControlPlanesWarning, runningControlPlane } from './nodes.js';
import { addedNodeProxyEnv } from './plan.js';
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
    // The cluster's ranges, read once: the join needs the Service range, NO_PROXY both.
    const subnets = clusterSubnets(cp);
    subnets.catch(() => undefined); // awaited below, or dropped when the node is not made
    const env = await addedNodeProxyEnv(ctx.env, subnets, [
      ...found.nodes.map((n) => n.name),
      name,
      ...(lb ? [lb.name] : []),
    ]);
    const journal = new RunJournal();
    // What the join needs from a control plane is fetched while the node is made and boots.
    const token = runInNode(cp, 'kubeadm token create --ttl 15m', 'making a bootstrap token').then((t) =>
      t.trim(),
    );
    const running = found.nodes.filter((n) => n.state.running);
    const prepared = Promise.all([
      token,
      credentials(ctx.provider, found),
      subnets.then((r) => r.serviceSubnet),
      role === 'control-plane' ? uploadCertificates(cp) : undefined,
      // A node whose images cannot be listed is no source: the others may be.
      Promise.all(running.map(async (n) => ({ node: n, images: await clusterImages(n).catch(() => []) }))),
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
            env,
            labels: ctx.extraLabels,
            nodes: [{ name, role, ports: [] }],
          },
          journal,
        ),
      );
      if (!node) throw new MinilabError('unexpected', `the provider made no node ${name}`);
      // What the cluster's add-ons configure in each node (the registry's hosts), before pods land.
      // A failure is a warning: the node works, and enabling the add-on again configures it.
      for (const addon of ADDONS.filter((a) => config?.addons?.includes(a.name))) {
        await addon.beside?.join(ctx, profile, node).catch((err: unknown) => {
          ctx.reporter.warn(
            `${addon.name} is not set up in ${name} (${err instanceof Error ? err.message : String(err)}): minilab addons enable ${addon.name} -p ${profile} does it`,
          );
        });
      }
      const [[bootstrapToken, entry, serviceSubnet, certificateKey, sources]] = await Promise.all([
        prepared,
        servingCerts(node),
      ]);
      const join = async () => {
        joined = node;
        // The join starts while the node boots; its images are unpacked once it has.
        const booted = waitForBoot(node).then(() => nodeComponents(node));
        await joinUnpacking(node, booted, () =>
          kubeadmJoin(node, {
            serviceSubnet,
            nodeIp: node.state.ip as string,
            controlPlaneEndpoint: `${lb?.name ?? cp.name}:${API_SERVER_PORT}`,
            bootstrapToken,
            caCertHash: caCertHash(entry.certificateAuthorityData),
            controlPlane: certificateKey
              ? { certificateKey, taint: found.nodes.some((n) => n.role === 'worker') }
              : undefined,
          }),
        );
        if (lb && role === 'control-plane') {
          await configureLoadBalancer(lb, [...controlPlanes.map((n) => n.name), name]);
        }
      };
      const asControlPlane = role === 'control-plane' ? ' as a control plane' : '';
      // Images loaded into the cluster go to the new node before its kubelet starts, since a pod
      // may land there at once. A copy that fails is a warning: the node works, and loading the
      // image again puts it there.
      if (imagesToCopy(sources, []).length > 0) {
        await ctx.reporter.step('Booting the node (systemd, containerd)', () => waitForBoot(node));
        const copies = imagesToCopy(sources, await clusterImages(node));
        const failed: string[] = [];
        await ctx.reporter.step(
          `Copying ${copies.length === 1 ? 'the image' : `${copies.length} images`} loaded into the cluster`,
          async (progress) => {
            for (const { image, from } of copies) {
              progress(image.ref);
              await copyImage(from, node, image).catch((err: unknown) => {
                failed.push(`${image.ref} (${err instanceof Error ? err.message : String(err)})`);
              });
            }
          },
        );
        if (failed.length > 0) {
          ctx.reporter.warn(
            `not copied to ${name}: ${failed.join('; ')}; minilab image load puts them there`,
          );
        }
        await ctx.reporter.step(`Joining ${name}${asControlPlane}`, join);
      } else {
        // Nothing to copy: kubeadm starts while the node boots (the kubelet, enabled in the node
        // image, starts with systemd in any case). A boot that fails is reported once the join
        // has given up too, so nothing is still joining when the node is removed.
        await ctx.reporter.step(`Booting and joining ${name}${asControlPlane}`, async () => {
          const joining = join();
          await Promise.all([
            waitForBoot(node).catch(async (err: unknown) => {
              await joining.catch(() => undefined);
              throw err;
            }),
            joining,
          ]);
        });
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
      // Ready is the kubelet's word; a pod placed there at once also needs kube-proxy's rules
      // (Services, DNS), which it writes on its first sync, a moment after it starts.
      await ctx.reporter.step(`Waiting for kube-proxy on ${name}`, () =>
        waitUntil(
          `kube-proxy on ${name} to write its rules`,
          READY_TIMEOUT_MS,
          () => whileRunning(node, () => kubeProxySynced(node)),
          { intervalMs: 100 },
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
 * Whether kube-proxy in the node has written its rules once: its health endpoint reports, per IP
 * family, the time of its last sync (the zero time before the first; the top-level time is the
 * current time whenever it counts itself healthy, which it does while starting).
 */
export async function kubeProxySynced(node: Node): Promise<true | string> {
  const r = await node.exec([
    'bash',
    '-c',
    `exec 3<>/dev/tcp/127.0.0.1/${KUBE_PROXY_HEALTHZ_PORT} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3`,
  ]);
  const body = r.stdout.slice(r.stdout.indexOf('{'));
  let health: { status?: Record<string, { lastUpdated?: string }> };
  try {
    health = JSON.parse(body) as typeof health;
  } catch {
    return 'kube-proxy not answering yet';
  }
  const families = Object.values(health.status ?? {});
  if (families.length === 0) return 'kube-proxy has not synced yet';
  const synced = families.every((f) => f.lastUpdated !== undefined && !f.lastUpdated.startsWith('0001-'));
  return synced ? true : 'kube-proxy has not synced yet';
}

/** kube-proxy's health endpoint (kubeadm leaves its default, 0.0.0.0:10256). */
const KUBE_PROXY_HEALTHZ_PORT = 10256;

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
