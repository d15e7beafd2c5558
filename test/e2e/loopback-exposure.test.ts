// "Published on 127.0.0.1 only", checked from another host's side (issue 20). Docker before 28
// DNATs a loopback port for packets from any interface, ahead of the kernel's martian check, so a
// network neighbour that routes 127.0.0.1 to this machine reaches the container; Docker 28 drops
// them in raw PREROUTING, and minilab writes the same rules on older engines (loopback-guard.ts).
//
// The neighbour is a network namespace joined to this one by a veth pair on a /30 of its own. In it,
// lo stays down (so 127.0.0.1 is no local address there) and a route sends 127.0.0.1/32 to this
// host's end: exactly what a machine on the same link can do. The TCP answer comes back from
// 127.0.0.1 (the host undoes the DNAT), a martian source unless route_localnet is set on the
// neighbour's end, so it is; without it only a one-way packet would show the hole (moby's own test
// sends UDP). What listens is a busybox httpd on the same kind of network minilab makes,
// labelled as a profile's container, so the provider's own guard and delete act on it; no cluster.
//
// rp_filter: the host checks the neighbour's source 10.231.77.2 against its routes, and the /30 on
// the host's end puts that address behind the very veth it came in on, so strict mode (1) passes as
// loose (2) and off (0) do. In the neighbour, the answer's source 127.0.0.1 is routed back out of
// the same veth by the route above, so its rp_filter passes for the same reason. The host's own
// route_localnet stays as it is: the hole does not depend on it (the DNAT comes before the
// routing decision that would call 127.0.0.1 martian).
//
// Runs as root (namespaces, iptables), as CI runs it. Everything made carries this run's id; the
// after() hook removes it whatever happened, and before() first removes what a killed run left.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect as connectTcp } from 'node:net';
import { promisify } from 'node:util';
import getPort from 'get-port';
import { ownedLabels } from '../../src/labels.js';
import { resourceNames } from '../../src/profile/name.js';
import type { DockerEngine } from '../../src/providers/docker/engine.js';
import { ruleTag, runCommand } from '../../src/providers/iptables.js';
import { engineFiltersLoopback, LoopbackGuard } from '../../src/providers/docker/loopback-guard.js';
import { DockerProvider } from '../../src/providers/docker/provider.js';
import { cleanupTestResources, connect, loadBusyboxImage, runId, testLabels } from '../helpers/engine.js';
import { waitFor } from '../helpers/cluster.js';

const profile = `lo-${runId}`;
const image = `minilab-test/loopback:${runId}`;
const server = `${profile}-server`;
/** The neighbour's namespace, and the veth pair's ends (interface names stay under 16 characters). */
const NS_PREFIX = 'minilab-test-lo-';
const netns = `${NS_PREFIX}${runId}`;
const hostEnd = `mlt${runId}h`;
const nsEnd = `mlt${runId}n`;
/** A /30 of its own, far from Docker's and minilab's ranges: the host's end .1, the neighbour .2. */
const HOST_ADDRESS = '10.231.77.1';
const NEIGHBOUR_ADDRESS = '10.231.77.2';

const run = promisify(execFile);
let engine: DockerEngine;
let provider: DockerProvider;
let port = 0;
/** Whether the engine filters loopback ports itself (Docker 28 and later). */
let fixed = false;

/** One TCP connect to 127.0.0.1:port, in the neighbour's namespace or here; "timeout" after 3 s. */
async function connectFrom(where: 'neighbour' | 'host'): Promise<string> {
  if (where === 'host') {
    return new Promise((resolve) => {
      const socket = connectTcp({ host: '127.0.0.1', port });
      const timer = setTimeout(() => (socket.destroy(), resolve('timeout')), 3000);
      socket.once('connect', () => (clearTimeout(timer), socket.destroy(), resolve('open')));
      socket.once(
        'error',
        (err: NodeJS.ErrnoException) => (clearTimeout(timer), resolve(`error ${err.code}`)),
      );
    });
  }
  const script = `const s = require('node:net').connect({ host: '127.0.0.1', port: Number(process.argv[1]) });
    setTimeout(() => { console.log('timeout'); process.exit(0); }, 3000);
    s.on('connect', () => { console.log('open'); process.exit(0); });
    s.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });`;
  const { stdout } = await run('ip', ['netns', 'exec', netns, process.execPath, '-e', script, String(port)]);
  return stdout.trim();
}

/** The profile's rules in raw PREROUTING with their packet counts, as iptables lists them. */
async function profileRules(): Promise<{ packets: number; line: string }[]> {
  const { stdout } = await run('iptables', ['-w', '-t', 'raw', '-L', 'PREROUTING', '-v', '-n', '-x']);
  return stdout
    .split('\n')
    .filter((l) => l.includes(`/* ${ruleTag(profile)} */`))
    .map((line) => ({ packets: Number(line.trim().split(/\s+/)[0]), line: line.trim() }));
}

/** Namespaces and host ends a killed run of this file left (only this file's names). */
async function removeLeftovers(): Promise<void> {
  const { stdout: spaces } = await run('ip', ['netns', 'list']);
  for (const name of spaces.split('\n').map((l) => l.split(' ')[0] ?? '')) {
    if (name.startsWith(NS_PREFIX)) await run('ip', ['netns', 'delete', name]).catch(() => undefined);
  }
  const { stdout: links } = await run('ip', ['-o', 'addr', 'show', 'to', `${HOST_ADDRESS}/30`]);
  for (const line of links.split('\n')) {
    const name = line.split(/\s+/)[1]?.replace(/@.*$/, '') ?? '';
    if (/^mlt[0-9a-f]+h$/.test(name)) await run('ip', ['link', 'delete', name]).catch(() => undefined);
  }
}

before(async () => {
  assert.equal(
    process.getuid?.(),
    0,
    'this suite runs as root: it makes a network namespace and reads iptables',
  );
  engine = await connect();
  provider = new DockerProvider(engine);
  fixed = engineFiltersLoopback((await engine.info()).serverVersion) === true;
  await removeLeftovers();

  // What listens: busybox httpd on port 80, on a network as minilab makes one, published on 127.0.0.1.
  await loadBusyboxImage(engine, image, ['/bin/busybox', 'httpd', '-f', '-p', '80', '-h', '/tmp']);
  const network = resourceNames(profile).network;
  await engine.networks.ensure(network, ownedLabels(profile, 'network', testLabels));
  port = await getPort({ host: '127.0.0.1' });
  await engine.containers.createService({
    name: server,
    role: 'load-balancer',
    image,
    network,
    ports: [{ hostIp: '127.0.0.1', hostPort: port, containerPort: 80, protocol: 'tcp' }],
    command: ['/bin/busybox', 'httpd', '-f', '-p', '80', '-h', '/tmp'],
    labels: ownedLabels(profile, 'load-balancer', testLabels),
  });
  await engine.containers.start(server);
  await waitFor('the test server to answer on 127.0.0.1', 30_000, async () =>
    (await connectFrom('host')) === 'open' ? true : undefined,
  );

  // The neighbour.
  await run('ip', ['netns', 'add', netns]);
  await run('ip', ['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', nsEnd, 'netns', netns]);
  await run('ip', ['addr', 'add', `${HOST_ADDRESS}/30`, 'dev', hostEnd]);
  await run('ip', ['link', 'set', hostEnd, 'up']);
  await run('ip', ['-n', netns, 'addr', 'add', `${NEIGHBOUR_ADDRESS}/30`, 'dev', nsEnd]);
  await run('ip', ['-n', netns, 'link', 'set', nsEnd, 'up']);
  // Without it the neighbour drops the answer, whose source is 127.0.0.1, as martian.
  await run('ip', [
    'netns',
    'exec',
    netns,
    'sh',
    '-c',
    `echo 1 > /proc/sys/net/ipv4/conf/${nsEnd}/route_localnet`,
  ]);
  await run('ip', ['-n', netns, 'route', 'add', '127.0.0.1/32', 'via', HOST_ADDRESS, 'dev', nsEnd]);
  const { stdout: lo } = await run('ip', ['-n', netns, '-o', 'link', 'show', 'lo']);
  assert.doesNotMatch(lo, /[<,]UP[,>]/, "the neighbour's lo is down: 127.0.0.1 is not its own");
});

after(async () => {
  // The provider's delete removes the profile's container, network and guard rules; the rest by hand.
  await provider?.deleteCluster(profile).catch(() => undefined);
  await new LoopbackGuard(runCommand, false).sync(profile, []).catch(() => undefined);
  await run('ip', ['netns', 'delete', netns]).catch(() => undefined);
  await run('ip', ['link', 'delete', hostEnd]).catch(() => undefined);
  if (engine) {
    await engine.images.remove(image).catch(() => undefined);
    await cleanupTestResources(engine);
  }
});

test('without the guard, a neighbour reaches the 127.0.0.1 port on Docker before 28 (the hole is real), not on 28 and later', async () => {
  assert.deepEqual(await profileRules(), [], 'no guard rules yet');
  const seen = await connectFrom('neighbour');
  if (fixed) assert.notEqual(seen, 'open', 'Docker 28 and later drop it themselves');
  else
    assert.equal(
      seen,
      'open',
      'on Docker before 28 the neighbour reaches the port (if not, check net.ipv4.ip_forward=1 and the FORWARD chain)',
    );
  assert.equal(await connectFrom('host'), 'open');
});

test("the guard: preflight says so, the rule drops the neighbour's packets (counted), the host still connects, and a second run adds nothing", async () => {
  const info = await provider.info();
  if (fixed) assert.deepEqual(info.warnings, []);
  else {
    assert.equal(info.warnings?.length, 1);
    assert.match(info.warnings?.[0] ?? '', /before 28\.0.*127\.0\.0\.1.*minilab drops/);
  }

  assert.deepEqual(await provider.syncFirewall(profile), [], 'no warnings');
  const rules = await profileRules();
  if (fixed) {
    assert.deepEqual(rules, [], 'nothing of minilab on an engine that filters itself');
    assert.notEqual(await connectFrom('neighbour'), 'open');
  } else {
    assert.equal(rules.length, 1, rules.map((r) => r.line).join('\n'));
    const line = rules[0]?.line ?? '';
    for (const part of [/^0\s/, /\sDROP\s/, /\s!lo\s/, /\s127\.0\.0\.1\s/, new RegExp(`\\sdpt:${port}\\s`)])
      assert.match(line, part, 'a DROP of tcp to 127.0.0.1:PORT from anything but lo, nothing counted yet');
    // Dropped without an answer: the connect waits out its time, it is not refused.
    assert.equal(await connectFrom('neighbour'), 'timeout');
    const [counted] = await profileRules();
    assert.ok((counted?.packets ?? 0) > 0, `the rule counted the neighbour's SYN: ${counted?.line}`);
  }
  assert.equal(
    await connectFrom('host'),
    'open',
    'the host itself still connects (its packets come in on lo)',
  );

  assert.deepEqual(await provider.syncFirewall(profile), []);
  assert.equal((await profileRules()).length, fixed ? 0 : 1, 'idempotent');
});

test("delete removes the profile's container, network and guard rules", async () => {
  const removed = await provider.deleteCluster(profile);
  assert.deepEqual(removed.containers, [server]);
  assert.equal(removed.network, resourceNames(profile).network);
  assert.deepEqual(await profileRules(), []);
});
