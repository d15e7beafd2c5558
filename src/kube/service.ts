import * as k8s from '@kubernetes/client-node';
import { MinilabError } from '../errors.js';

export interface ServiceTarget {
  namespace: string;
  service: string;
  servicePort: number;
  pod: string;
  podPort: number;
}

/**
 * A ready endpoint of a Service: the pod and the port behind the chosen service port, read from
 * the Service's EndpointSlices; the first one found, or with `spread` one chosen at random (a
 * load balancer's connections go to every ready pod).
 */
export async function serviceTarget(
  config: k8s.KubeConfig,
  namespace: string,
  name: string,
  port?: number,
  spread = false,
): Promise<ServiceTarget> {
  const core = config.makeApiClient(k8s.CoreV1Api);
  let svc: k8s.V1Service;
  try {
    svc = await core.readNamespacedService({ name, namespace });
  } catch (err) {
    if ((err as { code?: number }).code === 404) {
      throw new MinilabError('notFound', `service "${name}" not found in namespace "${namespace}"`, {
        hint: 'list services with: minilab kubectl -- get services -A',
      });
    }
    throw err;
  }
  const ports = svc.spec?.ports ?? [];
  const chosen = port === undefined ? ports[0] : ports.find((p) => p.port === port);
  if (!chosen) {
    throw new MinilabError(
      'notFound',
      `service "${name}" has ${port === undefined ? 'no ports' : `no port ${port}`}`,
      {
        hint: `its ports: ${ports.map((p) => p.port).join(', ') || 'none'}`,
      },
    );
  }
  const discovery = config.makeApiClient(k8s.DiscoveryV1Api);
  const slices = await discovery.listNamespacedEndpointSlice({
    namespace,
    labelSelector: `kubernetes.io/service-name=${name}`,
  });
  const found: ServiceTarget[] = [];
  for (const slice of slices.items) {
    const slicePort = (slice.ports ?? []).find((p) => (p.name ?? '') === (chosen.name ?? ''));
    if (!slicePort?.port) continue;
    for (const e of slice.endpoints ?? []) {
      if (!e.conditions?.ready || e.targetRef?.kind !== 'Pod' || !e.targetRef.name) continue;
      found.push({
        namespace,
        service: name,
        servicePort: chosen.port,
        pod: e.targetRef.name,
        podPort: slicePort.port,
      });
      if (!spread) return found[0] as ServiceTarget;
    }
  }
  const pick = found[Math.floor(Math.random() * found.length)];
  if (pick) return pick;
  throw new MinilabError('notFound', `service "${name}" has no ready endpoints`, {
    hint: `check its pods: minilab kubectl -- get pods -n ${namespace} -o wide (selector: ${JSON.stringify(svc.spec?.selector ?? {})})`,
  });
}
