import { stringify } from 'yaml';
import { GO_ENV, SHIM_GROUP } from './kubeadm-config.js';
import { nodeConfigMapReaders, ROOT_CA_CONFIGMAP } from './node-configmaps.js';

/** install-cni's script: wait for flanneld's subnet file, install the CNI config, stay (a container runs on). */
export const INSTALL_CNI_WHEN_SUBNET_READY = [
  'until [ -s /run/flannel/subnet.env ]; do sleep 0.1; done',
  '/opt/bin/install-conf /etc/kube-flannel/cni-conf.json /etc/cni/net.d/10-flannel.conflist',
  // As PID 1, sleep would ignore SIGTERM and every pod deletion would wait out its grace period.
  "trap 'exit 0' TERM",
  'sleep 2147483647 & wait',
].join('\n');

export interface FlannelOptions {
  /** flannel's image, preloaded in the nodes (flanneld and install-conf in /opt/bin). */
  image: string;
  /** The cluster's pod subnet: flannel hands each node the /24 the controller manager gave it. */
  podSubnet: string;
  /** host-gw: a route per node (the nodes share one L2 network); vxlan: an overlay. */
  backend: 'host-gw' | 'vxlan';
  /**
   * The cluster's stable API endpoint (the control plane's name, or the load balancer's). flanneld
   * talks to it directly rather than through the kubernetes Service, which on a node that has
   * just joined works only once kube-proxy there has written its rules (a lost SYN costs 1 s).
   */
  apiServer: { host: string; port: number };
}

const NS = 'kube-flannel';
const labels = { 'k8s-app': 'flannel' };

/**
 * flannel as its release manifest (Documentation/kube-flannel.yml of v0.28) installs it, with
 * what differs for minilab's nodes: the CNI plugin is in the node image already (containerd's
 * /usr/lib/cni), so there is no init container copying it; images are preloaded (never pulled);
 * the CNI config speaks CNI 0.3.1 (upstream's says 1.0.0; the plugin minilab builds speaks up to
 * 0.4.0); the DaemonSet
 * tolerates every taint (upstream: NoSchedule ones only), so a node tainted NoExecute keeps its
 * pod network; GOGC as for the other components; the nodes may read its ConfigMap before a pod is
 * bound to them (nodeConfigMapReaders).
 */
export function flannelManifest(o: FlannelOptions): string {
  const cniConf = {
    name: 'cbr0',
    cniVersion: '0.3.1',
    plugins: [
      { type: 'flannel', delegate: { hairpinMode: true, isDefaultGateway: true } },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
  const netConf = { Network: o.podSubnet, EnableNFTables: false, Backend: { Type: o.backend } };
  const docs: object[] = [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NS, labels: { ...labels, 'pod-security.kubernetes.io/enforce': 'privileged' } },
    },
    // Before the DaemonSet, so that its pods' first mounts are not refused (see nodeConfigMapReaders).
    ...nodeConfigMapReaders(NS, ['kube-flannel-cfg', ROOT_CA_CONFIGMAP]),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'flannel', labels },
      rules: [
        { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
        { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: [''], resources: ['nodes/status'], verbs: ['patch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'flannel', labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'flannel' },
      subjects: [{ kind: 'ServiceAccount', name: 'flannel', namespace: NS }],
    },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'flannel', namespace: NS, labels } },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'kube-flannel-cfg',
        namespace: NS,
        labels: { ...labels, tier: 'node', app: 'flannel' },
      },
      data: {
        'cni-conf.json': JSON.stringify(cniConf, null, 2) + '\n',
        'net-conf.json': JSON.stringify(netConf, null, 2) + '\n',
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: {
        name: 'kube-flannel-ds',
        namespace: NS,
        labels: { ...labels, tier: 'node', app: 'flannel' },
      },
      spec: {
        selector: { matchLabels: { app: 'flannel' } },
        template: {
          metadata: { labels: { tier: 'node', app: 'flannel' }, annotations: SHIM_GROUP },
          spec: {
            affinity: {
              nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                  nodeSelectorTerms: [
                    { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] },
                  ],
                },
              },
            },
            hostNetwork: true,
            priorityClassName: 'system-node-critical',
            tolerations: [{ operator: 'Exists' }],
            serviceAccountName: 'flannel',
            containers: [
              {
                name: 'kube-flannel',
                image: o.image,
                imagePullPolicy: 'Never',
                command: ['/opt/bin/flanneld'],
                args: ['--ip-masq', '--kube-subnet-mgr', '--healthz-port=8081'],
                ports: [{ name: 'healthz', containerPort: 8081, protocol: 'TCP' }],
                livenessProbe: {
                  httpGet: { path: '/healthz', port: 'healthz' },
                  initialDelaySeconds: 10,
                  periodSeconds: 30,
                },
                readinessProbe: { httpGet: { path: '/readyz', port: 'healthz' }, periodSeconds: 2 },
                resources: { requests: { cpu: '100m', memory: '50Mi' } },
                securityContext: { privileged: false, capabilities: { add: ['NET_ADMIN', 'NET_RAW'] } },
                env: [
                  // The node's name given, so flanneld need not read its own pod to find it.
                  { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                  { name: 'KUBERNETES_SERVICE_HOST', value: o.apiServer.host },
                  { name: 'KUBERNETES_SERVICE_PORT', value: String(o.apiServer.port) },
                  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                  { name: 'EVENT_QUEUE_DEPTH', value: '5000' },
                  { name: 'CONT_WHEN_CACHE_NOT_READY', value: 'false' },
                  ...GO_ENV,
                ],
                volumeMounts: [
                  { name: 'run', mountPath: '/run/flannel' },
                  { name: 'flannel-cfg', mountPath: '/etc/kube-flannel/' },
                  { name: 'xtables-lock', mountPath: '/run/xtables.lock' },
                ],
              },
              // Upstream installs the CNI config from an init container, before flanneld has
              // written the node's subnet file: the node turned Ready at once, the first pods
              // scheduled on it failed their sandbox (no subnet yet) and the kubelet retried them
              // 13 s later. Here a container beside flanneld installs it once the subnet file is
              // there, so Ready means pods can start. (Not a sidecar init container: the kubelet
              // would start flanneld only on its next pass over the pod, about a second later.)
              {
                name: 'install-cni',
                image: o.image,
                imagePullPolicy: 'Never',
                command: ['sh', '-c', INSTALL_CNI_WHEN_SUBNET_READY],
                resources: { requests: { cpu: '1m', memory: '1Mi' } },
                volumeMounts: [
                  { name: 'cni', mountPath: '/etc/cni/net.d' },
                  { name: 'flannel-cfg', mountPath: '/etc/kube-flannel/' },
                  { name: 'run', mountPath: '/run/flannel' },
                ],
              },
            ],
            volumes: [
              { name: 'run', hostPath: { path: '/run/flannel' } },
              { name: 'cni', hostPath: { path: '/etc/cni/net.d' } },
              { name: 'flannel-cfg', configMap: { name: 'kube-flannel-cfg' } },
              { name: 'xtables-lock', hostPath: { path: '/run/xtables.lock', type: 'FileOrCreate' } },
            ],
          },
        },
      },
    },
  ];
  return docs.map((d) => stringify(d)).join('---\n');
}
