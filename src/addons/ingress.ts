import { readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { MinilabError } from '../errors.js';
import type { KubeconfigEntry } from '../kube/kubeconfig.js';
import { waitUntil } from '../kube/wait.js';
import type { LifecycleContext } from '../lifecycle/types.js';
import { writePrivateFile } from '../private-files.js';
import { addonBuildDir } from './images.js';
import { loadBalancerAgent, syncAgent } from './loadbalancer.js';
import { AGENT_CLASSES } from './loadbalancer-ports.js';
import { addonDeployment, restrictedContext } from './objects.js';
import { podTrouble } from './pods.js';
import type { Addon } from './types.js';

/**
 * The ingress add-on: minilab's ingress controller (images/addons/ingress, Go's reverse proxy on
 * client-go's informers; none of the ingress controllers that build from Go alone is served by the
 * module proxy here) for the Ingress API and the Gateway API (its standard channel's CRDs, from
 * the sigs.k8s.io/gateway-api module), reached from the host at http://127.0.0.1 and
 * https://127.0.0.1. The controller's Service is of type LoadBalancer with a class of its own, which
 * the loadbalancer add-on's agent serves on the host's loopback (the one way to open a host port
 * while the cluster runs: see loadbalancer.ts) whether or not that add-on is enabled. HTTPS is
 * served with the certificates Ingresses and Gateways name, and for any other name with one the
 * controller issues from a CA of its own (kept in a Secret), which minilab writes to the profile's
 * folder for `curl --cacert`.
 */
const NAME = 'ingress';
const NS = 'ingress-minilab';
const APP = 'ingress-minilab';
const LABELS = { 'app.kubernetes.io/name': APP, 'app.kubernetes.io/part-of': 'minilab' };
/** The IngressClass and GatewayClass it serves (the IngressClass is the cluster's default). */
export const INGRESS_CLASS = 'minilab';
const CONTROLLER = 'minilab.io/ingress-controller';
const GATEWAY_CONTROLLER = 'minilab.io/gateway-controller';
const CA_SECRET = 'ingress-minilab-ca';
/** In the profile's folder: the CA of the certificates the controller issues. */
export const CA_FILE = 'ingress-ca.crt';
/** In the add-on build: the Gateway API's standard channel CRDs. */
const CRD_FILE = 'gateway-api-standard.yaml';
/** On the Gateway API CRDs the add-on applied: how disable finds them. */
const CRD_LABEL = 'minilab.io/addon';
const GATEWAY_GROUP = 'gateway.networking.k8s.io';
/** The ports the controller serves in its pod (it runs as a user that may not bind below 1024). */
const POD_PORTS = { http: 8080, https: 8443, health: 10254 };

/**
 * The host's ports: 80 and 443 where this user may listen on them (root, a system that allows it,
 * a Mac), else 8080 and 8443. Gateway listeners on ports 80 and 443 answer there.
 */
export function ingressHostPorts(
  platform = process.platform,
  uid = process.getuid?.(),
  unprivilegedStart = () => Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8')),
): { http: number; https: number } {
  let low = platform !== 'linux' || uid === 0;
  if (!low) {
    try {
      low = unprivilegedStart() <= 80;
    } catch {
      // no such setting: below 1024 is root's
    }
  }
  return low ? { http: 80, https: 443 } : { http: 8080, https: 8443 };
}

/** The address a port is reached at, as users type it (no :80 or :443). */
const hostUrl = (scheme: 'http' | 'https', port: number) =>
  `${scheme}://127.0.0.1${port === (scheme === 'http' ? 80 : 443) ? '' : `:${port}`}`;

/** The controller's objects: its RBAC, Deployment and Service, the IngressClass and the GatewayClass. */
export function ingressManifest(image: string, ports = ingressHostPorts()): string {
  const meta = (name: string, namespaced = true) => ({
    name,
    ...(namespaced ? { namespace: NS } : {}),
    labels: LABELS,
  });
  const rbac = 'rbac.authorization.k8s.io';
  const subjects = [{ kind: 'ServiceAccount', name: APP, namespace: NS }];
  const read = ['get', 'list', 'watch'];
  const docs: object[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS, labels: LABELS } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(APP) },
    {
      apiVersion: `${rbac}/v1`,
      kind: 'ClusterRole',
      metadata: meta(APP, false),
      rules: [
        { apiGroups: [''], resources: ['services', 'namespaces'], verbs: read },
        // TLS Secrets are listed and watched (kubernetes.io/tls only), never read one by one
        { apiGroups: [''], resources: ['secrets'], verbs: ['list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: read },
        { apiGroups: ['networking.k8s.io'], resources: ['ingresses', 'ingressclasses'], verbs: read },
        { apiGroups: ['networking.k8s.io'], resources: ['ingresses/status'], verbs: ['update', 'patch'] },
        {
          apiGroups: [GATEWAY_GROUP],
          resources: ['gatewayclasses', 'gateways', 'httproutes', 'referencegrants'],
          verbs: read,
        },
        {
          apiGroups: [GATEWAY_GROUP],
          resources: ['gatewayclasses/status', 'gateways/status', 'httproutes/status'],
          verbs: ['update', 'patch'],
        },
      ],
    },
    {
      apiVersion: `${rbac}/v1`,
      kind: 'ClusterRoleBinding',
      metadata: meta(APP, false),
      roleRef: { apiGroup: rbac, kind: 'ClusterRole', name: APP },
      subjects,
    },
    {
      // its CA is a Secret it makes in its own namespace
      apiVersion: `${rbac}/v1`,
      kind: 'Role',
      metadata: meta(APP),
      rules: [
        { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
        { apiGroups: [''], resources: ['secrets'], resourceNames: [CA_SECRET], verbs: ['get', 'update'] },
      ],
    },
    {
      apiVersion: `${rbac}/v1`,
      kind: 'RoleBinding',
      metadata: meta(APP),
      roleRef: { apiGroup: rbac, kind: 'Role', name: APP },
      subjects,
    },
    addonDeployment(meta(APP), LABELS, {
      serviceAccountName: APP,
      containers: [
        {
          name: 'controller',
          image,
          imagePullPolicy: 'IfNotPresent',
          args: [
            `--http-port=${POD_PORTS.http}`,
            `--https-port=${POD_PORTS.https}`,
            `--health-port=${POD_PORTS.health}`,
            `--controller=${CONTROLLER}`,
            `--gateway-controller=${GATEWAY_CONTROLLER}`,
            `--ca-secret=${CA_SECRET}`,
            `--publish-service=${NS}/${APP}`,
            '--gateway-http-port=80',
            '--gateway-https-port=443',
            // redirects name the ports the host serves the listeners at
            `--public-http-port=${ports.http}`,
            `--public-https-port=${ports.https}`,
          ],
          env: [{ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }],
          ports: [
            { name: 'http', containerPort: POD_PORTS.http, protocol: 'TCP' },
            { name: 'https', containerPort: POD_PORTS.https, protocol: 'TCP' },
            { name: 'health', containerPort: POD_PORTS.health, protocol: 'TCP' },
          ],
          readinessProbe: {
            httpGet: { path: '/readyz', port: 'health' },
            periodSeconds: 1,
            failureThreshold: 3,
          },
          livenessProbe: { httpGet: { path: '/healthz', port: 'health' }, periodSeconds: 10 },
          resources: { requests: { cpu: '50m', memory: '32Mi' } },
          securityContext: restrictedContext(65532),
        },
      ],
    }),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(APP),
      spec: {
        type: 'LoadBalancer',
        loadBalancerClass: AGENT_CLASSES.ingress,
        allocateLoadBalancerNodePorts: false,
        selector: LABELS,
        ports: [
          { name: 'http', port: ports.http, targetPort: 'http', protocol: 'TCP', appProtocol: 'http' },
          { name: 'https', port: ports.https, targetPort: 'https', protocol: 'TCP', appProtocol: 'https' },
        ],
      },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'IngressClass',
      metadata: {
        ...meta(INGRESS_CLASS, false),
        annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' },
      },
      spec: { controller: CONTROLLER },
    },
    {
      apiVersion: `${GATEWAY_GROUP}/v1`,
      kind: 'GatewayClass',
      metadata: meta(INGRESS_CLASS, false),
      spec: { controllerName: GATEWAY_CONTROLLER, description: "minilab's ingress controller" },
    },
  ];
  return docs.map((d) => stringify(d)).join('---\n');
}

/** A Gateway API object of the standard channel's install: its CRDs, and an admission policy. */
type GatewayApiObject = k8s.KubernetesObject & { metadata: k8s.V1ObjectMeta };

/**
 * The Gateway API's standard channel as the module has it, each object labelled as this add-on's:
 * its CRDs, and the rest (a ValidatingAdmissionPolicy and its binding that refuse older
 * experimental CRDs over these).
 */
export function gatewayApiObjects(yaml: string): { crds: GatewayApiObject[]; others: GatewayApiObject[] } {
  const docs = parseAllDocuments(yaml)
    .map((d) => d.toJS() as GatewayApiObject | null)
    .filter((d): d is GatewayApiObject => typeof d?.kind === 'string');
  for (const d of docs) {
    d.metadata = { ...d.metadata, labels: { ...d.metadata.labels, [CRD_LABEL]: NAME } };
  }
  return {
    crds: docs.filter((d) => d.kind === 'CustomResourceDefinition'),
    others: docs.filter((d) => d.kind !== 'CustomResourceDefinition'),
  };
}

/**
 * Whether the add-on applied this object and nobody else changed it since: labelled as the
 * add-on's, and written by minilab alone (the API server's own status writes aside). One the user
 * applied over (kubectl apply of another release keeps the label) is theirs: not replaced, not
 * removed.
 */
export function appliedByAddon(o: { metadata?: k8s.V1ObjectMeta }): boolean {
  if (o.metadata?.labels?.[CRD_LABEL] !== NAME) return false;
  return (o.metadata.managedFields ?? []).every((f) => f.manager === 'minilab' || f.subresource === 'status');
}

/** The Gateway API's objects in a cluster: every CRD of its group, and the admission policy's objects. */
export interface GatewayApiInCluster {
  crds: k8s.V1CustomResourceDefinition[];
  policies: k8s.V1ValidatingAdmissionPolicy[];
  bindings: k8s.V1ValidatingAdmissionPolicyBinding[];
}

async function gatewayApiInCluster(config: k8s.KubeConfig): Promise<GatewayApiInCluster> {
  const k = await import('@kubernetes/client-node');
  const admission = config.makeApiClient(k.AdmissionregistrationV1Api);
  // the policy's objects are looked for by the add-on's label; the CRDs all, the user's too
  const labelSelector = `${CRD_LABEL}=${NAME}`;
  const [crds, policies, bindings] = await Promise.all([
    config
      .makeApiClient(k.ApiextensionsV1Api)
      .listCustomResourceDefinition()
      .then((l) => l.items.filter((c) => c.spec.group === GATEWAY_GROUP)),
    admission.listValidatingAdmissionPolicy({ labelSelector }).then((l) => l.items),
    admission.listValidatingAdmissionPolicyBinding({ labelSelector }).then((l) => l.items),
  ]);
  return { crds, policies, bindings };
}

const BUNDLE_VERSION = `${GATEWAY_GROUP}/bundle-version`;

/**
 * What of the Gateway API's objects to apply to a cluster that has `current`: CRDs the user
 * installed (or applied over ours) are theirs, used and never replaced, and with any of them the
 * admission policy is theirs too; of ours, only those missing, of another release, or (a CRD) not
 * established yet: a start does not send the same 1.2 MB again.
 */
export function gatewayApiToApply(
  wanted: { crds: GatewayApiObject[]; others: GatewayApiObject[] },
  current: GatewayApiInCluster,
): { apply: GatewayApiObject[]; theirs: string[] } {
  const theirs = current.crds.filter((c) => !appliedByAddon(c)).map((c) => c.metadata?.name ?? '');
  const present = new Map<
    string,
    { metadata?: k8s.V1ObjectMeta; status?: k8s.V1CustomResourceDefinitionStatus }
  >([
    ...current.crds.map((c) => [`CustomResourceDefinition/${c.metadata?.name ?? ''}`, c] as const),
    ...current.policies.map((o) => [`ValidatingAdmissionPolicy/${o.metadata?.name ?? ''}`, o] as const),
    ...current.bindings.map(
      (o) => [`ValidatingAdmissionPolicyBinding/${o.metadata?.name ?? ''}`, o] as const,
    ),
  ]);
  const upToDate = (o: GatewayApiObject) => {
    const cur = present.get(`${o.kind ?? ''}/${o.metadata.name ?? ''}`);
    if (!cur || !appliedByAddon(cur)) return false;
    if (cur.metadata?.annotations?.[BUNDLE_VERSION] !== o.metadata.annotations?.[BUNDLE_VERSION])
      return false;
    return (
      o.kind !== 'CustomResourceDefinition' ||
      cur.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') === true
    );
  };
  const crds = wanted.crds.filter((d) => !theirs.includes(d.metadata.name ?? ''));
  const others = theirs.length > 0 ? [] : wanted.others;
  return { apply: [...crds, ...others].filter((o) => !upToDate(o)), theirs };
}

/** Applies the Gateway API CRDs and waits until the API server serves them. */
async function applyCrds(ctx: LifecycleContext, entry: KubeconfigEntry): Promise<void> {
  await ctx.reporter.step('Gateway API CRDs', async (progress) => {
    const dir = await addonBuildDir(ctx.home, progress);
    const wanted = gatewayApiObjects(await readFile(join(dir, CRD_FILE), 'utf8'));
    const { apply, theirs } = gatewayApiToApply(
      wanted,
      await ctx.kube.withConfig(entry, gatewayApiInCluster),
    );
    if (theirs.length > 0) progress(`keeping the cluster's own ${theirs.join(', ')}`);
    if (apply.length === 0) return;
    await ctx.kube.apply(entry, apply.map((d) => stringify(d)).join('---\n'));
    await waitUntil(
      'the Gateway API CRDs to be served',
      60_000,
      () =>
        ctx.kube.withConfig(entry, async (config) => {
          const k = await import('@kubernetes/client-node');
          const api = config.makeApiClient(k.ApiextensionsV1Api);
          for (const name of wanted.crds.map((d) => d.metadata.name ?? '')) {
            const crd = await api.readCustomResourceDefinition({ name });
            const established = crd.status?.conditions?.find((c) => c.type === 'Established');
            if (established?.status !== 'True') return `${name} is not established yet`;
          }
          return true;
        }),
      { intervalMs: 200 },
    );
  });
}

/**
 * Deletes the Gateway API objects this add-on applied (and nobody changed since): the CRDs, and
 * with them every Gateway and route, and the admission policy; how many.
 */
async function removeGatewayApi(ctx: LifecycleContext, entry: KubeconfigEntry): Promise<number> {
  return ctx.kube.withConfig(entry, async (config) => {
    const k = await import('@kubernetes/client-node');
    const crdApi = config.makeApiClient(k.ApiextensionsV1Api);
    const admission = config.makeApiClient(k.AdmissionregistrationV1Api);
    const { crds, policies, bindings } = await gatewayApiInCluster(config);
    // what the user applied over them since is theirs: kept
    const deletes = [
      ...crds
        .filter(appliedByAddon)
        .map((o) => () => crdApi.deleteCustomResourceDefinition({ name: o.metadata?.name ?? '' })),
      ...bindings
        .filter(appliedByAddon)
        .map((o) => () => admission.deleteValidatingAdmissionPolicyBinding({ name: o.metadata?.name ?? '' })),
      ...policies
        .filter(appliedByAddon)
        .map((o) => () => admission.deleteValidatingAdmissionPolicy({ name: o.metadata?.name ?? '' })),
    ];
    for (const remove of deletes) {
      await remove().catch((err: unknown) => {
        if ((err as { code?: number }).code !== 404) throw err;
      });
    }
    return deletes.length;
  });
}

/**
 * Working means a user's request gets through: the controller is ready (it has read everything
 * and built its table), the GatewayClass is accepted, its Service has 127.0.0.1 on both ports, and
 * the host's port answers through the agent.
 */
async function ingressReady(config: k8s.KubeConfig): Promise<true | string> {
  const k = await import('@kubernetes/client-node');
  const deployment = await config
    .makeApiClient(k.AppsV1Api)
    .readNamespacedDeployment({ name: APP, namespace: NS });
  if ((deployment.status?.readyReplicas ?? 0) < 1) {
    const trouble = await podTrouble(config, NS, `app.kubernetes.io/name=${APP}`);
    return `the controller is not ready yet${trouble ? `: ${trouble}` : ''}`;
  }
  // Gateway API CRDs of the user's older than v1 ReferenceGrants are not served (Ingress only)
  const grants = await config
    .makeApiClient(k.ApiextensionsV1Api)
    .readCustomResourceDefinition({ name: `referencegrants.${GATEWAY_GROUP}` })
    .catch(() => undefined);
  if (grants?.spec.versions.some((v) => v.name === 'v1' && v.served)) {
    const gatewayClass = (await config.makeApiClient(k.CustomObjectsApi).getClusterCustomObject({
      group: GATEWAY_GROUP,
      version: 'v1',
      plural: 'gatewayclasses',
      name: INGRESS_CLASS,
    })) as { status?: { conditions?: k8s.V1Condition[] } };
    if (gatewayClass.status?.conditions?.find((c) => c.type === 'Accepted')?.status !== 'True') {
      return `GatewayClass ${INGRESS_CLASS} is not accepted yet`;
    }
  }
  const service = await config.makeApiClient(k.CoreV1Api).readNamespacedService({ name: APP, namespace: NS });
  const address = service.status?.loadBalancer?.ingress?.[0];
  if (!address) return `the Service ${NS}/${APP} has no address yet (the load balancer agent gives it one)`;
  const failed = (address.ports ?? []).filter((p) => p.error);
  if (failed.length > 0) {
    const ports = failed.map((p) => `${p.port}: ${p.error ?? ''}`).join(', ');
    return `host port(s) not served (${ports}; kubectl -n ${NS} get events says why)`;
  }
  const { http } = ingressHostPorts();
  try {
    await fetch(`http://127.0.0.1:${http}/`, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    return `${hostUrl('http', http)} does not answer yet (${(err as Error).message})`;
  }
  return true;
}

/**
 * The host ports another program holds (the agent serving them for this add-on already is not
 * another program): enable fails at once on them, rather than waiting for a port that may not be
 * freed.
 */
async function portsHeld(profileDir: string): Promise<number[]> {
  if ((await loadBalancerAgent(profileDir))?.users?.includes(NAME)) return [];
  const { http, https } = ingressHostPorts();
  const held: number[] = [];
  for (const port of [http, https]) {
    const server = createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (free) await new Promise((r) => server.close(r));
    else held.push(port);
  }
  return held;
}

export const ingress: Addon = {
  name: NAME,
  description: 'Ingress and Gateway API (HTTPRoute) on http://127.0.0.1 and https://127.0.0.1',
  namespace: NS,
  images: (versions) => [
    {
      ref: `minilab/ingress-controller:${versions.ingress}`,
      binaries: [{ name: 'ingress-controller', path: '/ingress-controller' }],
      config: { entrypoint: ['/ingress-controller'], user: '65532' },
    },
  ],
  manifest: ([image]) => ingressManifest(image ?? ''),
  ready: ingressReady,
  async working(ctx, { profile, entry }) {
    const ca = await ctx.kube.withConfig(entry, async (config) => {
      const k = await import('@kubernetes/client-node');
      const secret = await config
        .makeApiClient(k.CoreV1Api)
        .readNamespacedSecret({ name: CA_SECRET, namespace: NS });
      return Buffer.from(secret.data?.['ca.crt'] ?? '', 'base64');
    });
    const file = join(ctx.profiles.dir(profile), CA_FILE);
    await writePrivateFile(file, ca, 0o644);
    const { http, https } = ingressHostPorts();
    const port = (p: number, dflt: number) => (p === dflt ? '' : `:${p}`);
    return [
      `Ingress rules and HTTPRoutes answer at ${hostUrl('http', http)} and ${hostUrl('https', https)} (IngressClass and GatewayClass "${INGRESS_CLASS}"; the IngressClass is the default)`,
      `e.g. curl --resolve app.example:${https}:127.0.0.1 --cacert ${file} https://app.example${port(https, 443)}/ (the CA of its certificates: ${file})`,
    ];
  },
  beside: {
    async up(ctx, { profile, entry }) {
      const held = await portsHeld(ctx.profiles.dir(profile));
      if (held.length > 0) {
        const ports = held.join(' and ');
        throw new MinilabError(
          'addon',
          `port ${ports} on 127.0.0.1 is held by another program: the ingress cannot answer there`,
          {
            hint: `free it (ss -ltnp 'sport = :${held[0] ?? ''}' names the program), then: minilab addons enable -p ${profile} ingress`,
          },
        );
      }
      await applyCrds(ctx, entry);
      await ctx.reporter.step('Starting the load balancer agent', () => syncAgent(ctx, profile));
      return [];
    },
    join: async () => undefined,
    async status(ctx, profile) {
      const agent = await loadBalancerAgent(ctx.profiles.dir(profile));
      const { http, https } = ingressHostPorts();
      return agent?.users?.includes(NAME)
        ? `${hostUrl('http', http)}, ${hostUrl('https', https)}`
        : `not served on the host: its agent does not run (minilab start -p ${profile} starts it)`;
    },
    async down(ctx, { profile, entry }) {
      const stopped = await syncAgent(ctx, profile, NAME);
      const crds = await removeGatewayApi(ctx, entry);
      await rm(join(ctx.profiles.dir(profile), CA_FILE), { force: true });
      // the namespace's objects go before the command returns: enable may follow at once
      await waitUntil(
        `namespace ${NS} to be gone`,
        120_000,
        () =>
          ctx.kube.withConfig(entry, async (config) => {
            const k = await import('@kubernetes/client-node');
            try {
              const ns = await config.makeApiClient(k.CoreV1Api).readNamespace({ name: NS });
              // what holds it (NamespaceContentRemaining, NamespaceFinalizersRemaining, ...)
              const held = (ns.status?.conditions ?? []).filter((c) => c.status === 'True' && c.message);
              return `namespace ${NS} is still terminating${held.map((c) => `: ${c.message ?? ''}`).join('')}`;
            } catch (err) {
              if ((err as { code?: number }).code === 404) return true;
              throw err;
            }
          }),
        { intervalMs: 500 },
      );
      return (stopped ? 1 : 0) + crds;
    },
  },
};
