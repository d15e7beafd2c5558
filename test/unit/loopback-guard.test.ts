import { test } from 'node:test';
import { DOCKER_DIALECT } from '../../src/providers/docker/dialect.js';
import assert from 'node:assert/strict';
import { preflight } from '../../src/lifecycle/preflight.js';
import { start } from '../../src/lifecycle/start.js';
import { startNode, stopNode } from '../../src/lifecycle/node-power.js';
import type { DockerEngine, EngineInfo } from '../../src/providers/docker/engine.js';
import {
  assessExposure,
  engineFiltersLoopback,
  guardRules,
  LoopbackGuard,
  probeHost,
  type EngineFacts,
} from '../../src/providers/docker/loopback-guard.js';
import { splitRule, type CommandRunner } from '../../src/providers/iptables.js';
import { FakeIptables, spell } from '../helpers/fake-iptables.js';
import { DockerProvider } from '../../src/providers/docker/provider.js';
import type { NodeState, PortMapping, ProviderInfo } from '../../src/providers/types.js';
import { startRequest, withFixture } from '../helpers/lifecycle-fixture.js';

const port = (hostPort: number, over: Partial<PortMapping> = {}): PortMapping => ({
  hostIp: '127.0.0.1',
  hostPort,
  containerPort: 6443,
  protocol: 'tcp',
  ...over,
});

const DROP_40000 =
  '-d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 40000 -m comment --comment "minilab:demo" -j DROP';

test("the rules are Docker 28's: raw PREROUTING drops the port's packets for 127.x from any interface but lo, tagged with the profile", () => {
  assert.deepEqual(
    guardRules('demo', port(40000), false).map((r) => r.join(' ')),
    ['-d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 40000 -m comment --comment minilab:demo -j DROP'],
  );
  const [udp] = guardRules('dev-1', port(8053, { hostIp: '127.0.0.2', protocol: 'udp' }), false);
  assert.equal(
    udp?.join(' '),
    '-d 127.0.0.2/32 ! -i lo -p udp -m udp --dport 8053 -m comment --comment minilab:dev-1 -j DROP',
  );
  // WSL2's mirrored loopback: Windows' connections come in on loopback0, accepted above the drop.
  const mirrored = guardRules('demo', port(40000), true).map((r) => r.join(' '));
  assert.equal(mirrored.length, 2);
  assert.match(mirrored[0] as string, /^-d 127\.0\.0\.1\/32 -i loopback0 .* -j ACCEPT$/);
  assert.match(mirrored[1] as string, /! -i lo .* -j DROP$/);
});

test('iptables -S lines split into arguments, quoted values unquoted', () => {
  const args = splitRule('-A PREROUTING -d 127.0.0.1/32 -m comment --comment "minilab:demo" -j DROP');
  assert.equal(args.join('|'), '-A|PREROUTING|-d|127.0.0.1/32|-m|comment|--comment|minilab:demo|-j|DROP');
  assert.deepEqual(splitRule('--comment "a \\"b\\" c"'), ['--comment', 'a "b" c']);
});

test('sync inserts one rule per loopback port, ahead of the chain, and a second sync changes nothing', async () => {
  const ipt = new FakeIptables();
  ipt.chain.push(['-s', '10.0.0.0/8', '-j', 'ACCEPT']);
  const guard = new LoopbackGuard(ipt.run, false);
  const ports = [
    port(40000),
    port(8080, { containerPort: 30080, protocol: 'udp' }),
    // Not on IPv4 loopback: nothing to guard (::1 is dropped by the kernel before netfilter).
    port(9000, { hostIp: '0.0.0.0' }),
    port(9001, { hostIp: '::1' }),
    port(9002, { hostIp: '' }),
  ];
  await guard.sync('demo', ports);
  assert.deepEqual(ipt.listed(), [
    '-d 127.0.0.1/32 ! -i lo -p udp -m udp --dport 8080 -m comment --comment "minilab:demo" -j DROP',
    DROP_40000,
    '-s 10.0.0.0/8 -j ACCEPT',
  ]);
  ipt.calls.length = 0;
  await guard.sync('demo', ports);
  assert.deepEqual(ipt.changes(), [], 'idempotent: checked with -C, nothing inserted or deleted');
  assert.ok(ipt.calls.some((c) => c.startsWith('-C PREROUTING')));
});

test('sync removes the rules of ports no longer published, and with no ports every rule of the profile, by its comment', async () => {
  const ipt = new FakeIptables();
  const guard = new LoopbackGuard(ipt.run, false);
  await guard.sync('demo', [port(40000), port(8080)]);
  // Other profiles' rules, one whose name starts the same, and someone else's: never touched.
  await new LoopbackGuard(ipt.run, false).sync('demo-2', [port(41000)]);
  ipt.chain.push(['-d', '127.0.0.1/32', '-p', 'tcp', '-m', 'tcp', '--dport', '40000', '-j', 'ACCEPT']);

  await guard.sync('demo', [port(40000)]);
  assert.deepEqual(ipt.listed(), [
    '-d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 41000 -m comment --comment "minilab:demo-2" -j DROP',
    DROP_40000,
    '-d 127.0.0.1/32 -p tcp -m tcp --dport 40000 -j ACCEPT',
  ]);

  await guard.sync('demo', []);
  assert.deepEqual(ipt.listed(), [
    '-d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 41000 -m comment --comment "minilab:demo-2" -j DROP',
    '-d 127.0.0.1/32 -p tcp -m tcp --dport 40000 -j ACCEPT',
  ]);
  assert.deepEqual(await guard.rules('demo'), []);
});

test('a rule written twice is left once', async () => {
  const ipt = new FakeIptables();
  const [drop] = guardRules('demo', port(40000), false) as [string[]];
  ipt.chain.push([...drop], [...drop]);
  await new LoopbackGuard(ipt.run, false).sync('demo', [port(40000)]);
  assert.deepEqual(ipt.listed(), [DROP_40000]);
});

test('under mirrored loopback the ACCEPT for loopback0 stands above the DROP, also when only the DROP was lost', async () => {
  const ipt = new FakeIptables();
  const guard = new LoopbackGuard(ipt.run, true);
  await guard.sync('demo', [port(40000)]);
  const [accept, drop] = guardRules('demo', port(40000), true).map(spell);
  assert.deepEqual(ipt.listed(), [accept, drop]);
  ipt.chain.splice(1, 1);
  ipt.chain.unshift(['-j', 'CT', '--notrack']);
  await guard.sync('demo', [port(40000)]);
  assert.deepEqual(ipt.listed(), [accept, drop, '-j CT --notrack']);
});

test('an iptables failure is an error naming the command and what iptables said', async () => {
  const ipt = new FakeIptables();
  ipt.fail = '-I';
  await assert.rejects(new LoopbackGuard(ipt.run, false).sync('demo', [port(40000)]), (err: Error) => {
    assert.match(
      err.message,
      /^iptables -t raw -I PREROUTING .*--dport 40000.*: iptables: Resource problem\.$/,
    );
    return true;
  });
});

test('Docker before 28.0 does not filter loopback ports; 28.0 and later do; a version of no number is unknown', () => {
  for (const v of ['26.1.5+dfsg1', '27.5.1', '20.10.24']) assert.equal(engineFiltersLoopback(v), false, v);
  for (const v of ['28.0.0', '28.0.0-rc.1', '28.3.3', '29.1.0'])
    assert.equal(engineFiltersLoopback(v), true, v);
  assert.equal(engineFiltersLoopback('dev'), undefined);
});

const engine = (over: Partial<EngineFacts> = {}): EngineFacts => ({
  version: '27.5.1',
  local: true,
  rootless: false,
  forwarded: false,
  ...over,
});

test('exposure: a local rootful engine before 28 is exposed; minilab guards it as root, says why not otherwise', () => {
  const guarded = assessExposure(engine(), { mirroredLoopback: false });
  assert.equal(guarded.exposed, true);
  assert.equal(guarded.manageable, true);
  assert.match(
    guarded.warning ?? '',
    /^Docker 27\.5\.1 \(before 28\.0\) lets hosts on the same network reach ports published on 127\.0\.0\.1 \(moby\/moby#45610\): minilab drops/,
  );
  assert.ok(!(guarded.warning ?? '').includes('\n'), 'one line');

  const notRoot = assessExposure(engine({ version: '26.1.5+dfsg1' }), {
    denied: 'minilab does not run as root',
    mirroredLoopback: false,
  });
  assert.equal(notRoot.manageable, false);
  assert.match(
    notRoot.warning ?? '',
    /cannot guard them here \(minilab does not run as root\): the API server port and --ports stay reachable by this machine's network neighbours; upgrade to Docker 28 or later$/,
  );

  const remote = assessExposure(engine({ local: false }), { mirroredLoopback: false });
  assert.equal(remote.manageable, false, "another machine's firewall is not this one's");
  assert.match(
    remote.warning ?? '',
    /\(the engine runs on another machine\).*by that machine's network neighbours/,
  );

  const fixed = assessExposure(engine({ version: '28.0.0' }), { mirroredLoopback: false });
  assert.deepEqual([fixed.exposed, fixed.manageable, fixed.warning], [false, true, undefined]);
  for (const e of [engine({ rootless: true }), engine({ forwarded: true }), engine({ version: 'dev' })])
    assert.equal(assessExposure(e, { mirroredLoopback: false }).warning, undefined);
});

test('the host probe: not root asks iptables nothing; as root, iptables must list its raw table', async () => {
  const ipt = new FakeIptables();
  assert.equal((await probeHost(ipt.run, 1000)).denied, 'minilab does not run as root');
  assert.deepEqual(ipt.calls, []);
  assert.equal((await probeHost(ipt.run, 0)).denied, undefined);
  assert.deepEqual(ipt.calls, ['-S PREROUTING']);
  const missing: CommandRunner = async () => {
    throw Object.assign(new Error('spawn iptables ENOENT'), { code: 'ENOENT' });
  };
  assert.equal((await probeHost(missing, 0)).denied, 'iptables is not installed');
  const noRaw: CommandRunner = async () => ({
    exitCode: 3,
    stdout: '',
    stderr: "iptables v1.8.11 (legacy): can't initialize iptables table `raw': Table does not exist\n",
  });
  assert.match(
    (await probeHost(noRaw, 0)).denied ?? '',
    /^iptables cannot list its raw table: iptables v1\.8\.11/,
  );
});

/** A Docker engine as the provider sees it: its info, and containers that publish ports. */
function fakeEngine(version: string, containers: NodeState[]): DockerEngine {
  const info: EngineInfo = {
    serverVersion: version,
    cgroupVersion: '2',
    cgroupDriver: 'systemd',
    rootDir: '/var/lib/docker',
    cpus: 2,
    memoryBytes: 8 * 1024 ** 3,
    os: 'Debian GNU/Linux 13 (trixie)',
    rootless: false,
  };
  const removed = new Set<string>();
  const mine = (labels: Record<string, string>) =>
    containers.filter(
      (c) => !removed.has(c.name) && Object.entries(labels).every(([k, v]) => c.labels[k] === v),
    );
  return {
    client: { local: true, dialect: DOCKER_DIALECT },
    info: async () => info,
    containers: {
      list: async (labels: Record<string, string>) => mine(labels),
      remove: async (name: string) => (removed.add(name), 'removed'),
    },
    volumes: { list: async () => [], remove: async () => 'absent' },
    networks: { remove: async () => 'absent' },
  } as unknown as DockerEngine;
}

const container = (name: string, profile: string, ports: PortMapping[]): NodeState => ({
  id: name,
  name,
  profile,
  role: 'control-plane',
  image: 'minilab/node',
  status: 'running',
  running: true,
  ports,
  labels: { 'io.minilab.profile': profile, 'io.minilab.managed': 'true' },
});

test('the Docker provider guards on 27.x as root, removes the rules on delete, and does nothing on 28.0', async () => {
  const nodes = [
    container('demo-control-plane', 'demo', [port(40000)]),
    container('other-control-plane', 'other', [port(41000)]),
  ];
  const ipt = new FakeIptables();
  const old = new DockerProvider(fakeEngine('27.5.1', nodes), { run: ipt.run, uid: 0 });
  const info: ProviderInfo = await old.info();
  assert.equal(info.warnings?.length, 1);
  assert.match(info.warnings?.[0] ?? '', /Docker 27\.5\.1 .* minilab drops/);
  assert.deepEqual(await old.syncFirewall('demo'), []);
  assert.deepEqual(ipt.listed(), [DROP_40000], "only the profile's own containers' ports");
  assert.deepEqual(await old.syncFirewall('demo'), []);
  assert.equal(ipt.listed().length, 1);
  await old.deleteCluster('demo');
  assert.deepEqual(ipt.listed(), [], 'delete removes the rules with the containers');

  // An engine upgraded to 28 since: it filters itself, and what minilab wrote before goes.
  const [drop] = guardRules('other', port(41000), false) as [string[]];
  ipt.chain.push(drop);
  ipt.calls.length = 0;
  const fixed = new DockerProvider(fakeEngine('28.0.0', nodes), { run: ipt.run, uid: 0 });
  assert.deepEqual((await fixed.info()).warnings, []);
  assert.deepEqual(await fixed.syncFirewall('other'), []);
  assert.deepEqual(ipt.listed(), []);
  assert.ok(!ipt.calls.some((c) => c.startsWith('-I')));
});

test('the Docker provider, not root: a preflight warning, and iptables never run', async () => {
  const ipt = new FakeIptables();
  const provider = new DockerProvider(
    fakeEngine('26.1.5+dfsg1', [container('demo-control-plane', 'demo', [port(40000)])]),
    {
      run: ipt.run,
      uid: 1000,
    },
  );
  const { warnings } = await preflight(provider, {});
  assert.ok(
    warnings.some((w) =>
      /cannot guard them here \(minilab does not run as root\).*upgrade to Docker 28/.test(w),
    ),
    warnings.join('\n'),
  );
  assert.deepEqual(await provider.syncFirewall('demo'), []);
  await provider.deleteCluster('demo');
  assert.deepEqual(ipt.calls, []);
});

test("the Docker provider of an engine on another machine asks this one's iptables nothing, even as root", async () => {
  const ipt = new FakeIptables();
  const engine = fakeEngine('27.5.1', [container('demo-control-plane', 'demo', [port(40000)])]);
  Object.assign(engine, { client: { local: false, dialect: DOCKER_DIALECT } });
  const provider = new DockerProvider(engine, { run: ipt.run, uid: 0 });
  assert.match(
    (await provider.info()).warnings?.[0] ?? '',
    /cannot guard them here \(the engine runs on another machine\)/,
  );
  assert.deepEqual(await provider.syncFirewall('demo'), []);
  assert.deepEqual(ipt.calls, []);
});

test('the Docker provider: a failing iptables is a warning naming the profile, never an error', async () => {
  const ipt = new FakeIptables();
  ipt.fail = '-I';
  const provider = new DockerProvider(
    fakeEngine('27.5.1', [container('demo-control-plane', 'demo', [port(40000)])]),
    {
      run: ipt.run,
      uid: 0,
    },
  );
  const [warning, ...rest] = await provider.syncFirewall('demo');
  assert.deepEqual(rest, []);
  assert.match(
    warning ?? '',
    /^could not guard the ports of profile "demo" on 127\.0\.0\.1 against network neighbours: iptables -t raw -I PREROUTING/,
  );
});

test('start guards the ports once the containers exist, and again on every later start and node start; its warnings are shown', async () => {
  await withFixture(async (f) => {
    f.ctx.provider.syncFirewall = async (profile) => {
      f.world.calls.push(`guard ${profile}`);
      return ['guard warning'];
    };
    await start(f.ctx, startRequest({ nodes: 2 }));
    const at = (c: string) => f.world.calls.indexOf(c);
    assert.ok(at('guard demo') > at('provision') && at('guard demo') < at('boot demo-control-plane'));
    assert.ok(f.lines.some((l) => l.endsWith('guard warning')));
    assert.ok(!f.ctx.reporter.timings.some((t) => /Guarding/.test(t.name)), 'no line of its own');

    // A running cluster (say, after a reboot the engine restarted it): the rules are put back.
    f.world.calls.length = 0;
    await start(f.ctx, startRequest({ nodes: 2 }));
    assert.ok(f.world.calls.includes('guard demo'));

    await stopNode(f.ctx, 'demo', 'demo-worker1');
    f.world.calls.length = 0;
    await startNode(f.ctx, 'demo', 'demo-worker1');
    assert.ok(at('guard demo') > at('start-node demo-worker1'));
  });
});
