import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import tarFs from 'tar-fs';
import { nodeImageRef } from '../../src/image/components.js';
import { RunJournal } from '../../src/lifecycle/journal.js';
import { minilabHome } from '../../src/profile/store.js';
import { connectProvider } from '../../src/providers/index.js';
import type { ExecResult, Node, Provider } from '../../src/providers/types.js';
import { DEFAULT_KUBERNETES_VERSION, projectRoot } from '../../src/version.js';
import { connect, runId, testLabels } from '../helpers/engine.js';

// Rootless podman needs cgroup v2 with controllers delegated to the user; this host is cgroup v1,
// where preflight refuses it (unit-tested). So this run makes a cgroup v2 host: a node VM of the
// qemu driver (its provider alone: no cluster in it), with podman installed, a user, and minilab
// copied in, and starts a cluster there as that user. Under TCG (this machine's KVM cannot boot a
// guest) it takes 15-20 minutes: `npm run test:rootless` runs it, `npm test` does not.
const vmProfile = `rl-${runId}`;
const image = nodeImageRef(DEFAULT_KUBERNETES_VERSION);
const USER = 'rl';
const UID = 1000;
const cluster = 'rootless';

let home: string;
let provider: Provider;
let vm: Node;

/** Fails with the command's output unless it exited 0. */
function ok(r: ExecResult, what: string): string {
  assert.equal(r.exitCode, 0, `${what}: exit ${r.exitCode}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** A shell command run as the guest's user, in a login-like environment (their systemd instance's bus). */
function asUser(command: string, timeoutMs = 10 * 60_000): Promise<ExecResult> {
  return vm.exec(
    [
      'runuser',
      '-u',
      USER,
      '--',
      'env',
      `HOME=/home/${USER}`,
      `XDG_RUNTIME_DIR=/run/user/${UID}`,
      `DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/${UID}/bus`,
      'PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
      'bash',
      '-c',
      `cd && ${command}`,
    ],
    { timeoutMs },
  );
}

const minilab = (args: string, timeoutMs?: number) =>
  asUser(`node /opt/minilab/dist/src/main.js ${args}`, timeoutMs);

/**
 * podman and what rootless podman needs (newuidmap, pasta, the user's D-Bus for systemd's cgroup
 * manager; aardvark-dns, recommended by podman, without which podman cannot remove a container
 * from a network with DNS: "netavark: remove aardvark entries") as Debian packages, fetched in a container of the node image (the guest's own system,
 * so apt picks exactly what it lacks): the guest itself reaches no network.
 */
async function podmanPackages(): Promise<Buffer> {
  const docker = (await connect()).client.docker;
  const c = await docker.createContainer({
    Image: image,
    Entrypoint: ['/bin/sh', '-c'],
    Cmd: [
      'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install --download-only --no-install-recommends ' +
        '-y -qq podman uidmap passt aardvark-dns dbus-user-session && mkdir /debs && cp /var/cache/apt/archives/*.deb /debs/',
    ],
    Labels: testLabels,
  });
  try {
    await c.start();
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    assert.equal(StatusCode, 0, String(await c.logs({ stdout: true, stderr: true })));
    const tar = await c.getArchive({ path: '/debs' });
    const chunks: Buffer[] = [];
    for await (const chunk of tar as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  } finally {
    await c.remove({ force: true });
  }
}

before(async () => {
  const debs = await podmanPackages();
  home = await mkdtemp(join(tmpdir(), 'minilab-rootless-'));
  await mkdir(join(home, 'cache'), { recursive: true });
  await symlink(join(minilabHome(process.env), 'cache', 'vm'), join(home, 'cache', 'vm'));
  provider = await connectProvider('qemu', { env: process.env, home });
  const port = 46000 + Math.floor(Math.random() * 1000);
  [vm] = (await provider.provision(
    {
      profile: vmProfile,
      kubernetesVersion: DEFAULT_KUBERNETES_VERSION,
      image,
      apiServerPort: port,
      cpus: 2,
      memoryBytes: 6 * 2 ** 30,
      diskBytes: 30 * 2 ** 30,
      env: {},
      labels: testLabels,
      nodes: [
        {
          name: `${vmProfile}-host`,
          role: 'control-plane',
          ports: [{ hostIp: '127.0.0.1', hostPort: port, containerPort: 6443, protocol: 'tcp' }],
        },
      ],
    },
    new RunJournal(),
  )) as [Node];

  ok(await vm.exec(['tar', 'x', '-C', '/root'], { input: debs, timeoutMs: 300_000 }), 'copy the packages');
  ok(
    await vm.exec(
      [
        'sh',
        '-c',
        [
          'DEBIAN_FRONTEND=noninteractive dpkg -i /root/debs/*.deb >/root/dpkg.log 2>&1 || { tail -20 /root/dpkg.log; exit 1; }',
          // What udev's default rules do on a host (pasta opens it as the user); the guest runs the
          // node image's system, which has no udev.
          'chmod 0666 /dev/net/tun',
          `useradd -m -u ${UID} -s /bin/bash ${USER}`,
          // useradd gives the user subordinate IDs where login.defs asks for them (Debian's does)
          `grep -q '^${USER}:' /etc/subuid || echo ${USER}:100000:65536 >>/etc/subuid`,
          `grep -q '^${USER}:' /etc/subgid || echo ${USER}:100000:65536 >>/etc/subgid`,
          `loginctl enable-linger ${USER}`,
          `for i in $(seq 60); do systemctl is-active -q user@${UID}.service && break; sleep 1; done`,
          `systemctl is-active user@${UID}.service`,
        ].join('\n'),
      ],
      { timeoutMs: 15 * 60_000 },
    ),
    'install podman and make the user',
  );

  // minilab as built here, with Node.js and the run-time libraries (not the build and test tools).
  const skip = new Set([
    'playwright-core',
    'typescript',
    'vite',
    '@esbuild',
    'esbuild',
    'eslint',
    'prettier',
  ]);
  const tree = tarFs.pack(projectRoot, {
    entries: ['package.json', 'dist', 'node_modules'],
    ignore: (name) => skip.has(name.slice(projectRoot.length + 1).split('/')[1] ?? ''),
  }) as unknown as Readable;
  ok(
    await vm.exec(
      ['sh', '-c', 'mkdir -p /opt/minilab && tar x -C /opt/minilab && chmod -R a+rX /opt/minilab'],
      {
        input: tree,
        timeoutMs: 600_000,
      },
    ),
    'copy minilab',
  );
  ok(
    await vm.exec(['sh', '-c', 'cat >/usr/local/bin/node && chmod 0755 /usr/local/bin/node'], {
      input: createReadStream(process.execPath),
      timeoutMs: 300_000,
    }),
    'copy node',
  );

  // The node image into the user's own store, from this host's Docker engine.
  const archive = await (await connect()).images.save(image);
  ok(
    await vm.exec(
      [
        'runuser',
        '-u',
        USER,
        '--',
        'env',
        `XDG_RUNTIME_DIR=/run/user/${UID}`,
        'sh',
        '-c',
        'cd && podman load -q',
      ],
      { input: archive, timeoutMs: 20 * 60_000 },
    ),
    'load the node image into the user’s podman',
  );
});

after(async () => {
  if (provider) {
    await provider.deleteCluster(vmProfile);
    assert.deepEqual(
      (await provider.listNodes(vmProfile)).map((n) => n.name),
      [],
      'the guest is gone',
    );
  }
  if (home) await rm(home, { recursive: true, force: true });
});

test('the guest gives the user cgroup v2 with cpu, memory and pids delegated, and podman there runs rootless', async () => {
  const controllers = ok(
    await vm.exec([
      'cat',
      `/sys/fs/cgroup/user.slice/user-${UID}.slice/user@${UID}.service/cgroup.controllers`,
    ]),
    'delegated controllers',
  ).split(/\s+/);
  for (const c of ['cpu', 'memory', 'pids'])
    assert.ok(controllers.includes(c), `${c} in ${controllers.join(' ')}`);
  const info = ok(
    await asUser(
      "podman info --format '{{.Host.Security.Rootless}} {{.Host.CgroupsVersion}} {{.Host.CgroupManager}}'",
    ),
    'podman info',
  );
  assert.equal(info.trim(), 'true v2 systemd');
});

test('minilab start --driver podman as the user: a rootless cluster, its node Ready and CoreDNS serving', async () => {
  const start = await minilab(`start --driver podman -p ${cluster}`, 25 * 60_000);
  assert.equal(start.exitCode, 0, start.stdout + start.stderr);
  assert.match(
    start.stdout + start.stderr,
    /started the podman service .*\/run\/user\/1000\/podman\/podman\.sock/,
  );

  // Under TCG the API server's /readyz fails now and then for a few seconds (etcd answers in
  // seconds there): status says so at that moment; the cluster must be up within minutes.
  let st = await minilab(`status -p ${cluster} -o json`);
  for (let i = 0; i < 36 && st.exitCode !== 0; i++) {
    await new Promise((r) => setTimeout(r, 5000));
    st = await minilab(`status -p ${cluster} -o json`);
  }
  const status = JSON.parse(ok(st, 'status')) as {
    kubelet: string;
    apiServer: { state: string };
    nodes: { container: string }[];
  };
  assert.deepEqual(
    [status.nodes.map((n) => n.container), status.kubelet, status.apiServer.state],
    [['running'], 'running', 'running'],
  );

  // The node is the user's: in their store, not root's, and root in it is the user outside.
  assert.equal(
    ok(await asUser("podman ps --format '{{.Names}}'"), 'podman ps').trim(),
    `${cluster}-control-plane`,
  );
  assert.equal(
    ok(await vm.exec(['podman', 'ps', '-aq']), 'root podman ps').trim(),
    '',
    'root’s podman has nothing',
  );
  const uidMap = ok(await minilab(`ssh -p ${cluster} -- cat /proc/self/uid_map`), 'uid_map');
  assert.match(uidMap, new RegExp(`^\\s*0\\s+${UID}\\s+1\\s*$`, 'm'), uidMap);
  assert.equal(
    ok(await minilab(`ssh -p ${cluster} -- stat -fc %T /sys/fs/cgroup`), 'cgroup fs').trim(),
    'cgroup2fs',
  );

  const nodes = ok(await minilab(`kubectl -p ${cluster} -- get nodes --no-headers`), 'kubectl get nodes');
  assert.match(nodes, new RegExp(`^${cluster}-control-plane\\s+Ready\\s`, 'm'), nodes);
  ok(
    await minilab(
      `kubectl -p ${cluster} -- -n kube-system wait --for=condition=Ready pod -l k8s-app=kube-dns --timeout=300s`,
      6 * 60_000,
    ),
    'CoreDNS Ready',
  );
});

test('minilab delete as the user leaves nothing in their podman', async () => {
  ok(await minilab(`delete -p ${cluster}`), 'delete');
  const left = ok(
    await asUser(
      "podman ps -aq; podman volume ls -q; podman network ls --format '{{.Name}}' | grep -vx podman || true",
    ),
    'what is left',
  );
  assert.equal(left.trim(), '');
});
