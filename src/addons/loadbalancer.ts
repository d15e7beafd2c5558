import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { KubeconfigEntry } from '../kube/kubeconfig.js';
import {
  recordOwnProcess,
  runningRecord,
  spawnRecorded,
  stopRecorded,
  type ProcessRecord,
} from '../profile/background.js';
import { untilStopped } from '../signals.js';
import type { LifecycleContext } from '../lifecycle/types.js';
import { AGENT_USERS, servedByAgent, writtenByAgent, type AgentUser } from './loadbalancer-ports.js';
import type { Addon } from './types.js';

/**
 * The loadbalancer add-on: Services of type LoadBalancer get EXTERNAL-IP 127.0.0.1 and answer on
 * the host at their own ports, with no second terminal (minikube needs `minikube tunnel`, kind
 * needs cloud-provider-kind beside it). The agent doing it (loadbalancer-agent.ts) is a minilab
 * process in the background, not a pod or a container: only a process on the host can open a new
 * port on the host's loopback while the cluster runs (a container's published ports are fixed when
 * it is made), and nothing is published beyond 127.0.0.1. `start` and `addons enable` start it,
 * `stop`, `delete` and `addons disable` end it, and it ends itself once the profile is gone. It
 * does not come back by itself when the engine brings the cluster back after a reboot: `minilab
 * start` starts it again (meanwhile the Services keep EXTERNAL-IP 127.0.0.1 and nothing answers).
 */
const NAME = 'loadbalancer';
const AGENT_FILE = 'loadbalancer.json';
const AGENT_LOG = 'loadbalancer.log';
/** How long the agent may take to list the Services and serve them. */
const AGENT_START_MS = 30_000;

/** The agent's record: its process, and the add-ons whose Services it serves. */
export interface AgentRecord extends ProcessRecord {
  users?: AgentUser[];
}

/** The running agent of a profile (by its folder), or undefined. */
export const loadBalancerAgent = (profileDir: string) =>
  runningRecord<AgentRecord>(join(profileDir, AGENT_FILE));

/** Ends the profile's agent, if one runs; whether one did. Its ports are closed when this returns. */
export const stopLoadBalancerAgent = (profileDir: string) => stopRecorded(join(profileDir, AGENT_FILE));

/**
 * Runs the agent the profile's add-ons need: one serving the Services of each enabled add-on that
 * uses it (loadbalancer, ingress; `leaving` is one being disabled), started again when that set
 * changed (its ports close for a moment), ended when none is left; resolves once it serves. Whether
 * an agent ended.
 */
export async function syncAgent(
  ctx: Pick<LifecycleContext, 'profiles' | 'env'>,
  profile: string,
  leaving?: string,
): Promise<boolean> {
  const dir = ctx.profiles.dir(profile);
  const enabled = (await ctx.profiles.read(profile))?.addons ?? [];
  const users = AGENT_USERS.filter((u) => u !== leaving && enabled.includes(u));
  const running = await loadBalancerAgent(dir);
  if (running && isDeepStrictEqual(running.users ?? ['loadbalancer'], users)) return false;
  const stopped = await stopLoadBalancerAgent(dir);
  if (users.length === 0) return stopped;
  await spawnRecorded<AgentRecord>(
    ['addons', 'loadbalancer-agent', '-p', profile, '--for', users.join(',')],
    {
      file: join(dir, AGENT_FILE),
      log: join(dir, AGENT_LOG),
      env: ctx.env,
      what: 'the load balancer agent',
      timeoutMs: AGENT_START_MS,
    },
  );
  return stopped;
}

/**
 * Runs the agent in this process until SIGINT or SIGTERM, or until the profile is deleted; it
 * records itself in the profile's folder once it serves.
 */
export async function runLoadBalancerAgent(
  entry: KubeconfigEntry,
  profileDir: string,
  users: AgentUser[],
): Promise<void> {
  const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  // the Kubernetes client is loaded here, not with every command (minilab version stays quick)
  const { LoadBalancerAgent } = await import('./loadbalancer-agent.js');
  const agent = new LoadBalancerAgent(entry, log, users);
  await agent.start();
  const release = await recordOwnProcess<AgentRecord>(join(profileDir, AGENT_FILE), { users });
  log(`serving the Services of type LoadBalancer of ${users.join(', ')}`);
  // ends with a signal (stop, delete, disable), or by itself once the profile is gone
  await untilStopped(10_000, (end) => {
    if (!existsSync(join(profileDir, 'profile.json'))) end();
  }).stopped;
  log('stopping');
  await agent.stop();
  release();
}

/** Takes EXTERNAL-IP 127.0.0.1 back from every Service the agent gave it to; how many. */
async function clearStatuses(entry: KubeconfigEntry): Promise<number> {
  const [{ kubeClients }, { patchLoadBalancerStatus }] = await Promise.all([
    import('../kube/client.js'),
    import('./loadbalancer-agent.js'),
  ]);
  const { core } = kubeClients(entry);
  const services = await core.listServiceForAllNamespaces();
  let cleared = 0;
  const own = services.items.filter((s) => servedByAgent(s) && writtenByAgent(s.status?.loadBalancer));
  for (const svc of own) {
    await patchLoadBalancerStatus(core, svc, {});
    cleared++;
  }
  return cleared;
}

export const loadBalancer: Addon = {
  name: NAME,
  description: 'Services of type LoadBalancer answer on 127.0.0.1 at their ports, while the cluster runs',
  images: () => [],
  beside: {
    async up(ctx, { profile }) {
      await ctx.reporter.step('Starting the load balancer agent', () => syncAgent(ctx, profile));
      return [
        `Services of type LoadBalancer get EXTERNAL-IP 127.0.0.1 and answer at http://127.0.0.1:PORT (their own ports); log: ${join(ctx.profiles.dir(profile), AGENT_LOG)}`,
      ];
    },
    join: async () => undefined,
    async status(ctx, profile) {
      const agent = await loadBalancerAgent(ctx.profiles.dir(profile));
      return agent
        ? `agent running (pid ${agent.pid})`
        : `agent not running: Services of type LoadBalancer are not served (minilab start -p ${profile} starts it)`;
    },
    async down(ctx, { profile, entry }) {
      const stopped = await syncAgent(ctx, profile, NAME);
      return (stopped ? 1 : 0) + (await clearStatuses(entry));
    },
  },
};
