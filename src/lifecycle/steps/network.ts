import { flannelManifest } from '../../kube/flannel.js';
import { flannelImage } from '../../image/components.js';
import { writeNetworkConfig } from '../kubeadm.js';
import { settingsOf } from '../plan.js';
import { API_SERVER_PORT } from '../../kube/kubeadm-config.js';
import { apiEndpointHost, componentsOf, controlPlaneOf, need, type Step } from './state.js';

/**
 * One node: the plain bridge, configured before the kubelet starts, so the node is Ready at once
 * (no network daemon to start). Measured against flannel on one node in the README.
 */
export const bridgeNetworkStep: Step = {
  title: 'Configuring the pod network (bridge CNI)',
  skip: (s) => s.nodes.length > 1,
  run: async (s) => {
    s.podCidr = await writeNetworkConfig(controlPlaneOf(s), settingsOf(s.req).podSubnet);
  },
};

/**
 * Several nodes: flannel (a DaemonSet on every node, pod subnets from the controller manager).
 * host-gw: the nodes share one Docker network, so a route per node's pod subnet is all it takes,
 * without encapsulation.
 */
export const flannelNetworkStep: Step = {
  title: 'Installing the pod network (flannel)',
  skip: (s) => s.nodes.length === 1,
  run: async (s) => {
    const image = flannelImage(await componentsOf(s));
    await s.ctx.kube.apply(
      need(s.entry, 'the admin credentials'),
      flannelManifest({
        image,
        podSubnet: settingsOf(s.req).podSubnet,
        backend: 'host-gw',
        apiServer: { host: apiEndpointHost(s), port: API_SERVER_PORT },
      }),
    );
  },
};
