import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseAccelerator, probeArgs } from '../../src/providers/qemu/accel.js';
import { qemuArgs, type MachineSpec } from '../../src/providers/qemu/command.js';
import { consoleLog, processResources } from '../../src/providers/qemu/node.js';
import { QemuProvider } from '../../src/providers/qemu/provider.js';
import type { ClusterPlan, CreatedResource } from '../../src/providers/types.js';
import { vmDiskDir } from '../../src/image/vm-disk.js';
import { checkNewCluster } from '../../src/lifecycle/preflight.js';
import { exitCodeOf, type MinilabError } from '../../src/errors.js';
import { FakeProvider, FakeWorld } from '../helpers/fake-provider.js';

const spec = (over: Partial<MachineSpec> = {}): MachineSpec => ({
  name: 'dev-control-plane',
  accel: 'tcg',
  cpus: 2,
  memoryMiB: 4096,
  kernel: '/c/vmlinuz',
  initrd: '/c/initrd.img',
  disk: '/p/dev/vm/dev-control-plane/disk.qcow2',
  forwards: [
    { hostIp: '127.0.0.1', hostPort: 40022, containerPort: 22, protocol: 'tcp' },
    { hostIp: '0.0.0.0', hostPort: 40443, containerPort: 6443, protocol: 'tcp' },
    { hostIp: '', hostPort: 8053, containerPort: 53, protocol: 'udp' },
  ],
  console: '/p/console.log',
  qmp: '/p/qmp.sock',
  pidFile: '/p/qemu.pid',
  files: { hostname: { string: 'dev-control-plane' }, authorized_keys: { file: '/p/id.pub' } },
  ...over,
});

/** The value after an option (the first occurrence, or all of them). */
const after = (args: string[], opt: string) => args[args.indexOf(opt) + 1];
const allAfter = (args: string[], opt: string) => args.flatMap((a, i) => (a === opt ? [args[i + 1]] : []));

test('every forward listens on 127.0.0.1 alone, whatever address the mapping named; the guest is restricted', () => {
  const net = after(qemuArgs(spec()), '-netdev')!;
  assert.deepEqual(net.split(','), [
    'user',
    'id=net0',
    'restrict=on',
    'hostfwd=tcp:127.0.0.1:40022-:22',
    'hostfwd=tcp:127.0.0.1:40443-:6443',
    'hostfwd=udp:127.0.0.1:8053-:53',
  ]);
  assert.ok(!net.includes('0.0.0.0'));
});

test('the accelerator: TCG emulates every CPU feature on a thread per vCPU; KVM and HVF pass the host CPU', () => {
  const tcg = qemuArgs(spec());
  assert.equal(after(tcg, '-accel'), 'tcg,thread=multi');
  assert.equal(after(tcg, '-cpu'), 'max');
  for (const accel of ['kvm', 'hvf'] as const) {
    const args = qemuArgs(spec({ accel }));
    assert.equal(after(args, '-accel'), accel);
    assert.equal(after(args, '-cpu'), 'host');
  }
});

test('memory, CPUs, kernel, disk, console and control socket are as asked; QEMU daemonizes with a pid file', () => {
  const args = qemuArgs(spec({ cpus: 3, memoryMiB: 6144 }));
  assert.equal(after(args, '-smp'), '3');
  assert.equal(after(args, '-m'), '6144M');
  assert.equal(after(args, '-kernel'), '/c/vmlinuz');
  assert.equal(after(args, '-initrd'), '/c/initrd.img');
  assert.match(after(args, '-append')!, /console=ttyS0 root=\/dev\/vda rw/);
  assert.match(
    after(args, '-drive')!,
    /^file=\/p\/dev\/vm\/dev-control-plane\/disk\.qcow2,if=virtio,format=qcow2/,
  );
  assert.equal(after(args, '-chardev'), 'file,id=console0,path=/p/console.log,append=on');
  assert.equal(after(args, '-qmp'), 'unix:/p/qmp.sock,server=on,wait=off');
  assert.equal(after(args, '-pidfile'), '/p/qemu.pid');
  assert.ok(args.includes('-daemonize') && args.includes('-no-reboot') && args.includes('-nodefaults'));
  assert.deepEqual(allAfter(args, '-fw_cfg'), [
    'name=opt/minilab/hostname,string=dev-control-plane',
    'name=opt/minilab/authorized_keys,file=/p/id.pub',
  ]);
});

test("a comma in a path is doubled, as QEMU's option syntax needs", () => {
  const args = qemuArgs(spec({ disk: '/home/a,b/disk.qcow2', console: '/x,y/c.log' }));
  assert.match(after(args, '-drive')!, /^file=\/home\/a,,b\/disk\.qcow2,if=virtio/);
  assert.equal(after(args, '-chardev'), 'file,id=console0,path=/x,,y/c.log,append=on');
});

/** A stand-in qemu-system-x86_64: a script that prints what the probe guest would, or fails as KVM does here. */
async function fakeQemu(dir: string, script: string): Promise<string> {
  const path = join(dir, 'qemu-system-x86_64');
  await writeFile(path, `#!/bin/sh\n${script}\n`);
  await chmod(path, 0o755);
  return path;
}

test('the probe: a guest that boots under KVM chooses KVM; the answer is kept and not probed again', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-accel-'));
  try {
    const calls = join(dir, 'calls');
    const qemu = await fakeQemu(
      dir,
      `echo "$@" >> ${calls}; echo '[    1.0] booting'; echo minilab-probe-ok`,
    );
    const opts = {
      qemu,
      kernel: '/k',
      initrd: '/i',
      cacheFile: join(dir, 'accel.json'),
      platform: 'darwin' as const,
    };
    assert.deepEqual(await chooseAccelerator(opts), { accel: 'hvf' });
    assert.deepEqual(await chooseAccelerator(opts), { accel: 'hvf' });
    const lines = (await readFile(calls, 'utf8')).trim().split('\n');
    assert.equal(lines.length, 1, 'probed once');
    assert.match(lines[0]!, /-accel hvf -cpu host .*-append console=ttyS0 minilab\.probe/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the probe: a hypervisor that cannot boot the guest falls back to TCG with QEMU's own words", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-accel-'));
  try {
    const qemu = await fakeQemu(dir, `echo 'KVM internal error. Suberror: 1' >&2; exit 1`);
    const choice = await chooseAccelerator({
      qemu,
      kernel: '/k',
      initrd: '/i',
      cacheFile: join(dir, 'accel.json'),
      platform: 'darwin',
    });
    assert.equal(choice.accel, 'tcg');
    assert.match(choice.reason ?? '', /does not boot under hvf: KVM internal error\. Suberror: 1/);
    const hung = await fakeQemu(dir, 'sleep 30');
    const slow = await chooseAccelerator({
      qemu: hung,
      kernel: '/k2',
      initrd: '/i',
      cacheFile: join(dir, 'accel2.json'),
      platform: 'darwin',
      timeoutMs: 300,
    });
    assert.equal(slow.accel, 'tcg');
    assert.match(slow.reason ?? '', /did not boot within 0 s|did not boot/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the probe boots the node kernel with the probe flag, small, without a disk or network', () => {
  const args = probeArgs('kvm', '/k', '/i');
  assert.equal(after(args, '-append'), 'console=ttyS0 minilab.probe panic=-1');
  assert.equal(after(args, '-m'), '256M');
  assert.ok(!args.includes('-drive') && !args.includes('-netdev'));
});

test('the console log: the last lines, then what is appended while following', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-console-'));
  try {
    const file = join(dir, 'console.log');
    await writeFile(file, 'one\ntwo\nthree\n');
    const tail = await consoleLog(file, { tail: 2 });
    let text = '';
    for await (const c of tail) text += String(c);
    assert.equal(text, 'two\nthree\n');
    const follow = await consoleLog(file, { tail: 1, follow: true });
    const seen: string[] = [];
    const got = new Promise<void>((resolve) =>
      follow.on('data', (c: Buffer) => {
        seen.push(c.toString());
        if (seen.join('').includes('four')) resolve();
      }),
    );
    await writeFile(file, 'one\ntwo\nthree\nfour\n');
    await got;
    follow.destroy();
    assert.equal(seen.join(''), 'three\nfour\n');
    const none = await consoleLog(join(dir, 'absent.log'), { tail: 5 });
    let empty = '';
    for await (const c of none) empty += String(c);
    assert.equal(empty, '');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a process's resources: this process's memory and CPU time are read from /proc", async () => {
  const r = await processResources(process.pid);
  assert.ok(r.memoryBytes > 10 * 1024 * 1024, `RSS ${r.memoryBytes}`);
  assert.ok(r.cpuSeconds > 0);
  assert.deepEqual(await processResources(2 ** 22 + 12345), { memoryBytes: 0, cpuSeconds: 0 });
});

/** A qemu provider over the fake world's image store, in a temporary MINILAB_HOME. */
async function qemuProvider(tools: { qemu?: string; qemuImg?: string }) {
  const home = await mkdtemp(join(tmpdir(), 'minilab-qemu-home-'));
  const world = new FakeWorld();
  world.images.add('minilab/node:v1.37.2');
  const provider = new QemuProvider(home, new FakeProvider(world).images, tools);
  return { home, provider, cleanup: () => rm(home, { recursive: true, force: true }) };
}

const plan = (nodes = 1): ClusterPlan => ({
  profile: 'vm',
  kubernetesVersion: 'v1.37.2',
  image: 'minilab/node:v1.37.2',
  nodes: Array.from({ length: nodes }, (_, i) => ({
    name: i === 0 ? 'vm-control-plane' : `vm-worker${i}`,
    role: i === 0 ? ('control-plane' as const) : ('worker' as const),
    ports: [],
  })),
  apiServerPort: 40443,
  env: {},
  labels: {},
});

test('without QEMU installed, preflight refuses with the package to install, before anything is made', async () => {
  const { provider, home, cleanup } = await qemuProvider({});
  try {
    const info = await provider.info();
    assert.match(info.refusals?.[0]?.message ?? '', /qemu-system-x86_64 is not installed/);
    assert.match(info.refusals?.[0]?.hint ?? '', /apt-get install qemu-system-x86 qemu-utils/);
    await assert.rejects(
      checkNewCluster(provider, { kubernetesVersion: 'v1.37.2', ports: [] }, {}),
      (err: MinilabError) => exitCodeOf(err) === 3 && /qemu-system-x86_64 is not installed/.test(err.message),
    );
    assert.ok(!existsSync(join(home, 'profiles')), 'nothing was written');
  } finally {
    await cleanup();
  }
});

test('several nodes, or a disk size on a container driver, are usage errors before anything is made', async () => {
  const { provider, cleanup } = await qemuProvider({ qemu: '/bin/true', qemuImg: '/bin/true' });
  try {
    await assert.rejects(
      checkNewCluster(provider, { kubernetesVersion: 'v1.37.2', ports: [], nodes: 2 }, {}),
      (err: MinilabError) => exitCodeOf(err) === 2 && /at most 1 node/.test(err.message),
    );
    await assert.rejects(
      checkNewCluster(provider, { kubernetesVersion: 'v1.37.2', ports: [], diskBytes: 4 * 1024 ** 3 }, {}),
      (err: MinilabError) => exitCodeOf(err) === 2 && /--disk-size below 10g/.test(err.message),
    );
    const fake = new FakeProvider(new FakeWorld());
    await assert.rejects(
      checkNewCluster(fake, { kubernetesVersion: 'v1.37.2', ports: [], diskBytes: 40 * 1024 ** 3 }, {}),
      (err: MinilabError) =>
        exitCodeOf(err) === 2 && /--disk-size applies to VM drivers only/.test(err.message),
    );
  } finally {
    await cleanup();
  }
});

test('a VM disk that fails its checksum is refused with a rebuild hint; no node is made on it', async () => {
  const { provider, home, cleanup } = await qemuProvider({ qemu: '/bin/true', qemuImg: '/bin/true' });
  try {
    const dir = await vmDiskDir(home, 'sha256:minilab/node:v1.37.2');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'disk.qcow2'), 'a disk changed after it was made');
    await writeFile(
      join(dir, 'disk.json'),
      JSON.stringify({ image: 'minilab/node:v1.37.2', imageId: 'x', sha256: '0'.repeat(64), sizeBytes: 32 }),
    );
    const journal = { entries: [] as CreatedResource[], record() {}, forget() {} };
    await assert.rejects(
      provider.provision(plan(), journal),
      (err: MinilabError) =>
        exitCodeOf(err) === 3 &&
        /fails its checksum/.test(err.message) &&
        /minilab image build --driver qemu --force/.test(err.hint ?? ''),
    );
    assert.deepEqual(await provider.listNodes('vm'), []);
  } finally {
    await cleanup();
  }
});
