import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { resourceNames } from '../../src/profile/name.js';
import { minilabHome } from '../../src/profile/store.js';
import { cleanupTestResources, connect, runId } from '../helpers/engine.js';
import {
  deployEcho,
  echoServerArchive,
  kubeClients,
  readClaimFile,
  runPodOnce,
  sandbox,
  SERVICE_CLIENT_SPEC,
  waitFor,
  writeClaimFile,
} from '../helpers/cluster.js';

// One cluster on the qemu driver, taken through what users do with it. This machine's KVM cannot
// boot a guest (nested virtualization is incomplete), so the node runs under TCG: minutes, not
// seconds, to start; one cluster serves every case.
const profile = `qm-${runId}`;
const node = resourceNames(profile).node(0);
const echoImage = `minilab-test/echo-qm:${runId}`;
let s: Awaited<ReturnType<typeof sandbox>>;

/** The node VM's folder, under the test's MINILAB_HOME. */
const vmDir = () => join(s.home, 'profiles', profile, 'vm', node);

/** The QEMU process of the node, if it runs (its pid file, alive). */
async function qemuPid(): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(join(vmDir(), 'qemu.pid'), 'utf8')).trim());
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** The TCP ports listening on this host, with their addresses (from /proc/net/tcp, tcp6). */
async function listening(): Promise<{ address: string; port: number }[]> {
  const out: { address: string; port: number }[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = (await readFile(file, 'utf8')).trim().split('\n').slice(1);
    for (const line of lines) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state !== '0A' || !local) continue; // LISTEN
      const [hex, port] = local.split(':');
      out.push({ address: hex ?? '', port: parseInt(port ?? '0', 16) });
    }
  }
  return out;
}

let ports: number[] = [];

before(async () => {
  s = await sandbox('qemu');
  // The VM disk the set-up made (image build --driver qemu) and the accelerator probe's answer are
  // kept in minilab's cache: this test's MINILAB_HOME shares them instead of making its own.
  await mkdir(join(s.home, 'cache'), { recursive: true });
  await symlink(join(minilabHome(process.env), 'cache', 'vm'), join(s.home, 'cache', 'vm'));
  const r = await s.minilab(['start', '-p', profile, '--driver', 'qemu', '--memory', '4g', '--cpus', '2'], {
    timeoutMs: 25 * 60_000,
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const record = JSON.parse(await readFile(join(vmDir(), 'machine.json'), 'utf8')) as {
    sshPort: number;
    ports: { hostPort: number }[];
    accel: string;
  };
  ports = [record.sshPort, ...record.ports.map((p) => p.hostPort)];
  console.log(`# qemu node under ${record.accel}`);
});

after(async () => {
  await s?.minilab(['delete', '-p', profile], { timeoutMs: 180_000 }).catch(() => undefined);
  const docker = await connect().catch(() => undefined);
  if (docker) {
    await docker.images.remove(echoImage).catch(() => undefined);
    await cleanupTestResources(docker);
  }
  await s?.cleanup();
});

const clients = () => kubeClients(s.kubeconfig, profile);

test('start --driver qemu: the node is a VM on cgroup v2, reached on 127.0.0.1 only; ssh, kubectl, status and profile list work', async () => {
  assert.ok(await qemuPid(), 'the QEMU process runs');
  // Every forward (SSH, the API server) listens on loopback alone.
  const open = (await listening()).filter((l) => ports.includes(l.port));
  assert.ok(open.length >= 2, JSON.stringify(open));
  for (const l of open) assert.equal(l.address, '0100007F', `port ${l.port} listens on 127.0.0.1 only`);

  const cgroup = await s.minilab(['ssh', '-p', profile, '--', 'stat', '-fc', '%T', '/sys/fs/cgroup']);
  assert.equal(cgroup.code, 0, cgroup.stderr);
  assert.equal(cgroup.stdout, 'cgroup2fs\n');
  const ssh = await s.minilab([
    'ssh',
    '-p',
    profile,
    '--',
    'sh',
    '-c',
    'hostname; systemd-detect-virt; exit 3',
  ]);
  assert.equal(ssh.code, 3, 'the exit code comes back');
  assert.match(ssh.stdout, new RegExp(`^${node}\nqemu\n$`));

  const kubectl = await s.minilab(['kubectl', '-p', profile, '--', 'get', 'nodes', '-o', 'name']);
  assert.equal(kubectl.code, 0, kubectl.stderr);
  assert.equal(kubectl.stdout, `node/${node}\n`);
  const status = await s.minilab(['status', '-p', profile, '-o', 'json']);
  assert.equal(status.code, 0, status.stdout + status.stderr);
  const list = await s.minilab(['profile', 'list', '-o', 'json']);
  const listed = (JSON.parse(list.stdout) as { profiles: { name: string; driver: string; status: string }[] })
    .profiles;
  assert.deepEqual(
    listed.filter((p) => p.name === profile).map((p) => [p.driver, p.status]),
    [['qemu', 'running']],
  );
  // The same profile on another driver is refused, changing nothing.
  const other = await s.minilab(['start', '-p', profile, '--driver', 'docker']);
  assert.equal(other.code, 2);
  assert.match(other.stderr, /runs on qemu, not docker/);
});

test("image load streams an image from Docker's store into the VM; a pod runs it behind a Service", async () => {
  const docker = await connect();
  await docker.images.load(await echoServerArchive(echoImage, s.dir));
  const load = await s.minilab(['image', 'load', '-p', profile, echoImage, '-o', 'json'], {
    timeoutMs: 300_000,
  });
  assert.equal(load.code, 0, load.stderr);
  assert.equal((JSON.parse(load.stdout) as { loaded: { status: string }[] }).loaded[0]?.status, 'loaded');
  await deployEcho(clients(), echoImage, { name: 'echo', port: 80 });
  // Under TCG a pod's first request can outlast the echo client's 5 s deadline while the node's
  // emulated CPUs are busy (measured: one of three clients started at once timed out, the other
  // two answered): the client is restarted until it answers, and a Service that never answers
  // still fails the test when the pod's deadline passes.
  const viaService = await runPodOnce(
    clients().core,
    'client-svc',
    echoImage,
    ['get', 'http://echo.default.svc.cluster.local/'],
    { spec: SERVICE_CLIENT_SPEC, timeoutMs: 240_000 },
  );
  assert.equal(viaService.phase, 'Succeeded', viaService.log);
  assert.match(viaService.log, /^hello from echo-/);
});

test('stop powers the VM off (no QEMU left); start boots the same disk and a PVC file is kept', async () => {
  const { core } = clients();
  await writeClaimFile(core, node, `kept-${runId}`);
  const stopped = await s.minilab(['stop', '-p', profile], { timeoutMs: 300_000 });
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.equal(await qemuPid(), undefined);
  const status = await s.minilab(['status', '-p', profile, '-o', 'json']);
  assert.notEqual(status.code, 0);
  const started = await s.minilab(['start', '-p', profile], { timeoutMs: 900_000 });
  assert.equal(started.code, 0, started.stderr);
  assert.ok(await qemuPid());
  assert.equal(await readClaimFile(core, node, 'claim-reader'), `kept-${runId}`);
});

test("logs --export writes the node's bundle, with the VM's serial console", async () => {
  const dir = join(s.dir, 'logs');
  const exported = await s.minilab(['logs', '-p', profile, '--export', dir], { timeoutMs: 300_000 });
  assert.equal(exported.code, 0, exported.stderr);
  assert.ok((await readdir(join(dir, node))).includes('kubelet.log'));
  const serial = await readFile(join(dir, node, 'node-console.log'), 'utf8');
  assert.match(serial, /Linux version 6\./, 'the kernel booted on the serial console');
  assert.match(serial, /minilab-vm\.service/);
});

test('delete leaves no process, file or port behind', async () => {
  const pid = await qemuPid();
  assert.ok(pid);
  const deleted = await s.minilab(['delete', '-p', profile], { timeoutMs: 180_000 });
  assert.equal(deleted.code, 0, deleted.stderr);
  await waitFor('QEMU to end', 10_000, async () => {
    try {
      process.kill(pid, 0);
      return undefined;
    } catch {
      return true;
    }
  });
  assert.ok(!existsSync(join(s.home, 'profiles', profile)), 'the profile folder is gone');
  const open = (await listening()).filter((l) => ports.includes(l.port));
  assert.deepEqual(open, []);
  const again = await s.minilab(['delete', '-p', profile]);
  assert.equal(again.code, 0, 'delete is idempotent');
});
