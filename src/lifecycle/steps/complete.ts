import { MinilabError } from '../../errors.js';
import { runInNode } from '../../providers/run.js';
import { credentials } from '../nodes.js';
import { CREATING_MARKER } from './boot.js';
import { controlPlaneOf, type Step } from './state.js';

/** The cluster is whole: the marker set at boot goes. */
export const markCompleteStep: Step = {
  title: 'Marking the cluster complete',
  silent: true,
  run: async (s) => {
    await runInNode(controlPlaneOf(s), `rm -f ${CREATING_MARKER}`, 'marking the cluster as complete');
  },
};

/** Restart: a cluster whose creation never finished is refused; else its credentials are read. */
export const checkCompleteStep: Step = {
  title: 'Checking that the cluster was fully created',
  silent: true,
  run: async (s) => {
    const node = controlPlaneOf(s);
    const complete = await node.exec([
      'sh',
      '-c',
      `test -f /etc/kubernetes/admin.conf && test ! -e ${CREATING_MARKER}`,
    ]);
    if (complete.exitCode !== 0) {
      throw new MinilabError(
        'clusterFailed',
        `the cluster of profile "${s.req.profile}" was never fully created`,
        {
          hint: `remove it and start again: minilab delete -p ${s.req.profile} && minilab start -p ${s.req.profile}`,
        },
      );
    }
    s.entry = await credentials(s.ctx.provider, { node, nodes: s.nodes });
  },
};
