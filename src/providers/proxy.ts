/**
 * The proxy settings a node gets, as kind passes them: HTTP_PROXY, HTTPS_PROXY and NO_PROXY from
 * the user's environment (each in upper case, else its lower-case spelling), written in both
 * spellings, since Go reads the upper-case one first and curl reads only the lower-case http_proxy.
 * NO_PROXY keeps the user's entries first and adds everything inside the cluster, so traffic
 * between nodes, to the API server (kubeadm's endpoint is a node's or the load balancer's name)
 * and to Services and pods never goes through the proxy. The node's entrypoint hands the
 * variables to every systemd service (containerd, the kubelet); commands run in a node inherit them.
 */
const VARIABLES = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'] as const;

/** Loopback, and the cluster's DNS names: Services' short and full names, pods' full names. */
const ALWAYS_DIRECT = ['localhost', '127.0.0.1', '.svc', '.svc.cluster', '.cluster.local'];

/** Whether an environment sends traffic through a proxy (NO_PROXY alone does not). */
export function proxied(env: Readonly<Record<string, string | undefined>>): boolean {
  return Boolean(env.HTTP_PROXY || env.http_proxy || env.HTTPS_PROXY || env.https_proxy);
}

/**
 * The proxy environment of a cluster's nodes, from the user's environment: nothing without a
 * proxy, else the settings with NO_PROXY listing the user's entries, loopback, `inside` (the
 * nodes' and load balancer's names, the Service and pod ranges) and the cluster's DNS domains.
 */
export function proxyEnv(env: NodeJS.ProcessEnv, inside: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of VARIABLES) {
    const value = env[key] || env[key.toLowerCase()];
    if (value) out[key] = out[key.toLowerCase()] = value;
  }
  return withNoProxy(out, [...ALWAYS_DIRECT, ...inside]);
}

/**
 * A node environment with more entries in NO_PROXY when it has a proxy (the network's subnets,
 * known once the network exists); each entry once, the earlier ones first.
 */
export function withNoProxy(env: Record<string, string>, entries: readonly string[]): Record<string, string> {
  if (!proxied(env)) return env;
  const seen = new Set<string>();
  const list: string[] = [];
  for (const entry of [...(env.NO_PROXY ?? '').split(','), ...entries]) {
    const e = entry.trim();
    if (e && !seen.has(e.toLowerCase())) {
      seen.add(e.toLowerCase());
      list.push(e);
    }
  }
  const noProxy = list.join(',');
  return { ...env, NO_PROXY: noProxy, no_proxy: noProxy };
}
