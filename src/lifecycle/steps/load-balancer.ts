import { configureLoadBalancer } from '../load-balancer.js';
import { need, type Step } from './state.js';

/** Several control planes: the load balancer learns their names before the first one starts. */
export const loadBalancerStep: Step = {
  title: 'Configuring the load balancer (HAProxy)',
  skip: (s) => !s.plan?.loadBalancer,
  run: async (s) => {
    await configureLoadBalancer(
      need(s.loadBalancer, 'the load balancer'),
      s.nodes.filter((n) => n.role === 'control-plane').map((n) => n.name),
    );
  },
};
