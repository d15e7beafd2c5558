import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { connect, type Socket } from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { PortForwards } from '../../src/dashboard/port-forward.js';
import type { ClusterClients } from '../../src/dashboard/cluster.js';
import { listenForward, type PodPort } from '../../src/kube/port-forward.js';

/**
 * A pod's port behind a fake API server portforward websocket: it speaks the channel protocol
 * client-node reads (the port number first on each channel, then data on channel 0) and echoes
 * what it is sent.
 */
class FakePodSocket extends EventEmitter {
  protocol = 'v4.channel.k8s.io';
  readyState = 1;
  constructor(
    readonly path: string,
    private readonly deliver: (channel: number, data: Buffer) => boolean,
  ) {
    super();
    deliver(0, Buffer.from([0x90, 0x1f]));
    deliver(1, Buffer.from([0x90, 0x1f]));
  }
  send(data: Buffer): void {
    if (this.readyState === 1) this.deliver(0, data.subarray(1));
  }
  close(): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.emit('close');
  }
  /** The API server dropping the connection. */
  fail(): void {
    this.emit('error', new Error('connection reset by the API server'));
    this.close();
  }
}

function fakeApi() {
  const sockets: FakePodSocket[] = [];
  const handler = {
    connect: async (
      path: string,
      _text: unknown,
      binary: ((channel: number, data: Buffer) => boolean) | null,
    ): Promise<FakePodSocket> => {
      const ws = new FakePodSocket(path, (c, d) => binary?.(c, d) ?? true);
      sockets.push(ws);
      return ws;
    },
  };
  const api = new k8s.PortForward(new k8s.KubeConfig(), true, handler as never);
  const route = async (): Promise<PodPort> => ({ api, namespace: 'default', pod: 'echo-1', port: 8080 });
  return { sockets, route };
}

const echoOnce = async (url: string, text: string): Promise<{ socket: Socket; reply: string }> => {
  const socket = connect(Number(new URL(url).port), '127.0.0.1');
  await once(socket, 'connect');
  socket.write(text);
  const [data] = (await once(socket, 'data')) as [Buffer];
  return { socket, reply: data.toString() };
};

/** The forwarder still answers a new client. */
const assertServes = async (url: string) => {
  const next = await echoOnce(url, 'next');
  assert.equal(next.reply, 'next');
  next.socket.destroy();
};

const until = async (what: string, check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), what);
};

test('a client resetting its connection (a closed browser tab) ends that connection only; the next client is served', async () => {
  const { sockets, route } = fakeApi();
  const forward = await listenForward(route);
  try {
    const first = await echoOnce(forward.url, 'first');
    assert.equal(first.reply, 'first');
    assert.equal(sockets[0]?.path, '/api/v1/namespaces/default/pods/echo-1/portforward?ports=8080');
    first.socket.resetAndDestroy();
    await until('the reset connection closed its websocket', () => sockets[0]?.readyState === 3);

    await assertServes(forward.url);
  } finally {
    forward.close();
  }
});

test('an upstream failing (websocket error, no ready pod) ends that connection only', async () => {
  const { sockets, route } = fakeApi();
  let noPod = true;
  const forward = await listenForward(async () => {
    if (noPod) throw new Error('no ready endpoints');
    return route();
  });
  try {
    const refused = connect(Number(new URL(forward.url).port), '127.0.0.1');
    refused.on('error', () => undefined);
    await once(refused, 'close');

    noPod = false;
    const first = await echoOnce(forward.url, 'first');
    const ended = once(first.socket, 'end');
    sockets[0]?.fail();
    await ended;

    await assertServes(forward.url);
  } finally {
    forward.close();
  }
});

test('dashboard: two opens of one port-forward at once make one listener, closed with the dashboard', async () => {
  let lookups = 0;
  const clients = {
    config: new k8s.KubeConfig(),
    core: {
      readNamespacedService: async () => {
        lookups++;
        await new Promise((r) => setTimeout(r, 20));
        return { spec: { ports: [{ port: 80, name: 'http' }] } };
      },
    },
    discovery: {
      listNamespacedEndpointSlice: async () => ({
        items: [
          {
            ports: [{ name: 'http', port: 8080 }],
            endpoints: [{ conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'echo-1' } }],
          },
        ],
      }),
    },
  } as unknown as ClusterClients;
  const forwards = new PortForwards(() => clients);
  const [a, b] = await Promise.all([
    forwards.open('default', 'echo', 80),
    forwards.open('default', 'echo', 80),
  ]);
  assert.equal(a.url, b.url);
  assert.equal(lookups, 1, 'the second open joined the first');
  assert.deepEqual(
    forwards.list().map((f) => f.id),
    ['default/echo/80'],
  );
  forwards.closeAll();
  const probe = connect(Number(new URL(a.url).port), '127.0.0.1');
  const [err] = (await once(probe, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED');
});
