import type { PortMapping } from '../types.js';

/** How QEMU runs the guest's CPU: the host's hypervisor (Linux KVM, macOS HVF), or emulated (TCG). */
export type Accelerator = 'kvm' | 'hvf' | 'tcg';

/** What one node VM is made of: everything QEMU's command line says. */
export interface MachineSpec {
  /** The node's name: the guest's hostname and QEMU's process name. */
  name: string;
  accel: Accelerator;
  cpus: number;
  memoryMiB: number;
  kernel: string;
  initrd: string;
  /** The node's own disk: a copy-on-write overlay on the node image's disk. */
  disk: string;
  /** Host ports forwarded into the guest (SSH's among them); always bound to 127.0.0.1. */
  forwards: PortMapping[];
  /** The serial console's log (appended across boots: `minilab logs` reads it). */
  console: string;
  /** QEMU's control socket (QMP): a clean power-down and a quit go through it. */
  qmp: string;
  pidFile: string;
  /** Files the guest reads from QEMU's firmware config (/sys/firmware/qemu_fw_cfg), by name. */
  files: Record<string, { file: string } | { string: string }>;
}

/** Where every forward listens: nothing a node publishes is reachable beyond this machine. */
export const FORWARD_HOST = '127.0.0.1';

/** The guest's fixed address on QEMU's user-mode network (QEMU's default, as the guest sets it). */
export const GUEST_ADDRESS = '10.0.2.15';

/** The kernel command line: the serial console, the root disk, and no reboot loop after a panic. */
export const KERNEL_ARGS = 'console=ttyS0 root=/dev/vda rw panic=-1';

/** A value inside one of QEMU's comma-separated options (a path with a comma in it). */
export const optionValue = (value: string) => value.replaceAll(',', ',,');

/** The accelerator's options: the host's CPU under a hypervisor, every feature QEMU emulates under TCG. */
function accelArgs(accel: Accelerator): string[] {
  switch (accel) {
    case 'kvm':
    case 'hvf':
      return ['-accel', accel, '-cpu', 'host'];
    case 'tcg':
      // one host thread per vCPU; without thread=multi, TCG runs every vCPU on one
      return ['-accel', 'tcg,thread=multi', '-cpu', 'max'];
  }
}

/**
 * QEMU's arguments for a node VM, daemonized. Networking is QEMU's user-mode stack with
 * restrict=on: the guest reaches neither the host nor anything beyond it; only the forwards
 * listed reach the guest, and they listen on 127.0.0.1 alone, whatever the mapping said.
 */
export function qemuArgs(spec: MachineSpec): string[] {
  const forwards = spec.forwards.map(
    (f) => `hostfwd=${f.protocol}:${FORWARD_HOST}:${f.hostPort}-:${f.containerPort}`,
  );
  const fwCfg = Object.entries(spec.files).flatMap(([name, v]) => [
    '-fw_cfg',
    'file' in v
      ? `name=opt/minilab/${name},file=${optionValue(v.file)}`
      : `name=opt/minilab/${name},string=${optionValue(v.string)}`,
  ]);
  return [
    '-name',
    `${optionValue(spec.name)},process=minilab-${optionValue(spec.name)}`,
    '-nodefaults',
    '-no-user-config',
    '-M',
    'q35',
    ...accelArgs(spec.accel),
    '-smp',
    String(spec.cpus),
    '-m',
    `${spec.memoryMiB}M`,
    '-kernel',
    spec.kernel,
    '-initrd',
    spec.initrd,
    '-append',
    KERNEL_ARGS,
    '-drive',
    `file=${optionValue(spec.disk)},if=virtio,format=qcow2,discard=unmap,detect-zeroes=unmap`,
    '-netdev',
    ['user', 'id=net0', 'restrict=on', ...forwards].join(','),
    '-device',
    'virtio-net-pci,netdev=net0',
    '-device',
    'virtio-rng-pci',
    // the guest hands back the memory it frees: QEMU's footprint follows what the node uses
    '-device',
    'virtio-balloon-pci,free-page-reporting=on',
    '-chardev',
    `file,id=console0,path=${optionValue(spec.console)},append=on`,
    '-serial',
    'chardev:console0',
    '-display',
    'none',
    '-qmp',
    `unix:${optionValue(spec.qmp)},server=on,wait=off`,
    '-pidfile',
    spec.pidFile,
    ...fwCfg,
    // a reboot asked in the guest (or a panic) ends QEMU: the node shows as stopped, `start` boots it
    '-no-reboot',
    '-daemonize',
  ];
}
