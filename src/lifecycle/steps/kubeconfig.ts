import { kubeconfigFiles, writeKubeconfigEntry } from '../../kube/kubeconfig.js';
import { need, type Step } from './state.js';

/** The context merged into the user's kubeconfig (locked, 0600), then recorded in the profile. */
export const kubeconfigStep: Step = {
  title: 'Writing the kubeconfig',
  run: async (s) => {
    const entry = need(s.entry, 'the admin credentials');
    const path = await writeKubeconfigEntry(kubeconfigFiles(s.ctx.env), entry, s.req.switchContext);
    s.kubeconfig = { path, context: entry.name };
    const stored = s.config ?? (await s.ctx.profiles.read(s.req.profile));
    await s.ctx.profiles.write({
      ...(stored ?? {
        name: s.req.profile,
        kubernetesVersion: s.req.kubernetesVersion,
        ports: s.req.ports,
        createdAt: new Date().toISOString(),
      }),
      kubeconfig: s.kubeconfig,
    });
  },
};
