import { API_SERVER_PORT } from '../../kube/kubeadm-config.js';
import { kubeadmJoin } from '../kubeadm.js';
import { controlPlaneOf, need, workersOf, type Step } from './state.js';

/** Workers join in parallel, finding the control plane by its name on the cluster's network. */
export const joinStep: Step = {
  title: (s) => `Joining ${workersOf(s).length === 1 ? 'the worker' : `${workersOf(s).length} workers`}`,
  skip: (s) => workersOf(s).length === 0,
  run: async (s) => {
    const endpoint = `${controlPlaneOf(s).name}:${API_SERVER_PORT}`;
    const token = need(s.bootstrapToken, 'the bootstrap token');
    await Promise.all(
      workersOf(s).map((node) =>
        kubeadmJoin(node, {
          nodeIp: need(node.state.ip, `the IP of ${node.name}`),
          controlPlaneEndpoint: endpoint,
          bootstrapToken: token,
        }),
      ),
    );
  },
};
