/**
 * Fixed node addresses. An engine restart starts the containers again in its own order and, left
 * to itself, hands them different addresses on their network; etcd's members of a cluster with
 * several control planes know each other by address, so they would no longer find each other
 * (kind's issue 1689). So each profile's network gets a subnet minilab chose (192.168.x.0/24, as
 * minikube does), its lower half for addresses given to the nodes, which the engine then keeps
 * across restarts, and its upper half as the engine's own pool, so that nothing it hands out on
 * its own can take a stopped node's address.
 */

export interface NetworkAddressing {
  subnet: string;
  gateway: string;
  /** The engine's own pool for containers without a fixed address. */
  ipRange: string;
}

const toInt = (ip: string) => ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);

/** [first, last] address of an IPv4 CIDR; undefined for anything else (IPv6). */
function range(cidr: string): [number, number] | undefined {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(cidr);
  if (!m) return undefined;
  const size = 2 ** (32 - Number(m[2]));
  const first = Math.floor(toInt(m[1] as string) / size) * size;
  return [first, first + size - 1];
}

export function overlaps(a: string, b: string): boolean {
  const ra = range(a);
  const rb = range(b);
  return !!ra && !!rb && ra[0] <= rb[1] && rb[0] <= ra[1];
}

/** The addressing of a /24 minilab makes: gateway .1, the engine's pool .128-.255. */
export function addressingOf(subnet: string): NetworkAddressing {
  const base = subnet.replace(/\.0\/24$/, '');
  return { subnet, gateway: `${base}.1`, ipRange: `${base}.128/25` };
}

/**
 * The first 192.168.x.0/24 (x = 49, 58, 67, ...: minikube's steps, from `first`) that overlaps
 * none of the subnets in use (the engine's other networks, the host's own addresses).
 */
export function pickSubnet(taken: readonly string[], skip = 0, first = 49): NetworkAddressing | undefined {
  let skipped = 0;
  for (let x = first; x <= 254; x += 9) {
    const subnet = `192.168.${x}.0/24`;
    if (taken.some((t) => overlaps(subnet, t))) continue;
    if (skipped++ < skip) continue;
    return addressingOf(subnet);
  }
  return undefined;
}

/** Whether a network's IPAM configuration is one minilab made (a /24 with the engine's pool above .127). */
export function isFixedAddressing(config: { Subnet?: string; IPRange?: string } | undefined): boolean {
  if (!config?.Subnet || !/\.0\/24$/.test(config.Subnet)) return false;
  return config.IPRange === addressingOf(config.Subnet).ipRange;
}

/** The lowest address of the lower half (.2-.127) not in use. */
export function nextFixedAddress(net: NetworkAddressing, used: ReadonlySet<string>): string | undefined {
  const base = net.subnet.replace(/\.0\/24$/, '');
  for (let host = 2; host <= 127; host++) {
    const ip = `${base}.${host}`;
    if (!used.has(ip)) return ip;
  }
  return undefined;
}

/** An address with its prefix length dropped ("192.168.49.2/24" -> "192.168.49.2"). */
export const bareIp = (addr: string | undefined) => (addr ?? '').split('/')[0] ?? '';
