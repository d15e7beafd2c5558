import { clusterImages, loadImagesEverywhere } from '../cluster/images.js';
import { MinilabError, formatMs, plural } from '../errors.js';
import type { KubeconfigEntry } from '../kube/kubeconfig.js';
import { waitUntil } from '../kube/wait.js';
import { withProfileLock } from '../lifecycle/lock.js';
import { credentials, runningControlPlane } from '../lifecycle/nodes.js';
import type { LifecycleContext } from '../lifecycle/types.js';
import type { Node } from '../providers/types.js';
import { addonRefs, ensureAddonImages } from './images.js';
import { ADDONS, addonsNamed } from './catalog.js';
import type { Addon } from './types.js';

/** How long an enabled add-on may take to work (its first metrics come about 15 s after it starts). */
export const ADDON_READY_TIMEOUT_MS = 3 * 60_000;

export interface AddonState {
  name: string;
  description: string;
  enabled: boolean;
  /** Where an enabled add-on that runs beside the cluster answers, or what is wrong with it. */
  status?: string;
}

/**
 * The catalog with what the profile has enabled (stored in the profile: it survives stop/start).
 * A profile that does not exist is not found (exit 4), as for every command on a profile.
 */
export async function listAddons(
  ctx: Pick<LifecycleContext, 'profiles'>,
  profile: string,
  /** Given, the enabled add-ons that run beside the cluster say how they are (never failing the list). */
  live?: () => Promise<LifecycleContext>,
): Promise<AddonState[]> {
  const config = await ctx.profiles.read(profile);
  if (!config) {
    throw new MinilabError('notFound', `profile "${profile}" does not exist`, {
      hint: `create its cluster with add-ons: minilab start -p ${profile} --addons ${ADDONS[0]?.name ?? ''}`,
    });
  }
  const enabled = config.addons ?? [];
  return Promise.all(
    ADDONS.map(async (a) => {
      const on = enabled.includes(a.name);
      const state: AddonState = { name: a.name, description: a.description, enabled: on };
      const beside = a.beside;
      if (on && beside && live) {
        state.status = await live()
          .then((lc) => beside.status(lc, profile))
          .catch((err: unknown) => `unknown (${err instanceof Error ? err.message : String(err)})`);
      }
      return state;
    }),
  );
}

/** One add-on enabled: how long it took, and what the user should know (where to reach it). */
export interface Enabled {
  name: string;
  ms: number;
  notes: string[];
}

export interface EnableResult {
  profile: string;
  enabled: Enabled[];
}

/**
 * Makes add-ons work in a running cluster: remembered in the profile first (so that a failure is
 * undone by `addons disable`, and retried by the next start), then their images built (cached)
 * and loaded into every running node, their objects applied, and their own check passed.
 * Enabling an enabled add-on applies it again (repairs what was changed or removed by hand).
 */
export async function enableAddons(
  ctx: LifecycleContext,
  profile: string,
  names: string[],
): Promise<EnableResult> {
  const addons = addonsNamed(names);
  return withProfileLock(ctx, profile, 'addons enable', 10 * 60_000, async () => {
    const found = await runningControlPlane(ctx.provider, profile);
    const entry = await credentials(ctx.provider, found);
    const running = found.nodes.filter((n) => n.state.running);
    for (const n of found.nodes.filter((x) => !x.state.running)) {
      ctx.reporter.warn(
        `node ${n.name} is not running: its add-on images are not loaded there (enable again once it runs)`,
      );
    }
    await remember(ctx, profile, (list) => [...list, ...addons.map((a) => a.name)]);
    const enabled = await applyAddons(ctx, profile, running, entry, addons, {
      wait: true,
      reuseLoaded: false,
    });
    return { profile, enabled };
  });
}

/**
 * The add-ons' images, objects and check, one add-on after the other, on the running nodes given.
 * `reuseLoaded` (start): nodes that all have an add-on's images keep them, with no build or load
 * (a changed recipe is loaded by the next `addons enable`). Without `wait`, the objects are
 * applied and not checked. Every failure is the add-on's (exit code 8): the cluster stays.
 */
export async function applyAddons(
  ctx: LifecycleContext,
  profile: string,
  running: Node[],
  entry: KubeconfigEntry,
  addons: Addon[],
  opts: { wait: boolean; reuseLoaded: boolean },
): Promise<Enabled[]> {
  const names = addons.map((a) => a.name).join(', ');
  return failsAs(names, async () => {
    const started = performance.now();
    const images = await addonRefs(addons);
    const withImages = addons.filter((a) => (images.get(a.name) ?? []).length > 0);
    const loaded =
      withImages.length === 0 ||
      (await ctx.reporter.step(
        `Add-on images (${withImages.map((a) => a.name).join(', ')})`,
        async (progress) => {
          if (opts.reuseLoaded && (await loadedEverywhere(running, [...images.values()].flat()))) return true;
          await ensureAddonImages(ctx.provider.images, ctx.home, withImages, progress);
          return false;
        },
      ));
    const done: Enabled[] = [];
    let mark = started;
    for (const addon of addons) {
      const refs = images.get(addon.name) ?? [];
      if (refs.length > 0) {
        await ctx.reporter.step(
          `Loading ${addon.name}'s images into ${plural(running.length, 'node')}`,
          async (progress) => {
            if (!loaded) await loadImagesEverywhere(ctx.provider.images, running, refs, progress);
          },
        );
      }
      const notes = (await addon.beside?.up(ctx, { profile, nodes: running, entry })) ?? [];
      const manifest = addon.manifest?.(refs);
      if (manifest) await ctx.reporter.step(`Applying ${addon.name}`, () => ctx.kube.apply(entry, manifest));
      const ready = addon.ready;
      if (opts.wait && ready) {
        await ctx.reporter.step(`Waiting for ${addon.name} to work`, (progress) =>
          waitUntil(
            `${addon.name} to work`,
            ADDON_READY_TIMEOUT_MS,
            () =>
              ctx.kube.withConfig(entry, (config) =>
                ready(
                  config,
                  running.map((n) => n.name),
                ),
              ),
            {
              intervalMs: 500,
              onState: progress,
              hint: `kubectl -n ${addon.namespace ?? 'kube-system'} get pods,events shows why; minilab addons disable ${addon.name} removes it`,
            },
          ),
        );
      }
      if (opts.wait && addon.working)
        notes.push(...(await addon.working(ctx, { profile, nodes: running, entry })));
      // the first add-on's time includes the images' build, when there was one
      done.push({ name: addon.name, ms: performance.now() - mark, notes });
      mark = performance.now();
    }
    return done;
  });
}

/** Whether every node has all these images already (by name). */
async function loadedEverywhere(nodes: Node[], refs: string[]): Promise<boolean> {
  const lists = await Promise.all(nodes.map((n) => clusterImages(n)));
  return lists.every((list) => refs.every((ref) => list.some((i) => i.ref === ref)));
}

export interface DisableResult {
  profile: string;
  disabled: string[];
  /** Named add-ons that were neither enabled nor had anything in the cluster: nothing was done. */
  notEnabled: string[];
}

/**
 * Removes what enabling made (every object of the add-on's manifest) and forgets the add-on. An
 * add-on the profile does not list is still looked for in a running cluster (an enable that
 * failed before it was remembered, or objects made by hand from the same manifest).
 */
export async function disableAddons(
  ctx: LifecycleContext,
  profile: string,
  names: string[],
): Promise<DisableResult> {
  const addons = addonsNamed(names);
  return withProfileLock(ctx, profile, 'addons disable', 5 * 60_000, async () => {
    const enabled = (await listAddons(ctx, profile)).filter((a) => a.enabled).map((a) => a.name);
    const found = await runningControlPlane(ctx.provider, profile);
    const entry = await credentials(ctx.provider, found);
    const images = await addonRefs(addons);
    const disabled: string[] = [];
    const notEnabled: string[] = [];
    const running = found.nodes.filter((n) => n.state.running);
    for (const addon of addons) {
      const manifest = addon.manifest?.(images.get(addon.name) ?? []);
      const removed = await ctx.reporter.step(`Removing ${addon.name}`, () =>
        failsAs(addon.name, async () => {
          const objects = manifest ? await ctx.kube.remove(entry, manifest) : 0;
          return objects + ((await addon.beside?.down(ctx, { profile, nodes: running, entry })) ?? 0);
        }),
      );
      (enabled.includes(addon.name) || removed > 0 ? disabled : notEnabled).push(addon.name);
      // forgotten once removed: the next one's removal sees the profile without it (the load
      // balancer agent serves the add-ons the profile still lists)
      await remember(ctx, profile, (list) => list.filter((n) => n !== addon.name));
    }
    return { profile, disabled, notEnabled };
  });
}

/** Updates the profile's list of enabled add-ons (kept in catalog order, each once). */
export async function remember(
  ctx: Pick<LifecycleContext, 'profiles'>,
  profile: string,
  change: (list: string[]) => string[],
): Promise<void> {
  const config = await ctx.profiles.read(profile);
  if (!config) return;
  const names = new Set(change(config.addons ?? []));
  await ctx.profiles.write({ ...config, addons: ADDONS.filter((a) => names.has(a.name)).map((a) => a.name) });
}

/** An add-on's failure, once the cluster itself is fine: its own exit code, the cluster kept. */
async function failsAs<T>(names: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof MinilabError) {
      if (err.kind === 'addon') throw err;
      throw new MinilabError('addon', `${names}: ${err.message}`, {
        hint: err.hint,
        details: err.details,
        cause: err,
      });
    }
    throw new MinilabError('addon', `${names}: ${err instanceof Error ? err.message : String(err)}`, {
      hint: `the cluster is kept; minilab addons enable ${names.split(', ')[0] ?? ''} tries again (-v shows the cause)`,
      cause: err,
    });
  }
}

export const describeEnabled = (r: EnableResult) =>
  r.enabled
    .flatMap((e) => [
      `${e.name} is enabled in cluster "${r.profile}" (${formatMs(e.ms)})`,
      ...e.notes.map((n) => `  ${n}`),
    ])
    .join('\n') + '\n';
