import { MinilabError } from '../../errors.js';
import { kubeconfigFiles, writeKubeconfigEntry } from '../../kube/kubeconfig.js';
import { need, type Step } from './state.js';

/**
 * The context merged into the user's kubeconfig (under kubectl's lock, through its links), then
 * recorded in the profile. The cluster is whole by now: a failed write keeps it (exit code 7),
 * and the next `start` re-syncs the kubeconfig.
 */
export const kubeconfigStep: Step = {
  title: 'Writing the kubeconfig',
  run: async (s) => {
    const entry = need(s.entry, 'the admin credentials');
    const path = await writeKubeconfigEntry(kubeconfigFiles(s.ctx.env), entry, s.req.switchContext, {
      env: s.ctx.env,
    }).catch((err: unknown) => {
      throw kubeconfigNotWritten(s.req.profile, err);
    });
    s.kubeconfig = { path, context: entry.name };
    const stored = s.config ?? (await s.ctx.profiles.read(s.req.profile));
    await s.ctx.profiles.write({
      ...(stored ?? {
        name: s.req.profile,
        kubernetesVersion: s.req.kubernetesVersion,
        driver: s.ctx.provider.driver,
        ports: s.req.ports,
        createdAt: new Date().toISOString(),
      }),
      kubeconfig: s.kubeconfig,
    });
  },
};

/** Says the cluster is up and stays, why its kubeconfig was not written, and how to write it. */
function kubeconfigNotWritten(profile: string, err: unknown): MinilabError {
  const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0];
  const fix = err instanceof MinilabError && err.hint ? `${err.hint}; ` : '';
  return new MinilabError(
    'kubeconfig',
    `the cluster of profile "${profile}" is up, but its kubeconfig was not written: ${reason}`,
    {
      hint: `${fix}the cluster is kept; to write its kubeconfig, run: minilab start -p ${profile}`,
      cause: err,
    },
  );
}
