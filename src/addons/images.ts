import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MinilabError } from '../errors.js';
import { imageArchive, layerFromEntries, type ImageSpec } from '../image/archive.js';
import { cacheKey } from '../image/cache.js';
import { pinnedVersions, runScript } from '../image/run-script.js';
import { Labels } from '../labels.js';
import { privateDir } from '../private-files.js';
import type { ImageStore } from '../providers/types.js';
import { projectRoot } from '../version.js';
import type { Addon, AddonBuild, AddonImage, AddonVersions } from './types.js';

const imagesDir = join(projectRoot, 'images');

const script = join(imagesDir, 'addons', 'build.sh');

/** The add-on recipe's key: its build script and the library it sources (pinned versions included). */
const recipeKey = () =>
  cacheKey({
    paths: [join(imagesDir, 'addons'), join(imagesDir, 'components', 'go-build-lib.sh')],
    root: imagesDir,
  });

/** The versions the add-on recipe pins (read from its build script): what the image names carry. */
export async function pinnedAddons(): Promise<AddonVersions> {
  const v = await pinnedVersions(script, ['METRICS_SERVER', 'INGRESS', 'GATEWAY_API']);
  return { metricsServer: v.METRICS_SERVER, ingress: v.INGRESS, gatewayApi: v.GATEWAY_API };
}

/** Each add-on's image references by add-on name, as the recipe's pinned versions name them. */
export async function addonRefs(addons: readonly Addon[]): Promise<Map<string, string[]>> {
  const versions = await pinnedAddons();
  return new Map(addons.map((a) => [a.name, a.images(versions).map((i) => i.ref)]));
}

/**
 * The add-on build stage: images/addons/build.sh run once per change of its recipe (Go modules at
 * pinned versions), its output kept under MINILAB_HOME/cache/addons/KEY.
 */
async function ensureAddonBuild(
  home: string,
  key: string,
  progress: (s: string) => void,
): Promise<AddonBuild> {
  const dir = join(home, 'cache', 'addons', key);
  const file = join(dir, 'addons.json');
  if (!existsSync(file)) {
    await privateDir(dir);
    await runScript(script, [dir], {
      progress,
      what: 'building the add-ons from Go modules',
      hint: 'the Go module proxy must be reachable (go env GOPROXY); the log named above says what failed',
    });
  }
  return { key, dir };
}

/** The add-on build's directory (files beside the binaries: the Gateway API CRDs), built if absent. */
export async function addonBuildDir(home: string, progress: (s: string) => void): Promise<string> {
  return (await ensureAddonBuild(home, await recipeKey(), progress)).dir;
}

/** Users and groups as a distroless image has them: root, nobody, nonroot. */
const PASSWD =
  'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n';
const GROUP = 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n';

/** One image of an add-on as an OCI image spec: a single layer with its binaries (cached by key). */
async function imageSpec(built: AddonBuild, image: AddonImage, key: string): Promise<ImageSpec> {
  const name = image.ref.replace(/[^a-zA-Z0-9.-]+/g, '_');
  const layer = await layerFromEntries(
    [
      { type: 'file', name: 'etc/passwd', content: PASSWD },
      { type: 'file', name: 'etc/group', content: GROUP },
      { type: 'directory', name: 'tmp', mode: 0o1777 },
      ...image.binaries.map((b) => ({
        type: 'host-file' as const,
        name: b.path,
        path: join(built.dir, b.name),
        mode: 0o755,
      })),
    ],
    join(built.dir, 'layers', `${name}.tar`),
  );
  return { ref: image.ref, layers: [layer], config: { ...image.config, labels: { [Labels.buildKey]: key } } };
}

/**
 * The add-ons' images in the Docker engine, made from the add-on build (run first when this
 * MINILAB_HOME has none of this recipe) unless the engine has them from this very recipe (the
 * build key label): what `image load` then streams into the nodes.
 */
export async function ensureAddonImages(
  images: ImageStore,
  home: string,
  addons: readonly Addon[],
  progress: (s: string) => void,
): Promise<void> {
  const [key, versions] = await Promise.all([recipeKey(), pinnedAddons()]);
  const wanted = await Promise.all(
    addons
      .flatMap((a) => a.images(versions))
      .map(async (image) => ({ image, key: await imageKey(key, image) })),
  );
  const missing: typeof wanted = [];
  for (const w of wanted) {
    const info = await images.info(w.image.ref);
    if (info?.labels[Labels.buildKey] !== w.key) missing.push(w);
  }
  if (missing.length > 0) {
    const built = await ensureAddonBuild(home, key, progress);
    progress(`making ${missing.map((m) => m.image.ref).join(', ')}`);
    const specs = await Promise.all(missing.map((m) => imageSpec(built, m.image, m.key)));
    await images.load(imageArchive(specs));
    for (const m of missing) {
      if ((await images.info(m.image.ref))?.labels[Labels.buildKey] !== m.key) {
        throw new MinilabError('unexpected', `${m.image.ref} is not in the Docker engine after loading it`);
      }
    }
  }
}

/** An image's build key: the recipe's and the image's own layout (a change to either remakes it). */
const imageKey = (recipe: string, image: AddonImage) =>
  cacheKey({ values: { recipe, image: JSON.stringify(image), passwd: PASSWD, group: GROUP } });
