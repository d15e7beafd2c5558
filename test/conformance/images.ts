// The images Kubernetes' Conformance specs run, made here the way upstream's test/images
// recipes make them, from what test/conformance/build.sh built (no registry is reachable).
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  digestOf,
  layerFromEntries,
  type ImageConfig,
  type ImageSpec,
  type Layer,
  type LayerEntry,
} from '../../src/image/archive.js';

const E2E_REGISTRY = 'registry.k8s.io/e2e-test-images';
export const BUILD_LABEL = 'io.minilab.conformance-build';

/** What build.sh reports in build.json. */
export interface SuiteBuild {
  kubernetes: string;
  /** each agnhost tag the suite runs: the release its program is built from, and its version */
  agnhost: Record<string, { source: string; version: string }>;
  debian: string;
  nginx: string;
  busybox: string;
  goVersion: string;
}

/** Where the programs come from: build.sh's output, and CoreDNS from the node image's components. */
export interface ImageInputs {
  /** build.sh's OUTDIR */
  dir: string;
  /** the cache key of that build (labelled on every image) */
  key: string;
  build: SuiteBuild;
  /** the CoreDNS binary agnhost and glibc-dns-testing carry at /coredns */
  coredns: string;
  /** every image `e2e.test --list-images` names */
  listed: string[];
}

/** The tags the suite names for one e2e-test-images image. */
export function listedTags(listed: readonly string[], name: string): string[] {
  const prefix = `${E2E_REGISTRY}/${name}:`;
  return listed.filter((ref) => ref.startsWith(prefix)).map((ref) => ref.slice(prefix.length));
}

/**
 * Alpine's adduser -u 1000 -D user-defined-in-image, addgroup -g 50000 group-defined-in-image,
 * addgroup user-defined-in-image group-defined-in-image: what upstream's agnhost adds to its base's
 * users and groups (the security-context specs run as them by name).
 */
export function agnhostUsers(passwd: string, group: string): { passwd: string; group: string } {
  const line = (s: string) => (s.endsWith('\n') ? s : `${s}\n`);
  return {
    passwd: `${line(passwd)}user-defined-in-image:x:1000:1000:Linux User,,,:/home/user-defined-in-image:/bin/sh\n`,
    group: `${line(group)}user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n`,
  };
}

/** Upstream's kitten is built on Alpine 3.21 and the ImageVolume spec reads this file through a volume. */
const ALPINE_OS_RELEASE = [
  'NAME="Alpine Linux"',
  'ID=alpine',
  'VERSION_ID=3.21.3',
  'PRETTY_NAME="Alpine Linux v3.21"',
  'HOME_URL="https://alpinelinux.org/"',
  'BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"',
  '',
].join('\n');

/** Busybox's own image: /bin with every applet, and the users, groups and folders it carries. */
const BUSYBOX_PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/bin/false',
  'bin:x:2:2:bin:/bin:/bin/false',
  'sys:x:3:3:sys:/dev:/bin/false',
  'sync:x:4:100:sync:/bin:/bin/sync',
  'mail:x:8:8:mail:/var/spool/mail:/bin/false',
  'www-data:x:33:33:www-data:/var/www:/bin/false',
  'operator:x:37:37:Operator:/var:/bin/false',
  'nobody:x:65534:65534:nobody:/home:/bin/false',
  '',
].join('\n');
const BUSYBOX_GROUP = [
  'root:x:0:',
  'daemon:x:1:',
  'bin:x:2:',
  'sys:x:3:',
  'adm:x:4:',
  'tty:x:5:',
  'disk:x:6:',
  'lp:x:7:',
  'mail:x:8:',
  'kmem:x:9:',
  'wheel:x:10:root',
  'cdrom:x:11:',
  'dialout:x:18:',
  'floppy:x:19:',
  'video:x:28:',
  'audio:x:29:',
  'tape:x:32:',
  'www-data:x:33:',
  'operator:x:37:',
  'utmp:x:43:',
  'plugdev:x:46:',
  'staff:x:50:',
  'lock:x:54:',
  'netdev:x:82:',
  'users:x:100:',
  'nobody:x:65534:',
  '',
].join('\n');

/** Orders dotted versions (2.55 before 2.66.1) by their numbers. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** One image per tag the suite lists for `name`; an error when it lists none. */
function tagged(
  inputs: ImageInputs,
  name: string,
  layers: Layer[],
  config: ImageConfig,
  tags?: string[],
): ImageSpec[] {
  const all = tags ?? listedTags(inputs.listed, name);
  if (all.length === 0) throw new Error(`e2e.test --list-images names no ${E2E_REGISTRY}/${name} image`);
  return all.map((tag) => ({
    ref: `${E2E_REGISTRY}/${name}:${tag}`,
    layers,
    config: { ...config, labels: { ...config.labels, [BUILD_LABEL]: inputs.key } },
  }));
}

/**
 * The image specs: agnhost (this version's and the older tag), kitten, nautilus, busybox,
 * glibc-dns-testing, nginx, nonewprivs, nonroot and sample-apiserver, each under every tag the
 * suite names. All but busybox share one Debian layer (debian.tar), loaded once.
 */
export async function conformanceImages(inputs: ImageInputs): Promise<ImageSpec[]> {
  const { dir, build } = inputs;
  const file = (name: string) => join(dir, name);
  const layer = (name: string, entries: LayerEntry[]) =>
    layerFromEntries(entries, join(dir, 'layers', `${name}.tar`));
  const debian: Layer = { path: file('debian.tar'), ...(await digestOf(file('debian.tar'))) };

  /** The Debian layer and one program on it (upstream: an Alpine or Debian base and that program). */
  const onDebian = async (name: string, path: string, source: string, mode = 0o755) => [
    debian,
    await layer(name, [{ type: 'host-file', name: path, path: source, mode }]),
  ];

  const users = agnhostUsers(
    await readFile(file('files/passwd'), 'utf8'),
    await readFile(file('files/group'), 'utf8'),
  );
  /** agnhost's own layer for one tag: build.sh's agnhost-TAG with upstream's files around it */
  const agnhostLayer = (tag: string) =>
    layer(`agnhost-${tag}`, [
      { type: 'host-file', name: 'agnhost', path: file(`agnhost-${tag}`), mode: 0o755 },
      { type: 'symlink', name: 'agnhost-2', target: 'agnhost' },
      { type: 'host-file', name: 'coredns', path: inputs.coredns, mode: 0o755 },
      { type: 'host-file', name: 'localhost.crt', path: file('files/localhost.crt'), mode: 0o644 },
      { type: 'host-file', name: 'localhost.key', path: file('files/localhost.key'), mode: 0o644 },
      { type: 'directory', name: 'uploads' },
      { type: 'symlink', name: 'usr/local/bin/iperf', target: '/usr/bin/iperf' },
      { type: 'file', name: 'etc/passwd', content: users.passwd },
      { type: 'file', name: 'etc/group', content: users.group },
      { type: 'directory', name: 'home/user-defined-in-image', uid: 1000, gid: 1000 },
    ]);
  const agnhostConfig: ImageConfig = { entrypoint: ['/agnhost'], cmd: ['pause'] };
  const tags = listedTags(inputs.listed, 'agnhost');
  const unbuilt = tags.find((t) => build.agnhost[t] === undefined);
  if (unbuilt !== undefined) throw new Error(`build.json has no agnhost:${unbuilt}, which the suite runs`);
  const agnhostImages = new Map<string, Layer[]>();
  for (const tag of tags) agnhostImages.set(tag, [debian, await agnhostLayer(tag)]);
  // kitten and nautilus are built on the newest agnhost, as upstream's are
  const newest = [...tags].sort(compareVersions).at(-1) as string;
  const agnhost = agnhostImages.get(newest) as Layer[];

  const picture = async (name: string, jpg: string, extra: LayerEntry[] = []) => [
    ...agnhost,
    await layer(name, [
      { type: 'host-file', name: jpg, path: file(`files/${name}/${jpg}`), mode: 0o644 },
      { type: 'host-file', name: 'data.json', path: file(`files/${name}/data.json`), mode: 0o644 },
      ...extra,
    ]),
  ];
  const webserver: ImageConfig = { entrypoint: ['/agnhost'], cmd: ['test-webserver'] };

  const { stdout } = await promisify(execFile)(file('busybox'), ['--list']);
  const applets = stdout.split('\n').filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== 'busybox');
  const busybox = await layer('busybox', [
    { type: 'host-file', name: 'bin/busybox', path: file('busybox'), mode: 0o755 },
    ...applets.map((a): LayerEntry => ({ type: 'symlink', name: `bin/${a}`, target: 'busybox' })),
    { type: 'file', name: 'etc/passwd', content: BUSYBOX_PASSWD },
    { type: 'file', name: 'etc/group', content: BUSYBOX_GROUP },
    { type: 'directory', name: 'tmp', mode: 0o1777 },
    { type: 'directory', name: 'root', mode: 0o700 },
    { type: 'directory', name: 'home' },
    { type: 'directory', name: 'usr/sbin' },
    { type: 'directory', name: 'var/spool/mail', gid: 8, mode: 0o755 },
    { type: 'directory', name: 'var/www', uid: 33, gid: 33 },
  ]);

  return [
    ...[...agnhostImages].flatMap(([tag, layers]) => tagged(inputs, 'agnhost', layers, agnhostConfig, [tag])),
    ...tagged(
      inputs,
      'kitten',
      await picture('kitten', 'kitten.jpg', [
        { type: 'file', name: 'etc/os-release', content: ALPINE_OS_RELEASE },
      ]),
      webserver,
    ),
    ...tagged(inputs, 'nautilus', await picture('nautilus', 'nautilus.jpg'), webserver),
    ...tagged(inputs, 'busybox', [busybox], { cmd: ['sh'] }),
    ...tagged(inputs, 'glibc-dns-testing', await onDebian('glibc-dns-testing', 'coredns', inputs.coredns), {
      cmd: ['bash'],
    }),
    ...tagged(inputs, 'nginx', [debian], { cmd: ['nginx', '-g', 'daemon off;'], stopSignal: 'SIGQUIT' }),
    ...tagged(inputs, 'nonewprivs', await onDebian('nonewprivs', 'usr/local/bin/nnp', file('nnp'), 0o4755), {
      cmd: ['nnp'],
    }),
    ...tagged(inputs, 'nonroot', [debian], { cmd: ['/bin/sh'], user: '1234' }),
    ...tagged(
      inputs,
      'sample-apiserver',
      await onDebian('sample-apiserver', 'sample-apiserver', file('sample-apiserver')),
      {
        entrypoint: ['/sample-apiserver'],
      },
    ),
  ];
}
