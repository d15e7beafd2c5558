import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { MinilabError } from '../../src/errors.js';
import { ProfileStore } from '../../src/profile/store.js';
import { pickSubnet } from '../../src/providers/docker/addresses.js';
import { DOCKER_DIALECT, PODMAN_DIALECT, unqualified } from '../../src/providers/docker/dialect.js';
import { detectDriver, validateDriver } from '../../src/providers/index.js';
import { connectPodman, podmanAddress } from '../../src/providers/podman/connect.js';
import {
  checkPodmanVersion,
  rootlessRefusals,
  type PodmanInfo,
} from '../../src/providers/podman/provider.js';
import { podmanSockets, rootlessBySocket } from '../../src/providers/podman/sockets.js';
import { runCli } from '../helpers/cli.js';

const isError = (kind: MinilabError['kind'], message: RegExp) => (err: unknown) =>
  err instanceof MinilabError && err.kind === kind && message.test(err.message) && Boolean(err.hint);

test("podman's socket: CONTAINER_HOST alone when set; root's rootful one; a user's rootless one, then the rootful", () => {
  assert.deepEqual(podmanSockets({ CONTAINER_HOST: 'unix:///tmp/p.sock' }, 1000), [
    { address: 'unix:///tmp/p.sock', rootless: false, from: 'CONTAINER_HOST' },
  ]);
  assert.deepEqual(podmanSockets({}, 0), [
    { address: 'unix:///run/podman/podman.sock', rootless: false, from: 'rootful' },
  ]);
  assert.deepEqual(
    podmanSockets({ XDG_RUNTIME_DIR: '/run/user/1000' }, 1000).map((s) => [s.address, s.rootless]),
    [
      ['unix:///run/user/1000/podman/podman.sock', true],
      ['unix:///run/podman/podman.sock', false],
    ],
  );
  // No XDG_RUNTIME_DIR (sudo -u, cron): where systemd puts it.
  assert.equal(podmanSockets({}, 1001)[0]?.address, 'unix:///run/user/1001/podman/podman.sock');
});

test('podman addresses: unix and tcp are reached; ssh is a usage error with a hint', () => {
  assert.deepEqual(podmanAddress('unix:///run/podman/podman.sock'), {
    socketPath: '/run/podman/podman.sock',
  });
  assert.deepEqual(podmanAddress('tcp://10.0.0.5:8888'), { host: '10.0.0.5', port: 8888, protocol: 'http' });
  assert.throws(() => podmanAddress('ssh://core@host/run/podman/podman.sock'), isError('usage', /ssh:\/\//));
});

test('a podman socket that exists but does not answer is an environment error naming it, not a fallback', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-dead-socket-'));
  const path = join(dir, 'podman.sock');
  // Listens, never answers: the service hung (a socket file left behind answers ECONNREFUSED, the same way).
  const held: Socket[] = [];
  const server = createServer((socket) => void held.push(socket));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  try {
    await assert.rejects(
      connectPodman({
        env: { CONTAINER_HOST: `unix://${path}`, PATH: '' },
        log: join(dir, 'log'),
        timeoutMs: 300,
      }),
      (err: unknown) =>
        isError('environment', new RegExp(`the podman service at unix://${path} does not answer`))(err) &&
        /restart podman\.socket/.test((err as MinilabError).hint ?? ''),
    );
  } finally {
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  }
});

test("image names from podman's compatible API are shortened as users write them; others are kept", () => {
  assert.equal(unqualified('docker.io/minilab/node:v1.37.2'), 'minilab/node:v1.37.2');
  assert.equal(unqualified('docker.io/library/nginx:1.27'), 'nginx:1.27');
  assert.equal(unqualified('docker.io/library/a/b:1'), 'library/a/b:1');
  assert.equal(unqualified('localhost/app:dev'), 'localhost/app:dev');
  assert.equal(unqualified('quay.io/podman/hello:latest'), 'quay.io/podman/hello:latest');
  assert.equal(unqualified('minilab/node:v1.37.2'), 'minilab/node:v1.37.2');
});

const info = (rootless: boolean, cgroupVersion: string, controllers: string[]): PodmanInfo => ({
  version: { Version: '5.4.2' },
  host: {
    cgroupVersion,
    cgroupManager: 'systemd',
    cgroupControllers: controllers,
    cpus: 2,
    memTotal: 8 << 30,
    security: { rootless },
  },
  store: { graphRoot: '/var/lib/containers/storage' },
});

test("podman's node networks take other subnets than Docker's: neither engine sees the other's stopped ones", () => {
  assert.equal(pickSubnet([])?.subnet, '192.168.49.0/24');
  assert.equal(pickSubnet([], 0, PODMAN_DIALECT.firstSubnet)?.subnet, '192.168.53.0/24');
  const docker = new Set<string>();
  const podman = new Set<string>();
  for (let i = 0; i < 30; i++) {
    const d = pickSubnet([], i, DOCKER_DIALECT.firstSubnet)?.subnet;
    const p = pickSubnet([], i, PODMAN_DIALECT.firstSubnet)?.subnet;
    if (d) docker.add(d);
    if (p) podman.add(p);
  }
  assert.ok(docker.size > 20 && podman.size > 20);
  assert.deepEqual(
    [...docker].filter((x) => podman.has(x)),
    [],
  );
});

test('rootless podman: refused on cgroup v1 and without delegated cpu, memory, pids; rootful needs nothing', () => {
  assert.deepEqual(rootlessRefusals(info(false, 'v1', [])), []);
  const v1 = rootlessRefusals(info(true, 'v1', ['cpu', 'memory', 'pids']));
  assert.equal(v1.length, 1);
  assert.match(v1[0]!.message, /cgroup v1/);
  assert.match(v1[0]!.hint, /root|unified_cgroup_hierarchy/);
  const undelegated = rootlessRefusals(info(true, 'v2', ['memory']));
  assert.match(undelegated[0]!.message, /controllers cpu, pids are not delegated/);
  assert.match(undelegated[0]!.hint, /Delegate=/);
  assert.deepEqual(rootlessRefusals(info(true, 'v2', ['cpuset', 'cpu', 'io', 'memory', 'pids'])), []);
});

test('podman older than 4.0 is refused with a hint; 4.x and 5.x pass', () => {
  assert.throws(() => checkPodmanVersion('3.4.4'), isError('environment', /podman 3\.4\.4 is too old/));
  assert.throws(() => checkPodmanVersion('dev'), isError('environment', /too old/));
  checkPodmanVersion('4.0.0');
  checkPodmanVersion('5.4.2');
});

test('drivers: an unknown one is a usage error listing them; detection prefers Docker, then podman', () => {
  assert.equal(validateDriver('podman'), 'podman');
  assert.throws(() => validateDriver('podmn'), isError('usage', /unknown driver "podmn"/));
  const none = () => false;
  const only =
    (...paths: string[]) =>
    (p: string) =>
      paths.includes(p);
  const noPath = { PATH: '' };
  assert.equal(detectDriver({ ...noPath, DOCKER_HOST: 'tcp://x:2375' }, 0, none), 'docker');
  assert.equal(detectDriver(noPath, 0, only('/var/run/docker.sock', '/run/podman/podman.sock')), 'docker');
  assert.equal(detectDriver(noPath, 0, only('/run/podman/podman.sock')), 'podman');
  assert.equal(detectDriver({ ...noPath, CONTAINER_HOST: 'unix:///x.sock' }, 0, none), 'podman');
  assert.equal(
    detectDriver(
      { ...noPath, XDG_RUNTIME_DIR: '/run/user/1000' },
      1000,
      only('/run/user/1000/podman/podman.sock'),
    ),
    'podman',
  );
  // Nothing at all: Docker, whose error says how to get an engine (or to use podman).
  assert.equal(detectDriver(noPath, 0, none), 'docker');
});

test('a profile of another driver, or a bad --driver or MINILAB_DRIVER, is a usage error before any engine is asked', async () => {
  const home = await mkdtemp(join(tmpdir(), 'minilab-driver-'));
  try {
    await new ProfileStore(home).write({
      name: 'old',
      kubernetesVersion: 'v1.37.2',
      driver: 'docker',
      ports: [],
      createdAt: new Date().toISOString(),
    });
    // No engine is reachable here: a usage error proves nothing was asked of one.
    const env = {
      ...process.env,
      MINILAB_HOME: home,
      DOCKER_HOST: 'unix:///nonexistent.sock',
      CONTAINER_HOST: 'unix:///nonexistent.sock',
    };
    const other = await runCli(['start', '-p', 'old', '--driver', 'podman'], env);
    assert.equal(other.code, 2, other.stderr);
    assert.match(
      other.stderr,
      /^error: profile "old" runs on docker, not podman\nhint: .*minilab delete -p old/,
    );
    const bad = await runCli(['start', '--driver', 'kvm'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown driver "kvm" in --driver\nhint: use one of: docker, podman/);
    const fromEnv = await runCli(['image', 'ls', '--node-images'], {
      ...env,
      DOCKER_HOST: '',
      MINILAB_DRIVER: 'vbox',
    });
    assert.equal(fromEnv.code, 2);
    assert.match(fromEnv.stderr, /unknown driver "vbox" in MINILAB_DRIVER/);
    // Only --node-images lists an engine's store: --driver with a cluster's images is a mistake.
    const misplaced = await runCli(['image', 'ls', '--driver', 'podman'], env);
    assert.equal(misplaced.code, 2);
    assert.match(misplaced.stderr, /--driver applies only to --node-images/);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

test("a unix socket's owner tells a rootless service (its user's) from a rootful one (root's); TCP and a missing file do not tell", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-owner-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const sock = join(dir, 'podman.sock');
  await writeFile(sock, '');
  const uid = process.getuid?.() ?? 0;
  assert.equal(await rootlessBySocket(`unix://${sock}`), uid !== 0);
  if (uid === 0) {
    await chown(sock, 1000, 1000);
    assert.equal(await rootlessBySocket(`unix://${sock}`), true);
  }
  assert.equal(await rootlessBySocket(`unix://${join(dir, 'absent.sock')}`), undefined);
  assert.equal(await rootlessBySocket('tcp://127.0.0.1:8888'), undefined);
});
