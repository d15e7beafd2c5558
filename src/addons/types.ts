import type * as k8s from '@kubernetes/client-node';
import type { ImageConfig } from '../image/archive.js';

/** What images/addons/build.sh reports (addons.json), beside the binaries it built. */
export interface AddonVersions {
  metricsServer: string;
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

export interface Addon {
  name: string;
  /** One line for `addons list`. */
  description: string;
  images(versions: AddonVersions): AddonImage[];
  /** The objects enable applies (server-side) and disable deletes, given the images' references. */
  manifest(images: string[]): string;
  /** Whether the add-on works (not only that its pods run), or what it still waits for. */
  ready(config: k8s.KubeConfig, nodes: string[]): Promise<true | string>;
}
