import getPort from 'get-port';
import { MinilabError } from '../../errors.js';
import { providerFailure } from '../../providers/errors.js';
import { withApiServerPort } from '../plan.js';
import { need, nodeNoun, type Step } from './state.js';

/**
 * Records the profile, then has the provider make the plan's nodes. The API server's host port
 * was picked free; if another process takes it before the node starts, another is picked.
 */
export const provisionStep: Step = {
  title: (s) =>
    s.plan?.loadBalancer
      ? `Creating the load balancer and the node ${nodeNoun(s, 2)} (${s.req.nodes})`
      : s.req.nodes > 1
        ? `Creating the node ${nodeNoun(s, 2)} (${s.req.nodes})`
        : `Creating the node ${nodeNoun(s, 1)}`,
  run: async (s) => {
    const { provider, profiles } = s.ctx;
    s.journal.profileBefore = { config: await profiles.read(s.req.profile) };
    s.config = {
      name: s.req.profile,
      kubernetesVersion: s.req.kubernetesVersion,
      driver: provider.driver,
      cpus: s.req.cpus,
      memoryBytes: s.req.memoryBytes,
      diskBytes: s.req.diskBytes,
      ports: s.req.ports,
      createdAt: new Date().toISOString(),
    };
    await profiles.write(s.config);
    let plan = need(s.plan, 'the cluster plan');
    for (let attempt = 1; ; attempt++) {
      try {
        s.nodes = await provider.provision(plan, s.journal);
        s.plan = plan;
        if (plan.loadBalancer) s.loadBalancer = await provider.loadBalancer(plan.profile);
        return;
      } catch (err) {
        const taken = providerFailure(err, 'port-taken');
        if (!taken) throw err;
        const user = s.req.ports.find((p) => p.hostPort === taken.hostPort);
        if (user) {
          throw new MinilabError('environment', `host port ${user.hostPort} is already in use`, {
            hint: `free it, or choose another with --ports HOST:${user.containerPort}`,
            cause: err,
          });
        }
        if (attempt >= 3) throw err;
        plan = withApiServerPort(plan, await getPort({ host: '127.0.0.1' }));
      }
    }
  },
};
