import { MinilabError } from '../errors.js';
import { buildNodeImage } from '../image/build.js';
import { nodeImageRef } from '../image/components.js';
import { READYZ_AFTER_RESTART, apiServerReady } from '../kube/readyz.js';
import {
  DEFAULT_POD_SUBNET,
  DEFAULT_SERVICE_SUBNET,
  kubeadmPatchesKubeProxy,
} from '../kube/kubeadm-config.js';
import type { KubeClients } from '../kube/client.js';
import { waitUntil } from '../kube/wait.js';
import {
  checkKubeconfigFiles,
  kubeconfigFiles,
  writeKubeconfigEntry,
  type KubeconfigEntry,
} from '../kube/kubeconfig.js';
import { lockProfile } from '../profile/lock.js';
import type { ProfileConfig } from '../profile/store.js';
import type { Engine } from '../runtime/engine.js';
import type { NodeState } from '../runtime/types.js';
import { nodeShell, profileNodes, type LifecycleContext } from './context.js';
import { adminKubeconfig, kubeadmInit, markCreating, nodeComponents } from './kubeadm.js';
import { storageImages } from '../image/components.js';
import { apiServerPort, createNode, nodeStopped, waitForBoot, type Created } from './node.js';
import { checkNewCluster, preflight } from './preflight.js';
import { removeProfileResources } from './delete.js';
import { resourceNames } from '../profile/name.js';

export interface StartRequest {
  profile: string;
  kubernetesVersion: string;
  /** Whether the user named the version (then a restart of another version is refused). */
  explicitVersion: boolean;
  cpus?: number;
  memoryBytes?: number;
  ports: ProfileConfig['ports'];
  wait: 'all' | 'none';
  keepOnFailure: boolean;
  switchContext: boolean;
}

export interface StartResult {
  profile: string;
  action: 'created' | 'restarted' | 'resynced';
  node: string;
  kubernetesVersion: string;
  apiServer: string;
  kubeconfig: { path: string; context: string };
}

const READY_TIMEOUT_MS = 240_000;

/**
 * The Kubernetes client library takes ~0.3 s to load: its modules are loaded in the background
 * from the moment a start begins (while the node container is made) and awaited where used.
 */
let kubeModules:
  Promise<[typeof import('../kube/client.js'), typeof import('../kube/addons.js')]> | undefined;
function kubeLibrary() {
  kubeModules ??= Promise.all([import('../kube/client.js'), import('../kube/addons.js')]);
  return kubeModules;
}

/**
 * Present in the node from boot until the cluster is complete (control plane, add-ons, readiness):
 * a start that was interrupted leaves it behind, so the next start does not take the half-made
 * cluster for a working one.
 */
const CREATING_MARKER = '/etc/minilab/creating';

/** Creates the profile's cluster, restarts it when stopped, or re-syncs the kubeconfig when running. */
export async function start(ctx: LifecycleContext, req: StartRequest): Promise<StartResult> {
  kubeLibrary().catch(() => undefined); // loading starts now; a failure surfaces where it is awaited
  // A request that cannot work is refused before the lock is taken and anything is written.
  await checkKubeconfigFiles(kubeconfigFiles(ctx.env));
  if ((await profileNodes(ctx.engine, req.profile)).length === 0) {
    const dockerHost = ctx.env.DOCKER_HOST ?? '';
    await checkNewCluster(ctx.engine, req, {
      localEngine: dockerHost === '' || dockerHost.startsWith('unix://'),
      path: ctx.env.PATH,
    });
  }
  const release = await lockProfile(ctx.home, req.profile, {
    timeoutMs: 10 * 60_000,
    purpose: `minilab start -p ${req.profile}`,
    onWait: (holder) => ctx.reporter.info(`waiting for profile "${req.profile}": held by ${holder}`),
  });
  try {
    const nodes = await profileNodes(ctx.engine, req.profile);
    return nodes.length > 0 ? await restart(ctx, req, nodes) : await create(ctx, req);
  } finally {
    await release();
  }
}

async function create(ctx: LifecycleContext, req: StartRequest): Promise<StartResult> {
  const { reporter, engine } = ctx;
  const pre = await reporter.step('Preflight checks', () => preflight(engine, req));
  for (const w of pre.warnings) reporter.warn(w);

  const image = nodeImageRef(req.kubernetesVersion);
  if (!(await engine.imageInfo(image))) {
    reporter.info(`Node image ${image} is not built yet: building it (first time only)`);
    await buildNodeImage(ctx, req.kubernetesVersion);
  }

  const existingConfig = await ctx.profiles.read(req.profile);
  const config: ProfileConfig = {
    name: req.profile,
    kubernetesVersion: req.kubernetesVersion,
    cpus: req.cpus,
    memoryBytes: req.memoryBytes,
    ports: req.ports,
    createdAt: new Date().toISOString(),
  };
  await ctx.profiles.write(config);
  const created: Created = { network: false, volume: false, container: false };
  // Once the API server is up, the default StorageClass is applied from here while kubeadm's
  // second pass runs in the node; the step below waits for that work (or reports its error).
  const apiServer: { entry?: KubeconfigEntry; storage?: Promise<unknown>; cancelled: boolean } = {
    cancelled: false,
  };
  try {
    const node = await reporter.step('Creating the node container', () =>
      createNode(
        engine,
        {
          profile: req.profile,
          image,
          kubernetesVersion: req.kubernetesVersion,
          cpus: req.cpus,
          memoryBytes: req.memoryBytes,
          ports: req.ports,
          extraLabels: ctx.extraLabels,
          env: proxyEnv(ctx.env),
        },
        created,
      ),
    );
    const { conntrackWritable } = await reporter.step('Booting the node (systemd, containerd)', async () => {
      const [, probe] = await Promise.all([
        waitForBoot(engine, node.name),
        markCreating(engine, node.name, CREATING_MARKER),
      ]);
      return probe;
    });
    const podCidr = await reporter.step('Initializing the control plane (kubeadm init)', () =>
      kubeadmInit(
        engine,
        { name: node.name, ip: node.ip as string },
        {
          kubernetesVersion: req.kubernetesVersion,
          cgroupVersion: pre.info.cgroupVersion,
          conntrackWritable,
        },
        async () => {
          const entry = await adminKubeconfig(engine, node.name, req.profile, apiServerPort(node));
          apiServer.entry = entry;
          await waitUntil(
            'the API server',
            READY_TIMEOUT_MS,
            () => whileRunning(engine, node.name, () => apiServerReady(entry, 2000, '/livez')),
            { intervalMs: 100 },
          );
          // Settled into a value at once: a failure is rethrown by the step below, never unhandled.
          apiServer.storage = installStorage(engine, node.name, entry, apiServer).then(
            () => undefined,
            (err: unknown) => err ?? new Error('installing the default StorageClass failed'),
          );
        },
      ),
    );
    const entry = apiServer.entry as KubeconfigEntry;
    await reporter.step('Installing the default StorageClass', async () => {
      const failure = await apiServer.storage;
      if (failure) throw failure;
    });
    if (!kubeadmPatchesKubeProxy(req.kubernetesVersion)) {
      const [{ kubeClients }, { tuneKubeProxy }] = await kubeLibrary();
      await tuneKubeProxy(kubeClients(entry).config);
    }
    if (req.wait === 'all') {
      await reporter.step('Waiting for node Ready, CoreDNS and the default service account', (progress) =>
        waitForCluster(engine, entry, node.name, progress, { podCidr }),
      );
    }
    await nodeShell(engine, node.name, `rm -f ${CREATING_MARKER}`, 'marking the cluster as complete');
    const kubeconfig = await reporter.step('Writing the kubeconfig', () => syncKubeconfig(ctx, req, entry));
    await ctx.profiles.write({ ...config, kubeconfig });
    return result(req, 'created', node, entry, kubeconfig);
  } catch (caught) {
    apiServer.cancelled = true;
    // A failure because the node container stopped under a step is reported as just that.
    const stopped = await nodeStopped(engine, resourceNames(req.profile).node(), {
      cause: caught,
      settleMs: 3000,
    });
    const err = stopped ?? caught;
    if (req.keepOnFailure) {
      reporter.warn(
        `kept the half-made cluster for inspection (--keep-on-failure); remove it with: minilab delete -p ${req.profile}`,
      );
    } else {
      await removeProfileResources(engine, req.profile, created).catch(() => undefined);
      if (existingConfig) await ctx.profiles.write(existingConfig);
      else await ctx.profiles.remove(req.profile);
    }
    throw err;
  }
}

async function restart(ctx: LifecycleContext, req: StartRequest, nodes: NodeState[]): Promise<StartResult> {
  const { reporter, engine } = ctx;
  const node = nodes.find((n) => n.role === 'control-plane') ?? (nodes[0] as NodeState);
  const version = node.labels['io.minilab.kubernetes-version'] ?? req.kubernetesVersion;
  if (req.explicitVersion && version !== req.kubernetesVersion) {
    throw new MinilabError(
      'usage',
      `profile "${req.profile}" runs Kubernetes ${version}, not ${req.kubernetesVersion}`,
      {
        hint: `delete it first (minilab delete -p ${req.profile}) or use another profile`,
      },
    );
  }
  const wasRunning = node.running;
  if (!wasRunning) {
    await reporter.step(`Starting the node container ${node.name}`, () => engine.start(node.name));
    await reporter.step('Booting the node (systemd, containerd)', () => waitForBoot(engine, node.name));
  }
  const complete = await engine.exec(node.name, [
    'sh',
    '-c',
    `test -f /etc/kubernetes/admin.conf && test ! -e ${CREATING_MARKER}`,
  ]);
  if (complete.exitCode !== 0) {
    throw new MinilabError(
      'clusterFailed',
      `the cluster of profile "${req.profile}" was never fully created`,
      {
        hint: `remove it and start again: minilab delete -p ${req.profile} && minilab start -p ${req.profile}`,
      },
    );
  }
  const entry = await adminKubeconfig(engine, node.name, req.profile, apiServerPort(node));
  if (!wasRunning || req.wait === 'all') {
    await reporter.step(
      wasRunning ? 'Checking the cluster' : 'Waiting for the API server and node Ready',
      (progress) => waitForCluster(engine, entry, node.name, progress, { quick: !wasRunning }),
    );
  }
  const kubeconfig = await reporter.step('Writing the kubeconfig', () => syncKubeconfig(ctx, req, entry));
  const config = await ctx.profiles.read(req.profile);
  await ctx.profiles.write({
    ...(config ?? {
      name: req.profile,
      kubernetesVersion: version,
      ports: req.ports,
      createdAt: new Date().toISOString(),
    }),
    kubeconfig,
  });
  return result(
    { ...req, kubernetesVersion: version },
    wasRunning ? 'resynced' : 'restarted',
    node,
    entry,
    kubeconfig,
  );
}

/**
 * Node Ready, CoreDNS answering, the default service account: then the cluster is usable. Each
 * check first makes sure the node container still runs, so a node that stops fails the wait at once.
 */
async function waitForCluster(
  engine: Engine,
  entry: KubeconfigEntry,
  node: string,
  progress: (s: string) => void,
  opts: { quick?: boolean; podCidr?: string } = {},
): Promise<void> {
  const [{ coreDnsReady, defaultServiceAccount, kubeClients, nodeReady, watchWake }] = await kubeLibrary();
  const clients = kubeClients(entry);
  const onState = progress;
  const running = <T>(check: () => Promise<T>): Promise<T> => whileRunning(engine, node, check);
  const readyz = opts.quick ? READYZ_AFTER_RESTART : '/readyz';
  await waitUntil(
    'the API server',
    READY_TIMEOUT_MS,
    () => running(() => apiServerReady(entry, 2000, readyz)),
    {
      onState,
      intervalMs: 100,
    },
  );
  await waitUntil(
    `node ${node} to be Ready`,
    READY_TIMEOUT_MS,
    () => running(() => nodeReady(clients.core, node)),
    { onState },
  );
  if (opts.quick) return;
  if (opts.podCidr) {
    const expected = opts.podCidr;
    await waitUntil(`node ${node} to get its pod CIDR`, READY_TIMEOUT_MS, () =>
      running(() => podCidrIs(clients, node, expected)),
    );
  }
  await waitUntil('CoreDNS', READY_TIMEOUT_MS, () => running(() => coreDnsReady(clients.core)), {
    onState,
    // Watched: the pod's Ready change is seen at once; the pause only bounds a missed event.
    wake: watchWake(clients.config, '/api/v1/namespaces/kube-system/pods', {
      labelSelector: 'k8s-app=kube-dns',
    }),
    intervalMs: 1000,
  });
  await waitUntil(
    'the default service account',
    READY_TIMEOUT_MS,
    () => running(() => defaultServiceAccount(clients.core)),
    { onState },
  );
}

/** The default StorageClass (local-path provisioner with the node's own images), by server-side apply. */
async function installStorage(
  engine: Engine,
  node: string,
  entry: KubeconfigEntry,
  cancel: { cancelled: boolean },
): Promise<void> {
  const [{ kubeClients }, { applyManifest, storageManifest }] = await kubeLibrary();
  const manifest = storageManifest(storageImages(await nodeComponents(engine, node)));
  const { config } = kubeClients(entry);
  // The admin's group gets cluster-admin from kubeadm's second pass, which starts with it: until
  // then the API answers 403. That, throttling, server errors and dropped connections are waited
  // out; any other answer (a manifest the API server refuses) fails at once.
  await waitUntil(
    'the default StorageClass to be accepted',
    READY_TIMEOUT_MS,
    async () => {
      if (cancel.cancelled) throw new MinilabError('clusterFailed', 'the start failed');
      try {
        await applyManifest(config, manifest);
        return true;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (code === 403) return 'admin not yet bound to cluster-admin (403)';
        if (typeof code !== 'number' || code === 429 || code >= 500) return `API server: ${String(err)}`;
        throw new MinilabError('clusterFailed', 'installing the default StorageClass failed', { cause: err });
      }
    },
    { intervalMs: 100 },
  );
}

/** Runs a readiness check unless the node container has stopped (then fails at once, saying so). */
async function whileRunning<T>(engine: Engine, node: string, check: () => Promise<T>): Promise<T> {
  const stopped = await nodeStopped(engine, node);
  if (stopped) throw stopped;
  return check();
}

async function syncKubeconfig(ctx: LifecycleContext, req: StartRequest, entry: KubeconfigEntry) {
  const path = await writeKubeconfigEntry(kubeconfigFiles(ctx.env), entry, req.switchContext);
  return { path, context: entry.name };
}

function result(
  req: StartRequest,
  action: StartResult['action'],
  node: NodeState,
  entry: KubeconfigEntry,
  kubeconfig: { path: string; context: string },
): StartResult {
  return {
    profile: req.profile,
    action,
    node: node.name,
    kubernetesVersion: req.kubernetesVersion,
    apiServer: entry.server,
    kubeconfig,
  };
}

/** HTTP(S)_PROXY passed into the node, with the cluster's own ranges added to NO_PROXY. */
function proxyEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) {
    const value = env[key] ?? env[key.toLowerCase()];
    if (value) out[key] = value;
  }
  if (out.HTTP_PROXY || out.HTTPS_PROXY) {
    out.NO_PROXY = [
      out.NO_PROXY,
      'localhost',
      '127.0.0.1',
      DEFAULT_SERVICE_SUBNET,
      DEFAULT_POD_SUBNET,
      '.svc',
      '.cluster.local',
    ]
      .filter(Boolean)
      .join(',');
  }
  return out;
}

/** The CNI config was written for the first /24 before kubeadm: the node must have been given that one. */
async function podCidrIs(clients: KubeClients, node: string, expected: string): Promise<true | string> {
  const n = await clients.core.readNode({ name: node });
  const cidr = n.spec?.podCIDR;
  if (!cidr) return 'no pod CIDR yet';
  if (cidr !== expected) {
    throw new MinilabError(
      'clusterFailed',
      `node ${node} got pod CIDR ${cidr}, the CNI config uses ${expected}`,
      {
        hint: 'report this; delete and start the cluster again',
      },
    );
  }
  return true;
}
