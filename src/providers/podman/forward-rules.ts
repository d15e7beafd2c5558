import { Chain, tagArgs, type CommandRunner } from '../iptables.js';

/**
 * Rootful podman beside Docker. Docker sets the filter table's FORWARD policy to DROP and turns
 * bridge-nf-call-iptables on, so frames bridged between two containers of one bridge pass
 * through FORWARD as well. netavark (podman's network stack) accepts its networks' traffic in a
 * table of its own, but a packet must pass every table's chain at that hook: Docker's DROP wins,
 * and the nodes of a podman network reach neither each other (kubeadm join, pods across nodes)
 * nor anything beyond the host. Docker's documented remedy for traffic it does not route itself
 * is ACCEPT rules in DOCKER-USER, the chain it keeps first in FORWARD and never rewrites; minilab
 * writes them for the profile's bridge, tagged with the profile, and removes them with it:
 *
 *   -i BRIDGE -j ACCEPT                                             (from the nodes: to each other, outwards)
 *   -o BRIDGE -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT  (the replies)
 *
 * Without Docker, another firewall may have set the same DROP policy (ufw does): the rules then
 * go first in FORWARD itself. With a FORWARD that accepts, nothing is written.
 */
export function forwardRules(profile: string, bridge: string): string[][] {
  const tag = tagArgs(profile);
  return [
    ['-i', bridge, ...tag, '-j', 'ACCEPT'],
    ['-o', bridge, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', ...tag, '-j', 'ACCEPT'],
  ];
}

/**
 * Makes the profile's FORWARD rules those its bridge needs (none when `bridge` is undefined: the
 * network is gone), in DOCKER-USER where Docker made it, else in FORWARD when its policy drops;
 * rules left in the other chain (Docker installed or removed since) go. Running it again changes nothing.
 */
export async function syncForwardRules(
  run: CommandRunner,
  profile: string,
  bridge: string | undefined,
): Promise<void> {
  const docker = new Chain(run, 'filter', 'DOCKER-USER');
  const forward = new Chain(run, 'filter', 'FORWARD');
  const chains = (await docker.exists()) ? [docker, forward] : [forward];
  const target = chains[0] === docker || (await forward.policy()) === 'DROP' ? chains[0] : undefined;
  const wanted = bridge && target ? forwardRules(profile, bridge) : [];
  for (const chain of chains) await chain.prune(profile, chain === target ? wanted : []);
  if (!target) return;
  // -I puts each rule first: inserted last to first, they stand in the order written.
  for (const rule of [...wanted].reverse()) {
    if (!(await target.has(rule))) await target.insert(rule);
  }
}
