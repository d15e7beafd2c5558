import { Labels } from '../labels.js';
import type { ProfileStore } from '../profile/store.js';
import type { Provider } from '../providers/types.js';

export interface ProfileSummary {
  name: string;
  status: 'running' | 'stopped' | 'partial' | 'missing';
  driver: string;
  nodes: { name: string; role: string; status: string }[];
  kubernetesVersion?: string;
  apiServer?: string;
}

/** Profiles known from the state directory and from labelled nodes, with state read from the provider. */
export async function listProfiles(provider: Provider, store: ProfileStore): Promise<ProfileSummary[]> {
  const [stored, all] = await Promise.all([store.list(), provider.listNodes()]);
  const names = new Set([...stored, ...all.map((n) => n.profile).filter(Boolean)]);
  const summaries: ProfileSummary[] = [];
  for (const name of [...names].sort()) {
    const config = await store.read(name).catch(() => undefined);
    const nodes = all.filter((n) => n.profile === name);
    const running = nodes.filter((n) => n.state.running).length;
    const status =
      nodes.length === 0
        ? 'missing'
        : running === nodes.length
          ? 'running'
          : running === 0
            ? 'stopped'
            : 'partial';
    let apiServer: string | undefined;
    try {
      const { host, port } = provider.apiEndpoint(nodes);
      apiServer = `https://${host}:${port}`;
    } catch {
      apiServer = undefined;
    }
    summaries.push({
      name,
      status,
      driver: provider.driver,
      nodes: nodes.map((n) => ({ name: n.name, role: n.role, status: n.state.status })),
      kubernetesVersion: config?.kubernetesVersion ?? nodes[0]?.state.labels[Labels.version],
      apiServer,
    });
  }
  return summaries;
}
