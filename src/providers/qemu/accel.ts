import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { release } from 'node:os';
import { writeFileAtomic } from '../../profile/store.js';
import type { Accelerator } from './command.js';

/** What the probe found: the accelerator to use, and why a faster one is not it. */
export interface AcceleratorChoice {
  accel: Accelerator;
  /** Why the host's hypervisor is not used (absent when it is). */
  reason?: string;
}

export interface ProbeOptions {
  qemu: string;
  kernel: string;
  initrd: string;
  /** Where the answer is kept, for this QEMU, kernel and host kernel (a probe boots a guest). */
  cacheFile: string;
  platform?: NodeJS.Platform;
  /** How long a probe guest may take to say it booted. */
  timeoutMs?: number;
}

/** What the initrd prints on the console when booted with `minilab.probe` (images/vm/initrd-init). */
const PROBE_OK = 'minilab-probe-ok';

/** The hypervisor a platform has, if any: opening its device is not enough to know it works. */
async function candidate(platform: NodeJS.Platform): Promise<{ accel?: Accelerator; reason?: string }> {
  if (platform === 'darwin') return { accel: 'hvf' };
  if (platform !== 'linux') return { reason: `no hypervisor QEMU can use on ${platform}` };
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
    return { accel: 'kvm' };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      reason:
        code === 'ENOENT'
          ? '/dev/kvm does not exist (no KVM: enable virtualization, or load kvm_intel or kvm_amd)'
          : '/dev/kvm is not readable and writable by this user (add it to the kvm group)',
    };
  }
}

/** The QEMU arguments of a probe: the node's kernel and initrd, which print PROBE_OK and power off. */
export function probeArgs(accel: Accelerator, kernel: string, initrd: string): string[] {
  return [
    '-nodefaults',
    '-no-user-config',
    '-M',
    'q35',
    '-accel',
    accel,
    '-cpu',
    'host',
    '-m',
    '256M',
    '-display',
    'none',
    '-serial',
    'stdio',
    '-kernel',
    kernel,
    '-initrd',
    initrd,
    '-append',
    'console=ttyS0 minilab.probe panic=-1',
    '-no-reboot',
  ];
}

/** Boots the probe guest: undefined when it said it booted, else why not (QEMU's last words). */
export async function bootProbe(
  qemu: string,
  args: string[],
  timeoutMs: number,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let done = false;
    const finish = (why: string | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      // a child QEMU left holding the pipes must not keep this process waiting
      child.stdout.destroy();
      child.stderr.destroy();
      resolve(why);
    };
    const take = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.includes(PROBE_OK)) finish(undefined);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const lastWords = () =>
      output
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('['))
        .slice(-1)[0];
    child.on('error', (err) => finish(err.message));
    child.on('exit', (code) => finish(lastWords() ?? `QEMU exited (${code}) before the guest booted`));
    const timer = setTimeout(
      () => finish(lastWords() ?? `the guest did not boot within ${Math.round(timeoutMs / 1000)} s`),
      timeoutMs,
    );
  });
}

/**
 * The accelerator for node VMs on this host, found by booting a guest: KVM (Linux) or HVF (macOS)
 * when a guest boots under it, else TCG. Opening /dev/kvm is not enough: where nested
 * virtualization is incomplete, a VM is created and then fails on the guest kernel's first
 * instructions ("KVM internal error"). A probe's answer is kept per QEMU binary, node kernel, host
 * kernel and hypervisor.
 */
export async function chooseAccelerator(opts: ProbeOptions): Promise<AcceleratorChoice> {
  const platform = opts.platform ?? process.platform;
  // No usable hypervisor device: TCG, asked again each time (cheap), so the hint's fix (the kvm
  // group, the module) is seen at once.
  const { accel, reason } = await candidate(platform);
  if (!accel) return { accel: 'tcg', reason };
  const q = await stat(opts.qemu);
  const key = [opts.qemu, q.size, q.mtimeMs, opts.kernel, release(), platform, accel].join('|');
  try {
    const cached = JSON.parse(await readFile(opts.cacheFile, 'utf8')) as AcceleratorChoice & { key: string };
    if (cached.key === key)
      return cached.reason ? { accel: cached.accel, reason: cached.reason } : { accel: cached.accel };
  } catch {
    // no answer kept yet
  }
  const failed = await bootProbe(
    opts.qemu,
    probeArgs(accel, opts.kernel, opts.initrd),
    opts.timeoutMs ?? 20_000,
  );
  const choice: AcceleratorChoice = failed
    ? { accel: 'tcg', reason: `a guest does not boot under ${accel}: ${failed}` }
    : { accel };
  await writeFileAtomic(opts.cacheFile, JSON.stringify({ key, ...choice }, null, 2) + '\n');
  return choice;
}
