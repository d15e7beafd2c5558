import { preflight } from '../preflight.js';
import type { Step } from './state.js';

/** Engine, cgroups, disk, inotify limits and what was asked for, before anything is made. */
export const preflightStep: Step = {
  title: 'Preflight checks',
  run: async (s) => {
    s.preflight = await preflight(s.ctx.provider, s.req);
    for (const w of s.preflight.warnings) s.ctx.reporter.warn(w);
  },
};
