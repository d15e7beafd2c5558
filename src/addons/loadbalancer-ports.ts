import type * as k8s from '@kubernetes/client-node';

/**
 * What the loadbalancer add-on serves, worked out from the Services alone (no sockets): each TCP
 * port of each Service of type LoadBalancer gets the same port on the host's 127.0.0.1, the oldest
 * Service first where two ask for one port; what cannot be served says why, as a Service's
 * `status.loadBalancer.ingress[].ports[].error` states it (a CamelCase reason).
 */

/** A Service's name, as the agent keys it: NAMESPACE/NAME. */
export const serviceKey = (svc: k8s.V1Service) =>
  `${svc.metadata?.namespace ?? ''}/${svc.metadata?.name ?? ''}`;

/** One port of one Service: served on the host's 127.0.0.1 at `port`, or not, with a reason. */
export interface PortClaim {
  service: string;
  port: number;
  protocol: string;
  /** Why it is not served (PortConflict, Unsupported), or undefined when it may be. */
  error?: string;
  /** The same in a sentence, for the Service's events. */
  message?: string;
}

/** The address the Services get, and how: proxied (kube-proxy must not take 127.0.0.1 in the nodes). */
export const INGRESS_IP = '127.0.0.1';

/**
 * The add-ons the agent serves Services for, and the loadBalancerClass of those Services: the
 * loadbalancer add-on's are every Service of type LoadBalancer that names no class, the ingress
 * add-on's is its own controller's Service (so that disabling one leaves the other served).
 */
export const AGENT_CLASSES = { loadbalancer: '', ingress: 'minilab.io/ingress' } as const;
export type AgentUser = keyof typeof AGENT_CLASSES;
export const AGENT_USERS = Object.keys(AGENT_CLASSES) as AgentUser[];

/** Whether the agent serving these add-ons serves this Service: type LoadBalancer, of their classes. */
export function servedByAgent(svc: k8s.V1Service, users: readonly AgentUser[] = ['loadbalancer']): boolean {
  const classes: string[] = users.map((u) => AGENT_CLASSES[u]);
  return svc.spec?.type === 'LoadBalancer' && classes.includes(svc.spec.loadBalancerClass ?? '');
}

/** Every port claim of the Services, oldest Service first (a tie by name), in a stable order. */
export function claimPorts(
  services: readonly k8s.V1Service[],
  users: readonly AgentUser[] = ['loadbalancer'],
): PortClaim[] {
  const created = (s: k8s.V1Service) => new Date(s.metadata?.creationTimestamp ?? 0).getTime();
  const ordered = services
    .filter((s) => servedByAgent(s, users))
    .sort((a, b) => created(a) - created(b) || serviceKey(a).localeCompare(serviceKey(b)));
  const owner = new Map<number, string>();
  const claims: PortClaim[] = [];
  for (const svc of ordered) {
    const key = serviceKey(svc);
    for (const p of svc.spec?.ports ?? []) {
      const protocol = p.protocol ?? 'TCP';
      const claim: PortClaim = { service: key, port: p.port, protocol };
      const holder = owner.get(p.port);
      if (protocol !== 'TCP') {
        claim.error = 'Unsupported';
        claim.message = `${protocol} port ${p.port} is not served: minilab's load balancer forwards TCP only`;
      } else if (holder && holder !== key) {
        claim.error = 'PortConflict';
        claim.message = `port ${p.port} on ${INGRESS_IP} is served for Service ${holder}, made before this one`;
      } else {
        owner.set(p.port, key);
      }
      claims.push(claim);
    }
  }
  return claims;
}

/**
 * The status a Service should have: 127.0.0.1 (proxied) with each port's error, once at least one
 * of its ports is served; none while none is (EXTERNAL-IP stays pending, events say why).
 */
export function desiredStatus(claims: readonly PortClaim[]): k8s.V1LoadBalancerStatus {
  if (!claims.some((c) => !c.error)) return {};
  return {
    ingress: [
      {
        ip: INGRESS_IP,
        ipMode: 'Proxy',
        ports: claims.map((c) => ({
          port: c.port,
          protocol: c.protocol,
          ...(c.error ? { error: c.error } : {}),
        })),
      },
    ],
  };
}

/** Whether a status is one the agent wrote (what disable clears). */
export function writtenByAgent(status: k8s.V1LoadBalancerStatus | undefined): boolean {
  const ingress = status?.ingress ?? [];
  return ingress.length === 1 && ingress[0]?.ip === INGRESS_IP && ingress[0].ipMode === 'Proxy';
}
