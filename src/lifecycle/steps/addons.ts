import { ADDONS, addonsNamed } from '../../addons/catalog.js';
import { applyAddons, remember } from '../../addons/manage.js';
import { need, type Step } from './state.js';

/**
 * The profile's add-ons and those of `--addons`, applied once the cluster is whole and its
 * kubeconfig written: a new cluster gets them, a restarted one gets them again (images loaded
 * where a node lacks them, objects re-applied, each checked to work unless `--wait none`). They
 * are remembered first, so a failure (exit code 8, the cluster kept) is retried by the next start
 * or undone by `addons disable`.
 */
export const addonsStep: Step = {
  title: 'Enabling add-ons',
  // applyAddons shows a line for each of its own steps
  silent: true,
  run: async (s) => {
    const stored = (await s.ctx.profiles.read(s.req.profile))?.addons ?? [];
    // a name this minilab does not know (stored by another version, or by hand) is dropped
    const unknown = stored.filter((n) => !ADDONS.some((a) => a.name === n));
    if (unknown.length > 0)
      s.ctx.reporter.warn(`unknown add-on(s) in the profile, dropped: ${unknown.join(', ')}`);
    const names = [...new Set([...stored.filter((n) => !unknown.includes(n)), ...(s.req.addons ?? [])])];
    if (names.length === 0) return;
    await remember(s.ctx, s.req.profile, () => names);
    const enabled = await applyAddons(
      s.ctx,
      s.req.profile,
      s.nodes,
      need(s.entry, 'the admin credentials'),
      addonsNamed(names),
      { wait: s.req.wait !== 'none', reuseLoaded: true },
    );
    // where to reach what an add-on runs (the registry's address)
    for (const e of enabled) for (const note of e.notes) s.ctx.reporter.info(`${e.name}: ${note}`);
  },
};
