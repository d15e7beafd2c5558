import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { pinnedAddons } from '../../src/addons/images.js';
import { ingressHostPorts } from '../../src/addons/ingress.js';
import type { DockerEngine } from '../../src/providers/docker/engine.js';
import { cleanupTestResources, connect, runId } from '../helpers/engine.js';
import { createServer } from 'node:net';
import getPort from 'get-port';
import { echoServerArchive, kubeClients, sandbox, waitFor } from '../helpers/cluster.js';

// One cluster for every add-on case: made with --addons, so creation with add-ons is tested too.
const profile = `addons-${runId}`;
const node = `${profile}-control-plane`;
const registryContainer = `${profile}-registry`;
let s: Awaited<ReturnType<typeof sandbox>>;
let engine: DockerEngine;
/** The registry's port on the host, as start printed it. */
let registryPort = 0;
/** Images this file put into the host's engine (removed at the end). */
const hostImages: string[] = [];

before(async () => {
  s = await sandbox('addons');
  engine = await connect();
  // the add-ons' images are built from Go modules the first time (a few minutes cold)
  const r = await s.minilab(['start', '-p', profile, '--addons', 'metrics-server,registry,loadbalancer'], {
    timeoutMs: 25 * 60_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Waiting for metrics-server to work/);
  const printed = /registry: push images to 127\.0\.0\.1:(\d+)\/NAME/.exec(r.stderr);
  assert.ok(printed, `start prints the registry's address:\n${r.stderr}`);
  registryPort = Number(printed[1]);
});

after(async () => {
  await s.minilab(['delete', '-p', profile], { timeoutMs: 120_000 }).catch(() => undefined);
  for (const ref of hostImages) {
    await engine.client.docker
      .getImage(ref)
      .remove({ force: true })
      .catch(() => undefined);
  }
  await cleanupTestResources(engine);
  await s.cleanup();
});

const storedAddons = async () =>
  (
    JSON.parse(await readFile(join(s.home, 'profiles', profile, 'profile.json'), 'utf8')) as {
      addons?: string[];
    }
  ).addons;

const listed = async () => {
  const r = await s.minilab(['addons', 'list', '-p', profile, '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { addons: { name: string; enabled: boolean; status?: string }[] }).addons;
};

/** kubectl top nodes and pods through `minilab kubectl`, as a user runs them. */
async function assertTopAnswers(): Promise<void> {
  const nodes = await s.minilab(['kubectl', '-p', profile, '--', 'top', 'nodes', '--no-headers']);
  assert.equal(nodes.code, 0, nodes.stderr);
  assert.match(nodes.stdout, new RegExp(`^${node}\\s+\\d+m\\s+\\d+%\\s+\\d+Mi\\s+\\d+%`, 'm'));
  const pods = await s.minilab(['kubectl', '-p', profile, '--', 'top', 'pods', '-A', '--no-headers']);
  assert.equal(pods.code, 0, pods.stderr);
  assert.match(pods.stdout, new RegExp(`^kube-system\\s+kube-apiserver-${node}\\s+\\d+m\\s+\\d+Mi`, 'm'));
}

/** The registry's tags of a repository, read from the host as a client would. */
async function registryTags(repository: string): Promise<string[]> {
  const res = await fetch(`http://127.0.0.1:${registryPort}/v2/${repository}/tags/list`);
  if (res.status === 404) return [];
  assert.equal(res.status, 200);
  return ((await res.json()) as { tags: string[] | null }).tags ?? [];
}

/** A pod from the registry, pulled whatever the node has (Always), Running and Ready. */
async function runFromRegistry(name: string, image: string): Promise<void> {
  const run = await s.minilab([
    'kubectl',
    '-p',
    profile,
    '--',
    'run',
    name,
    `--image=${image}`,
    '--image-pull-policy=Always',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const wait = await s.minilab(
    ['kubectl', '-p', profile, '--', 'wait', `pod/${name}`, '--for=condition=Ready', '--timeout=120s'],
    { timeoutMs: 150_000 },
  );
  const events = await s.minilab(['kubectl', '-p', profile, '--', 'describe', `pod/${name}`]);
  assert.equal(wait.code, 0, `${wait.stderr}\n${events.stdout}`);
  assert.match(events.stdout, new RegExp(`Successfully pulled image "${image.replace(/[.]/g, '\\.')}"`));
}

test('start --addons metrics-server,registry,loadbalancer: kubectl top answers when start returns; the profile remembers all three', async () => {
  await assertTopAnswers();
  assert.deepEqual(await storedAddons(), ['metrics-server', 'registry', 'loadbalancer']);
  assert.equal((await listed()).find((a) => a.name === 'metrics-server')?.enabled, true);
  // the image is laid out as upstream's: the binary at the root as the entrypoint, run as nobody
  const { metricsServer } = await pinnedAddons();
  const image = await engine.client.docker
    .getImage(`registry.k8s.io/metrics-server/metrics-server:${metricsServer}`)
    .inspect();
  assert.deepEqual(image.Config.Entrypoint, ['/metrics-server']);
  assert.equal(image.Config.User, '65534');
});

test('registry: the host pushes to 127.0.0.1:PORT and pods run the image under that name (and localhost:PORT)', async () => {
  const docker = engine.client.docker;
  const local = `minilab-test/echo:${runId}`;
  const pushed = `127.0.0.1:${registryPort}/echo:v1`;
  hostImages.push(local, pushed);
  const loaded = await docker.loadImage(await echoServerArchive(local, s.dir));
  await new Promise((resolve, reject) =>
    docker.modem.followProgress(loaded, (e) => (e ? reject(e) : resolve(e))),
  );
  await docker.getImage(local).tag({ repo: `127.0.0.1:${registryPort}/echo`, tag: 'v1' });
  // Docker asks for credentials with every push: none (the registry takes anonymous pushes)
  const stream = await docker
    .getImage(pushed)
    .push({ authconfig: { serveraddress: `127.0.0.1:${registryPort}` } });
  const events = await new Promise<{ error?: string }[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (e, out: { error?: string }[]) => (e ? reject(e) : resolve(out))),
  );
  assert.deepEqual(
    events.filter((e) => e.error),
    [],
    'docker push to the registry succeeds',
  );
  assert.deepEqual(await registryTags('echo'), ['v1']);
  // addons list says where it answers, and that the load balancer's agent runs
  const states = await listed();
  assert.equal(states.find((a) => a.name === 'registry')?.status, `127.0.0.1:${registryPort}`);
  assert.match(states.find((a) => a.name === 'loadbalancer')?.status ?? '', /^agent running \(pid \d+\)$/);
  assert.equal(states.find((a) => a.name === 'metrics-server')?.status, undefined);
  await runFromRegistry('from-registry', pushed);
  await runFromRegistry('from-localhost', `localhost:${registryPort}/echo:v1`);
  // the registry is its own container, on loopback only, unprivileged, not a node of the cluster
  const info = await docker.getContainer(registryContainer).inspect();
  assert.deepEqual(info.HostConfig.PortBindings?.['5000/tcp'], [
    { HostIp: '127.0.0.1', HostPort: String(registryPort) },
  ]);
  assert.equal(info.HostConfig.Privileged, false);
  const nodes = await s.minilab(['kubectl', '-p', profile, '--', 'get', 'nodes', '-o', 'name']);
  assert.equal(nodes.stdout.trim(), `node/${node}`);
});

/** The host ports of the load balancer cases (free when the file starts). */
let lbPort = 0;
let takenPort = 0;

/** A Service's EXTERNAL-IP (the first ingress address), or undefined while pending. */
async function externalIp(name: string): Promise<string | undefined> {
  const { core } = kubeClients(s.kubeconfig, profile);
  const svc = await core.readNamespacedService({ name, namespace: 'default' });
  return svc.status?.loadBalancer?.ingress?.[0]?.ip;
}

/** The pods that answered GET / at 127.0.0.1:PORT over `tries` connections (each a new one). */
async function answering(port: number, tries: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < tries; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } });
    const body = await res.text();
    assert.match(body, /^hello from lb-echo-/);
    seen.add(body.trim());
  }
  return seen;
}

const kubectl = async (...args: string[]) => {
  const r = await s.minilab(['kubectl', '-p', profile, '--', ...args], { timeoutMs: 150_000 });
  assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

test('loadbalancer: a LoadBalancer Service gets EXTERNAL-IP 127.0.0.1 and answers from the host, spread over its pods', async () => {
  lbPort = await getPort({ host: '127.0.0.1' });
  await kubectl(
    'create',
    'deployment',
    'lb-echo',
    `--image=127.0.0.1:${registryPort}/echo:v1`,
    '--replicas=2',
  );
  await kubectl('rollout', 'status', 'deployment/lb-echo', '--timeout=120s');
  await kubectl(
    'expose',
    'deployment',
    'lb-echo',
    '--type=LoadBalancer',
    `--port=${lbPort}`,
    '--target-port=8080',
  );
  await waitFor('EXTERNAL-IP 127.0.0.1', 30_000, async () =>
    (await externalIp('lb-echo')) === '127.0.0.1' ? true : undefined,
  );
  const listed = await kubectl('get', 'service', 'lb-echo', '--no-headers');
  assert.match(listed, new RegExp(`^lb-echo\\s+LoadBalancer\\s+\\S+\\s+127\\.0\\.0\\.1\\s+${lbPort}:`));
  // each connection goes to a ready pod chosen afresh: both answer within 30 (2^-29 otherwise)
  const pods = await answering(lbPort, 30);
  assert.equal(pods.size, 2, [...pods].join(', '));
});

test('loadbalancer: a port another program holds is an event on the Service and no address; it is served once free', async () => {
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  takenPort = (holder.address() as { port: number }).port;
  try {
    await kubectl(
      'expose',
      'deployment',
      'lb-echo',
      '--name=lb-taken',
      '--type=LoadBalancer',
      `--port=${takenPort}`,
      '--target-port=8080',
    );
    const events = await waitFor('the PortInUse event', 30_000, async () => {
      const out = await kubectl(
        'get',
        'events',
        '--field-selector',
        'involvedObject.name=lb-taken',
        '-o',
        'custom-columns=REASON:.reason,MSG:.message',
        '--no-headers',
      );
      return /PortInUse/.test(out) ? out : undefined;
    });
    assert.match(events, new RegExp(`port ${takenPort} on 127\\.0\\.0\\.1 is held by another program`));
    assert.equal(await externalIp('lb-taken'), undefined, 'EXTERNAL-IP stays pending');
  } finally {
    await new Promise((r) => holder.close(r));
  }
  await waitFor('lb-taken served once the port is free', 30_000, async () =>
    (await externalIp('lb-taken')) === '127.0.0.1' ? true : undefined,
  );
  assert.ok((await answering(takenPort, 1)).size === 1);
});

/** The ingress add-on's host ports (80/443 as root, as CI runs). */
const ingressPorts = ingressHostPorts();

/**
 * GET PATH at the ingress's host port with this Host (and SNI, over HTTPS, verified against the
 * profile's ingress CA): what `curl --resolve NAME:PORT:127.0.0.1` does.
 */
async function viaIngress(
  scheme: 'http' | 'https',
  host: string,
  path: string,
): Promise<{ status: number; body: string }> {
  const ca =
    scheme === 'https' ? await readFile(join(s.home, 'profiles', profile, 'ingress-ca.crt')) : undefined;
  return new Promise((resolve, reject) => {
    const opts = {
      host: '127.0.0.1',
      port: ingressPorts[scheme],
      path,
      headers: { host, connection: 'close' },
      ...(ca ? { servername: host, ca } : {}),
    };
    const req = (scheme === 'https' ? httpsRequest : httpRequest)(opts, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const ingressManifestYaml = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: app
spec:
  rules:
    - host: app.example
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: { service: { name: ing-a, port: { number: 80 } } }
          - path: /b
            pathType: Prefix
            backend: { service: { name: ing-b, port: { name: web } } }
`;

const gatewayManifestYaml = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: web
spec:
  gatewayClassName: minilab
  listeners:
    - { name: http, protocol: HTTP, port: 80 }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: gw
spec:
  parentRefs: [{ name: web }]
  hostnames: [gw.example]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /b } }]
      backendRefs: [{ name: ing-b, port: 80 }]
    - backendRefs: [{ name: ing-a, port: 80 }]
`;

/** kubectl apply -f - of a manifest, through `minilab kubectl`. */
async function applyYaml(yaml: string, dir: string, name: string): Promise<void> {
  const file = join(dir, name);
  await writeFile(file, yaml);
  await kubectl('apply', '-f', file);
}

test('ingress: enable answers on the host; an Ingress with host rules answers over HTTP and HTTPS (the CA verifies), its ADDRESS 127.0.0.1', async () => {
  // a host port another program holds: refused at once (exit 8), served once it is free
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(ingressPorts.https, '127.0.0.1', r));
  try {
    const held = await s.minilab(['addons', 'enable', '-p', profile, 'ingress'], { timeoutMs: 20 * 60_000 });
    assert.equal(held.code, 8, held.stderr);
    assert.match(
      held.stderr,
      new RegExp(`port ${ingressPorts.https} on 127\\.0\\.0\\.1 is held by another program`),
    );
  } finally {
    await new Promise((r) => holder.close(r));
  }
  const on = await s.minilab(['addons', 'enable', '-p', profile, 'ingress'], { timeoutMs: 20 * 60_000 });
  assert.equal(on.code, 0, on.stderr);
  assert.match(on.stdout, /Ingress rules and HTTPRoutes answer at http:\/\/127\.0\.0\.1/);
  assert.deepEqual(await storedAddons(), ['metrics-server', 'registry', 'loadbalancer', 'ingress']);
  const state = (await listed()).find((a) => a.name === 'ingress');
  assert.equal(state?.enabled, true);
  assert.match(state?.status ?? '', /^http:\/\/127\.0\.0\.1/);
  // the controller's image is minimal and runs as nonroot
  const { ingress: version } = await pinnedAddons();
  const image = await engine.client.docker.getImage(`minilab/ingress-controller:${version}`).inspect();
  assert.deepEqual(image.Config.Entrypoint, ['/ingress-controller']);
  assert.equal(image.Config.User, '65532');

  await kubectl('expose', 'deployment', 'lb-echo', '--name=ing-a', '--port=80', '--target-port=8080');
  await kubectl('create', 'deployment', 'ing-b', `--image=127.0.0.1:${registryPort}/echo:v1`);
  await kubectl('expose', 'deployment', 'ing-b', '--port=80', '--target-port=8080');
  await kubectl(
    'patch',
    'service',
    'ing-b',
    '--type=json',
    '-p',
    '[{"op":"add","path":"/spec/ports/0/name","value":"web"}]',
  );
  await kubectl('rollout', 'status', 'deployment/ing-b', '--timeout=120s');
  await applyYaml(ingressManifestYaml, s.dir, 'ingress.yaml');

  const root = await waitFor('the Ingress to route app.example', 60_000, async () => {
    const r = await viaIngress('http', 'app.example', '/');
    return r.status === 200 ? r : undefined;
  });
  assert.match(root.body, /^hello from lb-echo-/);
  const b = await viaIngress('http', 'app.example', '/b/anything');
  assert.equal(b.status, 200);
  assert.match(b.body, /^hello from ing-b-/, 'the longer prefix wins, the port named');
  // element-wise prefix: /bx is not under /b
  assert.match((await viaIngress('http', 'app.example', '/bx')).body, /^hello from lb-echo-/);
  assert.equal((await viaIngress('http', 'other.example', '/')).status, 404, 'no rule for the host');
  const tls = await viaIngress('https', 'app.example', '/b');
  assert.equal(tls.status, 200);
  assert.match(tls.body, /^hello from ing-b-/);
  const address = await waitFor('the Ingress ADDRESS', 30_000, async () => {
    const out = await kubectl('get', 'ingress', 'app', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}');
    return out.trim() || undefined;
  });
  assert.equal(address, '127.0.0.1');
});

test('ingress: a Gateway of class minilab and an HTTPRoute answer from the host; both report their status', async () => {
  await applyYaml(gatewayManifestYaml, s.dir, 'gateway.yaml');
  const routed = await waitFor('the HTTPRoute to route gw.example', 60_000, async () => {
    const r = await viaIngress('http', 'gw.example', '/b');
    return r.status === 200 ? r : undefined;
  });
  assert.match(routed.body, /^hello from ing-b-/);
  assert.match((await viaIngress('http', 'gw.example', '/')).body, /^hello from lb-echo-/);
  const condition = async (kind: string, name: string, path: string, type: string) =>
    (await kubectl('get', kind, name, '-o', `jsonpath={${path}[?(@.type=="${type}")].status}`)).trim();
  await waitFor('the Gateway to be programmed', 30_000, async () =>
    (await condition('gateway', 'web', '.status.conditions', 'Programmed')) === 'True' ? true : undefined,
  );
  assert.equal(await condition('gateway', 'web', '.status.conditions', 'Accepted'), 'True');
  assert.equal(
    (await kubectl('get', 'gateway', 'web', '-o', 'jsonpath={.status.addresses[0].value}')).trim(),
    '127.0.0.1',
  );
  assert.equal(await condition('httproute', 'gw', '.status.parents[0].conditions', 'Accepted'), 'True');
  assert.equal(await condition('httproute', 'gw', '.status.parents[0].conditions', 'ResolvedRefs'), 'True');
});

test('enable on a stopped cluster is refused (exit 3, nothing changed); start brings the add-on back working', async () => {
  const agent = join(s.home, 'profiles', profile, 'loadbalancer.json');
  const { pid } = JSON.parse(await readFile(agent, 'utf8')) as { pid: number };
  const stop = await s.minilab(['stop', '-p', profile]);
  assert.equal(stop.code, 0, stop.stderr);
  // the load balancer's agent ended with the cluster, and its ports with it
  assert.throws(() => process.kill(pid, 0), 'the agent has exited');
  await assert.rejects(fetch(`http://127.0.0.1:${lbPort}/`));
  const states = await listed();
  assert.match(
    states.find((a) => a.name === 'registry')?.status ?? '',
    /, stopped \(minilab start -p .* starts it\)$/,
  );
  assert.match(states.find((a) => a.name === 'loadbalancer')?.status ?? '', /^agent not running/);
  const refused = await s.minilab(['addons', 'enable', '-p', profile, 'metrics-server']);
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(refused.stderr, /is stopped/);
  assert.match(refused.stderr, /hint: start it with: minilab start/);
  assert.deepEqual(await storedAddons(), ['metrics-server', 'registry', 'loadbalancer', 'ingress']);
  const start = await s.minilab(['start', '-p', profile], { timeoutMs: 5 * 60_000 });
  assert.equal(start.code, 0, start.stderr);
  assert.match(start.stderr, /Waiting for metrics-server to work/);
  assert.match(start.stderr, new RegExp(`registry: push images to 127\\.0\\.0\\.1:${registryPort}/`));
  await assertTopAnswers();
  // the registry kept its port and what was pushed; the nodes still pull from it
  assert.deepEqual(await registryTags('echo'), ['v1']);
  await runFromRegistry('after-restart', `127.0.0.1:${registryPort}/echo:v1`);
  // the load balancer serves again, on the same port, and so does the ingress
  await waitFor('the LoadBalancer Service to answer after the restart', 60_000, async () =>
    (await answering(lbPort, 1)).size === 1 ? true : undefined,
  );
  const routed = await waitFor('the Ingress to answer after the restart', 60_000, async () => {
    const r = await viaIngress('https', 'app.example', '/b').catch(() => undefined);
    return r?.status === 200 ? r : undefined;
  });
  assert.match(routed.body, /^hello from ing-b-/);
});

test('disable removes every object enable made and forgets it; again is a no-op that says so; enable brings it back', async () => {
  const off = await s.minilab(['addons', 'disable', '-p', profile, 'metrics-server', '-o', 'json']);
  assert.equal(off.code, 0, off.stderr);
  assert.deepEqual(JSON.parse(off.stdout), { profile, disabled: ['metrics-server'], notEnabled: [] });
  assert.deepEqual(await storedAddons(), ['registry', 'loadbalancer', 'ingress']);
  const { config, core, apps } = kubeClients(s.kubeconfig, profile);
  const gone = async (what: string, read: () => Promise<unknown>) => {
    await assert.rejects(read, (err: { code?: number }) => err.code === 404, `${what} is removed`);
  };
  await gone('the APIService', () =>
    config.makeApiClient(k8s.ApiregistrationV1Api).readAPIService({ name: 'v1beta1.metrics.k8s.io' }),
  );
  await gone('the Deployment', () =>
    apps.readNamespacedDeployment({ name: 'metrics-server', namespace: 'kube-system' }),
  );
  await gone('the Service', () =>
    core.readNamespacedService({ name: 'metrics-server', namespace: 'kube-system' }),
  );
  const rbac = config.makeApiClient(k8s.RbacAuthorizationV1Api);
  await gone('the ClusterRole', () => rbac.readClusterRole({ name: 'system:metrics-server' }));
  await gone('the ClusterRoleBinding', () =>
    rbac.readClusterRoleBinding({ name: 'metrics-server:system:auth-delegator' }),
  );
  const top = await s.minilab(['kubectl', '-p', profile, '--', 'top', 'nodes']);
  assert.notEqual(top.code, 0, 'no metrics API once disabled');

  const again = await s.minilab(['addons', 'disable', '-p', profile, 'metrics-server']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /metrics-server was not enabled in cluster ".*": nothing to do/);

  const on = await s.minilab(['addons', 'enable', '-p', profile, 'metrics-server', '-o', 'json']);
  assert.equal(on.code, 0, on.stderr);
  const enabled = JSON.parse(on.stdout) as { enabled: { name: string; ms: number }[] };
  assert.equal(enabled.enabled[0]?.name, 'metrics-server');
  await assertTopAnswers();
  assert.deepEqual(await storedAddons(), ['metrics-server', 'registry', 'loadbalancer', 'ingress']);
});

test("registry: disable removes its container, its storage and the nodes' configuration; enable makes a new one", async () => {
  const off = await s.minilab(['addons', 'disable', '-p', profile, 'registry', '-o', 'json']);
  assert.equal(off.code, 0, off.stderr);
  assert.deepEqual(JSON.parse(off.stdout), { profile, disabled: ['registry'], notEnabled: [] });
  assert.deepEqual(await storedAddons(), ['metrics-server', 'loadbalancer', 'ingress']);
  const docker = engine.client.docker;
  await assert.rejects(docker.getContainer(registryContainer).inspect(), /no such container/i);
  await assert.rejects(docker.getVolume(`${registryContainer}-data`).inspect(), /no such volume/i);
  const hosts = await s.minilab(['ssh', '-p', profile, '--', 'ls', '/etc/containerd/certs.d']);
  assert.equal(hosts.code, 0, hosts.stderr);
  assert.equal(hosts.stdout.trim(), '', 'no hosts.toml is left for the registry');
  await assert.rejects(fetch(`http://127.0.0.1:${registryPort}/v2/`));

  const again = await s.minilab(['addons', 'disable', '-p', profile, 'registry']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /registry was not enabled in cluster ".*": nothing to do/);

  const on = await s.minilab(['addons', 'enable', '-p', profile, 'registry']);
  assert.equal(on.code, 0, on.stderr);
  const printed = /push images to 127\.0\.0\.1:(\d+)\/NAME/.exec(on.stdout);
  assert.ok(printed, on.stdout);
  registryPort = Number(printed[1]);
  assert.deepEqual(await registryTags('echo'), [], 'a new registry starts empty');
  assert.deepEqual(await storedAddons(), ['metrics-server', 'registry', 'loadbalancer', 'ingress']);
});

test('ingress: disable removes the controller, its classes, the Gateway API CRDs and its CA, closes 80/443; LoadBalancer Services stay served', async () => {
  const off = await s.minilab(['addons', 'disable', '-p', profile, 'ingress', '-o', 'json']);
  assert.equal(off.code, 0, off.stderr);
  assert.deepEqual(JSON.parse(off.stdout), { profile, disabled: ['ingress'], notEnabled: [] });
  assert.deepEqual(await storedAddons(), ['metrics-server', 'registry', 'loadbalancer']);
  const { config, core } = kubeClients(s.kubeconfig, profile);
  await assert.rejects(
    core.readNamespace({ name: 'ingress-minilab' }),
    (e: { code?: number }) => e.code === 404,
  );
  await assert.rejects(
    config.makeApiClient(k8s.NetworkingV1Api).readIngressClass({ name: 'minilab' }),
    (e: { code?: number }) => e.code === 404,
  );
  await assert.rejects(
    config
      .makeApiClient(k8s.ApiextensionsV1Api)
      .readCustomResourceDefinition({ name: 'httproutes.gateway.networking.k8s.io' }),
    (e: { code?: number }) => e.code === 404,
  );
  await assert.rejects(
    config
      .makeApiClient(k8s.AdmissionregistrationV1Api)
      .readValidatingAdmissionPolicy({ name: 'safe-upgrades.gateway.networking.k8s.io' }),
    (e: { code?: number }) => e.code === 404,
    "the Gateway API install's admission policy goes with its CRDs",
  );
  await assert.rejects(readFile(join(s.home, 'profiles', profile, 'ingress-ca.crt')), /ENOENT/);
  await assert.rejects(viaIngress('http', 'app.example', '/'), 'nothing listens on the ingress port');
  // the agent serves the loadbalancer add-on's Services alone now
  assert.equal((await answering(lbPort, 1)).size, 1);
  const again = await s.minilab(['addons', 'disable', '-p', profile, 'ingress']);
  assert.match(again.stdout, /ingress was not enabled in cluster ".*": nothing to do/);
});

test('loadbalancer and ingress disabled in one command: the agent they shared ends, its ports close, EXTERNAL-IP is taken back', async () => {
  const on = await s.minilab(['addons', 'enable', '-p', profile, 'ingress']);
  assert.equal(on.code, 0, on.stderr);
  const agent = join(s.home, 'profiles', profile, 'loadbalancer.json');
  const record = JSON.parse(await readFile(agent, 'utf8')) as { pid: number; users: string[] };
  assert.deepEqual(record.users, ['loadbalancer', 'ingress'], 'one agent serves both');
  const off = await s.minilab(['addons', 'disable', '-p', profile, 'loadbalancer', 'ingress', '-o', 'json']);
  assert.equal(off.code, 0, off.stderr);
  assert.deepEqual(JSON.parse(off.stdout), {
    profile,
    disabled: ['loadbalancer', 'ingress'],
    notEnabled: [],
  });
  assert.throws(() => process.kill(record.pid, 0), 'the agent has exited');
  await assert.rejects(readFile(agent), /ENOENT/, 'and no other agent was started in its place');
  await assert.rejects(fetch(`http://127.0.0.1:${lbPort}/`), 'nothing listens on its port any more');
  await assert.rejects(viaIngress('http', 'app.example', '/'), 'nor on the ingress port');
  assert.equal(await externalIp('lb-echo'), undefined);
  assert.equal(await externalIp('lb-taken'), undefined);
  const again = await s.minilab(['addons', 'disable', '-p', profile, 'loadbalancer']);
  assert.match(again.stdout, /loadbalancer was not enabled in cluster ".*": nothing to do/);
});
