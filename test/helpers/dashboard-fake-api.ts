import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import * as k8s from '@kubernetes/client-node';
import type { ClusterClients } from '../../src/dashboard/cluster.js';
import type { ServerDeps } from '../../src/dashboard/server.js';

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

/** A live cluster that is connected through `clients` and shows no rows. */
export const connectedTo = (clients: ClusterClients): ServerDeps['cluster'] => ({
  state: { state: 'connected' },
  snapshot: () => [],
  subscribe: () => () => undefined,
  clients: () => clients,
});
