import getPort from 'get-port';
import { MinilabError } from '../errors.js';
import { checkKubeconfigFiles, kubeconfigFiles } from '../kube/kubeconfig.js';
import { Labels } from '../labels.js';
import type { ClusterConfig } from '../config/cluster-config.js';
import { resourceNames } from '../profile/name.js';
import type { ProfileConfig } from '../profile/store.js';
import type { Node } from '../providers/types.js';
import { RunJournal } from './journal.js';
import { withProfileLock } from './lock.js';
import { clusterNodes, nodeStopped } from './nodes.js';
import { planCluster, requestedNodes } from './plan.js';
import { API_SERVER_PORT } from '../kube/kubeadm-config.js';
import { checkNewCluster } from './preflight.js';
import { CREATE_STEPS, RESTART_STEPS } from './steps/index.js';
import { runSteps, type StartState } from './steps/state.js';
import type { LifecycleContext } from './types.js';

export interface StartRequest {
  profile: string;
  kubernetesVersion: string;
  /** Whether the user named the version (then a restart of another version is refused). */
  explicitVersion: boolean;
  cpus?: number;
  memoryBytes?: number;
  /** The disk each node may grow to (VM drivers; a container's is the engine's). */
  diskBytes?: number;
  /** How many nodes in all: `controlPlanes` control planes, the rest workers. */
  nodes: number;
  /** How many of the nodes are control planes (several: behind a load balancer). Default 1. */
  controlPlanes?: number;
  /** A cluster config file, merged with the flags (its nodes then replace nodes/controlPlanes/ports). */
  config?: ClusterConfig;
  /** Whether the user gave --nodes (then a restart of a cluster of another size is refused). */
  explicitNodes?: boolean;
  ports: ProfileConfig['ports'];
  wait: 'all' | 'none';
  keepOnFailure: boolean;
  switchContext: boolean;
  /** Add-ons to enable besides those the profile has (`--addons`). */
  addons?: string[];
}

export interface StartResult {
  profile: string;
  action: 'created' | 'restarted' | 'resynced';
  /** The control-plane node. */
  node: string;
  nodes: { name: string; role: string }[];
  kubernetesVersion: string;
  apiServer: string;
  kubeconfig: { path: string; context: string };
}

/** Creates the profile's cluster, restarts it when stopped, or re-syncs the kubeconfig when running. */
export async function start(ctx: LifecycleContext, req: StartRequest): Promise<StartResult> {
  ctx.kube.preload();
  // A request that cannot work is refused before the lock is taken and anything is written.
  await checkKubeconfigFiles(kubeconfigFiles(ctx.env));
  if ((await ctx.provider.listNodes(req.profile)).length === 0) {
    // Every host port the user chose: --ports, or a config file's mappings and API server port.
    const api = req.config?.networking.apiServerPort;
    const ports = [
      ...requestedNodes(req).flatMap((n) => n.extraPortMappings),
      ...(api ? [{ hostPort: api, containerPort: API_SERVER_PORT, protocol: 'tcp' as const }] : []),
    ];
    await checkNewCluster(ctx.provider, { ...req, ports }, { path: ctx.env.PATH, fromFile: !!req.config });
  }
  return withProfileLock(ctx, req.profile, 'start', 10 * 60_000, async () => {
    const nodes = await clusterNodes(ctx.provider, req.profile);
    return nodes.length > 0 ? restart(ctx, req, nodes) : create(ctx, req);
  });
}

function newState(ctx: LifecycleContext, req: StartRequest, nodes: Node[]): StartState {
  return { ctx, req, journal: new RunJournal(), nodes, cancelled: false };
}

async function create(ctx: LifecycleContext, req: StartRequest): Promise<StartResult> {
  const s = newState(ctx, req, []);
  s.plan = planCluster(req, {
    apiServerPort: req.config?.networking.apiServerPort ?? (await getPort({ host: '127.0.0.1' })),
    env: ctx.env,
    labels: ctx.extraLabels,
  });
  try {
    await runSteps(CREATE_STEPS, s);
  } catch (caught) {
    // Only the kubeconfig or add-ons were left: the finished cluster stays; the next start does them.
    if (caught instanceof MinilabError && (caught.kind === 'kubeconfig' || caught.kind === 'addon'))
      throw caught;
    s.cancelled = true;
    // A failure because a node stopped under a step is reported as just that.
    let stopped: MinilabError | undefined;
    for (const node of s.nodes) stopped ??= await nodeStopped(node, { cause: caught, settleMs: 3000 });
    if (req.keepOnFailure && s.journal.entries.length > 0) {
      ctx.reporter.warn(
        `kept the half-made cluster for inspection (--keep-on-failure); remove it with: minilab delete -p ${req.profile}`,
      );
    } else {
      // (With --keep-on-failure and nothing made, only the stored profile is put back.)
      await rollback(s).catch(() => undefined);
    }
    throw stopped ?? caught;
  }
  return result(s, 'created');
}

/** Undoes what the journal says this run made, newest first, and restores the stored profile. */
async function rollback(s: StartState): Promise<void> {
  await s.ctx.provider.deleteCluster(s.req.profile, [...s.journal.entries].reverse());
  const before = s.journal.profileBefore;
  if (!before) return;
  if (before.config) await s.ctx.profiles.write(before.config);
  else await s.ctx.profiles.remove(s.req.profile);
}

async function restart(ctx: LifecycleContext, req: StartRequest, nodes: Node[]): Promise<StartResult> {
  const cp = nodes.find((n) => n.role === 'control-plane');
  if (!cp) {
    throw new MinilabError(
      'clusterFailed',
      `the cluster of profile "${req.profile}" has lost its control-plane node`,
      {
        hint: `remove what is left and start again: minilab delete -p ${req.profile} && minilab start -p ${req.profile}`,
      },
    );
  }
  const cps = nodes.filter((n) => n.role === 'control-plane').length;
  if (req.explicitNodes && (nodes.length !== req.nodes || cps !== (req.controlPlanes ?? 1))) {
    throw new MinilabError(
      'usage',
      `profile "${req.profile}" has ${nodes.length} node(s), ${cps} of them control planes, not ${req.nodes} with ${req.controlPlanes ?? 1}`,
      {
        hint: `add or remove nodes with minilab node add / node delete, or use another profile`,
      },
    );
  }
  const version = cp.state.labels[Labels.version] ?? req.kubernetesVersion;
  if (req.explicitVersion && version !== req.kubernetesVersion) {
    throw new MinilabError(
      'usage',
      `profile "${req.profile}" runs Kubernetes ${version}, not ${req.kubernetesVersion}`,
      { hint: `delete it first (minilab delete -p ${req.profile}) or use another profile` },
    );
  }
  if (req.config) {
    ctx.reporter.warn(
      `the cluster of profile "${req.profile}" exists: of the config file only its node counts were checked (the rest applies when a cluster is made)`,
    );
  }
  const s = newState(ctx, { ...req, kubernetesVersion: version }, nodes);
  s.loadBalancer = await ctx.provider.loadBalancer(req.profile);
  // Several control planes are reached through the load balancer only: without it nothing would
  // come up, and the wait would last its whole timeout.
  if (cps > 1 && !s.loadBalancer) {
    throw new MinilabError(
      'clusterFailed',
      `the cluster of profile "${req.profile}" has lost its load balancer container (${resourceNames(req.profile).loadBalancer})`,
      {
        hint: `remove what is left and start again: minilab delete -p ${req.profile} && minilab start -p ${req.profile} --control-planes ${cps} --nodes ${nodes.length}`,
      },
    );
  }
  s.wasRunning = nodes.every((n) => n.state.running) && (s.loadBalancer?.state.running ?? true);
  await runSteps(RESTART_STEPS, s);
  return result(s, s.wasRunning ? 'resynced' : 'restarted');
}

function result(s: StartState, action: StartResult['action']): StartResult {
  const cp = s.nodes.find((n) => n.role === 'control-plane') ?? (s.nodes[0] as Node);
  return {
    profile: s.req.profile,
    action,
    node: cp.name,
    nodes: s.nodes.map((n) => ({ name: n.name, role: n.role })),
    kubernetesVersion: s.req.kubernetesVersion,
    apiServer: s.entry?.server ?? '',
    kubeconfig: s.kubeconfig ?? { path: '', context: s.req.profile },
  };
}
