/**
 * Kubernetes objects the add-ons' manifests share the shape of (as plain objects for `yaml`).
 */
import { SHIM_GROUP } from '../kube/kubeadm-config.js';

/**
 * A Deployment of an add-on: its pods labelled as its selector, on Linux nodes, no pod down while
 * a new one starts (an update keeps the add-on working), in the shim of the cluster's own pods.
 */
export function addonDeployment(
  metadata: object,
  labels: Record<string, string>,
  pod: { serviceAccountName: string; containers: object[] } & Record<string, unknown>,
): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata,
    spec: {
      selector: { matchLabels: labels },
      strategy: { rollingUpdate: { maxUnavailable: 0 } },
      template: {
        metadata: { labels, annotations: SHIM_GROUP },
        spec: { nodeSelector: { 'kubernetes.io/os': 'linux' }, ...pod },
      },
    },
  };
}

/** A container's security context as the restricted Pod Security Standard asks, run as `user`. */
export const restrictedContext = (user: number) => ({
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  runAsUser: user,
  allowPrivilegeEscalation: false,
  seccompProfile: { type: 'RuntimeDefault' },
  capabilities: { drop: ['ALL'] },
});
