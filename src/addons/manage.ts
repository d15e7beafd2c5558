import { loadImages, loadOnEveryNode } from '../cluster/images.js';
import { MinilabError, formatMs } from '../errors.js';
import type { KubeconfigEntry } from '../kube/kubeconfig.js';
import { waitUntil } from '../kube/wait.js';
import { withProfileLock } from '../lifecycle/lock.js';
import { credentials, runningControlPlane } from '../lifecycle/nodes.js';
import type { LifecycleContext } from '../lifecycle/types.js';
import type { Node } from '../providers/types.js';
import { ensureAddonImages, pinnedAddons } from './images.js';
import { ADDONS, addonsNamed } from './catalog.js';
import type { Addon } from './types.js';

/** How long an enabled add-on may take to work (its first metrics come about 15 s after it starts). */
export const ADDON_READY_TIMEOUT_MS = 3 * 60_000;

export interface AddonState {
  name: string;
  description: string;
  enabled: boolean;
}

/** The catalog with what the profile has enabled (stored in the profile: it survives stop/start). */
export async function listAddons(
  ctx: Pick<LifecycleContext, 'profiles'>,
  profile: string,
): Promise<AddonState[]> {
  const enabled = (await ctx.profiles.read(profile))?.addons ?? [];
  return ADDONS.map((a) => ({ name: a.name, description: a.description, enabled: enabled.includes(a.name) }));
}

export interface EnableResult {
  profile: string;
  enabled: { name: string; ms: number }[];
}

/**
 * Makes add-ons work in a running cluster: their images built (cached) and loaded into every
 * running node, their objects applied, and their own check passed; then remembered in the profile.
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
    const enabled = await applyAddons(
      ctx,
      found.nodes.filter((n) => n.state.running),
      entry,
      addons,
    );
    await remember(ctx, profile, (list) => [...list, ...addons.map((a) => a.name)]);
    return { profile, enabled };
  });
}

/**
 * The add-ons' build, images, objects and check, one add-on after the other, on the running nodes
 * given (a stopped node gets the images from its peers when it comes back, as with `image load`).
 */
export async function applyAddons(
  ctx: LifecycleContext,
  running: Node[],
  entry: KubeconfigEntry,
  addons: Addon[],
): Promise<{ name: string; ms: number }[]> {
  const started = performance.now();
  const images = await ctx.reporter.step(
    `Add-on images (${addons.map((a) => a.name).join(', ')})`,
    (progress) => ensureAddonImages(ctx.provider.images, ctx.home, addons, progress),
  );
  const done: { name: string; ms: number }[] = [];
  let mark = started;
  for (const addon of addons) {
    const refs = images.get(addon) ?? [];
    await ctx.reporter.step(
      `Loading ${addon.name}'s images into ${plural(running.length, 'node')}`,
      (progress) =>
        loadOnEveryNode(
          running,
          async (n, p) => (await loadImages(ctx.provider.images, n, refs, (_ref, d) => p(d)))[0],
          progress,
        ),
    );
    await ctx.reporter.step(`Applying ${addon.name}`, () =>
      failsAs(addon, 'applying its objects', () => ctx.kube.apply(entry, addon.manifest(refs))),
    );
    await ctx.reporter.step(`Waiting for ${addon.name} to work`, () =>
      failsAs(addon, 'waiting for it', () =>
        waitUntil(
          `${addon.name} to work`,
          ADDON_READY_TIMEOUT_MS,
          () =>
            ctx.kube.withConfig(entry, (config) =>
              addon.ready(
                config,
                running.map((n) => n.name),
              ),
            ),
          {
            intervalMs: 500,
            hint: `kubectl -n kube-system get pods,events shows why (minilab addons disable ${addon.name} removes it)`,
          },
        ),
      ),
    );
    // the first add-on's time includes the images' build, when there was one
    done.push({ name: addon.name, ms: performance.now() - mark });
    mark = performance.now();
  }
  return done;
}

export interface DisableResult {
  profile: string;
  disabled: string[];
  /** Named add-ons that were not enabled: nothing was done for them. */
  notEnabled: string[];
}

/** Removes what enabling made (every object of the add-on's manifest) and forgets the add-on. */
export async function disableAddons(
  ctx: LifecycleContext,
  profile: string,
  names: string[],
): Promise<DisableResult> {
  const addons = addonsNamed(names);
  return withProfileLock(ctx, profile, 'addons disable', 5 * 60_000, async () => {
    const enabled = (await ctx.profiles.read(profile))?.addons ?? [];
    const toDisable = addons.filter((a) => enabled.includes(a.name));
    const notEnabled = addons.filter((a) => !enabled.includes(a.name)).map((a) => a.name);
    if (toDisable.length > 0) {
      const found = await runningControlPlane(ctx.provider, profile);
      const entry = await credentials(ctx.provider, found);
      const versions = await pinnedAddons();
      for (const addon of toDisable) {
        const refs = addon.images(versions).map((i) => i.ref);
        await ctx.reporter.step(`Removing ${addon.name}`, () =>
          failsAs(addon, 'removing its objects', () => ctx.kube.remove(entry, addon.manifest(refs))),
        );
      }
      await remember(ctx, profile, (list) => list.filter((n) => !toDisable.some((a) => a.name === n)));
    }
    return { profile, disabled: toDisable.map((a) => a.name), notEnabled };
  });
}

/** Updates the profile's list of enabled add-ons (kept in catalog order, each once). */
export async function remember(
  ctx: LifecycleContext,
  profile: string,
  change: (list: string[]) => string[],
): Promise<void> {
  const config = await ctx.profiles.read(profile);
  if (!config) return;
  const names = new Set(change(config.addons ?? []));
  await ctx.profiles.write({ ...config, addons: ADDONS.filter((a) => names.has(a.name)).map((a) => a.name) });
}

/** An add-on's failure, once the cluster itself is fine: its own exit code, the cluster kept. */
async function failsAs<T>(addon: Addon, doing: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof MinilabError && err.kind !== 'unexpected') {
      throw new MinilabError('addon', `${addon.name}: ${err.message}`, { hint: err.hint, cause: err });
    }
    throw new MinilabError('addon', `${addon.name}: ${doing} failed: ${String(err)}`, {
      hint: `the cluster is unchanged otherwise; minilab addons enable ${addon.name} tries again`,
      cause: err,
    });
  }
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

export const describeEnabled = (r: EnableResult) =>
  r.enabled.map((e) => `${e.name} is enabled in cluster "${r.profile}" (${formatMs(e.ms)})`).join('\n') +
  '\n';
