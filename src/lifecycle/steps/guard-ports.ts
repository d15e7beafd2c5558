import type { LifecycleContext } from '../types.js';
import type { Step } from './state.js';

/**
 * Has the provider close what its engine leaves open on the profile's published ports (Docker
 * before 28: see src/providers/docker/loopback-guard.ts). Its rules do not outlive a reboot, so
 * every start puts them back; what it could not do is a warning, never a failed start.
 */
export async function guardPorts(ctx: LifecycleContext, profile: string): Promise<void> {
  for (const w of (await ctx.provider.guardPorts?.(profile)) ?? []) ctx.reporter.warn(w);
}

/** Silent: it has a line of its own only when it fails, and it does not fail. */
export const guardPortsStep: Step = {
  title: 'Guarding the ports published on 127.0.0.1',
  silent: true,
  run: (s) => guardPorts(s.ctx, s.req.profile),
};
