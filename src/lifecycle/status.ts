import { apiServerReady } from '../kube/readyz.js';
import { kubeconfigFiles, readKubeconfigEntry } from '../kube/kubeconfig.js';
import { Labels } from '../runtime/labels.js';
import { controlPlane, type LifecycleContext } from './context.js';
import { adminKubeconfig } from './kubeadm.js';
import { apiServerPort } from './node.js';

export type LayerState = 'running' | 'stopped' | 'unknown';

export interface ClusterStatus {
  profile: string;
  kubernetesVersion: string;
  node: { name: string; container: string; ip?: string };
  kubelet: LayerState;
  apiServer: { state: LayerState; url: string };
  kubeconfig: { state: 'configured' | 'stale' | 'missing'; path: string; context: string; current: boolean };
}

/** Bits of the status exit code (added to 16), one per layer that is down. */
export const StatusBits = { container: 1, kubelet: 2, apiServer: 4, kubeconfig: 8 } as const;
export const STATUS_BASE = 16;

export async function clusterStatus(ctx: LifecycleContext, profile: string): Promise<ClusterStatus> {
  const node = await controlPlane(ctx.engine, profile);
  const port = apiServerPort(node);
  const url = `https://127.0.0.1:${port}`;
  const config = await ctx.profiles.read(profile).catch(() => undefined);
  // What kubectl sees now: the merged view of the files in $KUBECONFIG.
  const files = kubeconfigFiles(ctx.env);
  const context = config?.kubeconfig?.context ?? profile;
  const [kubelet, apiServer, entry] = await Promise.all([
    node.running
      ? ctx.engine
          .exec(node.name, ['systemctl', 'is-active', 'kubelet'], { timeoutMs: 5000 })
          .then((r): LayerState => (r.stdout.trim() === 'active' ? 'running' : 'stopped'))
          .catch((): LayerState => 'unknown')
      : Promise.resolve<LayerState>('stopped'),
    node.running
      ? adminKubeconfig(ctx.engine, node.name, profile, port)
          .then((e) => apiServerReady(e))
          .then((r): LayerState => (r === true ? 'running' : 'stopped'))
          .catch((): LayerState => 'stopped')
      : Promise.resolve<LayerState>('stopped'),
    readKubeconfigEntry(files, context).catch(() => undefined),
  ]);
  return {
    profile,
    kubernetesVersion: node.labels[Labels.version] ?? config?.kubernetesVersion ?? '',
    node: { name: node.name, container: node.status, ip: node.ip },
    kubelet,
    apiServer: { state: apiServer, url },
    kubeconfig: {
      state: !entry ? 'missing' : entry.server === url ? 'configured' : 'stale',
      path: entry?.path ?? config?.kubeconfig?.path ?? (files[0] as string),
      context,
      current: entry?.current ?? false,
    },
  };
}

export function statusExitCode(s: ClusterStatus): number {
  let bits = 0;
  if (s.node.container !== 'running') bits |= StatusBits.container;
  if (s.kubelet !== 'running') bits |= StatusBits.kubelet;
  if (s.apiServer.state !== 'running') bits |= StatusBits.apiServer;
  if (s.kubeconfig.state !== 'configured') bits |= StatusBits.kubeconfig;
  return bits === 0 ? 0 : STATUS_BASE + bits;
}
