import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { Chain, ruleKey, tagArgs, type CommandRunner } from '../iptables.js';
import type { PortMapping } from '../types.js';

/**
 * Docker before 28.0 leaves ports published on 127.0.0.1 open to the network's neighbours. Its nat
 * PREROUTING rule DNATs `-d 127.0.0.1 --dport HOSTPORT` to the container for packets from any
 * interface, and the DNAT happens before the kernel's routing decision, whose martian check would
 * have dropped a packet addressed to loopback that came in on another interface. So a host on the
 * same link (or any network namespace with a route to this one) that sends to 127.0.0.1 through
 * this machine reaches the container (moby/moby#45610, #41872).
 *
 * Docker 28.0.0 (moby commit d216084, "drop remote connections to port mapped on lo") closes it
 * with one rule per published loopback port, in the raw table's PREROUTING chain, which runs
 * before conntrack and nat:
 *
 *   -p PROTO -d HOSTIP --dport HOSTPORT ! -i lo -j DROP
 *
 * for IPv4 loopback host addresses only (the kernel already drops packets for ::1 that arrive on
 * any interface but lo, before netfilter sees them), and, under WSL2's mirrored networking, an
 * ACCEPT for the `loopback0` interface ahead of it (Windows' own connections to localhost arrive
 * there). minilab writes the same rules for the ports its clusters publish, each tagged with a
 * comment naming the profile, so they can be found again and removed with the cluster.
 */

/** The engine release that filters loopback ports itself. */
export const FIXED_IN_MAJOR = 28;
const ISSUE = 'moby/moby#45610';

/** Whether the engine's release drops neighbours' packets to loopback ports itself (undefined: cannot tell). */
export function engineFiltersLoopback(version: string): boolean | undefined {
  const major = /^v?(\d+)\./.exec(version.trim());
  return major ? Number(major[1]) >= FIXED_IN_MAJOR : undefined;
}

export interface EngineFacts {
  version: string;
  /** The engine runs on this machine (a unix socket), in this network namespace. */
  local: boolean;
  /** Rootless engines publish through rootlesskit's listener: the kernel's martian check applies. */
  rootless: boolean;
  /**
   * Published ports reach this machine through a listener of their own (Docker Desktop, or any
   * engine in a VM of a non-Linux host): the engine's NAT is not on a network neighbours can use.
   */
  forwarded: boolean;
}

/** What this process may do to the host's firewall. */
export interface HostAccess {
  /** Undefined when minilab may write iptables rules here; otherwise why it may not. */
  denied?: string;
  /** WSL2's mirrored networking: Windows' connections to localhost come in on loopback0. */
  mirroredLoopback: boolean;
}

export interface Exposure {
  /** The engine lets neighbours reach ports published on 127.0.0.1. */
  exposed: boolean;
  /** minilab may manage raw-table rules here (to add them, or to remove ones written before). */
  manageable: boolean;
  mirroredLoopback: boolean;
  /** For preflight: the problem, and whether minilab closes it, in one line. */
  warning?: string;
}

/**
 * How the engine's loopback ports stand, and what minilab does about them. Only a Linux engine of
 * this machine's network namespace can be guarded: its PREROUTING is this host's.
 */
export function assessExposure(engine: EngineFacts, host: HostAccess): Exposure {
  const exposed =
    engine.rootless || engine.forwarded ? false : engineFiltersLoopback(engine.version) === false;
  const denied = engine.local ? host.denied : 'the engine runs on another machine';
  const base = { exposed, manageable: denied === undefined, mirroredLoopback: host.mirroredLoopback };
  if (!exposed) return base;
  const problem = `Docker ${engine.version} (before ${FIXED_IN_MAJOR}.0) lets hosts on the same network reach ports published on 127.0.0.1 (${ISSUE})`;
  return {
    ...base,
    warning:
      denied === undefined
        ? `${problem}: minilab drops their traffic to its clusters' ports with iptables raw-table rules, as Docker ${FIXED_IN_MAJOR} does`
        : `${problem}, and minilab cannot guard them here (${denied}): the API server port and --ports stay reachable by ${engine.local ? 'this' : 'that'} machine's network neighbours; upgrade to Docker ${FIXED_IN_MAJOR} or later`,
  };
}

const WSLINFO = '/usr/bin/wslinfo';

/**
 * Whether this process may write the host's iptables rules: as root, with an iptables that lists
 * its raw table. Mirrored loopback is detected as Docker detects it: a loopback0 interface and
 * WSL's wslinfo program.
 */
export async function probeHost(run: CommandRunner, uid = process.getuid?.()): Promise<HostAccess> {
  const exists = (path: string, mode: number) =>
    access(path, mode).then(
      () => true,
      () => false,
    );
  const mirroredLoopback =
    (await exists('/sys/class/net/loopback0', constants.F_OK)) && (await exists(WSLINFO, constants.X_OK));
  if (uid !== 0) return { denied: 'minilab does not run as root', mirroredLoopback };
  try {
    const r = await run('iptables', ['-w', '-t', 'raw', '-S', 'PREROUTING']);
    if (r.exitCode === 0) return { mirroredLoopback };
    const why = r.stderr.trim().split('\n')[0] ?? '';
    return { denied: `iptables cannot list its raw table: ${why}`, mirroredLoopback };
  } catch {
    return { denied: 'iptables is not installed', mirroredLoopback };
  }
}

/** A published port minilab guards: an IPv4 loopback host address (IPv6 ::1 needs nothing). */
function guarded(port: PortMapping): boolean {
  return isIPv4(port.hostIp) && port.hostIp.startsWith('127.') && port.hostPort > 0;
}

/**
 * The raw PREROUTING rules (arguments after the chain's name) that keep one port for this machine
 * alone, in the order they must stand in the chain: under mirrored loopback, the ACCEPT above the
 * DROP.
 */
export function guardRules(profile: string, port: PortMapping, mirroredLoopback: boolean): string[][] {
  const match = ['-d', `${port.hostIp}/32`];
  const proto = ['-p', port.protocol, '-m', port.protocol, '--dport', String(port.hostPort)];
  const tag = tagArgs(profile);
  const drop = [...match, '!', '-i', 'lo', ...proto, ...tag, '-j', 'DROP'];
  const accept = [...match, '-i', 'loopback0', ...proto, ...tag, '-j', 'ACCEPT'];
  return mirroredLoopback ? [accept, drop] : [drop];
}

/**
 * The raw-table rules of minilab's profiles: made to match the ports a profile publishes on
 * loopback, and removed with it. Every change goes through iptables itself (`-C` to check, `-I`,
 * `-D`), with `-w` so it waits for the xtables lock instead of failing next to the engine.
 */
export class LoopbackGuard {
  private readonly chain: Chain;

  constructor(
    run: CommandRunner,
    private readonly mirroredLoopback: boolean,
  ) {
    this.chain = new Chain(run, 'raw', 'PREROUTING');
  }

  /** The profile's rules as they stand, as `-S` prints them (arguments after the chain's name). */
  rules(profile: string): Promise<string[][]> {
    return this.chain.tagged(profile);
  }

  /**
   * Makes the profile's rules exactly those its published ports need: missing ones inserted at
   * the top of the chain (ahead of anything that could accept the packet first), stale ones (a
   * node removed, a cluster deleted: no ports) deleted. Running it again changes nothing.
   */
  async sync(profile: string, ports: readonly PortMapping[]): Promise<void> {
    const { chain } = this;
    const wanted = new Map<string, string[][]>();
    for (const p of ports.filter(guarded)) {
      const rules = guardRules(profile, p, this.mirroredLoopback);
      wanted.set(rules.map(ruleKey).join('\n'), rules);
    }
    await chain.prune(profile, [...wanted.values()].flat());
    for (const rules of wanted.values()) {
      const drop = rules[rules.length - 1] as string[];
      const accept = rules.length > 1 ? (rules[0] as string[]) : undefined;
      if (!(await chain.has(drop))) {
        // -I puts each rule first: the DROP goes in, then the ACCEPT above it (moved if it stood already).
        if (accept && (await chain.has(accept))) await chain.delete(accept);
        await chain.insert(drop);
        if (accept) await chain.insert(accept);
      } else if (accept && !(await chain.has(accept))) {
        await chain.insert(accept);
      }
    }
  }
}
