import { API_SERVER_PORT, caCertHash } from '../../kube/kubeadm-config.js';
import type { Node } from '../../providers/types.js';
import { deleteBootstrapToken, kubeadmJoin } from '../kubeadm.js';
import { settingsOf } from '../plan.js';
import {
  controlPlaneOf,
  need,
  nodeLabelsOf,
  otherControlPlanesOf,
  workersOf,
  type StartState,
  type Step,
} from './state.js';

const plural = (n: number, one: string, many: string) => (n === 1 ? `the ${one}` : `${n} ${many}`);

function joinTitle(s: StartState): string {
  const cps = otherControlPlanesOf(s).length;
  const workers = workersOf(s).length;
  const parts = [
    ...(cps > 0 ? [plural(cps, 'second control plane', 'control planes')] : []),
    ...(workers > 0 ? [plural(workers, 'worker', 'workers')] : []),
  ];
  return `Joining ${parts.join(' and ')}`;
}

/**
 * Nodes join by the cluster's stable API endpoint name (the control plane's, or the load
 * balancer's with several), checking it by the CA's key hash. Control planes join one at a time
 * (each adds an etcd member, which needs the others healthy), while the workers join in parallel
 * alongside them; the token goes once all have joined.
 */
export const joinStep: Step = {
  title: joinTitle,
  skip: (s) => s.nodes.length === 1,
  run: async (s) => {
    const endpointHost = s.plan?.loadBalancer?.name ?? controlPlaneOf(s).name;
    const token = need(s.bootstrapToken, 'the bootstrap token');
    const hash = caCertHash(need(s.entry, 'the admin credentials').certificateAuthorityData);
    const workers = workersOf(s);
    const settings = settingsOf(s.req);
    const join = (node: Node, controlPlane?: { certificateKey: string; taint: boolean }) =>
      kubeadmJoin(node, {
        nodeIp: need(node.state.ip, `the IP of ${node.name}`),
        controlPlaneEndpoint: `${endpointHost}:${API_SERVER_PORT}`,
        bootstrapToken: token,
        caCertHash: hash,
        controlPlane,
        nodeLabels: nodeLabelsOf(s, node),
        serviceSubnet: settings.serviceSubnet,
        customize: settings.customize,
      });
    const controlPlanes = async () => {
      for (const node of otherControlPlanesOf(s)) {
        await join(node, {
          certificateKey: need(s.certificateKey, 'the certificate key'),
          taint: workers.length > 0,
        });
      }
    };
    await Promise.all([controlPlanes(), ...workers.map((node) => join(node))]);
    await deleteBootstrapToken(controlPlaneOf(s), token);
  },
};
