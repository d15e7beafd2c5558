import { stringify } from 'yaml';

/**
 * The kubelet mounts a pod's ConfigMaps through a watch on each one, and the API server's node
 * authorizer lets it read a ConfigMap only once its own graph holds the pod bound to that node.
 * The graph is filled from the API server's informer, beside the kubelet's own watch of its pods:
 * when the kubelet's first list of a ConfigMap wins that race (2 of 5 fresh starts here), it is
 * refused ("no relationship found between node ... and this object"), the mount waits out the
 * kubelet's one-second cache sync and a 500 ms retry, and the pod starts 1.5-1.8 s late. CoreDNS's
 * pod is on `start`'s critical path.
 *
 * This Role lets the nodes (group system:nodes) read the named ConfigMaps of one namespace, and
 * nothing else: a ConfigMap that the cluster's own DaemonSets and Deployments mount, which the
 * node authorizer grants a node anyway as soon as such a pod is bound to it. The kubelet's list
 * and watch name the object (a metadata.name field selector), which RBAC matches against
 * resourceNames. kubeadm grants nodes its own ConfigMaps the same way (kubeadm:nodes-kubeadm-config).
 */
export function nodeConfigMapReaders(namespace: string, names: readonly string[]): object[] {
  const name = 'minilab:nodes-pod-configmaps';
  return [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name, namespace },
      rules: [
        {
          apiGroups: [''],
          resources: ['configmaps'],
          resourceNames: [...names],
          verbs: ['get', 'list', 'watch'],
        },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name, namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:nodes' }],
    },
  ];
}

/** Every namespace's CA bundle, which each pod's service-account volume projects. */
export const ROOT_CA_CONFIGMAP = 'kube-root-ca.crt';

/** The kube-system ConfigMaps that CoreDNS's and kube-proxy's pods mount. */
export const KUBE_SYSTEM_POD_CONFIGMAPS = ['coredns', 'kube-proxy', ROOT_CA_CONFIGMAP] as const;

/** The kube-system part, as a manifest `kubeadm init` applies beside its object phases. */
export function kubeSystemConfigMapReaders(): string {
  return nodeConfigMapReaders('kube-system', KUBE_SYSTEM_POD_CONFIGMAPS)
    .map((d) => stringify(d))
    .join('---\n');
}
