import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { KUBE_PROXY_PATCH, SHIM_GROUP } from './kubeadm-config.js';
import { nodeConfigMapReaders, ROOT_CA_CONFIGMAP } from './node-configmaps.js';

/**
 * The default StorageClass "standard": rancher's local-path provisioner (as kind ships), with
 * volumes under /var/local-path-provisioner on the node's /var volume, bound when a pod is scheduled.
 * The nodes may read its ConfigMaps before its pod is bound to them (nodeConfigMapReaders).
 */
export function storageManifest(images: { provisioner: string; helper: string }): string {
  const ns = 'local-path-storage';
  const sa = 'local-path-provisioner-service-account';
  const docs: object[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: ns } },
    // Before the Deployment, so that its pod's first mount is not refused (see nodeConfigMapReaders).
    ...nodeConfigMapReaders(ns, ['local-path-config', ROOT_CA_CONFIGMAP]),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'local-path-provisioner-role', namespace: ns },
      rules: [
        {
          apiGroups: [''],
          resources: ['pods'],
          verbs: ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'],
        },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'local-path-provisioner-role' },
      rules: [
        {
          apiGroups: [''],
          resources: ['nodes', 'persistentvolumeclaims', 'configmaps', 'pods', 'pods/log'],
          verbs: ['get', 'list', 'watch'],
        },
        {
          apiGroups: [''],
          resources: ['persistentvolumes'],
          verbs: ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'],
        },
        { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
        { apiGroups: ['storage.k8s.io'], resources: ['storageclasses'], verbs: ['get', 'list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'local-path-provisioner-bind', namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'local-path-provisioner-role' },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'local-path-provisioner-bind' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'local-path-provisioner-role',
      },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'local-path-provisioner', namespace: ns },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'local-path-provisioner' } },
        template: {
          metadata: { labels: { app: 'local-path-provisioner' }, annotations: SHIM_GROUP },
          spec: {
            serviceAccountName: sa,
            priorityClassName: 'system-node-critical',
            tolerations: [{ operator: 'Exists' }],
            // A worker where there is one: the control plane's memory is the cluster's scarcest.
            affinity: {
              nodeAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [
                  {
                    weight: 100,
                    preference: {
                      matchExpressions: [
                        { key: 'node-role.kubernetes.io/control-plane', operator: 'DoesNotExist' },
                      ],
                    },
                  },
                ],
              },
            },
            containers: [
              {
                name: 'local-path-provisioner',
                image: images.provisioner,
                imagePullPolicy: 'IfNotPresent',
                command: [
                  'local-path-provisioner',
                  'start',
                  '--config',
                  '/etc/config/config.json',
                  '--helper-image',
                  images.helper,
                ],
                volumeMounts: [{ name: 'config-volume', mountPath: '/etc/config/' }],
                env: [
                  { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                  { name: 'CONFIG_MOUNT_PATH', value: '/etc/config/' },
                ],
              },
            ],
            volumes: [{ name: 'config-volume', configMap: { name: 'local-path-config' } }],
          },
        },
      },
    },
    {
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: 'standard', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
      provisioner: 'rancher.io/local-path',
      volumeBindingMode: 'WaitForFirstConsumer',
      reclaimPolicy: 'Delete',
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'local-path-config', namespace: ns },
      data: {
        'config.json': JSON.stringify({
          nodePathMap: [
            { node: 'DEFAULT_PATH_FOR_NON_LISTED_NODES', paths: ['/var/local-path-provisioner'] },
          ],
        }),
        setup: '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
        teardown: '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
        'helperPod.yaml': stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'helper-pod' },
          spec: {
            priorityClassName: 'system-node-critical',
            tolerations: [{ operator: 'Exists' }],
            containers: [{ name: 'helper-pod', image: images.helper, imagePullPolicy: 'IfNotPresent' }],
          },
        }),
      },
    },
  ];
  return docs.map((d) => stringify(d)).join('---\n');
}

/** Applies a multi-document manifest with server-side apply (idempotent: a second apply changes nothing). */
export async function applyManifest(config: k8s.KubeConfig, manifest: string): Promise<void> {
  const api = k8s.KubernetesObjectApi.makeApiClient(config);
  for (const doc of parseAllDocuments(manifest)) {
    const spec = doc.toJS() as k8s.KubernetesObject;
    await api.patch(spec, undefined, undefined, 'minilab', true, k8s.PatchStrategy.ServerSideApply);
  }
}

/** Deletes a manifest's objects, last first (an object already gone is fine); how many there were. */
export async function deleteManifest(config: k8s.KubeConfig, manifest: string): Promise<number> {
  const api = k8s.KubernetesObjectApi.makeApiClient(config);
  const specs = parseAllDocuments(manifest).map((d) => d.toJS() as k8s.KubernetesObject);
  let deleted = 0;
  for (const spec of specs.reverse()) {
    try {
      await api.delete(spec);
      deleted++;
    } catch (err) {
      if ((err as { code?: unknown }).code !== 404) throw err;
    }
  }
  return deleted;
}

/**
 * kube-proxy's GOGC for kubeadm releases that do not read a kube-proxy patch (before v1.37):
 * the DaemonSet is patched after kubeadm made it, which rolls its one pod once more.
 */
export async function tuneKubeProxy(config: k8s.KubeConfig): Promise<void> {
  await config
    .makeApiClient(k8s.AppsV1Api)
    .patchNamespacedDaemonSet(
      { name: 'kube-proxy', namespace: 'kube-system', body: KUBE_PROXY_PATCH },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    );
}
