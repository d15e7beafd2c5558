import { networkInterfaces } from 'node:os';
import { ProviderError } from '../errors.js';
import { addressingOf, bareIp, isFixedAddressing, pickSubnet, type NetworkAddressing } from './addresses.js';
import { messageOf, statusOf, type DockerClient } from './client.js';
import { labelFilter } from './translate.js';

/** The host's own IPv4 subnets: a node network must not shadow one. */
function hostSubnets(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a?.family === 'IPv4' && a.cidr)
    .map((a) => a?.cidr as string);
}

/** Networks: made once per profile, removed when nothing is attached. */
export class Networks {
  constructor(private readonly client: DockerClient) {}

  /**
   * Creates the network unless it exists; reports whether this call created it (so rollback
   * removes only that). A new network gets a subnet of minilab's choosing, for fixed node
   * addresses (see addresses.ts); another one tried if the engine finds it taken meanwhile.
   */
  async ensure(name: string, labels: Record<string, string>): Promise<{ created: boolean }> {
    const { docker } = this.client;
    const all = await this.client.call('list networks', () => docker.listNetworks());
    if (all.some((n) => n.Name === name)) return { created: false };
    const taken = [
      ...all.flatMap((n) => (n.IPAM?.Config ?? []).map((c) => c.Subnet ?? '')),
      ...(this.client.local ? hostSubnets() : []),
    ];
    for (let attempt = 0; ; attempt++) {
      const addressing = pickSubnet(taken, attempt, this.client.dialect.firstSubnet);
      try {
        await this.client.call('create a network', () =>
          docker.createNetwork({
            Name: name,
            Driver: 'bridge',
            Labels: labels,
            CheckDuplicate: true,
            // None free in 192.168.0.0/16: the engine picks, and addresses are its own.
            ...(addressing
              ? {
                  IPAM: {
                    Driver: 'default',
                    Config: [
                      { Subnet: addressing.subnet, Gateway: addressing.gateway, IPRange: addressing.ipRange },
                    ],
                  },
                }
              : {}),
          }),
        );
        return { created: true };
      } catch (err) {
        if (statusOf(err) === 409) return { created: false };
        if (addressing && attempt < 5 && /overlap/i.test(messageOf(err))) continue;
        throw err;
      }
    }
  }

  /**
   * Fixed addresses on a network minilab made with its own subnet: the addressing and every
   * address its containers hold or are given (stopped ones included); undefined on other networks.
   */
  async fixedAddresses(
    name: string,
  ): Promise<{ addressing: NetworkAddressing; used: Set<string> } | undefined> {
    const { docker } = this.client;
    const info = await this.client.call('inspect a network', () => docker.getNetwork(name).inspect());
    const config = (info.IPAM?.Config as { Subnet?: string; IPRange?: string }[] | undefined)?.[0];
    if (!config?.Subnet || !isFixedAddressing(config)) return undefined;
    const containers = await this.client.call('list containers', () =>
      docker.listContainers({ all: true, filters: { network: [name] } }),
    );
    const used = new Set<string>();
    for (const c of containers) {
      const ep = c.NetworkSettings?.Networks?.[name];
      for (const ip of [ep?.IPAddress, ep?.IPAMConfig?.IPv4Address]) if (ip) used.add(bareIp(ip));
    }
    return { addressing: addressingOf(config.Subnet), used };
  }

  /** Every subnet of a network (IPv4 and IPv6), as the engine's IPAM holds them. */
  async subnets(name: string): Promise<string[]> {
    const info = await this.client.call('inspect a network', () =>
      this.client.docker.getNetwork(name).inspect(),
    );
    return ((info.IPAM?.Config ?? []) as { Subnet?: string }[]).flatMap((c) => (c.Subnet ? [c.Subnet] : []));
  }

  /** Removes a network if nothing is attached to it; "already gone" and "still in use" are reported, not thrown. */
  async remove(name: string): Promise<'removed' | 'absent' | 'in-use'> {
    try {
      const net = this.client.docker.getNetwork(name);
      const info = await this.client.call('inspect a network', () => net.inspect());
      if (Object.keys(info.Containers ?? {}).length > 0) return 'in-use';
      await this.client.call('remove a network', () => net.remove());
      return 'removed';
    } catch (err) {
      if (statusOf(err) === 404) return 'absent';
      if (statusOf(err) === 403 || statusOf(err) === 409) return 'in-use';
      throw err;
    }
  }

  async list(labels: Record<string, string>): Promise<string[]> {
    const nets = await this.client.call('list networks', () =>
      this.client.docker.listNetworks({ filters: { label: labelFilter(labels) } }),
    );
    return nets.map((n) => n.Name);
  }
}

/** Volumes: a node's /var lives on one, so its state survives the container. */
export class Volumes {
  constructor(private readonly client: DockerClient) {}

  /**
   * Creates the volume unless it exists; reports whether this call created it. An existing
   * volume is only taken when its labels say it is the same one (same profile and node): a volume
   * of that name belonging to something else is a name in use, never shared.
   */
  async ensure(
    name: string,
    labels: Record<string, string>,
    owner: string[] = [],
  ): Promise<{ created: boolean }> {
    const { docker } = this.client;
    try {
      const found = await this.client.call('inspect a volume', () => docker.getVolume(name).inspect());
      // The first owner label must match; the others where the volume has them (older volumes lack some).
      const has = found.Labels ?? {};
      const theirs = owner.filter((k, i) => (has[k] === undefined ? i === 0 : has[k] !== labels[k]));
      if (theirs.length > 0) {
        throw new ProviderError(
          { reason: 'name-in-use', name },
          `a volume named ${name} exists and is not this node's`,
          {
            hint: 'choose another node or profile name, or remove that volume (docker volume rm) if it is unused',
          },
        );
      }
      return { created: false };
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    await this.client.call('create a volume', () => docker.createVolume({ Name: name, Labels: labels }));
    return { created: true };
  }

  async remove(name: string): Promise<'removed' | 'absent'> {
    try {
      await this.client.call('remove a volume', () =>
        this.client.docker.getVolume(name).remove({ force: true }),
      );
      return 'removed';
    } catch (err) {
      if (statusOf(err) === 404) return 'absent';
      throw err;
    }
  }

  async list(labels: Record<string, string>): Promise<string[]> {
    const res = await this.client.call('list volumes', () =>
      this.client.docker.listVolumes({ filters: { label: labelFilter(labels) } }),
    );
    return (res.Volumes ?? []).map((v) => v.Name);
  }
}
