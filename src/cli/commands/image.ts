import { Option, type Command } from 'commander';
import { usageError } from '../../errors.js';
import { runningControlPlane } from '../../lifecycle/nodes.js';
import {
  clusterImages,
  describeLoad,
  loadArchive,
  loadImagesEverywhere,
  loadOnEveryNode,
  type LoadReport,
} from '../../cluster/images.js';
import { mirroredTags, mirrorServes } from '../../cluster/mirror.js';
import type { Context } from '../context.js';
import { buildNodeImage, type ComponentSource } from '../../image/build.js';
import { validateKubernetesVersion } from '../../image/components.js';
import { DEFAULT_RELEASE_URL, validateReleaseUrl } from '../../image/release.js';
import { Labels } from '../../labels.js';
import { ADDONS } from '../../addons/catalog.js';
import { addonRefs, ensureAddonImages } from '../../addons/images.js';
import { DEFAULT_KUBERNETES_VERSION } from '../../version.js';
import { driverOption, outputOption, profileOf, type OutputFormat } from '../options.js';
import type { Driver } from '../../providers/index.js';
import { table } from '../output.js';

export const formatBytes = (n: number) =>
  n >= 1e9
    ? `${(n / 1e9).toFixed(2)} GB`
    : n >= 1e6
      ? `${(n / 1e6).toFixed(0)} MB`
      : `${(n / 1e3).toFixed(0)} kB`;

export function registerImage(image: Command, ctx: Context): void {
  image
    .command('build')
    .description('build the node image (Kubernetes from Go modules, images preloaded); cached by stage')
    .option('--kubernetes-version <version>', 'Kubernetes release to build', DEFAULT_KUBERNETES_VERSION)
    .addOption(
      new Option(
        '--source <source>',
        'go: build Kubernetes from Go modules (offline); release: official release binaries and registry images (needs internet)',
      )
        .choices(['go', 'release'])
        .default('go'),
    )
    .option(
      '--release-url <url>',
      'base URL of the release downloads for --source release (env MINILAB_RELEASE_URL; default: the official one)',
    )
    .option('--force', 'rebuild the node image even when it is up to date')
    .option('--addons', "also build every add-on's images (else built when an add-on is first enabled)")
    .addOption(
      driverOption(
        'the engine whose image store gets it (qemu: the Docker or podman store, and a VM disk made from the image)',
      ),
    )
    .addOption(outputOption())
    .action(
      async (opts: {
        driver?: Driver;
        kubernetesVersion: string;
        source: ComponentSource;
        releaseUrl?: string;
        force?: boolean;
        addons?: boolean;
        output: OutputFormat;
      }) => {
        const version = validateKubernetesVersion(opts.kubernetesVersion);
        if (opts.releaseUrl && opts.source !== 'release') {
          throw usageError('--release-url applies only to --source release', 'add --source release');
        }
        const releaseUrl =
          opts.source === 'release'
            ? validateReleaseUrl(opts.releaseUrl ?? (ctx.env.MINILAB_RELEASE_URL || DEFAULT_RELEASE_URL))
            : undefined;
        const provider = await ctx.provider(undefined, { driver: opts.driver, startService: true });
        const result = await buildNodeImage(
          { images: provider.images, reporter: ctx.reporter, home: ctx.home, extraLabels: ctx.extraLabels },
          version,
          { force: opts.force, source: opts.source, releaseUrl },
        );
        // --driver qemu: the node image's VM disk too
        const vmDisk = await provider.prepareImage?.(result.ref, ctx.reporter, ctx.extraLabels, {
          force: opts.force,
        });
        if (opts.addons) {
          await ctx.reporter.step('Add-on images (go build, cached)', (progress) =>
            ensureAddonImages(provider.images, ctx.home, ADDONS, progress),
          );
        }
        const addonImages = opts.addons ? [...(await addonRefs(ADDONS)).values()].flat() : [];
        ctx.reporter.result(
          opts.output,
          { ...result, addonImages, ...(vmDisk ? { vmDisk } : {}) },
          (r) =>
            `${r.ref} ${formatBytes(r.sizeBytes)}${r.source === 'release' ? ' (official release)' : ''}` +
            `${r.reused ? ' (up to date)' : ''}\n` +
            (vmDisk ? `VM disk: ${vmDisk.disk} ${formatBytes(vmDisk.sizeBytes)}\n` : '') +
            'preloaded:\n' +
            r.preloaded.map((p) => `  ${p.ref} ${formatBytes(p.sizeBytes)}`).join('\n') +
            '\n' +
            (r.addonImages.length > 0
              ? `add-on images:\n${r.addonImages.map((i) => `  ${i}`).join('\n')}\n`
              : ''),
        );
      },
    );

  image
    .command('load')
    .description(
      "stream images from the engine the cluster runs on (Docker's or podman's store, or an archive) into the cluster's containerd",
    )
    .argument('[images...]', "image references in that engine's store")
    .option('--archive <file>', 'load a docker save or OCI archive file instead')
    .addOption(outputOption())
    .action(async (refs: string[], opts: { archive?: string; output: OutputFormat }, cmd: Command) => {
      if (refs.length === 0 && !opts.archive) {
        throw usageError(
          'nothing to load',
          'name images (minilab image load my/app:dev) or give --archive FILE',
        );
      }
      const profile = profileOf(cmd, ctx.env);
      const provider = await ctx.provider(profile);
      const found = await runningControlPlane(provider, profile);
      // Stopped nodes are left out (said so); they get the image with the next load after a start.
      const nodes = found.nodes.filter((n) => n.state.running);
      for (const n of found.nodes.filter((x) => !x.state.running))
        ctx.reporter.warn(`node ${n.name} is not running: the image is not loaded there`);
      const reports: LoadReport[] = [];
      if (refs.length > 0) {
        reports.push(
          ...(await ctx.reporter.step(`Loading ${refs.join(', ')}`, (progress) =>
            loadImagesEverywhere(provider.images, nodes, refs, progress),
          )),
        );
      }
      if (opts.archive) {
        const file = opts.archive;
        const r = await ctx.reporter.step(`Loading ${file}`, (progress) =>
          loadOnEveryNode(nodes, (n, p) => loadArchive(n, file, p), progress),
        );
        if (r) reports.push(r);
      }
      ctx.reporter.result(
        opts.output,
        { loaded: reports },
        (d) => d.loaded.map(describeLoad).join('\n') + '\n',
      );
    });

  image
    .command('ls')
    .description(
      "list the images in the profile's cluster (--node-images: node images in the engine's store)",
    )
    .option('--node-images', 'list minilab node images instead')
    .addOption(driverOption('with --node-images, the engine whose store is listed'))
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat; nodeImages?: boolean; driver?: Driver }, cmd: Command) => {
      if (opts.driver && !opts.nodeImages)
        throw usageError(
          '--driver applies only to --node-images',
          'add --node-images, or leave --driver out',
        );
      const profile = profileOf(cmd, ctx.env);
      const provider = await ctx.provider(opts.nodeImages ? undefined : profile, { driver: opts.driver });
      if (!opts.nodeImages) {
        const { node } = await runningControlPlane(provider, profile);
        const [listed, tags] = await Promise.all([clusterImages(node), mirroredTags(node)]);
        // mirrored: a pull of this name (imagePullPolicy: Always) is served by the node's mirror
        const images = listed.map((i) => ({ ...i, mirrored: mirrorServes(tags, i.ref, i.digest) }));
        ctx.reporter.result(opts.output, { images }, (d) =>
          table(
            ['IMAGE', 'ID', 'SIZE', 'PINNED', 'MIRRORED'],
            d.images.map((i) => [
              i.ref,
              i.id.replace('sha256:', '').slice(0, 12),
              formatBytes(i.sizeBytes),
              i.pinned ? 'yes' : '',
              i.mirrored ? 'yes' : '',
            ]),
          ),
        );
        return;
      }
      const images = (await provider.images.list('minilab/node'))
        .flatMap((i) =>
          i.tags.map((ref) => ({
            ref,
            version: i.labels[Labels.version] ?? '',
            sizeBytes: i.sizeBytes,
            created: i.created,
          })),
        )
        .sort((a, b) => a.ref.localeCompare(b.ref));
      ctx.reporter.result(opts.output, { images }, (d) =>
        d.images.length === 0
          ? 'no node images; build one with: minilab image build\n'
          : table(
              ['IMAGE', 'KUBERNETES', 'SIZE', 'CREATED'],
              d.images.map((i) => [i.ref, i.version, formatBytes(i.sizeBytes), i.created]),
            ),
      );
    });
}
