import * as k8s from '@kubernetes/client-node';
import { listenForward, type LoopbackForward } from '../kube/port-forward.js';
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
  local: LoopbackForward;
}

const info = ({ id, namespace, service, port, url }: Forward): PortForwardInfo => ({
  id,
  namespace,
  service,
  port,
  url,
});

/**
 * Loopback ports that forward to Services. Each new connection picks a ready pod afresh, so a forward
 * keeps working when the pods behind the Service are replaced.
 */
export class PortForwards {
  private readonly forwards = new Map<string, Forward>();
  /** Opens under way: a second open of the same forward joins the first (two would leave a listener behind). */
  private readonly opening = new Map<string, Promise<PortForwardInfo>>();
  private closed = false;

  constructor(private readonly clients: () => ClusterClients) {}

  list(): PortForwardInfo[] {
    return [...this.forwards.values()].map(info);
  }

  open(namespace: string, service: string, port: number): Promise<PortForwardInfo> {
    const id = `${namespace}/${service}/${port}`;
    const existing = this.forwards.get(id);
    if (existing) return Promise.resolve(info(existing));
    let opened = this.opening.get(id);
    if (!opened) {
      opened = this.listen(id, namespace, service, port).finally(() => this.opening.delete(id));
      this.opening.set(id, opened);
    }
    return opened;
  }

  private async listen(
    id: string,
    namespace: string,
    service: string,
    port: number,
  ): Promise<PortForwardInfo> {
    // Fail now, with a message for the page, when nothing could answer.
    await readyEndpoint(this.clients(), namespace, service, port);
    const local = await listenForward(async () => {
      const clients = this.clients();
      const target = await readyEndpoint(clients, namespace, service, port);
      return { api: new k8s.PortForward(clients.config), namespace, pod: target.pod, port: target.port };
    });
    if (this.closed) {
      local.close();
      throw new HttpError(503, 'the dashboard is shutting down');
    }
    const forward: Forward = { id, namespace, service, port, url: `${local.url}/`, local };
    this.forwards.set(id, forward);
    return info(forward);
  }

  close(id: string): boolean {
    const forward = this.forwards.get(id);
    if (!forward) return false;
    this.forwards.delete(id);
    forward.local.close();
    return true;
  }

  closeAll(): void {
    this.closed = true;
    for (const id of [...this.forwards.keys()]) this.close(id);
  }
}
