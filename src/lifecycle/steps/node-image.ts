import { MinilabError } from '../../errors.js';
import { buildNodeImage } from '../../image/build.js';
import { Labels } from '../../labels.js';
import { need, type Step } from './state.js';

/**
 * The node image, built on first use (its build reports its own stages). A cluster of several
 * nodes needs flannel in it: an image without (built from release binaries) is refused here,
 * before anything is made.
 */
export const nodeImageStep: Step = {
  title: 'Node image',
  silent: true,
  run: async (s) => {
    const { image } = need(s.plan, 'the cluster plan');
    const { provider, reporter } = s.ctx;
    let info = await provider.images.info(image);
    if (!info) {
      reporter.info(`Node image ${image} is not built yet: building it (first time only)`);
      await buildNodeImage(
        { images: provider.images, reporter, home: s.ctx.home, extraLabels: s.ctx.extraLabels },
        s.req.kubernetesVersion,
      );
      info = await provider.images.info(image);
    }
    // A VM driver boots its own packaging of the image (a disk): made once per image.
    await provider.prepareImage?.(image, reporter, s.ctx.extraLabels);
    if (s.req.nodes > 1 && !info?.labels[Labels.flannel]) {
      throw new MinilabError(
        'environment',
        `node image ${image} has no flannel for a cluster of several nodes`,
        {
          hint: 'build it from Go modules (minilab image build --force), or start one node',
        },
      );
    }
  },
};
