import { MinilabError } from '../../errors.js';
import { waitUntil } from '../../kube/wait.js';
import { newBootstrapToken, newCertificateKey } from '../../kube/kubeadm-config.js';
import { kubeadmInit } from '../kubeadm.js';
import { credentials } from '../nodes.js';
import { firstPodImages, unpackImages } from '../unpack.js';
import { startStorage } from './storage.js';
import { READY_TIMEOUT_MS, whileRunning } from './waits.js';
import { settingsOf } from '../plan.js';
import { componentsOf, controlPlaneOf, need, nodeLabelsOf, workersOf, type Step } from './state.js';

/**
 * kubeadm init in three parts (kubeadmInit). While the second writes the cluster's objects,
 * minilab waits for the API server's /livez from the host and, in a cluster of one node, starts
 * applying the default StorageClass, which then runs while the third part does. Beside the first
 * part the pause image is unpacked (before the kubelet's first sandbox), and the first pods' images
 * (CoreDNS's first) once the objects are written, while the API server bootstraps RBAC and the
 * CPUs have time to spare (firstPodImages).
 */
export const controlPlaneStep: Step = {
  title: 'Initializing the control plane (kubeadm init)',
  run: async (s) => {
    const node = controlPlaneOf(s);
    const { provider, kube } = s.ctx;
    s.bootstrapToken = newBootstrapToken();
    const lb = s.plan?.loadBalancer;
    if (lb) s.certificateKey = newCertificateKey();
    const firstImages = componentsOf(s)
      .then((c) => firstPodImages(c, { flannel: s.nodes.length > 1, provisioner: workersOf(s).length === 0 }))
      .catch(() => ({ sandbox: [], pods: [] }));
    // Never rejects; awaited before the step ends, so nothing runs on in a node being removed.
    const pauseUnpacked = firstImages.then((i) => unpackImages(node, i.sandbox));
    try {
      await kubeadmInit(
        node,
        {
          kubernetesVersion: s.req.kubernetesVersion,
          nodeIp: need(node.state.ip, 'the node IP'),
          cgroupVersion: need(s.preflight, 'the preflight result').info.cgroupVersion,
          conntrackWritable: need(s.conntrackWritable, 'whether conntrack is writable'),
          bootstrapToken: s.bootstrapToken,
          taintControlPlane: workersOf(s).length > 0,
          highAvailability: lb && {
            loadBalancer: lb.name,
            certificateKey: need(s.certificateKey, 'the key'),
          },
          nodeLabels: nodeLabelsOf(s, node),
          settings: settingsOf(s.req),
          afterObjectPhases: async () => {
            await pauseUnpacked;
            await unpackImages(node, (await firstImages).pods);
          },
        },
        async () => {
          const entry = await credentials(provider, { node, nodes: s.nodes });
          s.entry = entry;
          // Awaited beside kubeadm's object phases: should those fail, the start's failure ends it.
          await waitUntil(
            'the API server',
            READY_TIMEOUT_MS,
            () => {
              if (s.cancelled) throw new MinilabError('clusterFailed', 'the start failed');
              return whileRunning(node, () => kube.health(entry, '/livez'));
            },
            { intervalMs: 100 },
          );
          // With workers the provisioner goes on once they have joined (see the storage step).
          if (workersOf(s).length === 0) startStorage(s, entry);
        },
      );
    } finally {
      await pauseUnpacked;
    }
  },
};
