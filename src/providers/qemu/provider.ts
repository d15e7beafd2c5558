import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { stripVTControlCharacters } from 'node:util';
import { basename, join } from 'node:path';
import getPort from 'get-port';
import { MinilabError } from '../../errors.js';
import {
  ensureVmDisk,
  findVmDisk,
  readVmDisk,
  runTool,
  sha256File,
  type VmDisk,
} from '../../image/vm-disk.js';
import { Labels } from '../../labels.js';
import { privateDir } from '../../private-files.js';
import { writeFileAtomic } from '../../profile/store.js';
import type { Reporter } from '../../reporter.js';
import { ProviderError, apiEndpointOf, providerFailure } from '../errors.js';
import { lastLines } from '../run.js';
import type {
  ClusterPlan,
  CreatedResource,
  ImageStore,
  Journal,
  Node,
  Provider,
  ProviderInfo,
  RemovedResources,
  ServicePlan,
} from '../types.js';
import { chooseAccelerator, type AcceleratorChoice } from './accel.js';
import { FORWARD_HOST, type MachineSpec } from './command.js';
import {
  forgetProcess,
  killMachine,
  launch,
  machineDirs,
  machinePaths,
  qmpCommand,
  readRecord,
  runningPid,
  waitForExit,
  writeRecord,
  type MachineRecord,
} from './machine.js';
import { machineState, QemuNode } from './node.js';

/** The SSH client (ssh2) loads when a VM is first reached: `status` of a missing profile asks every provider. */
const sshLibrary = () => import('./ssh.js');

const MiB = 1024 ** 2;
/** A node VM's memory and CPUs when --memory and --cpus are not given. */
const DEFAULT_MEMORY_MIB = 4096;
const DEFAULT_CPUS = 2;
const INSTALL_QEMU =
  'install QEMU: apt-get install qemu-system-x86 qemu-utils (Debian, Ubuntu), dnf install qemu-kvm qemu-img (Fedora), brew install qemu (macOS)';

/** The profile's public key line, as the guest is handed it. */
const authorizedKeysFile = (vmRoot: string) => join(vmRoot, 'id_ed25519.pub');
/** The disk each node VM may grow to when --disk-size is not given (its overlay is sparse: only what the guest writes takes space). */
const DEFAULT_DISK_BYTES = 20 * 1024 ** 3;

export interface QemuTools {
  /** qemu-system-x86_64, when installed. */
  qemu?: string;
  /** qemu-img, when installed. */
  qemuImg?: string;
}

/**
 * Nodes as QEMU virtual machines booted from the node image's disk (images/vm): one overlay disk
 * per node, user-mode networking with forwards on 127.0.0.1 only, commands over SSH with a key
 * of the profile's and the node's host key pinned. Node images are built in a container engine
 * (Docker or podman, `images`): the VM disk is that image's other packaging.
 */
export class QemuProvider implements Provider {
  readonly driver = 'qemu';
  private accel?: Promise<AcceleratorChoice>;

  constructor(
    private readonly home: string,
    readonly images: ImageStore,
    private readonly tools: QemuTools,
    private readonly notify: (message: string) => void = () => undefined,
  ) {}

  /** Where a profile's node VMs live: a folder each, in the profile's. */
  private vmRoot(profile: string) {
    return join(this.home, 'profiles', profile, 'vm');
  }

  async info(): Promise<ProviderInfo> {
    const version = this.tools.qemu ? await qemuVersion(this.tools.qemu) : 'not installed';
    const missing = !this.tools.qemu ? 'qemu-system-x86_64' : !this.tools.qemuImg ? 'qemu-img' : undefined;
    return {
      driver: this.driver,
      engine: { name: 'QEMU', version },
      // the guest's systemd runs on the unified hierarchy, whatever the host's
      cgroupVersion: '2',
      cgroupDriver: 'systemd',
      cpus: cpus().length,
      memoryBytes: totalmem(),
      rootless: false,
      rootDir: this.home,
      os: process.platform,
      local: true,
      maxNodes: 1,
      diskSize: true,
      refusals: missing
        ? [
            {
              message: `${missing} is not installed (the qemu driver runs nodes in QEMU)`,
              hint: INSTALL_QEMU,
            },
          ]
        : [],
    };
  }

  /** The node image's VM disk, made on first use (the node image step calls this after the image). */
  async prepareImage(
    ref: string,
    reporter: Reporter,
    extraLabels: Record<string, string>,
    opts: { force?: boolean } = {},
  ): Promise<VmDisk> {
    const found = opts.force ? undefined : await findVmDisk(this.images, ref, this.home);
    if (found) return found;
    const ctx = { images: this.images, home: this.home, extraLabels, qemuImg: this.need('qemuImg') };
    return reporter.step(`VM disk of ${ref} (kernel, SSH server, ext4 root)`, (progress) =>
      ensureVmDisk(ctx, ref, progress, opts),
    );
  }

  private need(tool: keyof QemuTools): string {
    const path = this.tools[tool];
    if (!path) {
      throw new MinilabError(
        'environment',
        `${tool === 'qemu' ? 'qemu-system-x86_64' : 'qemu-img'} is not installed`,
        {
          hint: INSTALL_QEMU,
        },
      );
    }
    return path;
  }

  /** The accelerator node VMs run under (probed once by booting the node kernel; kept on disk). */
  private accelerator(disk: VmDisk): Promise<AcceleratorChoice> {
    this.accel ??= chooseAccelerator({
      qemu: this.need('qemu'),
      kernel: disk.kernel,
      initrd: disk.initrd,
      cacheFile: join(this.home, 'cache', 'vm', 'accelerator.json'),
    }).then((choice) => {
      if (choice.accel === 'tcg') {
        this.notify(
          `QEMU emulates the CPU (TCG): nodes take minutes to start, not seconds (${choice.reason ?? 'no hypervisor'})`,
        );
      }
      return choice;
    });
    return this.accel;
  }

  /**
   * The profile's SSH private key (made with its first node VM; `create` only): 0600 in the
   * profile's folder. Its public line is derived from it when a VM boots (see boot), so the two
   * cannot disagree after a crash between two writes.
   */
  private async clientKey(profile: string, create = false): Promise<string> {
    const root = this.vmRoot(profile);
    const file = join(root, 'id_ed25519');
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !create) throw err;
      await privateDir(root);
      const { privateKey } = (await sshLibrary()).generateKeyPair();
      await writeFileAtomic(file, privateKey, 0o600);
      return privateKey;
    }
  }

  private async handle(dir: string, record: MachineRecord): Promise<QemuNode> {
    const privateKey = await this.clientKey(record.profile);
    const hostKey = await readFile(machinePaths(dir).hostKeyPub, 'utf8');
    const { SshConnection } = await sshLibrary();
    const ssh = new SshConnection({
      host: FORWARD_HOST,
      port: record.sshPort,
      user: 'root',
      privateKey,
      hostKey: hostKey.trim(),
      name: record.name,
    });
    return new QemuNode(await machineState(dir, record), dir, record, ssh);
  }

  private spec(dir: string, record: MachineRecord, disk: { kernel: string; initrd: string }): MachineSpec {
    const paths = machinePaths(dir);
    return {
      name: record.name,
      accel: record.accel,
      cpus: record.cpus,
      memoryMiB: record.memoryMiB,
      kernel: disk.kernel,
      initrd: disk.initrd,
      disk: paths.disk,
      forwards: [
        { hostIp: FORWARD_HOST, hostPort: record.sshPort, containerPort: 22, protocol: 'tcp' },
        ...record.ports,
      ],
      console: paths.console,
      qmp: paths.qmp,
      pidFile: paths.pidFile,
      files: {
        hostname: { string: record.name },
        authorized_keys: { file: authorizedKeysFile(this.vmRoot(record.profile)) },
        ssh_host_key: { file: paths.hostKey },
      },
    };
  }

  /** Boots a node VM and waits for its SSH server (the boot step then waits for systemd and containerd). */
  private async boot(dir: string, record: MachineRecord): Promise<QemuNode> {
    const disk = await this.diskOf(record);
    // the public line the guest authorizes, written where QEMU hands it over (fw_cfg)
    const publicKey = (await sshLibrary()).publicKeyOf(await this.clientKey(record.profile));
    await writeFileAtomic(authorizedKeysFile(this.vmRoot(record.profile)), publicKey + '\n', 0o644);
    await launch(this.need('qemu'), this.spec(dir, record, disk));
    const node = await this.handle(dir, record);
    await node.ssh.ready(record.accel === 'tcg' ? 300_000 : 60_000);
    return node;
  }

  private async diskOf(record: MachineRecord): Promise<VmDisk> {
    const disk = await readVmDisk(record.base.dir);
    if (!disk) {
      throw new MinilabError(
        'environment',
        `the VM disk node ${record.name} was made on is gone (${record.base.dir})`,
        {
          hint: `delete the cluster and start it again: minilab delete -p ${record.profile}`,
        },
      );
    }
    return disk;
  }

  async provision(plan: ClusterPlan, journal: Journal): Promise<Node[]> {
    if (plan.nodes.length > 1 || plan.loadBalancer) {
      throw new MinilabError('usage', 'the qemu driver runs clusters of one node for now', {
        hint: 'start with --nodes 1, or use --driver docker for several nodes',
      });
    }
    if (plan.nodes.some((n) => (n.mounts ?? []).length > 0)) {
      throw new MinilabError('usage', 'the qemu driver cannot share host folders with nodes (extraMounts)', {
        hint: 'leave extraMounts out of the config file, or use --driver docker',
      });
    }
    const disk = await findVmDisk(this.images, plan.image, this.home);
    if (!disk) {
      throw new MinilabError('notFound', `there is no VM disk of ${plan.image}`, {
        hint: 'build it: minilab image build --driver qemu',
      });
    }
    if ((await sha256File(disk.disk)) !== disk.sha256) {
      throw new MinilabError('environment', `the VM disk ${disk.disk} fails its checksum`, {
        hint: 'build it again: minilab image build --driver qemu --force',
      });
    }
    const { accel } = await this.accelerator(disk);
    await this.clientKey(plan.profile, true);
    const nodes: Node[] = [];
    for (const node of plan.nodes) {
      const dir = join(this.vmRoot(plan.profile), node.name);
      if (await readRecord(dir)) {
        throw new ProviderError(
          { reason: 'name-in-use', name: node.name },
          `a node VM named ${node.name} exists already`,
          {
            hint: `delete it first: minilab delete -p ${plan.profile}`,
          },
        );
      }
      // a folder with no readable record may still have a QEMU running from it
      await killMachine(machinePaths(dir));
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const created: CreatedResource = { kind: 'node', name: node.name };
      journal.record(created);
      const paths = machinePaths(dir);
      const hostKey = (await sshLibrary()).generateKeyPair();
      await writeFileAtomic(paths.hostKey, hostKey.privateKey, 0o600);
      await writeFileAtomic(paths.hostKeyPub, hostKey.publicKey + '\n', 0o644);
      await runTool(
        this.need('qemuImg'),
        [
          'create',
          '-q',
          '-f',
          'qcow2',
          '-F',
          'qcow2',
          '-b',
          disk.disk,
          paths.disk,
          String(plan.diskBytes ?? DEFAULT_DISK_BYTES),
        ],
        'making the node disk',
      );
      const labels: Record<string, string> = { ...plan.labels, [Labels.version]: plan.kubernetesVersion };
      if (node.role === 'control-plane') labels[Labels.apiServerPort] = String(plan.apiServerPort);
      const record: MachineRecord = {
        name: node.name,
        profile: plan.profile,
        role: node.role,
        image: plan.image,
        labels,
        ports: node.ports.map((p) => ({ ...p, hostIp: FORWARD_HOST })),
        sshPort: await getPort({ host: FORWARD_HOST }),
        cpus: plan.cpus ?? Math.min(DEFAULT_CPUS, cpus().length),
        memoryMiB: plan.memoryBytes ? Math.floor(plan.memoryBytes / MiB) : DEFAULT_MEMORY_MIB,
        accel,
        base: { dir: disk.dir },
        createdAt: new Date().toISOString(),
      };
      await writeRecord(dir, record);
      try {
        nodes.push(await this.boot(dir, record));
      } catch (err) {
        if (providerFailure(err, 'port-taken')) {
          // QEMU never started: the folder goes now, so the retry (another port) can reuse the name.
          await rm(dir, { recursive: true, force: true });
          journal.forget(created);
          throw err;
        }
        // Anything else is the rollback's to remove (or keep, with --keep-on-failure): the console
        // says why first, while its log is still there.
        throw await withConsoleTail(err, paths.console);
      }
    }
    return nodes;
  }

  async listNodes(profile?: string): Promise<Node[]> {
    const roots = profile
      ? [this.vmRoot(profile)]
      : (await readdir(join(this.home, 'profiles')).catch(() => [] as string[])).map((p) => this.vmRoot(p));
    const nodes: Node[] = [];
    for (const root of roots) {
      for (const dir of await machineDirs(root)) {
        const record = await readRecord(dir);
        // one broken folder (no record, no host key) hides only that node, not every profile's
        const node = record && (await this.handle(dir, record).catch(() => undefined));
        if (node) nodes.push(node);
      }
    }
    return nodes;
  }

  loadBalancer(): Promise<Node | undefined> {
    return Promise.resolve(undefined);
  }

  addService(plan: ServicePlan): Promise<Node> {
    return Promise.reject(
      new MinilabError('usage', `the qemu driver cannot run the ${plan.role} beside its node yet`, {
        hint: 'use --driver docker for this add-on',
      }),
    );
  }

  services(): Promise<Node[]> {
    return Promise.resolve([]);
  }

  async startNode(node: Node): Promise<void> {
    const dir = (node as QemuNode).dir;
    const record = await readRecord(dir);
    if (!record)
      throw new ProviderError({ reason: 'not-found', name: node.name }, `node VM ${node.name} is gone`);
    if ((await runningPid(machinePaths(dir))) !== undefined) return;
    await this.boot(dir, record);
  }

  /**
   * A clean ACPI shutdown with a deadline (four times longer under TCG), counted from the request:
   * the power button is pressed through QMP (acpid in the guest turns it into a poweroff); a
   * guest still running at half the deadline (its acpid not up yet, early in a boot) is asked
   * again by systemctl over SSH; QEMU is killed at the deadline.
   */
  async stopNode(node: Node, timeoutSeconds: number): Promise<void> {
    const qnode = node as QemuNode;
    const paths = machinePaths(qnode.dir);
    const pid = await runningPid(paths);
    if (pid === undefined) return;
    const record = await readRecord(qnode.dir);
    const deadline = Date.now() + timeoutSeconds * 1000 * (record?.accel === 'tcg' ? 4 : 1);
    const left = () => Math.max(0, deadline - Date.now());
    const pressed = await qmpCommand(paths.qmp, 'system_powerdown').then(
      () => true,
      () => false,
    );
    if (!pressed || !(await waitForExit(pid, left() / 2))) {
      await node.exec(['systemctl', 'poweroff', '--no-block'], { timeoutMs: 10_000 }).catch(() => undefined);
    }
    qnode.close();
    if (await waitForExit(pid, left())) await forgetProcess(paths);
    else await killMachine(paths);
  }

  async deleteNode(node: Node): Promise<RemovedResources> {
    const removed: RemovedResources = { containers: [], volumes: [] };
    if (await this.removeMachine(join(this.vmRoot(node.profile), node.name)))
      removed.containers.push(node.name);
    return removed;
  }

  private async removeMachine(dir: string): Promise<boolean> {
    if (!existsSync(dir)) return false;
    await killMachine(machinePaths(dir));
    await rm(dir, { recursive: true, force: true });
    return true;
  }

  async deleteCluster(profile: string, only?: readonly CreatedResource[]): Promise<RemovedResources> {
    const root = this.vmRoot(profile);
    const named = only?.filter((r) => r.kind === 'node').map((r) => join(root, r.name));
    const vms: string[] = [];
    for (const dir of named ?? (await machineDirs(root))) {
      if (await this.removeMachine(dir)) vms.push(basename(dir));
    }
    // the profile's key goes with its last node
    if ((await machineDirs(root)).length === 0) await rm(root, { recursive: true, force: true });
    return { containers: [], volumes: [], vms };
  }

  apiEndpoint(nodes: readonly Node[]): { host: string; port: number } {
    return apiEndpointOf(nodes);
  }
}

/** QEMU's version, from its --version line ("QEMU emulator version 10.0.2 (Debian ...)"). */
function qemuVersion(qemu: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(qemu, ['--version'], { timeout: 5_000 }, (err, stdout) => {
      resolve(/version (\S+)/.exec(stdout)?.[1] ?? (err ? 'unknown' : stdout.trim()));
    });
  });
}

/** An error with the last lines of a node's serial console under it (a boot that went wrong). */
async function withConsoleTail(err: unknown, consoleLog: string): Promise<unknown> {
  if (!(err instanceof MinilabError)) return err;
  const text = await readFile(consoleLog, 'utf8').catch(() => '');
  // systemd colours its status lines: the escape sequences go
  const tail = lastLines(stripVTControlCharacters(text), 15);
  if (tail.length > 0) err.details.push(`--- the node's console (${consoleLog})`, ...tail);
  return err;
}
