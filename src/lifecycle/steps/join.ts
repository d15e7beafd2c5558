import { API_SERVER_PORT, caCertHash } from '../../kube/kubeadm-config.js';
import type { Node } from '../../providers/types.js';
import { deleteBootstrapToken, kubeadmJoin } from '../kubeadm.js';
import { settingsOf } from '../plan.js';
import { joinUnpacking } from '../unpack.js';
import { startStorage } from './storage.js';
import {
  apiEndpointHost,
  componentsOf,
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
 * balancer's with several), checking it by the CA's key hash. Every node joins at once; the
 * token goes once all have joined.
 */
export const joinStep: Step = {
  title: joinTitle,
  skip: (s) => s.nodes.length === 1,
  run: async (s) => {
    const endpointHost = apiEndpointHost(s);
    const token = need(s.bootstrapToken, 'the bootstrap token');
    const hash = caCertHash(need(s.entry, 'the admin credentials').certificateAuthorityData);
    const workers = workersOf(s);
    const settings = settingsOf(s.req);
    // Beside each join, the node (booted already) unpacks its first pods' images.
    const join = (node: Node, controlPlane?: { certificateKey: string; taint: boolean }) =>
      joinUnpacking(node, componentsOf(s), () =>
        kubeadmJoin(node, {
          nodeIp: need(node.state.ip, `the IP of ${node.name}`),
          controlPlaneEndpoint: `${endpointHost}:${API_SERVER_PORT}`,
          bootstrapToken: token,
          caCertHash: hash,
          controlPlane,
          nodeLabels: nodeLabelsOf(s, node),
          serviceSubnet: settings.serviceSubnet,
          customize: settings.customize,
        }),
      );
    const controlPlanes = otherControlPlanesOf(s);
    const certificateKey = controlPlanes.length > 0 ? need(s.certificateKey, 'the certificate key') : '';
    // Control planes join together too, and their waits overlap. Their etcd members are still
    // added one at a time: etcd takes one learner at a time, so kubeadm retries adding the next
    // until the one before is promoted. (More learners at once would break the joins: a member
    // started with the list of members from before another was added does not start.)
    await Promise.all([
      ...controlPlanes.map((node) => join(node, { certificateKey, taint: workers.length > 0 })),
      ...workers.map((node) => join(node)),
    ]);
    // The workers are registered: the storage provisioner, which prefers one, goes on now and is
    // applied while the nodes turn Ready (the storage step, after the waits, reports how it went).
    if (workers.length > 0) startStorage(s, need(s.entry, 'the admin credentials'));
    await deleteBootstrapToken(controlPlaneOf(s), token);
  },
};
