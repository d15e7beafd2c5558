import {
  checkKubeconfigFiles,
  kubeconfigFiles,
  readKubeconfigEntry,
  removeKubeconfigEntry,
} from '../kube/kubeconfig.js';
import { lockProfile } from '../profile/lock.js';
import { stopForwards } from '../profile/services.js';
import { resourceNames } from '../profile/name.js';
import type { Engine } from '../runtime/engine.js';
import { Labels } from '../runtime/labels.js';
import type { LifecycleContext } from './context.js';
import type { Created } from './node.js';

export interface DeleteResult {
  profile: string;
  containers: string[];
  volumes: string[];
  network?: string;
  kubeconfig?: { path: string; context: string };
}

/**
 * Removes a profile's containers and volumes (found by label), its network when nothing else
 * uses it, and, when `only` is given, just what one run created.
 */
export async function removeProfileResources(engine: Engine, profile: string, only?: Created) {
  const names = resourceNames(profile);
  const containers: string[] = [];
  const volumes: string[] = [];
  let network: string | undefined;
  if (!only || only.container) {
    for (const c of await engine.listContainers({ [Labels.profile]: profile, [Labels.managed]: 'true' })) {
      await engine.remove(c.id);
      containers.push(c.name);
    }
  }
  if (!only || only.volume) {
    const labelled = await engine.listVolumes({ [Labels.profile]: profile, [Labels.managed]: 'true' });
    for (const v of new Set([...labelled, ...(only ? [names.varVolume()] : [])])) {
      if ((await engine.removeVolume(v)) === 'removed') volumes.push(v);
    }
  }
  if (!only || only.network) {
    if ((await engine.removeNetwork(names.network)) === 'removed') network = names.network;
  }
  return { containers, volumes, network };
}

export async function deleteProfile(ctx: LifecycleContext, profile: string): Promise<DeleteResult> {
  const release = await lockProfile(ctx.home, profile, {
    timeoutMs: 5 * 60_000,
    purpose: `minilab delete -p ${profile}`,
    onWait: (holder) => ctx.reporter.info(`waiting for profile "${profile}": held by ${holder}`),
  });
  try {
    const config = await ctx.profiles.read(profile).catch(() => undefined);
    const context = config?.kubeconfig?.context ?? profile;
    // The files of $KUBECONFIG as kubectl reads them, and the file start wrote if it is not among them.
    const files = kubeconfigFiles(ctx.env);
    const recorded = config?.kubeconfig?.path;
    const lists = recorded && !files.includes(recorded) ? [files, [recorded]] : [files];
    // A malformed kubeconfig stops the delete before anything is removed.
    await checkKubeconfigFiles(lists.flat());
    // `minilab service --url` forwards end with the cluster.
    await stopForwards(ctx.profiles.dir(profile));
    const removed = await removeProfileResources(ctx.engine, profile);
    let kubeconfig: DeleteResult['kubeconfig'];
    for (const list of lists) {
      const path = (await readKubeconfigEntry(list, context))?.path ?? (list[0] as string);
      if (await removeKubeconfigEntry(list, context)) kubeconfig ??= { path, context };
    }
    await ctx.profiles.remove(profile);
    return { profile, ...removed, kubeconfig };
  } finally {
    await release();
  }
}
