import { test } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse, parseAllDocuments } from 'yaml';
import { ADDONS, addonsNamed, parseAddonList } from '../../src/addons/catalog.js';
import { claimPorts, desiredStatus, writtenByAgent } from '../../src/addons/loadbalancer-ports.js';
import { disableAddons, listAddons, remember } from '../../src/addons/manage.js';
import { registryBeside, registryConfig, registryHostsToml } from '../../src/addons/registry.js';
import { start } from '../../src/lifecycle/start.js';
import { stop } from '../../src/lifecycle/stop.js';
import { sampleEntry } from '../helpers/kubeconfig.js';
import { startRequest, withFixture } from '../helpers/lifecycle-fixture.js';
import { metricsServerManifest } from '../../src/addons/metrics-server.js';
import { SHIM_GROUP } from '../../src/kube/kubeadm-config.js';
import {
  appliedByAddon,
  gatewayApiObjects,
  gatewayApiToApply,
  ingressHostPorts,
  ingressManifest,
  type GatewayApiInCluster,
} from '../../src/addons/ingress.js';
import { MinilabError } from '../../src/errors.js';
import { Labels } from '../../src/labels.js';
import { ProfileStore } from '../../src/profile/store.js';
import { runCli } from '../helpers/cli.js';

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  [k: string]: unknown;
}
const docsOf = (manifest: string) => parseAllDocuments(manifest).map((d) => d.toJS() as Doc);

test('add-on names: known ones each once, an unknown one a usage error listing the catalog', () => {
  assert.deepEqual(
    addonsNamed(['metrics-server', 'metrics-server']).map((a) => a.name),
    ['metrics-server'],
  );
  assert.throws(
    () => addonsNamed(['metrics-server', 'dashboard']),
    (err: unknown) =>
      err instanceof MinilabError &&
      err.kind === 'usage' &&
      /unknown add-on "dashboard"/.test(err.message) &&
      (err.hint ?? '').includes('metrics-server'),
  );
  assert.deepEqual(parseAddonList(' metrics-server ,'), ['metrics-server']);
  assert.throws(() => parseAddonList(','), /names no add-on/);
  assert.throws(() => parseAddonList('metrics-server,nope'), /unknown add-on "nope"/);
});

test("metrics-server's manifest: upstream's objects, selectors that match, the image given", () => {
  const docs = docsOf(metricsServerManifest('registry.k8s.io/metrics-server/metrics-server:v9.9.9'));
  assert.deepEqual(
    docs.map((d) => `${d.kind}/${d.metadata.name}`),
    [
      'ServiceAccount/metrics-server',
      'ClusterRole/system:aggregated-metrics-reader',
      'ClusterRole/system:metrics-server',
      'RoleBinding/metrics-server-auth-reader',
      'ClusterRoleBinding/metrics-server:system:auth-delegator',
      'ClusterRoleBinding/system:metrics-server',
      'Service/metrics-server',
      'Deployment/metrics-server',
      'APIService/v1beta1.metrics.k8s.io',
    ],
  );
  for (const d of docs) assert.equal(d.metadata.labels?.['k8s-app'], 'metrics-server', d.kind);
  const deploy = docs.find((d) => d.kind === 'Deployment') as Doc & {
    spec: {
      selector: { matchLabels: Record<string, string> };
      template: {
        metadata: { labels: Record<string, string>; annotations: Record<string, string> };
        spec: { containers: { image: string; args: string[]; ports: { name: string }[] }[] };
      };
    };
  };
  const service = docs.find((d) => d.kind === 'Service') as Doc & {
    spec: { selector: Record<string, string>; ports: { targetPort: string }[] };
  };
  assert.deepEqual(deploy.spec.selector.matchLabels, deploy.spec.template.metadata.labels);
  assert.deepEqual(service.spec.selector, deploy.spec.template.metadata.labels);
  // in the containerd shim of the cluster's own pods
  assert.deepEqual(deploy.spec.template.metadata.annotations, SHIM_GROUP);
  const container = deploy.spec.template.spec.containers[0];
  assert.equal(container?.image, 'registry.k8s.io/metrics-server/metrics-server:v9.9.9');
  assert.ok(container?.args.includes('--kubelet-insecure-tls'), "kubeadm's kubelets serve self-signed");
  assert.equal(container?.ports[0]?.name, service.spec.ports[0]?.targetPort);
  const api = docs.find((d) => d.kind === 'APIService') as Doc & {
    spec: { service: { name: string; namespace: string }; group: string };
  };
  assert.deepEqual(api.spec.service, { name: 'metrics-server', namespace: 'kube-system' });
  assert.equal(api.spec.group, 'metrics.k8s.io');
});

test('enabled add-ons are kept in the profile, in catalog order, each once', async () => {
  const home = await mkdtemp(join(tmpdir(), 'minilab-addons-'));
  try {
    const profiles = new ProfileStore(home);
    const ctx = { profiles } as Parameters<typeof remember>[0];
    await profiles.write({ name: 'p', kubernetesVersion: 'v1.37.2', ports: [], createdAt: 'now' });
    assert.deepEqual(
      (await listAddons({ profiles }, 'p')).map((a) => [a.name, a.enabled]),
      ADDONS.map((a) => [a.name, false]),
    );
    await remember(ctx, 'p', (list) => [...list, 'metrics-server', 'metrics-server', 'unknown']);
    assert.deepEqual((await profiles.read('p'))?.addons, ['metrics-server']);
    assert.equal(
      (await listAddons({ profiles }, 'p')).find((a) => a.name === 'metrics-server')?.enabled,
      true,
    );
    await remember(ctx, 'p', (list) => list.filter((n) => n !== 'metrics-server'));
    assert.deepEqual((await profiles.read('p'))?.addons, []);
    await remember(ctx, 'nobody', (list) => [...list, 'metrics-server']);
    assert.equal(await profiles.read('nobody'), undefined, 'no profile is made by remembering');
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

test('addons: unknown names and an empty --addons are usage errors before any engine is asked; a missing profile is not found', async () => {
  const env = { ...process.env, DOCKER_HOST: 'unix:///nonexistent', MINILAB_HOME: '/nonexistent/minilab' };
  for (const args of [
    ['addons', 'enable', 'nope'],
    ['addons', 'disable', 'metrics-server', 'nope'],
    ['start', '--addons', 'metrics-server,nope'],
    ['start', '--addons', ','],
  ]) {
    const r = await runCli(args, env);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^error: /);
    assert.match(r.stderr, /\nhint: /);
  }
  const missing = await runCli(['addons', 'list', '-p', 'nope'], env);
  assert.equal(missing.code, 4, missing.stderr);
  assert.match(missing.stderr, /profile "nope" does not exist/);
  const home = await mkdtemp(join(tmpdir(), 'minilab-addons-cli-'));
  try {
    await new ProfileStore(home).write({
      name: 'p',
      kubernetesVersion: 'v1.37.2',
      ports: [],
      createdAt: 'now',
    });
    const list = await runCli(['addons', 'list', '-p', 'p', '-o', 'json'], { ...env, MINILAB_HOME: home });
    assert.equal(list.code, 0, list.stderr);
    const data = JSON.parse(list.stdout) as { addons: { name: string; enabled: boolean }[] };
    assert.deepEqual(
      data.addons.map((a) => a.name),
      ADDONS.map((a) => a.name),
    );
    assert.ok(data.addons.every((a) => !a.enabled));
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

test("registry: distribution's configuration and the nodes' hosts.toml", () => {
  const config = parse(registryConfig('s3cret')) as {
    storage: { filesystem: { rootdirectory: string }; delete: { enabled: boolean } };
    http: { addr: string; secret: string };
  };
  assert.equal(config.storage.filesystem.rootdirectory, '/var/lib/registry');
  assert.equal(config.storage.delete.enabled, true);
  assert.deepEqual([config.http.addr, config.http.secret], [':5000', 's3cret']);
  const toml = registryHostsToml('demo-registry', '127.0.0.1:5000');
  assert.match(toml.split('\n')[0] ?? '', /^# written by minilab: the registry add-on/);
  // the container first, then the node's mirror of images loaded under that name
  assert.match(
    toml,
    /^\[host\."http:\/\/demo-registry:5000"\]\n {2}capabilities = \["pull", "resolve"\]\n\[host\."http:\/\/127\.0\.0\.1:10550\/v2\/127\.0\.0\.1_5000"\]$/m,
  );
});

test('registry: enable configures every node and answers; a joining node is configured; stop stops it; disable removes it all', async () => {
  await withFixture(async (f) => {
    await start(f.ctx, startRequest({ nodes: 1 }));
    // The container as addService made it, answering /v2/ on its published port like distribution.
    const server = createServer((req, res) => res.writeHead(req.url === '/v2/' ? 200 : 404).end('{}'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      await f.ctx.provider.addService({
        profile: 'demo',
        name: 'demo-registry',
        role: 'registry',
        image: 'minilab/node:test',
        ports: [{ hostIp: '127.0.0.1', hostPort: port, containerPort: 5000, protocol: 'tcp' }],
        command: ['registry'],
        dataPath: '/var/lib/registry',
        labels: { [Labels.registryPort]: String(port) },
      });
      const nodes = await f.ctx.provider.listNodes('demo');
      assert.deepEqual(
        nodes.map((n) => n.name),
        ['demo-control-plane'],
        'the registry is no node of the cluster',
      );
      f.world.scripts.length = 0;
      const notes = await registryBeside.up(f.ctx, { profile: 'demo', nodes, entry: sampleEntry('demo') });
      assert.match(notes[0] ?? '', new RegExp(`push images to 127\\.0\\.0\\.1:${port}/NAME`));
      const written = f.world.scripts.map((x) => x.text).join('\n');
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
        assert.ok(written.includes(`/etc/containerd/certs.d/${host}/hosts.toml`), host);
      }
      assert.ok(written.includes('busybox wget -q -O /dev/null http://demo-registry:5000/v2/'));

      // a node that joins later is configured the same way
      f.world.scripts.length = 0;
      await registryBeside.join(f.ctx, 'demo', nodes[0]!);
      assert.ok(f.world.scripts.some((x) => x.text.includes(`certs.d/127.0.0.1:${port}/hosts.toml`)));

      await remember(f.ctx, 'demo', () => ['registry']);
      f.world.calls.length = 0;
      await stop(f.ctx, 'demo');
      assert.deepEqual(
        f.world.calls.filter((c) => c.startsWith('stop-node')),
        ['stop-node demo-control-plane', 'stop-node demo-registry'],
      );
      await start(f.ctx, startRequest({ nodes: 1 }));
      assert.equal(f.world.nodes.get('demo-registry')?.state.running, true, 'start starts it again');

      f.world.scripts.length = 0;
      const r = await disableAddons(f.ctx, 'demo', ['registry']);
      assert.deepEqual(r.disabled, ['registry']);
      assert.equal(f.world.nodes.has('demo-registry'), false);
      assert.equal(f.world.volumes.has('demo-registry-data'), false);
      // the nodes' hosts.toml files are found by their first line and removed
      assert.ok(
        f.world.scripts.some(
          (x) =>
            x.text.includes("grep -qF '# written by minilab: the registry add-on'") &&
            x.text.includes('rm -rf'),
        ),
      );
      assert.deepEqual((await f.ctx.profiles.read('demo'))?.addons, []);
    } finally {
      server.close();
    }
  });
});

const lbService = (
  name: string,
  created: string,
  ports: { port: number; protocol?: string }[],
  over: Partial<k8s.V1ServiceSpec> = {},
): k8s.V1Service => ({
  metadata: { namespace: 'default', name, creationTimestamp: new Date(created) },
  spec: { type: 'LoadBalancer', ports, ...over },
});

test('loadbalancer: each TCP port of a LoadBalancer Service is claimed on 127.0.0.1, the oldest Service first', () => {
  const claims = claimPorts([
    lbService('newer', '2026-12-05T10:00:00Z', [{ port: 8080 }, { port: 9090 }]),
    lbService('older', '2026-12-05T09:00:00Z', [{ port: 8080 }]),
    lbService('dns', '2026-12-05T09:30:00Z', [{ port: 53, protocol: 'UDP' }]),
    lbService('other-class', '2026-12-05T09:00:00Z', [{ port: 7000 }], {
      loadBalancerClass: 'example.com/lb',
    }),
    { metadata: { namespace: 'default', name: 'plain' }, spec: { type: 'ClusterIP', ports: [{ port: 80 }] } },
  ]);
  assert.deepEqual(
    claims.map((c) => [c.service, c.port, c.error ?? 'served']),
    [
      ['default/older', 8080, 'served'],
      ['default/dns', 53, 'Unsupported'],
      ['default/newer', 8080, 'PortConflict'],
      ['default/newer', 9090, 'served'],
    ],
  );
  assert.match(claims[2]?.message ?? '', /port 8080 on 127\.0\.0\.1 is served for Service default\/older/);
  // a Service with one port served gets 127.0.0.1, proxied, with each port's error
  assert.deepEqual(desiredStatus(claims.filter((c) => c.service === 'default/newer')), {
    ingress: [
      {
        ip: '127.0.0.1',
        ipMode: 'Proxy',
        ports: [
          { port: 8080, protocol: 'TCP', error: 'PortConflict' },
          { port: 9090, protocol: 'TCP' },
        ],
      },
    ],
  });
  // none served: no address (EXTERNAL-IP stays pending; the events say why)
  assert.deepEqual(desiredStatus(claims.filter((c) => c.service === 'default/dns')), {});
  assert.equal(writtenByAgent(desiredStatus(claims.filter((c) => c.service === 'default/older'))), true);
  assert.equal(writtenByAgent({ ingress: [{ ip: '192.0.2.10' }] }), false);
});

test("loadbalancer: the agent serves the ingress add-on's class only for ingress, and no class only for loadbalancer", () => {
  const services = [
    lbService('app', '2026-12-05T09:00:00Z', [{ port: 8080 }]),
    lbService('controller', '2026-12-05T09:00:00Z', [{ port: 80 }], {
      loadBalancerClass: 'minilab.io/ingress',
    }),
  ];
  const served = (users: ('loadbalancer' | 'ingress')[]) =>
    claimPorts(services, users).map((c) => `${c.service}:${c.port}`);
  assert.deepEqual(served(['loadbalancer']), ['default/app:8080']);
  assert.deepEqual(served(['ingress']), ['default/controller:80']);
  assert.deepEqual(served(['loadbalancer', 'ingress']), ['default/app:8080', 'default/controller:80']);
});

test("ingress: the manifest's Service is the agent's ingress class on 80/443 or 8080/8443; classes, RBAC and probes fit", () => {
  const docs = docsOf(ingressManifest('minilab/ingress-controller:v0.1.0', { http: 80, https: 443 }));
  const of = (kind: string) => docs.filter((d) => d.kind === kind);
  const service = of('Service')[0];
  assert.equal(service?.spec?.type, 'LoadBalancer');
  assert.equal(service?.spec?.loadBalancerClass, 'minilab.io/ingress');
  assert.deepEqual(
    (service?.spec?.ports as { port: number; targetPort: string }[]).map((p) => [p.port, p.targetPort]),
    [
      [80, 'http'],
      [443, 'https'],
    ],
  );
  const deployment = of('Deployment')[0] as unknown as {
    spec: {
      selector: { matchLabels: Record<string, string> };
      template: {
        metadata: { labels: Record<string, string> };
        spec: {
          serviceAccountName: string;
          containers: { image: string; args: string[]; ports: { name: string; containerPort: number }[] }[];
        };
      };
    };
  };
  const pod = deployment.spec.template;
  assert.deepEqual(service?.spec?.selector, deployment.spec.selector.matchLabels);
  assert.deepEqual(pod.metadata.labels, deployment.spec.selector.matchLabels);
  const container = pod.spec.containers[0];
  assert.equal(container?.image, 'minilab/ingress-controller:v0.1.0');
  // the Service's target ports are the container's, which are the ports the controller is told
  for (const name of ['http', 'https', 'health']) {
    const port = container?.ports.find((p) => p.name === name)?.containerPort;
    assert.ok(container?.args.includes(`--${name}-port=${port}`), `${name} port ${port} in the args`);
  }
  assert.ok(container?.args.includes('--publish-service=ingress-minilab/ingress-minilab'));
  assert.equal(of('ServiceAccount')[0]?.metadata.name, pod.spec.serviceAccountName);
  const ingressClass = of('IngressClass')[0];
  assert.equal(ingressClass?.metadata.name, 'minilab');
  assert.ok(container?.args.includes(`--controller=${String(ingressClass?.spec?.controller)}`));
  const gatewayClass = of('GatewayClass')[0];
  assert.ok(container?.args.includes(`--gateway-controller=${String(gatewayClass?.spec?.controllerName)}`));
  const rules = (of('ClusterRole')[0]?.rules ?? []) as { resources: string[]; verbs: string[] }[];
  for (const r of ['ingresses/status', 'gateways/status', 'httproutes/status', 'gatewayclasses/status'])
    assert.ok(
      rules.some((rule) => rule.resources.includes(r) && rule.verbs.includes('update')),
      r,
    );
  // every namespaced object is in the controller's namespace
  for (const d of docs.filter((x) => x.metadata.namespace))
    assert.equal(d.metadata.namespace, 'ingress-minilab');

  const high = docsOf(ingressManifest('x', { http: 8080, https: 8443 })).find((d) => d.kind === 'Service');
  assert.deepEqual(
    (high?.spec?.ports as { port: number }[]).map((p) => p.port),
    [8080, 8443],
  );
});

test('ingress: host ports 80/443 for root, a Mac, or where unprivileged ports start at 80 or lower; else 8080/8443', () => {
  const low = { http: 80, https: 443 };
  const high = { http: 8080, https: 8443 };
  assert.deepEqual(
    ingressHostPorts('linux', 0, () => 1024),
    low,
  );
  assert.deepEqual(
    ingressHostPorts('darwin', 501, () => 1024),
    low,
  );
  assert.deepEqual(
    ingressHostPorts('linux', 1000, () => 1024),
    high,
  );
  assert.deepEqual(
    ingressHostPorts('linux', 1000, () => 80),
    low,
  );
  assert.deepEqual(
    ingressHostPorts('linux', 1000, () => {
      throw new Error('ENOENT');
    }),
    high,
  );
});

test("ingress: the Gateway API's objects are labelled as the add-on's (how disable finds them), CRDs apart", () => {
  const yaml = `# a comment
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gateways.gateway.networking.k8s.io
  annotations:
    gateway.networking.k8s.io/bundle-version: v1.6.3
spec:
  group: gateway.networking.k8s.io
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: safe-upgrades.gateway.networking.k8s.io
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: httproutes.gateway.networking.k8s.io
  labels:
    a: b
---
`;
  const { crds, others } = gatewayApiObjects(yaml);
  assert.deepEqual(
    crds.map((d) => d.metadata.name),
    ['gateways.gateway.networking.k8s.io', 'httproutes.gateway.networking.k8s.io'],
  );
  assert.deepEqual(
    crds.map((d) => d.metadata.labels),
    [{ 'minilab.io/addon': 'ingress' }, { a: 'b', 'minilab.io/addon': 'ingress' }],
  );
  assert.equal(crds[0]?.metadata.annotations?.['gateway.networking.k8s.io/bundle-version'], 'v1.6.3');
  assert.deepEqual(
    others.map((d) => [d.kind, d.metadata.labels]),
    [['ValidatingAdmissionPolicy', { 'minilab.io/addon': 'ingress' }]],
  );
});

test("ingress: a Gateway API object is the add-on's only while minilab alone wrote it (status aside)", () => {
  const labels = { 'minilab.io/addon': 'ingress' };
  const field = (manager: string, subresource?: string) => ({ manager, operation: 'Apply', subresource });
  assert.equal(appliedByAddon({ metadata: { labels, managedFields: [field('minilab')] } }), true);
  assert.equal(
    appliedByAddon({
      metadata: { labels, managedFields: [field('minilab'), field('kube-apiserver', 'status')] },
    }),
    true,
  );
  // a kubectl apply over it keeps the label, but makes it the user's
  assert.equal(
    appliedByAddon({
      metadata: { labels, managedFields: [field('minilab'), field('kubectl-client-side-apply')] },
    }),
    false,
  );
  assert.equal(appliedByAddon({ metadata: { managedFields: [field('minilab')] } }), false, 'no label');
  const docs = docsOf(ingressManifest('x', { http: 8080, https: 8443 }));
  const args = (
    docs.find((d) => d.kind === 'Deployment') as unknown as {
      spec: { template: { spec: { containers: { args: string[] }[] } } };
    }
  ).spec.template.spec.containers[0]?.args;
  assert.ok(
    args?.includes('--public-http-port=8080') && args.includes('--public-https-port=8443'),
    'redirects name the host ports',
  );
});

test("ingress: a start applies only the Gateway API objects missing, of another release or not established; none of the user's", () => {
  const yaml = (version: string) => `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gateways.gateway.networking.k8s.io
  annotations: { gateway.networking.k8s.io/bundle-version: ${version} }
spec: { group: gateway.networking.k8s.io }
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: httproutes.gateway.networking.k8s.io
  annotations: { gateway.networking.k8s.io/bundle-version: ${version} }
spec: { group: gateway.networking.k8s.io }
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: safe-upgrades.gateway.networking.k8s.io
  annotations: { gateway.networking.k8s.io/bundle-version: ${version} }
`;
  const wanted = gatewayApiObjects(yaml('v1.6.3'));
  const ours = {
    managedFields: [{ manager: 'minilab' }, { manager: 'kube-apiserver', subresource: 'status' }],
  };
  const established = { conditions: [{ type: 'Established', status: 'True' }] };
  const inCluster = (version: string, over: Record<string, object> = {}) => {
    const { crds, others } = gatewayApiObjects(yaml(version));
    const withMeta = <T extends { metadata: object }>(o: T) => ({
      ...o,
      metadata: { ...o.metadata, ...ours },
    });
    return {
      crds: crds.map((c) => ({ ...withMeta(c), status: established, ...over[c.metadata.name ?? ''] })),
      policies: others.map(withMeta),
      bindings: [],
    } as unknown as GatewayApiInCluster;
  };
  const names = (r: { apply: { metadata: { name?: string } }[] }) => r.apply.map((o) => o.metadata.name);
  const none = { crds: [], policies: [], bindings: [] };
  assert.equal(gatewayApiToApply(wanted, none).apply.length, 3, 'a new cluster gets all of them');
  assert.deepEqual(
    gatewayApiToApply(wanted, inCluster('v1.6.3')),
    { apply: [], theirs: [] },
    'a start: nothing again',
  );
  assert.equal(gatewayApiToApply(wanted, inCluster('v1.5.0')).apply.length, 3, 'another release: all again');
  assert.deepEqual(
    names(
      gatewayApiToApply(
        wanted,
        inCluster('v1.6.3', { 'httproutes.gateway.networking.k8s.io': { status: {} } }),
      ),
    ),
    ['httproutes.gateway.networking.k8s.io'],
    'a CRD not established yet is applied again',
  );
  const theirs = inCluster('v1.6.3', {
    'gateways.gateway.networking.k8s.io': {
      metadata: { name: 'gateways.gateway.networking.k8s.io', managedFields: [{ manager: 'kubectl' }] },
    },
  });
  theirs.crds = theirs.crds.filter((c) => c.metadata?.name !== 'httproutes.gateway.networking.k8s.io');
  assert.deepEqual(
    { apply: names(gatewayApiToApply(wanted, theirs)), theirs: gatewayApiToApply(wanted, theirs).theirs },
    { apply: ['httproutes.gateway.networking.k8s.io'], theirs: ['gateways.gateway.networking.k8s.io'] },
    "the user's CRD is kept, and with it their admission policy",
  );
});
