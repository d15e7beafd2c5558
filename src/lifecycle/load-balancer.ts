import { API_SERVER_PORT } from '../kube/kubeadm-config.js';
import { runInNode } from '../providers/run.js';
import type { Node } from '../providers/types.js';
import { writeFilesScript } from './kubeadm.js';

/**
 * The load balancer of a cluster with several control planes is HAProxy, from Debian's package in
 * the node image (so no other image is built or kept), run as the container's only process. It
 * forwards TCP on 6443 to every control plane's API server, found by the node's name through the
 * engine's DNS (so an engine handing out new addresses after a restart changes nothing), and
 * health-checks each once a second so a stopped control plane is out of rotation within seconds.
 */
const CONFIG = '/etc/haproxy/minilab.cfg';

/**
 * The container's command: HAProxy in master-worker mode once its configuration is written (the
 * load balancer is made before the control planes it names). A new configuration is loaded
 * without dropping connections by SIGUSR2 to the master (see configureLoadBalancer).
 */
export const LOAD_BALANCER_COMMAND = [
  '/bin/sh',
  '-c',
  `while [ ! -s ${CONFIG} ]; do sleep 0.1; done; exec haproxy -W -db -p /run/haproxy.pid -f ${CONFIG}`,
];

/** HAProxy's configuration: one TCP frontend, one backend server per control-plane node. */
export function haproxyConfig(controlPlanes: readonly string[]): string {
  const servers = controlPlanes.map((name) => `  server ${name} ${name}:${API_SERVER_PORT}`);
  return `# Written by minilab: the API servers of this cluster's control planes.
global
  maxconn 4000

# The engine's DNS on the cluster network: node names, re-resolved every second.
resolvers engine
  nameserver dns 127.0.0.11:53
  resolve_retries 2
  timeout resolve 1s
  timeout retry 1s
  hold valid 1s
  hold other 1s
  hold refused 1s
  hold nx 1s
  hold timeout 1s
  hold obsolete 1s

defaults
  mode tcp
  timeout connect 2s
  # Watches and log streams stay open for long: an idle hour ends them, as the API server would.
  timeout client 1h
  timeout server 1h
  option redispatch
  retries 2

frontend api
  bind *:${API_SERVER_PORT}
  default_backend control-planes

backend control-planes
  option httpchk GET /livez
  http-check expect status 200
  default-server check check-ssl verify none inter 1s fall 2 rise 1 resolvers engine init-addr last,libc,none
${servers.join('\n')}
`;
}

/**
 * Writes the configuration naming these control planes, checked by HAProxy before it replaces
 * the current one, and reloads a running HAProxy (a new one picks it up by itself).
 */
export async function configureLoadBalancer(lb: Node, controlPlanes: readonly string[]): Promise<void> {
  const next = `${CONFIG}.next`;
  await runInNode(
    lb,
    `${writeFilesScript({ [next]: haproxyConfig(controlPlanes) })}
haproxy -c -q -f ${next}
mv ${next} ${CONFIG}
if [ -s /run/haproxy.pid ] && kill -0 "$(cat /run/haproxy.pid)" 2>/dev/null; then kill -USR2 "$(cat /run/haproxy.pid)"; fi`,
    'configuring the load balancer',
  );
}
