// `minilab start` behind an HTTP(S) proxy (issue 20, item 7). The test runs a small forward proxy
// on the host, on the default Docker bridge's gateway address so node containers reach it, that
// records every request and refuses every cluster-internal destination (node and load balancer
// names, the network's addresses, the Service and pod ranges, cluster DNS names). A start with
// HTTP_PROXY and HTTPS_PROXY pointing at it must succeed with none of its traffic through the
// proxy, containerd and the kubelet must run with exactly the settings the node was given (a
// password with %, NO_PROXY entries with a space, quotes, a backslash and % survive systemd), and
// containerd must pull through the proxy where NO_PROXY does not apply. One single-node cluster.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import { DEFAULT_POD_SUBNET, DEFAULT_SERVICE_SUBNET } from '../../src/kube/kubeadm-config.js';
import { resourceNames } from '../../src/profile/name.js';
import { overlaps } from '../../src/providers/docker/addresses.js';
import type { DockerEngine } from '../../src/providers/docker/engine.js';
import { cleanupTestResources, connect, runId } from '../helpers/engine.js';
import { kubeClients, runBin, sandbox, waitFor } from '../helpers/cluster.js';

const profile = `px-${runId}`;
const controlPlane = `${profile}-control-plane`;
const PROXY_VARIABLES = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'];
/** The user's own NO_PROXY: entries systemd would mangle unless quoted and escaped right. */
const USER_NO_PROXY = ['corp.example', '"quoted entry"', 'back\\slash', '100%'];
/** A password with characters that are systemd specifiers and URL escapes: p@ss% once decoded. */
const PROXY_USER = 'minilab:p%40ss%25';
/** A registry that only exists behind the proxy: containerd asks the proxy for it. */
const OUTSIDE_REGISTRY = 'proxy-check.invalid';

interface Seen {
  method: string;
  host: string;
  port: number;
  auth?: string;
}

let s: Awaited<ReturnType<typeof sandbox>>;
let engine: DockerEngine;
let proxy: Awaited<ReturnType<typeof startProxy>>;

/** The addresses of the cluster's network (none before it exists). */
const networkSubnets = () => engine.networks.subnets(resourceNames(profile).network).catch(() => []);

/** Whether a destination is inside the cluster: what must never go through the proxy. */
async function clusterInternal(host: string): Promise<boolean> {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === 'kubernetes' || h.startsWith('kubernetes.') || h.startsWith(`${profile}-`))
    return true;
  if (/\.(svc|svc\.cluster|cluster\.local)$/.test(h)) return true;
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(h)) return h === '::1';
  const ranges = ['127.0.0.0/8', DEFAULT_SERVICE_SUBNET, DEFAULT_POD_SUBNET, ...(await networkSubnets())];
  return ranges.some((r) => overlaps(`${h}/32`, r));
}

/**
 * A forward proxy (CONNECT tunnels and plain HTTP) on `host`: records every request, refuses
 * cluster-internal destinations with 403, forwards the rest.
 */
async function startProxy(host: string) {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  const record = (method: string, target: string, port: number, headers: IncomingHttpHeaders) =>
    seen.push({ method, host: target, port, auth: headers['proxy-authorization'] });
  const server = createServer((req, res) => {
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end();
      return;
    }
    record(req.method ?? '', target.hostname, Number(target.port || 80), req.headers);
    void clusterInternal(target.hostname).then((internal) => {
      if (internal) {
        res.writeHead(403).end('cluster-internal destination\n');
        return;
      }
      const upstream = httpRequest(target, { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
      req.pipe(upstream);
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('connect', (req, socket: Socket, head: Buffer) => {
    socket.on('error', () => undefined);
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(req.url ?? '');
    if (!m) {
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const [target, port] = [m[1] as string, Number(m[2])];
    record('CONNECT', target, port, req.headers);
    void clusterInternal(target).then((internal) => {
      if (internal) {
        socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
        return;
      }
      const upstream = tcpConnect(port, target.replace(/^\[|\]$/g, ''), () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
      sockets.add(upstream);
      upstream.on('close', () => sockets.delete(upstream));
      upstream.on('error', () => socket.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the test proxy has no port');
  return {
    url: `http://${PROXY_USER}@${host}:${address.port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** `K=V` lines (a container's Env) or NUL-separated ones (/proc/PID/environ) as a map. */
function envMap(entries: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) {
    const at = e.indexOf('=');
    if (at > 0) out[e.slice(0, at)] = e.slice(at + 1);
  }
  return out;
}

before(async () => {
  s = await sandbox('proxy');
  engine = await connect();
  // Node containers reach the host on the default bridge's gateway (an address of the host).
  const bridge = await engine.client.docker.getNetwork('bridge').inspect();
  const gateway = (bridge.IPAM?.Config as { Gateway?: string }[] | undefined)?.[0]?.Gateway;
  assert.ok(gateway, 'the engine has a default bridge network with a gateway address');
  proxy = await startProxy(gateway);
});

after(async () => {
  await s.minilab(['delete', '-p', profile], { timeoutMs: 120_000 }).catch(() => undefined);
  await cleanupTestResources(engine);
  await proxy?.close();
  await s.cleanup();
});

test('start behind an HTTP(S) proxy sends nothing cluster-internal through it; containerd and the kubelet carry the settings intact', async () => {
  const env: NodeJS.ProcessEnv = { ...s.env };
  for (const key of PROXY_VARIABLES) delete env[key];
  Object.assign(env, { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: USER_NO_PROXY.join(',') });
  const r = await runBin(['start', '-p', profile], env, { timeoutMs: 20 * 60_000 });
  assert.equal(r.code, 0, `${r.stderr}\nseen by the proxy: ${JSON.stringify(proxy.seen)}`);

  // start builds only a missing node image: one built before minilab-proxy-conf is rebuilt by hand.
  const current = await s.minilab([
    'ssh',
    '-p',
    profile,
    '--',
    'test',
    '-x',
    '/usr/local/bin/minilab-proxy-conf',
  ]);
  assert.equal(current.code, 0, 'the node image predates minilab-proxy-conf: run minilab image build first');

  // What the node container was given: the user's entries first, then the whole cluster.
  const info = await engine.client.docker.getContainer(controlPlane).inspect();
  const given = envMap(info.Config.Env ?? []);
  const noProxy = (given.NO_PROXY ?? '').split(',');
  assert.deepEqual(noProxy.slice(0, USER_NO_PROXY.length), USER_NO_PROXY);
  const subnets = await networkSubnets();
  assert.ok(subnets.length > 0, 'the network has a subnet');
  for (const entry of [
    controlPlane,
    ...subnets,
    DEFAULT_SERVICE_SUBNET,
    DEFAULT_POD_SUBNET,
    'localhost',
    '.svc',
  ]) {
    assert.ok(noProxy.includes(entry), `NO_PROXY has ${entry}: ${given.NO_PROXY}`);
  }
  assert.equal(new Set(noProxy).size, noProxy.length, `no entry twice: ${given.NO_PROXY}`);
  assert.equal(given.HTTPS_PROXY, proxy.url);
  assert.equal(given.http_proxy, proxy.url);
  assert.equal(given.no_proxy, given.NO_PROXY);

  // containerd and the kubelet, started by systemd, run with exactly those values.
  for (const unit of ['containerd', 'kubelet']) {
    const read = await s.minilab([
      'ssh',
      '-p',
      profile,
      '--',
      'bash',
      '-c',
      `base64 -w0 /proc/$(systemctl show -p MainPID --value ${unit})/environ`,
    ]);
    assert.equal(read.code, 0, read.stderr);
    const running = envMap(Buffer.from(read.stdout.trim(), 'base64').toString('utf8').split('\0'));
    for (const key of PROXY_VARIABLES) assert.equal(running[key], given[key], `${unit}'s ${key}`);
  }

  // containerd pulls through the proxy where NO_PROXY does not apply, with the password intact,
  // and straight from a registry named like a node.
  const { core } = kubeClients(s.kubeconfig, profile);
  const probe = (name: string, image: string) =>
    core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name },
        spec: { containers: [{ name: 'probe', image, imagePullPolicy: 'Always' }] },
      },
    });
  await probe('outside', `${OUTSIDE_REGISTRY}/minilab-probe:1`);
  await probe('inside', `${controlPlane}:5000/minilab-probe:1`);
  const asked = await waitFor(`containerd to ask the proxy for ${OUTSIDE_REGISTRY}`, 180_000, async () =>
    proxy.seen.find((seen) => seen.host === OUTSIDE_REGISTRY),
  );
  assert.equal(asked.method, 'CONNECT');
  assert.equal(Buffer.from((asked.auth ?? '').replace(/^Basic /, ''), 'base64').toString(), 'minilab:p@ss%');
  const failed = await waitFor('the pull from a node-named registry to fail', 180_000, async () => {
    const pod = await core.readNamespacedPod({ name: 'inside', namespace: 'default' });
    const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting;
    return /ErrImagePull|ImagePullBackOff/.test(waiting?.reason ?? '') ? waiting : undefined;
  });
  assert.doesNotMatch(failed.message ?? '', /proxyconnect/, 'the node-named registry was reached directly');

  const internal: Seen[] = [];
  for (const seen of proxy.seen) if (await clusterInternal(seen.host)) internal.push(seen);
  assert.deepEqual(internal, [], 'no cluster-internal request went to the proxy');
});
