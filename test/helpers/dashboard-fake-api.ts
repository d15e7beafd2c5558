import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import * as k8s from '@kubernetes/client-node';
import type { ClusterClients } from '../../src/dashboard/cluster.js';
import type { ServerDeps } from '../../src/dashboard/server.js';
import { ProfileSessions, type ProfileView } from '../../src/dashboard/profiles.js';
import type { ProfileEntry } from '../../src/dashboard/model.js';

/** The dashboard's clients of a fake API server listening on plain HTTP (TLS verification off). */
export function fakeApiClients(api: Server, token = 'unused'): ClusterClients {
  const config = new k8s.KubeConfig();
  config.loadFromOptions({
    clusters: [
      { name: 'dev', server: `http://127.0.0.1:${(api.address() as AddressInfo).port}`, skipTLSVerify: true },
    ],
    users: [{ name: 'dev', token }],
    contexts: [{ name: 'dev', cluster: 'dev', user: 'dev' }],
    currentContext: 'dev',
  });
  return {
    config,
    core: config.makeApiClient(k8s.CoreV1Api),
    apps: config.makeApiClient(k8s.AppsV1Api),
    discovery: config.makeApiClient(k8s.DiscoveryV1Api),
    objects: k8s.KubernetesObjectApi.makeApiClient(config),
  };
}

type Cluster = ProfileView['cluster'];

/**
 * The profiles a test server serves: "dev" (the initial one) shows `cluster`, with `usage` when
 * given; `others` are listed and served too (none by default).
 */
export function profilesOf(
  cluster: Cluster,
  others: Record<string, Cluster> = {},
  usage?: ProfileView['usage'],
): ServerDeps['profiles'] {
  const clusters: Record<string, Cluster> = { dev: cluster, ...others };
  return new ProfileSessions({
    initial: 'dev',
    list: async () =>
      Object.keys(clusters).map((name): ProfileEntry => ({ name, status: 'running', driver: 'docker' })),
    open: (name) => ({
      cluster: clusters[name] as Cluster,
      usage: name === 'dev' ? usage : undefined,
      info: async () => ({ profile: name, apiServer: `https://${name}.invalid:6443` }),
    }),
  });
}

/** A live cluster that is connected through `clients` and shows no rows. */
export const connectedTo = (clients: ClusterClients): Cluster => ({
  state: { state: 'connected' },
  snapshot: () => [],
  subscribe: () => () => undefined,
  clients: () => clients,
});
