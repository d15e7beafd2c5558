import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import {
  describeLoad,
  imagesToCopy,
  importedRefs,
  loadArchive,
  loadImages,
  loadImagesEverywhere,
  parseImageList,
  type ClusterImage,
} from '../../src/cluster/images.js';
import type { MinilabError } from '../../src/errors.js';
import type { ExecResult, ImageStore, Node } from '../../src/providers/types.js';

const LIST = `REF TYPE DIGEST SIZE PLATFORMS LABELS
docker.io/my/app:dev application/vnd.docker.distribution.manifest.v2+json sha256:aaa 12.0 MiB linux/amd64 io.minilab.image-id=sha256:e1,io.minilab.loaded=true
docker.io/my/tool:v1 application/vnd.oci.image.manifest.v1+json sha256:bbb 3.5 MiB linux/amd64 io.minilab.loaded=true
registry.k8s.io/pause:3.10.2 application/vnd.oci.image.index.v1+json sha256:ccc 300.0 KiB linux/amd64 io.cri-containerd.image=managed,io.cri-containerd.pinned=pinned
docker.io/library/nginx:1 application/vnd.oci.image.index.v1+json sha256:ddd 70.0 MiB linux/amd64 io.cri-containerd.image=managed
sha256:aaa application/vnd.docker.distribution.manifest.v2+json sha256:aaa 12.0 MiB linux/amd64 -`;

test('image list: loaded images (image load, from the engine or an archive) apart from preloaded and pulled ones', () => {
  const images = parseImageList(LIST);
  assert.deepEqual(
    images.map((i) => [i.ref, i.id, i.pinned, i.loaded, i.engineId]),
    [
      ['docker.io/library/nginx:1', 'sha256:ddd', false, false, undefined],
      ['docker.io/my/app:dev', 'sha256:e1', false, true, 'sha256:e1'],
      ['docker.io/my/tool:v1', 'sha256:bbb', false, true, undefined],
      ['registry.k8s.io/pause:3.10.2', 'sha256:ccc', true, false, undefined],
    ],
  );
});

test("the images an archive import unpacked, read from ctr's output", () => {
  const out =
    'unpacking docker.io/minilab-test/echo:abc (sha256:0123abcd)...done\nunpacking docker.io/my/tool:v1 (sha256:ffee)...done\n';
  assert.deepEqual(importedRefs(out), [
    { ref: 'docker.io/minilab-test/echo:abc', digest: 'sha256:0123abcd' },
    { ref: 'docker.io/my/tool:v1', digest: 'sha256:ffee' },
  ]);
  assert.deepEqual(importedRefs(''), []);
});

test('images to copy to a new node: loaded ones it lacks (by reference and ID), each from the first node that has it', () => {
  const node = (name: string) => ({ name }) as Node;
  const [cp, w1] = [node('cp'), node('w1')];
  const img = (ref: string, id: string, loaded = true): ClusterImage => ({
    ref,
    id,
    digest: `sha256:${id}`,
    sizeBytes: 1,
    pinned: !loaded,
    loaded,
  });
  const copies = imagesToCopy(
    [
      { node: cp, images: [img('pause:1', 'p', false), img('app:dev', 'a1')] },
      { node: w1, images: [img('app:dev', 'a1'), img('tool:v1', 't1'), img('pulled:1', 'x', false)] },
    ],
    [img('pause:1', 'p', false), img('tool:v1', 'OLD')],
  );
  assert.deepEqual(
    copies.map((c) => [c.image.ref, c.from.name]),
    [
      ['app:dev', 'cp'],
      ['tool:v1', 'w1'],
    ],
    'the new node has an older tool:v1: the loaded one replaces it; pulled and pinned images stay behind',
  );
});

/**
 * A node whose `ctr images import` behaves as through Docker: it starts reading its input only after
 * a moment (the exec is created first), ends when the input ends, and fails on a cut archive.
 * `list` is what `ctr images ls` prints; `unpacked` the images the import says it unpacked;
 * `content` what `ctr content get DIGEST` prints.
 */
function importingNode(
  archive: Buffer,
  {
    mirror = true,
    name = 'cp',
    list = '',
    unpacked = [`docker.io/my/app:dev (sha256:${'0a1b'.repeat(16)})`],
    content = {} as Record<string, string>,
  } = {},
) {
  const calls: { cmd: string[]; got?: Buffer }[] = [];
  const node = {
    name,
    async exec(cmd: string[], opts: { input?: string | Buffer | Readable } = {}): Promise<ExecResult> {
      const call: { cmd: string[]; got?: Buffer } = { cmd };
      calls.push(call);
      const ok = (stdout = '') => ({ exitCode: 0, stdout, stderr: '', started: true });
      // a node image from before the mirror has no minilab-mirror: the wrapper exits 3
      if (!mirror && cmd.includes('publish')) return { exitCode: 3, stdout: '', stderr: '', started: true };
      if (cmd.join(' ').endsWith('images ls')) return ok(list);
      if (cmd.includes('content')) return ok(content[cmd.at(-1)!]);
      if (!cmd.includes('import')) return ok();
      await new Promise((r) => setTimeout(r, 20));
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve) => {
        const input = opts.input as Readable;
        input.on('end', resolve);
        input.on('error', resolve);
        input.pipe(new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }));
      });
      call.got = Buffer.concat(chunks);
      return call.got.equals(archive)
        ? ok(unpacked.map((u) => `unpacking ${u}...done\n`).join(''))
        : { exitCode: 1, stdout: '', stderr: 'ctr: unexpected EOF', started: true };
    },
  } as unknown as Node;
  return { node, calls };
}

const ARCHIVE = Buffer.alloc(256 * 1024, 7);

test('image load --archive: a directory is a usage error before anything runs; a missing file is not found', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-archive-'));
  try {
    const { node, calls } = importingNode(ARCHIVE);
    await assert.rejects(
      loadArchive(node, dir, () => undefined),
      (err: MinilabError) => {
        assert.equal(err.kind, 'usage');
        assert.match(err.message, /is not a file/);
        assert.match(err.hint ?? '', /docker save or OCI archive file/);
        return true;
      },
    );
    await assert.rejects(
      loadArchive(node, join(dir, 'absent.tar'), () => undefined),
      { kind: 'notFound' },
    );
    assert.equal(calls.length, 0, 'nothing ran in the node');

    const file = join(dir, 'app.tar');
    await writeFile(file, ARCHIVE);
    const r = await loadArchive(node, file, () => undefined);
    assert.deepEqual([r.status, r.sizeBytes], ['loaded', ARCHIVE.length]);
    assert.ok(calls[0]?.got?.equals(ARCHIVE), 'ctr import got the whole archive');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("image load --archive publishes what containerd unpacked to the node's mirror; a node image without one is said", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-archive-'));
  try {
    const file = join(dir, 'app.tar');
    await writeFile(file, ARCHIVE);
    const { node, calls } = importingNode(ARCHIVE);
    const r = await loadArchive(node, file, () => undefined);
    const publish = calls.find((c) => c.cmd.includes('publish'))?.cmd;
    assert.deepEqual(publish?.slice(publish.indexOf('publish'), publish.indexOf('publish') + 5), [
      'publish',
      'image',
      'docker.io/my/app',
      'dev',
      '0a1b'.repeat(16),
    ]);
    assert.equal(r.notMirrored, undefined);
    assert.doesNotMatch(describeLoad(r), /not served/);

    const old = importingNode(ARCHIVE, { mirror: false });
    const r2 = await loadArchive(old.node, file, () => undefined);
    assert.match(r2.notMirrored ?? '', /predates the mirror/);
    assert.match(describeLoad(r2), /not served to pulls: .*imagePullPolicy IfNotPresent/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const images = (save: () => Readable) =>
  ({
    info: async () => ({ id: 'sha256:e1', sizeBytes: ARCHIVE.length }),
    save: async () => save(),
  }) as unknown as ImageStore;

test(
  'a docker save stream failing midway fails the load with its reason; ctr import sees its input end',
  { timeout: 10_000 },
  async () => {
    const { node, calls } = importingNode(ARCHIVE);
    async function* cut() {
      yield ARCHIVE.subarray(0, 1000);
      await new Promise((r) => setTimeout(r, 10));
      throw new Error('engine connection lost');
    }
    const saved = () => Readable.from(cut(), { objectMode: false });
    await assert.rejects(
      loadImages(images(saved), node, ['my/app:dev'], () => undefined),
      (err: MinilabError) => {
        assert.equal(err.kind, 'environment');
        assert.match(err.message, /^reading my\/app:dev failed: engine connection lost$/);
        return true;
      },
    );
    const ctr = calls.find((c) => c.cmd[0] === 'ctr');
    assert.ok(ctr?.got && ctr.got.length < ARCHIVE.length, 'ctr import got a cut archive and ended');
  },
);

test(
  'a stream failing before ctr import reads it neither crashes nor leaves the import waiting',
  { timeout: 10_000 },
  async () => {
    const { node, calls } = importingNode(ARCHIVE);
    const saved = () => {
      const s = new PassThrough();
      process.nextTick(() => s.destroy(new Error('EISDIR: illegal operation on a directory, read')));
      return s;
    };
    await assert.rejects(
      loadImages(images(saved), node, ['my/app:dev'], () => undefined),
      /reading my\/app:dev failed: EISDIR/,
    );
    assert.equal(calls.find((c) => c.cmd[0] === 'ctr')?.got?.length, 0);
  },
);

/** An engine whose images have these IDs; every save is recorded, and streams `archive`. */
function engine(ids: Record<string, string>, archive = ARCHIVE) {
  const saves: string[][] = [];
  const store = {
    engine: { name: 'Docker engine', cli: 'docker' },
    info: async (ref: string) => (ids[ref] ? { id: ids[ref], sizeBytes: archive.length } : undefined),
    save: async (refs: string[]) => (saves.push(refs), Readable.from([archive])),
  } as unknown as ImageStore;
  return { store, saves };
}

const IDS = { 'my/app:dev': 'sha256:e1', 'my/app:latest': 'sha256:e1', 'my/tool:v1': 'sha256:t2' };
const UNPACKED = [
  `docker.io/my/app:dev (sha256:${'0a1b'.repeat(16)})`,
  `docker.io/my/app:latest (sha256:${'0a1b'.repeat(16)})`,
  `docker.io/my/tool:v1 (sha256:${'0c1d'.repeat(16)})`,
];
const imports = <T extends { cmd: string[] }>(calls: T[]) => calls.filter((c) => c.cmd.includes('import'));

test('several images go in one docker save stream and one ctr import; an image under two names is in it once', async () => {
  const { store, saves } = engine(IDS);
  const { node, calls } = importingNode(ARCHIVE, { unpacked: UNPACKED });
  const reports = await loadImages(
    store,
    node,
    ['my/app:dev', 'my/app:latest', 'my/tool:v1'],
    () => undefined,
  );
  assert.deepEqual(saves, [['my/app:dev', 'my/app:latest', 'my/tool:v1']], 'one save of every name');
  assert.equal(imports(calls).length, 1, 'one import');
  assert.ok(
    imports(calls)[0]?.cmd.includes('--local'),
    'ctr import --local: the path that prints what it unpacked',
  );
  assert.deepEqual(
    reports.map((r) => [r.ref, r.status]),
    [
      ['my/app:dev', 'loaded'],
      ['my/app:latest', 'loaded'],
      ['my/tool:v1', 'loaded'],
    ],
  );
  assert.equal(
    calls.filter((c) => c.cmd.includes('tag')).length,
    0,
    'containerd named both from the archive',
  );
  const labels = calls.filter((c) => c.cmd.includes('label')).map((c) => c.cmd.slice(5));
  assert.deepEqual(labels.sort(), [
    ['docker.io/my/app:dev', 'io.minilab.loaded=true', 'io.minilab.image-id=sha256:e1'],
    ['docker.io/my/app:latest', 'io.minilab.loaded=true', 'io.minilab.image-id=sha256:e1'],
    ['docker.io/my/tool:v1', 'io.minilab.loaded=true', 'io.minilab.image-id=sha256:t2'],
  ]);
  const publish = calls.filter((c) => c.cmd.includes('publish'));
  assert.equal(publish.length, 1, "one publish to the node's mirror for all of them");
});

test('an image the node has with the same ID is not sent; one it has with another ID is', async () => {
  const { store, saves } = engine(IDS);
  // the node has app:dev as sha256:e1 (LIST) and tool:v1 as sha256:bbb
  const { node, calls } = importingNode(ARCHIVE, { list: LIST, unpacked: [UNPACKED[2]!] });
  const reports = await loadImages(store, node, ['my/app:dev', 'my/tool:v1'], () => undefined);
  assert.deepEqual(saves, [['my/tool:v1']]);
  assert.deepEqual(
    reports.map((r) => [r.ref, r.status]),
    [
      ['my/app:dev', 'unchanged'],
      ['my/tool:v1', 'loaded'],
    ],
  );
  const again = importingNode(ARCHIVE, { list: LIST });
  await loadImages(store, again.node, ['my/app:dev'], () => undefined);
  assert.equal(saves.length, 1, 'nothing saved when every image is there');
  assert.equal(imports(again.calls).length, 0);
  assert.equal(imports(calls).length, 1);
});

test('nodes lacking the same images share one stream out of the engine; each imports all of it', async () => {
  const { store, saves } = engine(IDS);
  const cp = importingNode(ARCHIVE, { unpacked: UNPACKED });
  const w1 = importingNode(ARCHIVE, { name: 'w1', unpacked: UNPACKED });
  const reports = await loadImagesEverywhere(
    store,
    [cp.node, w1.node],
    ['my/app:dev', 'my/tool:v1'],
    () => undefined,
  );
  assert.equal(saves.length, 1, 'one docker save');
  for (const n of [cp, w1])
    assert.ok(imports(n.calls)[0]?.got?.equals(ARCHIVE), 'every node got the whole archive');
  assert.deepEqual(
    reports.map((r) => r.status),
    ['loaded', 'loaded'],
  );
});

test('an image the engine names otherwise (podman: localhost/...) is tagged as asked, found by its ID', async () => {
  const { store } = engine(IDS);
  const digest = `sha256:${'0e0f'.repeat(16)}`;
  const { node, calls } = importingNode(ARCHIVE, {
    unpacked: [`localhost/my/app:dev (${digest})`],
    content: { [digest]: JSON.stringify({ config: { digest: 'sha256:e1' } }) },
  });
  const [r] = await loadImages(store, node, ['my/app:dev'], () => undefined);
  assert.equal(r?.status, 'loaded');
  const tag = calls.find((c) => c.cmd.includes('tag'));
  assert.ok(tag?.cmd.includes('--local'), 'ctr tag --local honours --force');
  assert.deepEqual(tag?.cmd.slice(-2), ['localhost/my/app:dev', 'docker.io/my/app:dev']);
});

test('an image missing from the engine fails the load before anything is sent', async () => {
  const { store, saves } = engine(IDS);
  const { node } = importingNode(ARCHIVE);
  await assert.rejects(
    loadImages(store, node, ['my/app:dev', 'my/gone:v1'], () => undefined),
    {
      kind: 'notFound',
      message: 'image "my/gone:v1" is not in the Docker engine',
    },
  );
  assert.equal(saves.length, 0);
});

/** A node whose import fails (`ctr` exits 1) or never reads its input, the rest as importingNode. */
function failingNode(name: string, how: 'exit' | 'hang', list = '') {
  const calls: { cmd: string[] }[] = [];
  const node = {
    name,
    async exec(cmd: string[]): Promise<ExecResult> {
      calls.push({ cmd });
      if (cmd.join(' ').endsWith('images ls'))
        return { exitCode: 0, stdout: list, stderr: '', started: true };
      if (!cmd.includes('import')) return { exitCode: 0, stdout: '', stderr: '', started: true };
      if (how === 'hang') return new Promise<never>(() => undefined);
      return {
        exitCode: 1,
        stdout: '',
        stderr: 'ctr: failed to ingest: no space left on device',
        started: true,
      };
    },
  } as unknown as Node;
  return { node, calls };
}

const labelled = <T extends { cmd: string[] }>(calls: T[]) =>
  calls.filter((c) => c.cmd.includes('label')).map((c) => c.cmd[5]);
const published = <T extends { cmd: string[] }>(calls: T[]) => calls.filter((c) => c.cmd.includes('publish'));

test(
  'one node failing in a shared stream: the other is labelled and published; the error names the node and its reason',
  { timeout: 10_000 },
  async () => {
    const { store, saves } = engine(IDS);
    const cp = importingNode(ARCHIVE, { unpacked: UNPACKED });
    const w1 = failingNode('w1', 'exit');
    await assert.rejects(
      loadImagesEverywhere(store, [cp.node, w1.node], ['my/app:dev', 'my/tool:v1'], () => undefined),
      (err: MinilabError) => {
        assert.equal(err.kind, 'clusterFailed');
        assert.equal(err.message, 'loading my/app:dev, my/tool:v1 failed on w1 (1 of 2 nodes)');
        assert.match(
          err.details[0] ?? '',
          /^w1: importing my\/app:dev, my\/tool:v1 into containerd on w1 failed \(exit 1\)$/,
        );
        assert.ok(
          err.details.some((d) => /no space left on device/.test(d)),
          'containerd said why',
        );
        assert.match(err.hint ?? '', /the other nodes have the images loaded/);
        return true;
      },
    );
    assert.equal(saves.length, 1, 'the two nodes shared one stream');
    assert.deepEqual(labelled(cp.calls).sort(), ['docker.io/my/app:dev', 'docker.io/my/tool:v1']);
    assert.equal(published(cp.calls).length, 1, 'the node that imported published to its mirror');
    assert.deepEqual(labelled(w1.calls), []);
  },
);

test(
  'every failed node is reported, each named, also when each is a group of one',
  { timeout: 10_000 },
  async () => {
    const { store, saves } = engine(IDS);
    // cp has app:dev already, w1 and w2 lack both: two groups, each failing
    const cp = failingNode('cp', 'exit', LIST);
    const w1 = failingNode('w1', 'exit');
    const w2 = importingNode(ARCHIVE, { name: 'w2', unpacked: UNPACKED });
    await assert.rejects(
      loadImagesEverywhere(store, [cp.node, w1.node, w2.node], ['my/app:dev', 'my/tool:v1'], () => undefined),
      (err: MinilabError) => {
        assert.equal(err.message, 'loading my/app:dev, my/tool:v1 failed on cp, w1 (2 of 3 nodes)');
        const lines = err.details.filter((d) => !d.startsWith(' '));
        assert.deepEqual(lines.sort(), [
          'cp: importing my/tool:v1 into containerd on cp failed (exit 1)',
          'w1: importing my/app:dev, my/tool:v1 into containerd on w1 failed (exit 1)',
        ]);
        return true;
      },
    );
    assert.equal(saves.length, 2, 'one stream per set of images');
    assert.deepEqual(labelled(w2.calls).sort(), ['docker.io/my/app:dev', 'docker.io/my/tool:v1']);
  },
);

test('a name that cannot be placed fails alone: the others are labelled and published', async () => {
  const ids = { ...IDS, 'my/gone@sha256:77': 'sha256:g7' };
  const { store } = engine(ids);
  const { node, calls } = importingNode(ARCHIVE, { unpacked: UNPACKED });
  await assert.rejects(
    loadImages(store, node, ['my/app:dev', 'my/gone@sha256:77', 'my/tool:v1'], () => undefined),
    (err: MinilabError) => {
      assert.equal(err.message, 'containerd has no image my/gone@sha256:77 (sha256:g7) after the import');
      assert.match(err.hint ?? '', /load a tag of the image with it/);
      return true;
    },
  );
  assert.deepEqual(labelled(calls).sort(), ['docker.io/my/app:dev', 'docker.io/my/tool:v1']);
  assert.equal(published(calls).length, 1);
});

test('a name by digest of an image loaded under a tag too is tagged from it', async () => {
  const digestRef = `my/app@sha256:${'ab'.repeat(32)}`;
  const { store } = engine({ ...IDS, [digestRef]: 'sha256:e1' });
  const { node, calls } = importingNode(ARCHIVE, { unpacked: [UNPACKED[0]!] });
  const reports = await loadImages(store, node, ['my/app:dev', digestRef], () => undefined);
  assert.deepEqual(
    reports.map((r) => r.status),
    ['loaded', 'loaded'],
  );
  const tag = calls.find((c) => c.cmd.includes('tag'));
  assert.deepEqual(tag?.cmd.slice(-2), ['docker.io/my/app:dev', `docker.io/${digestRef}`]);
  assert.equal(
    calls.filter((c) => c.cmd.includes('content')).length,
    0,
    'no manifest read: the ID was known',
  );
  assert.equal(reports[0]?.notMirrored, undefined, 'the tag is served by the mirror');
  assert.match(reports[1]?.notMirrored ?? '', /cannot hold docker\.io\/my\/app@sha256/);
});

test(
  'a node whose import stops reading is given up after the stall deadline; the others go on',
  { timeout: 10_000 },
  async () => {
    const { store } = engine(IDS, Buffer.alloc(4 * 1024 * 1024, 3));
    const big = Buffer.alloc(4 * 1024 * 1024, 3);
    const cp = importingNode(big, { unpacked: UNPACKED });
    const w1 = failingNode('w1', 'hang');
    const started = performance.now();
    await assert.rejects(
      loadImagesEverywhere(store, [cp.node, w1.node], ['my/app:dev'], () => undefined, { stallMs: 300 }),
      (err: MinilabError) => {
        assert.equal(err.kind, 'timeout');
        assert.match(
          err.details[0] ?? '',
          /^w1: importing my\/app:dev into containerd on w1 stopped: it read nothing for 300ms$/,
        );
        return true;
      },
    );
    assert.ok(performance.now() - started < 5000);
    assert.ok(imports(cp.calls)[0]?.got?.equals(big), 'the node that kept reading got the whole archive');
    assert.deepEqual(labelled(cp.calls), ['docker.io/my/app:dev']);
  },
);

test('progress of streams running at once says whose it is; -o json times are the batch, said so', async () => {
  const { store } = engine(IDS, Buffer.alloc(2 * 1024 * 1024, 7));
  const big = Buffer.alloc(2 * 1024 * 1024, 7);
  const slowly = (node: Node) => {
    const exec = node.exec.bind(node);
    // a slow reader: progress is reported every half second
    return Object.assign(node, {
      exec: (cmd: string[], o: { input?: Readable }) => {
        if (!cmd.includes('import') || !o.input) return exec(cmd, o);
        const slow = new PassThrough();
        o.input.on('data', (c: Buffer) => {
          o.input!.pause();
          slow.write(c);
          setTimeout(() => o.input!.resume(), 25);
        });
        o.input.on('end', () => slow.end());
        return exec(cmd, { ...o, input: slow });
      },
    });
  };
  const cp = importingNode(big, { list: LIST, unpacked: [UNPACKED[2]!] });
  const w1 = importingNode(big, { name: 'w1', unpacked: [UNPACKED[0]!, UNPACKED[2]!] });
  slowly(cp.node);
  slowly(w1.node);
  const lines: string[] = [];
  const reports = await loadImagesEverywhere(store, [cp.node, w1.node], ['my/app:dev', 'my/tool:v1'], (d) =>
    lines.push(d),
  );
  assert.ok(lines.length > 0);
  assert.ok(
    lines.every((l) => /^(cp|w1): \d+\/\d+ MB/.test(l)),
    `each line names its group: ${lines.join(' | ')}`,
  );
  assert.deepEqual(
    reports.map((r) => [r.status, r.batch]),
    [
      ['loaded', 2],
      ['loaded', 2],
    ],
  );
  assert.equal(reports[0]?.ms, reports[1]?.ms, "one time, the batch's");
  assert.match(describeLoad(reports[0]!), /^my\/app:dev: loaded \(\d+ MB; \S+ for the 2 names together\)/);
});

test("a present image's not-mirrored reason reaches its report on a node that imports something else", async () => {
  const { store } = engine(IDS);
  // a node image from before the mirror: app:dev present (not in the mirror), tool:v1 sent
  const list = LIST.replace('sha256:aaa', `sha256:${'0a1b'.repeat(16)}`);
  const { node } = importingNode(ARCHIVE, { list, unpacked: [UNPACKED[2]!], mirror: false });
  const reports = await loadImages(store, node, ['my/app:dev', 'my/tool:v1'], () => undefined);
  assert.deepEqual(
    reports.map((r) => [r.status, /predates the mirror/.test(r.notMirrored ?? '')]),
    [
      ['unchanged', true],
      ['loaded', true],
    ],
  );
});
