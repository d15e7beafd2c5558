import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imagesToCopy, importedRefs, parseImageList, type ClusterImage } from '../../src/cluster/images.js';
import type { Node } from '../../src/providers/types.js';

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
  assert.deepEqual(importedRefs(out), ['docker.io/minilab-test/echo:abc', 'docker.io/my/tool:v1']);
  assert.deepEqual(importedRefs(''), []);
});

test('images to copy to a new node: loaded ones it lacks (by reference and ID), each from the first node that has it', () => {
  const node = (name: string) => ({ name }) as Node;
  const [cp, w1] = [node('cp'), node('w1')];
  const img = (ref: string, id: string, loaded = true): ClusterImage => ({
    ref,
    id,
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
