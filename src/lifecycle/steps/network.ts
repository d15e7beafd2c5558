import { writeNetworkConfig } from '../kubeadm.js';
import { controlPlaneOf, type Step } from './state.js';

/** The pod network's CNI config, in place before the kubelet starts so the node is Ready at once. */
export const networkStep: Step = {
  title: 'Configuring the pod network (bridge CNI)',
  run: async (s) => {
    s.podCidr = await writeNetworkConfig(controlPlaneOf(s));
  },
};
