import type * as k8s from '@kubernetes/client-node';
import type { KubeconfigEntry } from './kubeconfig.js';
import { apiServerReady } from './readyz.js';
import type { WakeSource } from './wait.js';

/**
 * What start needs of a cluster's API server, as one interface: the real one speaks HTTPS through
 * the published port with @kubernetes/client-node; unit tests of the lifecycle pass their own.
 * Errors of the calls carry the HTTP status in `code` where the server answered.
 */
export interface ClusterApi {
  /** Starts loading the client library now (it takes ~0.3 s), so the first call does not wait for it. */
  preload(): void;
  /** The API server's /livez, /readyz (or another health path). */
  health(entry: KubeconfigEntry, path: string): Promise<true | string>;
  nodeReady(entry: KubeconfigEntry, node: string): Promise<true | string>;
  /** The pod CIDR the controller manager gave a node, if any yet. */
  podCidr(entry: KubeconfigEntry, node: string): Promise<string | undefined>;
  coreDnsReady(entry: KubeconfigEntry): Promise<true | string>;
  /** Wakes a wait whenever a CoreDNS pod changes (a watch). */
  coreDnsChanges(entry: KubeconfigEntry): WakeSource;
  defaultServiceAccount(entry: KubeconfigEntry): Promise<true | string>;
  /** A multi-document manifest, by server-side apply. */
  apply(entry: KubeconfigEntry, manifest: string): Promise<void>;
  /** Deletes every object of a multi-document manifest; how many existed (gone ones are fine). */
  remove(entry: KubeconfigEntry, manifest: string): Promise<number>;
  /** Runs a check with the client library's configuration for this cluster. */
  withConfig<T>(entry: KubeconfigEntry, fn: (config: k8s.KubeConfig) => Promise<T>): Promise<T>;
  /** The default StorageClass and its provisioner, by server-side apply. */
  applyStorage(entry: KubeconfigEntry, images: { provisioner: string; helper: string }): Promise<void>;
  /** kube-proxy's GOGC, for kubeadm releases that do not read a kube-proxy patch. */
  tuneKubeProxy(entry: KubeconfigEntry): Promise<void>;
}

type Library = [typeof import('./client.js'), typeof import('./addons.js')];

/** The ClusterApi of a real cluster; clients are made once per kubeconfig entry. */
export function kubernetesApi(): ClusterApi {
  let library: Promise<Library> | undefined;
  const load = () => (library ??= Promise.all([import('./client.js'), import('./addons.js')]));
  const clients = new WeakMap<KubeconfigEntry, ReturnType<Library[0]['kubeClients']>>();
  const withClients = async (entry: KubeconfigEntry) => {
    const [lib, addons] = await load();
    let c = clients.get(entry);
    if (!c) clients.set(entry, (c = lib.kubeClients(entry)));
    return { lib, addons, c };
  };
  return {
    preload: () => void load().catch(() => undefined),
    health: (entry, path) => apiServerReady(entry, 2000, path),
    nodeReady: async (entry, node) => {
      const { lib, c } = await withClients(entry);
      return lib.nodeReady(c.core, node);
    },
    podCidr: async (entry, node) => {
      const { c } = await withClients(entry);
      return (await c.core.readNode({ name: node })).spec?.podCIDR || undefined;
    },
    coreDnsReady: async (entry) => {
      const { lib, c } = await withClients(entry);
      return lib.coreDnsReady(c.core);
    },
    coreDnsChanges: (entry) => async (notify) => {
      const { lib, c } = await withClients(entry);
      return lib.watchWake(c.config, '/api/v1/namespaces/kube-system/pods', {
        labelSelector: 'k8s-app=kube-dns',
      })(notify);
    },
    defaultServiceAccount: async (entry) => {
      const { lib, c } = await withClients(entry);
      return lib.defaultServiceAccount(c.core);
    },
    apply: async (entry, manifest) => {
      const { addons, c } = await withClients(entry);
      await addons.applyManifest(c.config, manifest);
    },
    remove: async (entry, manifest) => {
      const { addons, c } = await withClients(entry);
      return addons.deleteManifest(c.config, manifest);
    },
    withConfig: async (entry, fn) => {
      const { c } = await withClients(entry);
      return fn(c.config);
    },
    applyStorage: async (entry, images) => {
      const { addons, c } = await withClients(entry);
      await addons.applyManifest(c.config, addons.storageManifest(images));
    },
    tuneKubeProxy: async (entry) => {
      const { addons, c } = await withClients(entry);
      await addons.tuneKubeProxy(c.config);
    },
  };
}
