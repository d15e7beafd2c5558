import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { kubeClients } from '../../src/kube/client.js';

/** A server that accepts connections and never answers: the fault a request deadline is for. */
async function silentServer(): Promise<{
  url: string;
  connections: () => number;
  close: () => Promise<void>;
}> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    connections: () => sockets.length,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// The test's own limit only turns a regression (a request that never ends) into a failure, not a hang.
test(
  'API requests to a server that never answers are aborted at their deadline (typed and object APIs)',
  { timeout: 60_000 },
  async () => {
    const server = await silentServer();
    try {
      const entry = {
        name: 'silent',
        server: server.url,
        certificateAuthorityData: '',
        clientCertificateData: '',
        clientKeyData: '',
      };
      const { config, core } = kubeClients(entry, 300);
      await assert.rejects(core.readNode({ name: 'n' }), (err: unknown) =>
        /abort|timeout/i.test(String(err)),
      );
      const objects = k8s.KubernetesObjectApi.makeApiClient(config);
      await assert.rejects(
        objects.read({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }),
        (err: unknown) => /abort|timeout/i.test(String(err)),
      );
      assert.ok(server.connections() >= 2, 'both requests reached the server and were left unanswered');
    } finally {
      await server.close();
    }
  },
);
