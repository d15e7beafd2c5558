import { Labels } from '../labels.js';
import type { ProfileStore } from '../profile/store.js';
import type { Provider } from '../providers/types.js';

export interface ProfileSummary {
  name: string;
  /** unreachable: the engine of its driver does not answer (its nodes may well exist). */
  status: 'running' | 'stopped' | 'partial' | 'missing' | 'unreachable';
  driver: string;
  nodes: { name: string; role: string; status: string }[];
  kubernetesVersion?: string;
  apiServer?: string;
}

/**
 * Profiles known from the state directory and from labelled nodes, with state read from the
 * providers given (every driver's whose engine answers): a profile's own driver is the one its
 * state records (docker before podman existed); one found only by its nodes is that engine's.
 */
export async function listProfiles(providers: Provider[], store: ProfileStore): Promise<ProfileSummary[]> {
  const [stored, listed] = await Promise.all([
    store.list(),
    Promise.all(providers.map(async (p) => ({ provider: p, nodes: await p.listNodes() }))),
  ]);
  const names = new Set([...stored, ...listed.flatMap((l) => l.nodes.map((n) => n.profile)).filter(Boolean)]);
  const summaries: ProfileSummary[] = [];
  for (const name of [...names].sort()) {
    const config = await store.read(name).catch(() => undefined);
    const recorded = config ? (config.driver ?? 'docker') : undefined;
    const own =
      listed.find((l) => l.provider.driver === recorded) ??
      listed.find((l) => l.nodes.some((n) => n.profile === name));
    const driver = recorded ?? own?.provider.driver ?? 'docker';
    const nodes = own?.provider.driver === driver ? own.nodes.filter((n) => n.profile === name) : [];
    const running = nodes.filter((n) => n.state.running).length;
    const status =
      !own || own.provider.driver !== driver
        ? 'unreachable'
        : nodes.length === 0
          ? 'missing'
          : running === nodes.length
            ? 'running'
            : running === 0
              ? 'stopped'
              : 'partial';
    let apiServer: string | undefined;
    try {
      if (!own) throw new Error('no engine answers for this driver');
      const { host, port } = own.provider.apiEndpoint(nodes);
      apiServer = `https://${host}:${port}`;
    } catch {
      apiServer = undefined;
    }
    summaries.push({
      name,
      status,
      driver,
      nodes: nodes.map((n) => ({ name: n.name, role: n.role, status: n.state.status })),
      kubernetesVersion: config?.kubernetesVersion ?? nodes[0]?.state.labels[Labels.version],
      apiServer,
    });
  }
  return summaries;
}
