import * as k8s from '@kubernetes/client-node';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { ClusterClients } from './cluster.js';
import { HttpError } from './errors.js';
import type { PortForwardInfo } from './model.js';

export interface ForwardTarget {
  pod: string;
  port: number;
}

/**
 * The pod and container port behind a Service port: the first ready endpoint of the Service's
 * EndpointSlices, with the slice's port of the same name (which resolves named target ports).
 */
export async function readyEndpoint(
  clients: ClusterClients,
  namespace: string,
  service: string,
  port: number,
): Promise<ForwardTarget> {
  const svc = await clients.core.readNamespacedService({ name: service, namespace });
  const svcPort = svc.spec?.ports?.find((p) => p.port === port && (p.protocol ?? 'TCP') === 'TCP');
  if (!svcPort) throw new HttpError(404, `service ${namespace}/${service} has no TCP port ${port}`);
  const slices = await clients.discovery.listNamespacedEndpointSlice({
    namespace,
    labelSelector: `kubernetes.io/service-name=${service}`,
  });
  for (const slice of slices.items) {
    const slicePort = slice.ports?.find(
      (p) => (p.name ?? '') === (svcPort.name ?? '') && (p.protocol ?? 'TCP') === 'TCP',
    );
    const endpoint = slice.endpoints.find(
      (e) => e.conditions?.ready !== false && e.targetRef?.kind === 'Pod' && e.targetRef.name,
    );
    if (slicePort?.port && endpoint?.targetRef?.name)
      return { pod: endpoint.targetRef.name, port: slicePort.port };
  }
  throw new HttpError(409, `service ${namespace}/${service} has no ready pod behind port ${port}`);
}

interface Forward extends PortForwardInfo {
  server: Server;
  sockets: Set<Socket>;
}

/**
 * Loopback ports that forward to Services. Each new connection picks a ready pod afresh, so a forward
 * keeps working when the pods behind the Service are replaced.
 */
export class PortForwards {
  private readonly forwards = new Map<string, Forward>();

  constructor(private readonly clients: () => ClusterClients) {}

  list(): PortForwardInfo[] {
    return [...this.forwards.values()].map(({ id, namespace, service, port, url }) => ({
      id,
      namespace,
      service,
      port,
      url,
    }));
  }

  async open(namespace: string, service: string, port: number): Promise<PortForwardInfo> {
    const id = `${namespace}/${service}/${port}`;
    const existing = this.forwards.get(id);
    if (existing) return this.list().find((f) => f.id === id) as PortForwardInfo;
    // Fail now, with a message for the page, when nothing could answer.
    await readyEndpoint(this.clients(), namespace, service, port);
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      void this.connect(socket, namespace, service, port);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const localPort = (server.address() as AddressInfo).port;
    const forward: Forward = {
      id,
      namespace,
      service,
      port,
      url: `http://127.0.0.1:${localPort}/`,
      server,
      sockets,
    };
    this.forwards.set(id, forward);
    return this.list().find((f) => f.id === id) as PortForwardInfo;
  }

  private async connect(socket: Socket, namespace: string, service: string, port: number): Promise<void> {
    socket.on('error', () => socket.destroy());
    try {
      const clients = this.clients();
      const target = await readyEndpoint(clients, namespace, service, port);
      const ws = await new k8s.PortForward(clients.config).portForward(
        namespace,
        target.pod,
        [target.port],
        socket,
        null,
        socket,
      );
      if (typeof ws === 'function') return;
      ws.on('close', () => socket.end());
      ws.on('error', () => socket.destroy());
      socket.on('close', () => ws.close());
    } catch {
      socket.destroy();
    }
  }

  close(id: string): boolean {
    const forward = this.forwards.get(id);
    if (!forward) return false;
    this.forwards.delete(id);
    forward.server.close();
    for (const s of forward.sockets) s.destroy();
    return true;
  }

  closeAll(): void {
    for (const id of [...this.forwards.keys()]) this.close(id);
  }
}
