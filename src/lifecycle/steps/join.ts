import { API_SERVER_PORT, caCertHash } from '../../kube/kubeadm-config.js';
import { deleteBootstrapToken, kubeadmJoin } from '../kubeadm.js';
import { controlPlaneOf, need, workersOf, type Step } from './state.js';

/**
 * Workers join in parallel, finding the control plane by its name on the cluster's network and
 * checking it by the CA's key hash; the token goes once they have joined.
 */
export const joinStep: Step = {
  title: (s) => `Joining ${workersOf(s).length === 1 ? 'the worker' : `${workersOf(s).length} workers`}`,
  skip: (s) => workersOf(s).length === 0,
  run: async (s) => {
    const endpoint = `${controlPlaneOf(s).name}:${API_SERVER_PORT}`;
    const token = need(s.bootstrapToken, 'the bootstrap token');
    const hash = caCertHash(need(s.entry, 'the admin credentials').certificateAuthorityData);
    await Promise.all(
      workersOf(s).map((node) =>
        kubeadmJoin(node, {
          nodeIp: need(node.state.ip, `the IP of ${node.name}`),
          controlPlaneEndpoint: endpoint,
          bootstrapToken: token,
          caCertHash: hash,
        }),
      ),
    );
    await deleteBootstrapToken(controlPlaneOf(s), token);
  },
};
