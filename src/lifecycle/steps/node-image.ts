import { buildNodeImage } from '../../image/build.js';
import { need, type Step } from './state.js';

/** The node image, built on first use (its build reports its own stages). */
export const nodeImageStep: Step = {
  title: 'Node image',
  silent: true,
  run: async (s) => {
    const { image } = need(s.plan, 'the cluster plan');
    const { provider, reporter } = s.ctx;
    if (await provider.images.info(image)) return;
    reporter.info(`Node image ${image} is not built yet: building it (first time only)`);
    await buildNodeImage(
      { images: provider.images, reporter, home: s.ctx.home, extraLabels: s.ctx.extraLabels },
      s.req.kubernetesVersion,
    );
  },
};
