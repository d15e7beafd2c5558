import {
  checkKubeconfigFiles,
  kubeconfigFiles,
  readKubeconfigEntry,
  removeKubeconfigEntry,
} from '../kube/kubeconfig.js';
import { stopLoadBalancerAgent } from '../addons/loadbalancer.js';
import { stopForwards } from '../profile/services.js';
import type { RemovedResources } from '../providers/types.js';
import { withProfileLock } from './lock.js';
import type { LifecycleContext } from './types.js';

export interface DeleteResult extends RemovedResources {
  profile: string;
  kubeconfig?: { path: string; context: string };
}

/** Removes a profile's nodes, volumes and network (found by label), its kubeconfig entries and its state. */
export async function deleteProfile(ctx: LifecycleContext, profile: string): Promise<DeleteResult> {
  return withProfileLock(ctx, profile, 'delete', 5 * 60_000, async () => {
    const config = await ctx.profiles.read(profile).catch(() => undefined);
    const context = config?.kubeconfig?.context ?? profile;
    // The files of $KUBECONFIG as kubectl reads them, and the file start wrote if it is not among them.
    const files = kubeconfigFiles(ctx.env);
    const recorded = config?.kubeconfig?.path;
    const lists = recorded && !files.includes(recorded) ? [files, [recorded]] : [files];
    // A malformed kubeconfig stops the delete before anything is removed.
    await checkKubeconfigFiles(lists.flat());
    // `minilab service --url` forwards and the loadbalancer add-on's agent end with the cluster.
    await stopForwards(ctx.profiles.dir(profile));
    await stopLoadBalancerAgent(ctx.profiles.dir(profile));
    const removed = await ctx.provider.deleteCluster(profile);
    let kubeconfig: DeleteResult['kubeconfig'];
    for (const list of lists) {
      const path = (await readKubeconfigEntry(list, context))?.path ?? (list[0] as string);
      if (await removeKubeconfigEntry(list, context)) kubeconfig ??= { path, context };
    }
    await ctx.profiles.remove(profile);
    return { profile, ...removed, kubeconfig };
  });
}
