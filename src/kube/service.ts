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
 * the Service's EndpointSlices.
 */
export async function serviceTarget(
  config: k8s.KubeConfig,
  namespace: string,
  name: string,
  port?: number,
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
  for (const slice of slices.items) {
    const slicePort = (slice.ports ?? []).find((p) => (p.name ?? '') === (chosen.name ?? ''));
    const ready = (slice.endpoints ?? []).find((e) => e.conditions?.ready && e.targetRef?.kind === 'Pod');
    if (slicePort?.port && ready?.targetRef?.name) {
      return {
        namespace,
        service: name,
        servicePort: chosen.port,
        pod: ready.targetRef.name,
        podPort: slicePort.port,
      };
    }
  }
  throw new MinilabError('notFound', `service "${name}" has no ready endpoints`, {
    hint: `check its pods: minilab kubectl -- get pods -n ${namespace} -o wide (selector: ${JSON.stringify(svc.spec?.selector ?? {})})`,
  });
}
