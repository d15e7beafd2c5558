import { MinilabError } from '../../errors.js';
import type { Components } from '../../image/components.js';
import type { KubeconfigEntry } from '../../kube/kubeconfig.js';
import type { ProfileConfig } from '../../profile/store.js';
import type { ClusterPlan, Node } from '../../providers/types.js';
import type { RunJournal } from '../journal.js';
import { nodeComponents } from '../kubeadm.js';
import type { PreflightResult } from '../preflight.js';
import type { StartRequest } from '../start.js';
import type { LifecycleContext } from '../types.js';

/** The one state a start's steps read and write, in the order the steps fill it. */
export interface StartState {
  readonly ctx: LifecycleContext;
  readonly req: StartRequest;
  readonly journal: RunJournal;
  /** The cluster to make (new clusters), or the profile's nodes (restarts). */
  plan?: ClusterPlan;
  preflight?: PreflightResult;
  /** The profile config this run stores (written by provision, completed by the kubeconfig step). */
  config?: ProfileConfig;
  nodes: Node[];
  /** The load balancer in front of several control planes. */
  loadBalancer?: Node;
  /** The key the first control plane uploads its certificates with, for the others to join. */
  certificateKey?: string;
  /** Whether the cluster's nodes were already running when the start began (restarts). */
  wasRunning?: boolean;
  conntrackWritable?: boolean;
  /** The token workers join with, made for this cluster by the control-plane step. */
  bootstrapToken?: string;
  /** The pod CIDR the network config uses for the first node. */
  podCidr?: string;
  entry?: KubeconfigEntry;
  /** The default StorageClass, applied while kubeadm init's last part runs: settles to its failure, if any. */
  storage?: Promise<unknown>;
  /** The node image's components.json, read once (componentsOf). */
  components?: Promise<Components>;
  /** Set when the start failed: background work stops. */
  cancelled: boolean;
  kubeconfig?: { path: string; context: string };
}

/** What a node is on this run's driver, for step titles: a container, or a VM (qemu). */
export const nodeNoun = (s: StartState, n: number) =>
  `${s.ctx.provider.driver === 'qemu' ? 'VM' : 'container'}${n === 1 ? '' : 's'}`;

/** One named step of start: a title the user sees, and one job. */
export interface Step {
  /** Shown while it runs (a function when it depends on what earlier steps found). */
  title: string | ((s: StartState) => string);
  /** Steps that report their own progress (the node image build) run without a line of their own. */
  silent?: boolean;
  skip?: (s: StartState) => boolean;
  run: (s: StartState, progress: (detail: string) => void) => Promise<void>;
}

/** A value an earlier step must have set; missing means the step list is out of order. */
export function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new MinilabError('unexpected', `start: ${what} is not known yet`);
  return value;
}

/** The (first) control-plane node among the state's nodes: kubeadm init runs there. */
export const controlPlaneOf = (s: StartState): Node =>
  need(
    s.nodes.find((n) => n.role === 'control-plane'),
    'the control-plane node',
  );

/**
 * The versions and images of the node image the cluster's nodes all run, read from the first
 * control plane once per start and shared by the steps that need them.
 */
export function componentsOf(s: StartState): Promise<Components> {
  s.components ??= nodeComponents(controlPlaneOf(s));
  return s.components;
}

/** The cluster's stable API endpoint host: the load balancer's name, or the control plane's. */
export const apiEndpointHost = (s: StartState): string =>
  s.plan?.loadBalancer?.name ?? controlPlaneOf(s).name;

/** The control planes that join the first one (clusters with a load balancer). */
export const otherControlPlanesOf = (s: StartState): Node[] =>
  s.nodes.filter((n) => n.role === 'control-plane').slice(1);

/** The Kubernetes labels the plan gives a node (a config file's), if any. */
export const nodeLabelsOf = (s: StartState, node: Node): Record<string, string> | undefined =>
  s.plan?.nodes.find((n) => n.name === node.name)?.labels;

/** The worker nodes among the state's nodes. */
export const workersOf = (s: StartState): Node[] => s.nodes.filter((n) => n.role === 'worker');

/** Runs the steps in order, each timed and reported (silent ones only when they fail) unless skipped. */
export async function runSteps(steps: readonly Step[], s: StartState): Promise<void> {
  for (const step of steps) {
    if (step.skip?.(s)) continue;
    const title = typeof step.title === 'string' ? step.title : step.title(s);
    if (!step.silent) {
      await s.ctx.reporter.step(title, (progress) => step.run(s, progress));
      continue;
    }
    // A silent step shows a line only when it fails, so every failure names its step.
    const started = performance.now();
    try {
      await step.run(s, () => undefined);
    } catch (err) {
      s.ctx.reporter.failed(title, performance.now() - started);
      throw err;
    }
  }
}
