import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Components } from '../../src/image/components.js';
import {
  firstPodImages,
  joinUnpacking,
  joiningNodeImages,
  unpackImages,
} from '../../src/lifecycle/unpack.js';
import type { Node } from '../../src/providers/types.js';

const components: Components = {
  kubernetes: 'v1.37.2',
  etcd: '3.7.0-0',
  coredns: 'v1.14.6',
  pause: '3.10.2',
  localPathProvisioner: 'v0.0.30',
  images: [
    'images.test/kube-apiserver:v1.37.2',
    'images.test/kube-proxy:v1.37.2',
    'images.test/coredns/coredns:v1.14.6',
    'images.test/pause:3.10.2',
    'images.test/etcd:3.7.0-0',
  ],
};

test("the first pods' images: pause for the sandboxes; then flannel's with several nodes, CoreDNS, kube-proxy and the provisioner when it runs on the node", () => {
  const c = { ...components, flannel: 'v0.28.10' };
  assert.deepEqual(firstPodImages(c, { flannel: false, provisioner: true }), {
    sandbox: ['images.test/pause:3.10.2'],
    pods: [
      'images.test/coredns/coredns:v1.14.6',
      'images.test/kube-proxy:v1.37.2',
      'docker.io/rancher/local-path-provisioner:v0.0.30',
    ],
  });
  assert.deepEqual(firstPodImages(c, { flannel: true, provisioner: false }).pods, [
    'ghcr.io/flannel-io/flannel:v0.28.10',
    'images.test/coredns/coredns:v1.14.6',
    'images.test/kube-proxy:v1.37.2',
  ]);
  // a node image without flannel (release builds): nothing to unpack for it
  assert.deepEqual(firstPodImages(components, { flannel: true, provisioner: false }).pods, [
    'images.test/coredns/coredns:v1.14.6',
    'images.test/kube-proxy:v1.37.2',
  ]);
});

test("a joining node's first pods' images: pause, flannel's (when the node image has it), kube-proxy's", () => {
  assert.deepEqual(joiningNodeImages({ ...components, flannel: 'v0.28.10' }), [
    'images.test/pause:3.10.2',
    'ghcr.io/flannel-io/flannel:v0.28.10',
    'images.test/kube-proxy:v1.37.2',
  ]);
  assert.deepEqual(joiningNodeImages(components), [
    'images.test/pause:3.10.2',
    'images.test/kube-proxy:v1.37.2',
  ]);
});

/** A node that keeps each command it is given and answers with `exitCode`. */
function node(argv: string[][], exitCode = 0): Node {
  return {
    name: 'dev-control-plane',
    exec: async (cmd: string[]) => {
      argv.push(cmd);
      return { exitCode, stdout: '', stderr: 'ctr: failed', started: true };
    },
  } as unknown as Node;
}

test('unpacking: the references are arguments of one command, never its text; nothing is run for none; a failure is not an error', async () => {
  const argv: string[][] = [];
  await unpackImages(node(argv), []);
  assert.deepEqual(argv, []);
  const refs = ['images.test/coredns/coredns:v1.14.6', 'images.test/kube-proxy:v1.37.2'];
  await unpackImages(node(argv), refs);
  assert.equal(argv.length, 1);
  const [cmd = []] = argv;
  assert.deepEqual(cmd.slice(-2), refs);
  assert.match(cmd[3] ?? '', /ctr -n k8s\.io images mount --rw=false "\$ref"/);
  assert.match(cmd[3] ?? '', /images unmount --rm/);
  // the view is unmounted and its folder removed however the script ends
  assert.match(cmd[3] ?? '', /trap '[^']*unmount --rm "\$dir"[^']*; rmdir "\$dir"' EXIT/);
  assert.ok(!refs.some((ref) => (cmd[3] ?? '').includes(ref)));
  await unpackImages(node(argv, 1), refs); // resolves
  assert.equal(argv.length, 2);
});

test('a join beside the unpacking: a failed join waits for the unpacking to end; components that cannot be read only skip it', async () => {
  const argv: string[][] = [];
  const order: string[] = [];
  const slow: Node = {
    name: 'dev-worker',
    exec: async (cmd: string[]) => {
      argv.push(cmd);
      await new Promise((resolve) => setImmediate(resolve));
      order.push('unpacked');
      return { exitCode: 0, stdout: '', stderr: '', started: true };
    },
  } as unknown as Node;
  await assert.rejects(
    joinUnpacking(slow, Promise.resolve({ ...components, flannel: 'v0.28.10' }), async () => {
      order.push('join failed');
      throw new Error('join failed');
    }),
    /join failed/,
  );
  assert.deepEqual(order, ['join failed', 'unpacked'], 'the failure is reported once the unpacking ended');
  assert.deepEqual(argv[0]?.slice(5), [
    'images.test/pause:3.10.2',
    'ghcr.io/flannel-io/flannel:v0.28.10',
    'images.test/kube-proxy:v1.37.2',
  ]);
  let joined = false;
  await joinUnpacking(node(argv), Promise.reject(new Error('no components.json')), async () => {
    joined = true;
  });
  assert.equal(joined, true);
  assert.equal(argv.length, 1, 'nothing unpacked without the components');
});
