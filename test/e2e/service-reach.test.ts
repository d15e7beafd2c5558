// Service IPs from the node's own network namespace (issue 24): the API server, the kubelet,
// hostNetwork pods and `minilab ssh` reach ClusterIPs through kube-proxy's DNAT, so admission
// webhooks and aggregated APIs served behind a Service work; packets for a Service IP that
// kube-proxy did not translate are dropped inside the node (minilab-service-filter). One cluster
// for the whole file. Traffic goes only to this cluster's own addresses: the one packet sent to
// an unused Service IP is caught by a second DROP rule at the node's last hook if the rule under
// test ever lets it through, so it never leaves the node.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type { DockerEngine } from '../../src/providers/docker/engine.js';
import { cleanupTestResources, connect, runId } from '../helpers/engine.js';
import { echoServerArchive, sandbox, waitFor, type Run } from '../helpers/cluster.js';

const profile = `reach-${runId}`;
const image = `minilab-test/echo-reach:${runId}`;
const ns = `reach-${runId}`;
/** The Service in front of the webhook server, and the DNS names its certificate covers. */
const svc = 'webhook';
const svcNames = [`${svc}.${ns}.svc`, `${svc}.${ns}.svc.cluster.local`];
const webhookName = `reach-${runId}.minilab.test`;
const apiGroup = `reach-${runId}.minilab.test`;
const SERVICE_CIDR = '10.96.0.0/16';
const CHAIN = 'MINILAB-SERVICES';
const REJECT_LABEL = 'minilab.test/reject';

let s: Awaited<ReturnType<typeof sandbox>>;
let engine: DockerEngine;
let caPem = '';

before(async () => {
  s = await sandbox('service-reach');
  engine = await connect();
  const r = await s.minilab(['start', '-p', profile], { timeoutMs: 20 * 60_000 });
  assert.equal(r.code, 0, r.stderr);
  // The echo-server image (with its webhook mode), loaded from an archive file.
  const archive = join(s.dir, 'echo.tar');
  await pipeline(await echoServerArchive(image, s.dir), createWriteStream(archive));
  const load = await s.minilab(['image', 'load', '-p', profile, '--archive', archive]);
  assert.equal(load.code, 0, load.stderr);
  // A certificate for the Service's names, made by the same program on the host (its own CA).
  await promisify(execFile)(join(s.dir, 'echo-server'), ['cert', join(s.dir, 'tls'), ...svcNames]);
  caPem = await readFile(join(s.dir, 'tls', 'tls.crt'), 'utf8');
});

after(async () => {
  // Deleting the cluster takes everything made inside it (namespace, webhook configuration,
  // APIService, the test's iptables rules) with it.
  await s.minilab(['delete', '-p', profile], { timeoutMs: 120_000 }).catch(() => undefined);
  await cleanupTestResources(engine);
  await s.cleanup();
});

/** A bash script in the node's own network namespace, as a user's `minilab ssh` runs it. */
const ssh = (script: string): Promise<Run> => s.minilab(['ssh', '-p', profile, '--', 'bash', '-c', script]);

const kubectl = (args: string[], input?: string): Promise<Run> =>
  s.minilab(['kubectl', '-p', profile, '--', ...args], input === undefined ? {} : { input });

async function kubectlOk(args: string[], input?: string): Promise<string> {
  const r = await kubectl(args, input);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const apply = (obj: unknown) => kubectlOk(['apply', '-f', '-'], JSON.stringify(obj));

async function clusterIp(namespace: string, name: string): Promise<string> {
  const ip = (
    await kubectlOk(['get', 'service', '-n', namespace, name, '-o', 'jsonpath={.spec.clusterIP}'])
  ).trim();
  assert.match(ip, /^10\.96\.\d+\.\d+$/);
  return ip;
}

/** The packet count of the DROP rule for `cidr` in the chain (iptables -S -v prints "-c PKTS BYTES"). */
async function dropCount(cidr: string): Promise<number> {
  const rules = await ssh(`iptables -w 5 -t filter -S ${CHAIN} -v`);
  assert.equal(rules.code, 0, rules.stderr);
  const line = rules.stdout.split('\n').find((l) => l.includes(`-d ${cidr} `) && l.includes('-j DROP'));
  assert.ok(line, `no DROP rule for ${cidr} in ${CHAIN}:\n${rules.stdout}`);
  const m = / -c (\d+) \d+/.exec(line);
  assert.ok(m, line);
  return Number(m[1]);
}

/** The node's filter rules: the chain's shape, and one jump from each of OUTPUT and FORWARD. */
async function assertFilterInstalled(): Promise<void> {
  const r = await ssh(
    `iptables -w 5 -S ${CHAIN}; echo ---; iptables -w 5 -S OUTPUT; echo ---; iptables -w 5 -S FORWARD; echo ---; ip -4 route show type blackhole`,
  );
  assert.equal(r.code, 0, r.stderr);
  const [chain = '', output = '', forward = '', blackholes = ''] = r.stdout.split('---\n');
  assert.match(
    chain,
    new RegExp(
      `^-A ${CHAIN} -d ${SERVICE_CIDR.replace(/[./]/g, '\\$&')} -m conntrack ! --ctstate DNAT .*-j DROP$`,
      'm',
    ),
  );
  for (const [hook, rules] of [
    ['OUTPUT', output],
    ['FORWARD', forward],
  ] as const) {
    const jumps = rules.split('\n').filter((l) => l === `-A ${hook} -j ${CHAIN}`);
    assert.equal(jumps.length, 1, `${hook} should jump to ${CHAIN} once:\n${rules}`);
  }
  assert.equal(blackholes.trim(), '', 'no blackhole route is left');
}

/** A TCP connection from the node's own namespace (bash's /dev/tcp), bounded by `timeout`. */
const nodeConnect = (ip: string, port: number) =>
  ssh(`timeout 10 bash -c 'exec 3<>/dev/tcp/${ip}/${port}' && echo connected`);

test('the node reaches the kubernetes Service and kube-dns (TCP 53) from its own network namespace', async () => {
  await assertFilterInstalled();
  // The rule lives in the iptables backend kube-proxy writes to (its Service chains are there)
  // and that the kubelet marked for it.
  const backend = await ssh(
    'iptables -w 5 -t nat -S KUBE-SERVICES >/dev/null && iptables -w 5 -t mangle -S KUBE-IPTABLES-HINT >/dev/null && iptables -V',
  );
  assert.equal(
    backend.code,
    0,
    `kube-proxy's chains are not in the node's iptables backend: ${backend.stderr}`,
  );

  const api = await clusterIp('default', 'kubernetes');
  const dns = await clusterIp('kube-system', 'kube-dns');
  for (const [ip, port] of [
    [api, 443],
    [dns, 53],
  ] as const) {
    const r = await nodeConnect(ip, port);
    assert.equal(r.code, 0, `connect to ${ip}:${port} from the node: ${r.stderr}`);
    assert.equal(r.stdout.trim(), 'connected');
  }
  // A real request through the Service address: the API server's certificate names 10.96.0.1.
  const livez = await ssh(
    `kubectl --kubeconfig /etc/kubernetes/admin.conf --server https://${api}:443 --request-timeout 10s get --raw /livez`,
  );
  assert.equal(livez.code, 0, livez.stderr);
  assert.equal(livez.stdout.trim(), 'ok');
  // And a DNS answer over TCP through kube-dns's Service address: a query for the kubernetes
  // Service's name (length-prefixed, RFC 1035 4.2.2), answered with its ClusterIP.
  const name = ['kubernetes', 'default', 'svc', 'cluster', 'local'];
  const question = Buffer.concat([
    Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...name.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0, 0, 1, 0, 1]),
  ]);
  const query = Buffer.concat([Buffer.from([0, question.length]), question]);
  const escaped = [...query].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
  const answer = await ssh(
    `exec 3<>/dev/tcp/${dns}/53 && printf '${escaped}' >&3 && ` +
      `set -- $(timeout 10 dd bs=1 count=2 status=none <&3 | od -An -tu1) && ` +
      `timeout 10 dd bs=1 count=$(($1 * 256 + $2)) status=none <&3 | od -An -tx1 | tr -s ' \\n' ' '`,
  );
  assert.equal(answer.code, 0, answer.stderr);
  const want = api
    .split('.')
    .map((o) => Number(o).toString(16).padStart(2, '0'))
    .join(' ');
  assert.match(answer.stdout, /^ ?12 34 /, `the answer to our query: ${answer.stdout}`);
  assert.ok(answer.stdout.includes(want), `CoreDNS answered with ${api} (${want}): ${answer.stdout}`);
});

test('a ValidatingWebhookConfiguration served by a pod behind a Service denies a labelled ConfigMap and admits others', async () => {
  const [crt, key] = await Promise.all(['tls.crt', 'tls.key'].map((f) => readFile(join(s.dir, 'tls', f))));
  const labels = { app: svc };
  await apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  await apply({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name: 'webhook-tls', namespace: ns },
    data: { 'tls.crt': crt?.toString('base64'), 'tls.key': key?.toString('base64') },
  });
  await apply({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: svc, namespace: ns },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: 'webhook',
              image,
              imagePullPolicy: 'Never',
              args: ['webhook'],
              ports: [{ containerPort: 8443 }],
              volumeMounts: [{ name: 'tls', mountPath: '/tls', readOnly: true }],
              readinessProbe: {
                httpGet: { scheme: 'HTTPS', port: 8443, path: '/healthz' },
                periodSeconds: 1,
              },
            },
          ],
          volumes: [{ name: 'tls', secret: { secretName: 'webhook-tls' } }],
        },
      },
    },
  });
  await apply({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: svc, namespace: ns },
    spec: { selector: labels, ports: [{ port: 443, targetPort: 8443 }] },
  });
  await kubectlOk(['rollout', 'status', '-n', ns, `deployment/${svc}`, '--timeout=180s']);

  // Only this namespace's ConfigMaps go to the webhook; a failure to call it denies (Fail).
  await apply({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: webhookName },
    webhooks: [
      {
        name: `configmaps.${webhookName}`,
        clientConfig: {
          service: { namespace: ns, name: svc, path: '/validate', port: 443 },
          caBundle: Buffer.from(caPem).toString('base64'),
        },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['configmaps'] }],
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
        failurePolicy: 'Fail',
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        timeoutSeconds: 10,
      },
    ],
  });
  const configMap = (name: string, reject: boolean) =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: ns, ...(reject ? { labels: { [REJECT_LABEL]: 'yes' } } : {}) },
      data: { k: 'v' },
    });

  // The API server picks the configuration up within a moment: until then a labelled ConfigMap
  // is created (and removed again here). Other errors are retried and the last one reported.
  let attempt = 0;
  const denied = await waitFor('the webhook to deny a labelled ConfigMap', 60_000, async () => {
    const name = `denied-${attempt++}`;
    const r = await kubectl(['create', '-f', '-'], configMap(name, true));
    if (r.code === 0) {
      await kubectlOk(['delete', 'configmap', '-n', ns, name]);
      return undefined;
    }
    if (!/minilab test webhook denies/.test(r.stderr)) throw new Error(r.stderr);
    return r;
  });
  assert.match(
    denied.stderr,
    /admission webhook ".*" denied the request: minilab test webhook denies denied-\d+/,
  );

  const admitted = await kubectl(['create', '-f', '-'], configMap('admitted', false));
  assert.equal(admitted.code, 0, admitted.stderr);
  const again = await kubectl(['create', '-f', '-'], configMap('denied-again', true));
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /denied the request: minilab test webhook denies denied-again/);
  const present = await kubectlOk([
    'get',
    'configmaps',
    '-n',
    ns,
    '-o',
    'jsonpath={.items[*].metadata.name}',
  ]);
  assert.ok(present.split(' ').includes('admitted'));
  assert.ok(!present.split(' ').includes('denied-again'));

  // The server saw both calls: the API server reached it through the Service.
  const logs = await kubectlOk(['logs', '-n', ns, `deployment/${svc}`]);
  assert.match(logs, /validate admitted: allowed=true/);
  assert.match(logs, /validate denied-again: allowed=false/);
});

test('an APIService backed by a Service is Available and kubectl get --raw reaches it', async () => {
  const name = `v1.${apiGroup}`;
  await apply({
    apiVersion: 'apiregistration.k8s.io/v1',
    kind: 'APIService',
    metadata: { name },
    spec: {
      group: apiGroup,
      version: 'v1',
      service: { namespace: ns, name: svc, port: 443 },
      caBundle: Buffer.from(caPem).toString('base64'),
      groupPriorityMinimum: 1000,
      versionPriority: 15,
    },
  });
  await waitFor(`APIService ${name} to be Available`, 120_000, async () => {
    const out = await kubectlOk([
      'get',
      'apiservice',
      name,
      '-o',
      'jsonpath={.status.conditions[?(@.type=="Available")].status}',
    ]);
    return out.trim() === 'True' ? true : undefined;
  });
  const raw = await kubectlOk(['get', '--raw', `/apis/${apiGroup}/v1`]);
  const doc = JSON.parse(raw) as { kind?: string; groupVersion?: string };
  assert.equal(doc.kind, 'APIResourceList');
  assert.equal(doc.groupVersion, `${apiGroup}/v1`);
  const logs = await kubectlOk(['logs', '-n', ns, `deployment/${svc}`]);
  assert.match(logs, new RegExp(`GET /apis/${apiGroup.replace(/\./g, '\\.')}/v1`));
});

test('a packet for a Service IP with no Service behind it is dropped inside the node, from the node and from a pod', async () => {
  // An address in the Service range that no Service holds.
  const used = new Set(
    (await kubectlOk(['get', 'services', '-A', '-o', 'jsonpath={.items[*].spec.clusterIPs[*]}']))
      .trim()
      .split(/\s+/),
  );
  const unused = ['10.96.255.254', '10.96.255.253', '10.96.255.252'].find((ip) => !used.has(ip));
  assert.ok(unused);
  // The safety net: should the rule under test let the packet through, it is dropped at the
  // node's very last hook instead of leaving the machine; its counter must stay 0.
  const net = `-d ${unused}/32 -m comment --comment minilab-test-safety-net -j DROP`;
  const netAdd = await ssh(`iptables -w 5 -t mangle -I POSTROUTING 1 ${net}`);
  assert.equal(netAdd.code, 0, netAdd.stderr);
  const netCount = async () => {
    const r = await ssh('iptables -w 5 -t mangle -S POSTROUTING -v');
    const m = / -c (\d+) \d+/.exec(
      r.stdout.split('\n').find((l) => l.includes('minilab-test-safety-net')) ?? '',
    );
    assert.ok(m, `the safety net rule is missing:\n${r.stdout}`);
    return Number(m[1]);
  };
  try {
    const before = await dropCount(SERVICE_CIDR);
    const r = await nodeConnect(unused, 80);
    assert.notEqual(r.code, 0, 'the connection must not be made');
    assert.doesNotMatch(r.stderr, /Invalid argument/, 'not the blackhole route of older images');
    const afterNode = await dropCount(SERVICE_CIDR);
    assert.ok(afterNode > before, `the node's SYN hit the DROP rule (${before} -> ${afterNode})`);

    // From a pod: the forward path.
    await apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'dial-unused', namespace: ns },
      spec: {
        restartPolicy: 'Never',
        containers: [{ name: 'dial', image, imagePullPolicy: 'Never', args: ['dial', `${unused}:80`] }],
      },
    });
    const phase = await waitFor('the dialling pod to finish', 120_000, async () => {
      const p = (
        await kubectlOk(['get', 'pod', '-n', ns, 'dial-unused', '-o', 'jsonpath={.status.phase}'])
      ).trim();
      return p === 'Succeeded' || p === 'Failed' ? p : undefined;
    });
    const log = await kubectlOk(['logs', '-n', ns, 'dial-unused']);
    assert.equal(phase, 'Failed', log);
    assert.match(log, /^failed: .*i\/o timeout/m);
    const afterPod = await dropCount(SERVICE_CIDR);
    assert.ok(afterPod > afterNode, `the pod's SYN hit the DROP rule (${afterNode} -> ${afterPod})`);
    assert.equal(await netCount(), 0, 'no packet got past the rule under test');
  } finally {
    await ssh(`iptables -w 5 -t mangle -D POSTROUTING ${net}`);
  }
});

test("the filter script handles IPv4 and IPv6 CIDRs, is idempotent and removes an older image's blackhole routes", async () => {
  // In a new network namespace inside the node: the cluster's own rules are not touched.
  const r = await ssh(`unshare -n bash -ec '
    ip route add blackhole 10.97.0.0/16
    ip -6 route add blackhole fd00:97::/112
    export MINILAB_SERVICE_CIDRS=10.97.0.0/16,fd00:97::/112
    minilab-service-filter >/dev/null
    minilab-service-filter
    echo ---; iptables -w 5 -S; echo ---; ip6tables -w 5 -S
    echo ---; ip -4 route show type blackhole; ip -6 route show type blackhole'`);
  assert.equal(r.code, 0, r.stderr);
  const [log = '', v4 = '', v6 = '', routes = ''] = r.stdout.split('---\n');
  assert.match(log, /iptables \((nf_tables|legacy)\): untranslated packets for 10\.97\.0\.0\/16 are dropped/);
  assert.match(log, /ip6tables \((nf_tables|legacy)\): untranslated packets for fd00:97::\/112 are dropped/);
  for (const [rules, cidr] of [
    [v4, '10.97.0.0/16'],
    [v6, 'fd00:97::/112'],
  ] as const) {
    const lines = rules.split('\n');
    assert.equal(lines.filter((l) => l === `-A OUTPUT -j ${CHAIN}`).length, 1, rules);
    assert.equal(lines.filter((l) => l === `-A FORWARD -j ${CHAIN}`).length, 1, rules);
    const drops = lines.filter((l) => l.startsWith(`-A ${CHAIN} `));
    assert.equal(drops.length, 1, rules);
    assert.match(
      drops[0] ?? '',
      new RegExp(`^-A ${CHAIN} -d ${cidr.replace(/[./]/g, '\\$&')} -m conntrack ! --ctstate DNAT .*-j DROP$`),
    );
  }
  assert.equal(routes.trim(), '', 'the blackhole routes are gone');
});

test('after a stop and start the rule is back once, and the node still reaches Services and the webhook', async () => {
  const stop = await s.minilab(['stop', '-p', profile], { timeoutMs: 180_000 });
  assert.equal(stop.code, 0, stop.stderr);
  const start = await s.minilab(['start', '-p', profile], { timeoutMs: 10 * 60_000 });
  assert.equal(start.code, 0, start.stderr);
  await assertFilterInstalled();
  const api = await clusterIp('default', 'kubernetes');
  // kube-proxy rewrites its rules after the start; until then the node's SYNs are dropped.
  await waitFor('the node to reach the kubernetes Service', 120_000, async () => {
    const r = await nodeConnect(api, 443);
    if (r.code !== 0) throw new Error(r.stderr);
    return true;
  });
  await kubectlOk(['rollout', 'status', '-n', ns, `deployment/${svc}`, '--timeout=180s']);
  let admitted = false;
  const denied = await waitFor('the webhook to answer after the restart', 120_000, async () => {
    const res = await kubectl(
      ['create', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'after-restart', namespace: ns, labels: { [REJECT_LABEL]: 'yes' } },
      }),
    );
    if (res.code === 0) admitted = true;
    if (admitted) return res;
    if (!/minilab test webhook denies after-restart/.test(res.stderr)) throw new Error(res.stderr);
    return res;
  });
  assert.equal(admitted, false, 'a labelled ConfigMap must never be admitted');
  assert.match(denied.stderr, /denied the request/);
});
