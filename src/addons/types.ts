import type * as k8s from '@kubernetes/client-node';
import type { ImageConfig } from '../image/archive.js';
import type { KubeconfigEntry } from '../kube/kubeconfig.js';
import type { LifecycleContext } from '../lifecycle/types.js';
import type { Node } from '../providers/types.js';

/** What images/addons/build.sh reports (addons.json), beside the binaries it built. */
export interface AddonVersions {
  metricsServer: string;
  /** minilab's ingress controller (images/addons/ingress). */
  ingress: string;
  /** The Gateway API CRDs the ingress add-on applies. */
  gatewayApi: string;
  goVersion?: string;
}

/** The add-on build's output: a directory of binaries (with addons.json) for one recipe key. */
export interface AddonBuild {
  key: string;
  dir: string;
}

/** An image an add-on runs: binaries of the add-on build at paths in an otherwise minimal image. */
export interface AddonImage {
  ref: string;
  binaries: { name: string; path: string }[];
  config: ImageConfig;
}

/** The running cluster an add-on is made or removed in. */
export interface AddonTarget {
  profile: string;
  /** Its running nodes. */
  nodes: Node[];
  /** The admin credentials. */
  entry: KubeconfigEntry;
}

/**
 * What an add-on runs beside the cluster, outside Kubernetes (a container of its own on the
 * cluster's network, a process on the host), and the nodes' configuration for it.
 */
export interface BesideCluster {
  /**
   * Made, or started where it stopped, and every running node configured for it; resolves once it
   * answers, to what the user should know (a line each: where to reach it).
   */
  up(ctx: LifecycleContext, target: AddonTarget): Promise<string[]>;
  /** A node that joins later gets the same configuration. */
  join(ctx: LifecycleContext, profile: string, node: Node): Promise<void>;
  /** Removed with its data, and the configuration from these nodes: how many things it removed. */
  down(ctx: LifecycleContext, target: AddonTarget): Promise<number>;
  /** Where it answers, or what is wrong with it, for `addons list` (of an enabled add-on). */
  status(ctx: LifecycleContext, profile: string): Promise<string>;
}

export interface Addon {
  name: string;
  /** One line for `addons list`. */
  description: string;
  /** Where its pods run (kube-system when not said): what a hint names. */
  namespace?: string;
  /** The images loaded into the nodes (none for an add-on that runs beside the cluster). */
  images(versions: AddonVersions): AddonImage[];
  /** The objects enable applies (server-side) and disable deletes, given the images' references. */
  manifest?(images: string[]): string;
  /** Whether the add-on works (not only that its pods run), or what it still waits for. */
  ready?(config: k8s.KubeConfig, nodes: string[]): Promise<true | string>;
  /** Once it works (its check passed): what the user should know that only then is known. */
  working?(ctx: LifecycleContext, target: AddonTarget): Promise<string[]>;
  beside?: BesideCluster;
}
