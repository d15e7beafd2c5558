import { addonsNamed } from '../../addons/catalog.js';
import { applyAddons, remember } from '../../addons/manage.js';
import { need, type Step } from './state.js';

/**
 * The profile's add-ons and those of `--addons`, applied once the cluster is whole and its
 * kubeconfig written: a new cluster gets them, a restarted one gets them again (images loaded
 * where a node lacks them, objects re-applied, each checked to work). A failure keeps the cluster
 * (exit code 8).
 */
export const addonsStep: Step = {
  title: 'Enabling add-ons',
  // applyAddons shows a line for each of its own steps
  silent: true,
  run: async (s) => {
    const stored = (await s.ctx.profiles.read(s.req.profile))?.addons ?? [];
    const names = [...new Set([...stored, ...(s.req.addons ?? [])])];
    if (names.length === 0) return;
    await applyAddons(s.ctx, s.nodes, need(s.entry, 'the admin credentials'), addonsNamed(names));
    await remember(s.ctx, s.req.profile, () => names);
  },
};
