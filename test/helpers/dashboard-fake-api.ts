import type { AddressInfo } from 'node:net';
import { request, type Server } from 'node:http';
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

/** One server-sent event as the page reads it. */
export interface SentEvent {
  event: string;
  data: unknown;
}

/**
 * Reads the server-sent events of a dashboard API path (with the token) until `enough` says so, or
 * the server ends the stream; then closes the connection. Resolves with the events and the status.
 */
export function readEvents(
  port: number,
  token: string,
  path: string,
  enough: (events: SentEvent[]) => boolean,
  headers: Record<string, string> = {},
): Promise<{ status: number; events: SentEvent[] }> {
  return new Promise((resolve, reject) => {
    const events: SentEvent[] = [];
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        headers: { host: `127.0.0.1:${port}`, authorization: `Bearer ${token}`, ...headers },
      },
      (res) => {
        let buffer = '';
        const done = () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, events });
        };
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) });
            if (enough(events)) return done();
          }
        });
        res.on('end', done);
      },
    );
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.end();
  });
}
