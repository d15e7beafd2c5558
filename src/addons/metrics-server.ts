import type * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { addonDeployment, restrictedContext } from './objects.js';
import { podTrouble } from './pods.js';
import type { Addon } from './types.js';

const NS = 'kube-system';
const NAME = 'metrics-server';
const LABELS = { 'k8s-app': NAME };
const API_SERVICE = 'v1beta1.metrics.k8s.io';

/**
 * Upstream's release manifest (manifests/base of sigs.k8s.io/metrics-server with its
 * `k8s-app: metrics-server` labels), object for object, with three changes for a local cluster:
 * kubelets serve on self-signed certificates (kubeadm's default), so metrics-server does not
 * verify them (`--kubelet-insecure-tls`, as minikube's add-on and kind's guides do); it scrapes
 * every 10 s (its minimum; upstream's manifest says 15 s; its kubelet requests then time out after
 * 5 s, not 10), since it serves a node's usage only
 * after two scrapes; and the readiness probe starts at once and runs every second, so the API is
 * marked available as soon as it has metrics instead of 20 s after the pod starts at the earliest.
 */
export function metricsServerManifest(image: string): string {
  const meta = (name: string, namespaced = true) => ({
    name,
    ...(namespaced ? { namespace: NS } : {}),
    labels: LABELS,
  });
  const subject = [{ kind: 'ServiceAccount', name: NAME, namespace: NS }];
  const rbac = 'rbac.authorization.k8s.io';
  const docs: object[] = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(NAME) },
    {
      apiVersion: `${rbac}/v1`,
      kind: 'ClusterRole',
      metadata: {
        ...meta('system:aggregated-metrics-reader', false),
        labels: {
          ...LABELS,
          [`${rbac}/aggregate-to-view`]: 'true',
          [`${rbac}/aggregate-to-edit`]: 'true',
          [`${rbac}/aggregate-to-admin`]: 'true',
        },
      },
      rules: [
        { apiGroups: ['metrics.k8s.io'], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] },
      ],
    },
    {
      apiVersion: `${rbac}/v1`,
      kind: 'ClusterRole',
      metadata: meta('system:metrics-server', false),
      rules: [
        { apiGroups: [''], resources: ['nodes/metrics'], verbs: ['get'] },
        { apiGroups: [''], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] },
      ],
    },
    {
      apiVersion: `${rbac}/v1`,
      kind: 'RoleBinding',
      metadata: meta('metrics-server-auth-reader'),
      roleRef: { apiGroup: rbac, kind: 'Role', name: 'extension-apiserver-authentication-reader' },
      subjects: subject,
    },
    {
      apiVersion: `${rbac}/v1`,
      kind: 'ClusterRoleBinding',
      metadata: meta('metrics-server:system:auth-delegator', false),
      roleRef: { apiGroup: rbac, kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: subject,
    },
    {
      apiVersion: `${rbac}/v1`,
      kind: 'ClusterRoleBinding',
      metadata: meta('system:metrics-server', false),
      roleRef: { apiGroup: rbac, kind: 'ClusterRole', name: 'system:metrics-server' },
      subjects: subject,
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(NAME),
      spec: {
        selector: LABELS,
        ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 'https', appProtocol: 'https' }],
      },
    },
    addonDeployment(meta(NAME), LABELS, {
      serviceAccountName: NAME,
      priorityClassName: 'system-cluster-critical',
      volumes: [{ name: 'tmp-dir', emptyDir: {} }],
      containers: [
        {
          name: NAME,
          image,
          imagePullPolicy: 'IfNotPresent',
          args: [
            '--cert-dir=/tmp',
            '--secure-port=10250',
            '--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname',
            '--kubelet-use-node-status-port',
            '--metric-resolution=10s',
            // at most 90% of the resolution (10 s by default); a node's kubelet answers in ms
            '--kubelet-request-timeout=5s',
            '--kubelet-insecure-tls',
          ],
          resources: { requests: { cpu: '100m', memory: '200Mi' } },
          ports: [{ name: 'https', containerPort: 10250, protocol: 'TCP' }],
          readinessProbe: {
            httpGet: { path: '/readyz', port: 'https', scheme: 'HTTPS' },
            periodSeconds: 1,
            failureThreshold: 3,
          },
          livenessProbe: {
            httpGet: { path: '/livez', port: 'https', scheme: 'HTTPS' },
            periodSeconds: 10,
            failureThreshold: 3,
          },
          securityContext: restrictedContext(1000),
          volumeMounts: [{ name: 'tmp-dir', mountPath: '/tmp' }],
        },
      ],
    }),
    {
      apiVersion: 'apiregistration.k8s.io/v1',
      kind: 'APIService',
      metadata: meta(API_SERVICE, false),
      spec: {
        service: { name: NAME, namespace: NS },
        group: 'metrics.k8s.io',
        version: 'v1beta1',
        insecureSkipTLSVerify: true,
        groupPriorityMinimum: 100,
        versionPriority: 100,
      },
    },
  ];
  return docs.map((d) => stringify(d)).join('---\n');
}

/**
 * Working means what `kubectl top nodes` and `kubectl top pods` need: the aggregated API is
 * available and has a sample of every node and of every running pod of kube-system (metrics-server
 * has a usage once it has scraped twice).
 */
async function metricsReady(config: k8s.KubeConfig, nodes: string[]): Promise<true | string> {
  const k = await import('@kubernetes/client-node');
  const service = await config.makeApiClient(k.ApiregistrationV1Api).readAPIService({ name: API_SERVICE });
  const available = service.status?.conditions?.find((c) => c.type === 'Available');
  if (available?.status !== 'True') {
    const trouble = await podTrouble(config, NS, `k8s-app=${NAME}`);
    return `the metrics API is not available yet (${available?.reason ?? 'no status'})${trouble ? `: ${trouble}` : ''}`;
  }
  const metrics = new k.Metrics(config);
  const listed = new Set((await metrics.getNodeMetrics()).items.map((m) => m.metadata.name));
  const missing = nodes.filter((n) => !listed.has(n));
  if (missing.length > 0) return `no metrics yet for ${missing.join(', ')}`;
  // every running pod of kube-system but metrics-server's own (which may be newer than a scrape):
  // right after the second scrape, some pods had metrics and others not yet
  const [pods, podMetrics] = await Promise.all([
    config
      .makeApiClient(k.CoreV1Api)
      .listNamespacedPod({ namespace: NS, fieldSelector: 'status.phase=Running' }),
    metrics.getPodMetrics(NS),
  ]);
  const measured = new Set(podMetrics.items.map((m) => m.metadata.name));
  const waiting = pods.items
    .filter((p) => p.metadata?.labels?.['k8s-app'] !== NAME)
    .map((p) => p.metadata?.name ?? '')
    .filter((name) => !measured.has(name));
  return waiting.length === 0 ? true : `no metrics yet for ${waiting.join(', ')}`;
}

export const metricsServer: Addon = {
  name: NAME,
  description: "resource metrics: kubectl top, the dashboard's CPU and memory, autoscaling",
  images: (versions) => [
    {
      ref: `registry.k8s.io/metrics-server/metrics-server:${versions.metricsServer}`,
      // as upstream's image: distroless, the binary at the root, run as nobody
      binaries: [{ name: 'metrics-server', path: '/metrics-server' }],
      config: { entrypoint: ['/metrics-server'], user: '65534' },
    },
  ],
  manifest: ([image]) => metricsServerManifest(image ?? ''),
  ready: metricsReady,
};
