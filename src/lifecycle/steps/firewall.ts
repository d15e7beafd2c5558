import type { LifecycleContext } from '../types.js';
import type { Step } from './state.js';

/**
 * Has the provider make the host's firewall rules what the profile's containers need (Docker
 * before 28: their loopback ports closed to network neighbours, src/providers/docker/loopback-guard.ts;
 * podman beside Docker: their bridge let through FORWARD, src/providers/podman/forward-rules.ts).
 * The rules do not outlive a reboot, so every start puts them back; what it could not do is a
 * warning, never a failed start.
 */
export async function syncFirewall(ctx: LifecycleContext, profile: string): Promise<void> {
  for (const w of (await ctx.provider.syncFirewall?.(profile)) ?? []) ctx.reporter.warn(w);
}

/** Silent: it has a line of its own only when it fails, and it does not fail. */
export const firewallStep: Step = {
  title: 'Syncing the host firewall rules',
  silent: true,
  run: (s) => syncFirewall(s.ctx, s.req.profile),
};
