import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { addNode } from '../../src/lifecycle/add-node.js';
import { deleteProfile } from '../../src/lifecycle/delete.js';
import { removeNode } from '../../src/lifecycle/remove-node.js';
import { start } from '../../src/lifecycle/start.js';
import { clusterStatus, statusExitCode } from '../../src/lifecycle/status.js';
import { stop } from '../../src/lifecycle/stop.js';
import { exitCodeOf, renderError } from '../../src/errors.js';
import { lockProfile, profileLocked } from '../../src/profile/lock.js';
import { startRequest as request, withFixture } from '../helpers/lifecycle-fixture.js';
const NODE = 'demo-control-plane';

/** What a new cluster's start does, in order: the steps' effects on the provider, node and API. */
const CREATE_CALLS = [
  'provision',
  `boot ${NODE}`,
  `mark-creating ${NODE}`,
  `serving-certs ${NODE}`,
  `network-config ${NODE}`,
  // The node image's components, read once for every step that needs them: beside the first pass,
  // for the images the first pods run. Pause's are unpacked beside it, the pods' after the object
  // phases (the fake's commands answer at once, so pause's unpacking shows up only after the first
  // pass's).
  `read-components ${NODE}`,
  `kubeadm-first-pass ${NODE}`,
  `kubeadm-objects ${NODE}`,
  `read-admin-conf ${NODE}`,
  `unpack-images ${NODE}`,
  `unpack-images ${NODE}`,
  'api health /livez',
  // applied from /livez on, beside the last part (until mark-control-plane it is refused: 403)
  'api apply-storage',
  `kubeadm-second-pass ${NODE}`,
  'api health /readyz',
  'api node-ready',
  'api pod-cidr',
  'api coredns-ready',
  'api default-service-account',
  `mark-complete ${NODE}`,
];

/** The images each unpacking command was given (its arguments after the script's name). */
function unpacked(argv: { argv: string[] }[]): string[][] {
  return argv.filter((a) => a.argv.join(' ').includes('images mount --rw=false')).map((a) => a.argv.slice(5));
}

const CREATE_TITLES = [
  'Preflight checks',
  'Creating the node container',
  'Booting the node (systemd, containerd)',
  'Configuring the pod network (bridge CNI)',
  'Initializing the control plane (kubeadm init)',
  'Waiting for node Ready, CoreDNS and the default service account',
  'Installing the default StorageClass',
  'Writing the kubeconfig',
];

test('start of a new cluster runs its steps in order and writes the kubeconfig and profile', async () => {
  await withFixture(async (f) => {
    const r = await start(f.ctx, request());
    assert.deepEqual(f.world.calls, CREATE_CALLS);
    assert.deepEqual(unpacked(f.world.argv), [
      ['images.test/pause:3.10.2'],
      [
        'images.test/coredns/coredns:v1.14.6',
        'images.test/kube-proxy:v1.37.2',
        'docker.io/rancher/local-path-provisioner:v0.0.31',
      ],
    ]);
    assert.deepEqual(
      f.ctx.reporter.timings.map((t) => t.name),
      CREATE_TITLES,
    );
    assert.equal(r.action, 'created');
    assert.deepEqual(r.nodes, [{ name: NODE, role: 'control-plane' }]);
    assert.match(r.apiServer, /^https:\/\/127\.0\.0\.1:\d+$/);
    const kc = parse(await readFile(f.ctx.env.KUBECONFIG as string, 'utf8')) as { 'current-context': string };
    assert.equal(kc['current-context'], 'demo');
    assert.equal((await f.ctx.profiles.read('demo'))?.kubeconfig?.context, 'demo');
    assert.equal(await profileLocked(f.ctx.home, 'demo'), false, 'the profile lock is released');
  });
});

test('--wait none leaves out the waits; the rest runs in the same order', async () => {
  await withFixture(async (f) => {
    await start(f.ctx, request({ wait: 'none' }));
    assert.deepEqual(
      f.world.calls,
      CREATE_CALLS.filter((c) => !/readyz|node-ready|pod-cidr|coredns|service-account/.test(c)),
    );
  });
});

// Every call a new start makes can fail; each failure names its step and undoes what the run made
// (but the unpacking of images ahead of their pods: below).
for (const failAt of CREATE_CALLS.filter((c) => !c.startsWith('unpack-images'))) {
  test(`a start failing at "${failAt}" removes what it made, restores the profile, and names the step`, async () => {
    await withFixture(async (f) => {
      // The network exists already (made by someone else): a failed start must leave it.
      f.world.networks.add('minilab-demo');
      f.world.failAt = failAt;
      await assert.rejects(start(f.ctx, request()), (err: Error) => {
        // The StorageClass step wraps the API server's refusal: it is the cause.
        assert.match(`${err.message} ${(err.cause as Error | undefined)?.message}`, /injected failure/);
        return true;
      });
      const failed = f.ctx.reporter.timings.at(-1);
      assert.equal(failed?.ok, false, 'the failing step is reported as failed');
      const rollback = f.world.calls.find((c) => c.startsWith('rollback'));
      if (failAt !== 'provision') {
        assert.equal(
          rollback,
          `rollback node:${NODE},volume:demo-var`,
          'newest first, only what this run made',
        );
      }
      assert.deepEqual([...f.world.nodes.keys()], []);
      assert.deepEqual([...f.world.volumes], []);
      assert.deepEqual([...f.world.networks], ['minilab-demo'], 'the network this run did not make stays');
      assert.equal(
        await f.ctx.profiles.read('demo'),
        undefined,
        'no profile was stored before: none is left',
      );
      assert.equal(await profileLocked(f.ctx.home, 'demo'), false);
    });
  });
}

test("a failed unpacking of the first pods' images is not the start's: containerd unpacks them at first use", async () => {
  await withFixture(async (f) => {
    f.world.failAt = `unpack-images ${NODE}`;
    const r = await start(f.ctx, request());
    assert.equal(r.action, 'created');
    assert.deepEqual(f.world.calls, CREATE_CALLS);
  });
});

test('a start whose kubeconfig write fails keeps the finished cluster, says so (exit 7), and the next start writes it', async () => {
  await withFixture(async (f) => {
    // $KUBECONFIG is a dotfile manager's link into a folder that is not there yet: readable (as
    // absent), not writable.
    const kubeconfig = f.ctx.env.KUBECONFIG as string;
    const dotfiles = join(f.dir, 'dotfiles');
    await rm(kubeconfig, { force: true });
    await symlink(join(dotfiles, 'config'), kubeconfig);
    let failure: unknown;
    await assert.rejects(start(f.ctx, request()), (err) => ((failure = err), true));
    assert.equal(exitCodeOf(failure), 7);
    assert.equal(
      renderError(failure, false),
      `error: the cluster of profile "demo" is up, but its kubeconfig was not written: kubeconfig ${kubeconfig} is a link to ${join(dotfiles, 'config')}, whose folder ${dotfiles} does not exist\n` +
        `hint: create ${dotfiles}, or point ${kubeconfig} at a file in an existing folder; the cluster is kept; to write its kubeconfig, run: minilab start -p demo\n`,
    );
    assert.deepEqual(f.world.calls, CREATE_CALLS, 'nothing rolled back');
    assert.deepEqual([...f.world.nodes.keys()], [NODE]);
    assert.deepEqual(f.ctx.reporter.timings.at(-1), {
      ...f.ctx.reporter.timings.at(-1),
      name: 'Writing the kubeconfig',
      ok: false,
    });
    assert.equal((await f.ctx.profiles.read('demo'))?.name, 'demo', 'the profile stays');
    assert.equal(await profileLocked(f.ctx.home, 'demo'), false);

    await mkdir(dotfiles);
    const r = await start(f.ctx, request());
    assert.equal(r.action, 'resynced');
    assert.ok((await lstat(kubeconfig)).isSymbolicLink(), 'the link stays a link');
    const kc = parse(await readFile(join(dotfiles, 'config'), 'utf8')) as { 'current-context': string };
    assert.equal(kc['current-context'], 'demo');
    assert.deepEqual((await f.ctx.profiles.read('demo'))?.kubeconfig, { path: kubeconfig, context: 'demo' });
  });
});

test('a failed start with --keep-on-failure keeps the half-made cluster', async () => {
  await withFixture(async (f) => {
    f.world.failAt = `kubeadm-second-pass ${NODE}`;
    await assert.rejects(start(f.ctx, request({ keepOnFailure: true })), /injected failure/);
    assert.deepEqual([...f.world.nodes.keys()], [NODE]);
    assert.ok(!f.world.calls.some((c) => c.startsWith('rollback')));
    assert.ok(f.lines.some((l) => l.includes('--keep-on-failure')));
  });
});

test('a second start of a running cluster only re-syncs: no node is made or started', async () => {
  await withFixture(async (f) => {
    await start(f.ctx, request());
    f.world.calls.length = 0;
    const r = await start(f.ctx, request());
    assert.equal(r.action, 'resynced');
    assert.deepEqual(f.world.calls, [
      `check-complete ${NODE}`,
      `read-admin-conf ${NODE}`,
      'api health /readyz',
      'api node-ready',
      'api coredns-ready',
      'api default-service-account',
    ]);
  });
});

test("status asks /readyz with the kubeconfig's credentials when it names this cluster, else with the node's", async () => {
  await withFixture(async (f) => {
    await start(f.ctx, request());
    f.world.calls.length = 0;
    const keys: string[] = [];
    f.ctx.kube.health = async (entry, path) => {
      if (path === '/readyz') keys.push(entry.clientKeyData);
      // The API server knows the node's admin key only.
      return entry.clientKeyData === 'S0VZ' ? true : 'API server /readyz answered 401';
    };
    const file = f.ctx.env.KUBECONFIG as string;
    const written = await readFile(file, 'utf8');
    assert.ok(written.includes('client-key-data: S0VZ'), written);
    const up = await clusterStatus(f.ctx, 'demo');
    assert.equal(up.apiServer.state, 'running');
    assert.deepEqual(keys, ['S0VZ']);
    assert.ok(!f.world.calls.includes(`read-admin-conf ${NODE}`), 'no exec for the credentials');

    // Credentials of a cluster made before on the same port: refused, then the node's are read.
    await writeFile(file, written.replace('client-key-data: S0VZ', 'client-key-data: T0xE'));
    keys.length = 0;
    const again = await clusterStatus(f.ctx, 'demo');
    assert.equal(again.apiServer.state, 'running');
    assert.deepEqual(keys, ['T0xE', 'S0VZ']);
    assert.ok(f.world.calls.includes(`read-admin-conf ${NODE}`));
  });
});

test("status asks each kubelet's /healthz through the API server's node proxy, and systemd by exec only when the proxy cannot say", async () => {
  await withFixture(async (f) => {
    await start(f.ctx, request({ nodes: 2 }));
    const WORKER = 'demo-worker1';
    const asked: string[] = [];
    let kubeletUp = (_node: string) => true;
    f.ctx.kube.health = async (_entry, path) => {
      asked.push(path);
      const node = /^\/api\/v1\/nodes\/([^/]+)\/proxy\/healthz$/.exec(path)?.[1];
      if (node === undefined) return true;
      return kubeletUp(node) ? true : 'API server answered 503';
    };
    f.world.calls.length = 0;
    const up = await clusterStatus(f.ctx, 'demo');
    assert.deepEqual(
      up.nodes.map((n) => [n.name, n.kubelet]),
      [
        [NODE, 'running'],
        [WORKER, 'running'],
      ],
    );
    assert.deepEqual(asked.sort(), [
      '/api/v1/nodes/demo-control-plane/proxy/healthz',
      '/api/v1/nodes/demo-worker1/proxy/healthz',
      '/readyz',
    ]);
    assert.ok(!f.world.calls.some((c) => c.startsWith('kubelet-active')), 'no exec while the proxy answers');

    // The worker's kubelet does not answer the proxy: systemd is asked, in that node only.
    kubeletUp = (node) => node !== WORKER;
    f.world.calls.length = 0;
    const again = await clusterStatus(f.ctx, 'demo');
    assert.deepEqual(
      f.world.calls.filter((c) => c.startsWith('kubelet-active')),
      [`kubelet-active ${WORKER}`],
    );
    assert.equal(again.kubelet, 'running', 'systemd says the unit is active (the fake node always does)');
  });
});

test('stop then start restarts the nodes; status follows', async () => {
  await withFixture(async (f) => {
    await start(f.ctx, request());
    f.world.calls.length = 0;
    const stopped = await stop(f.ctx, 'demo');
    assert.deepEqual(stopped.stopped, [NODE]);
    assert.deepEqual(f.world.calls, [`stop-kubelet ${NODE}`, `stop-node ${NODE}`]);
    const down = await clusterStatus(f.ctx, 'demo');
    assert.equal(statusExitCode(down), 16 + 1 + 2 + 4);
    assert.deepEqual(
      down.nodes.map((n) => [n.name, n.container, n.kubelet]),
      [[NODE, 'exited', 'stopped']],
    );

    f.world.calls.length = 0;
    const r = await start(f.ctx, request());
    assert.equal(r.action, 'restarted');
    assert.deepEqual(f.world.calls.slice(0, 3), [
      `start-node ${NODE}`,
      `boot ${NODE}`,
      `check-complete ${NODE}`,
    ]);
    assert.ok(!f.world.calls.includes('provision'));
    const up = await clusterStatus(f.ctx, 'demo');
    assert.equal(statusExitCode(up), 0);
    assert.equal(up.kubelet, 'running');
  });
});

test('a start interrupted before the cluster was complete is refused on the next start', async () => {
  await withFixture(async (f) => {
    f.world.failAt = 'api coredns-ready';
    await assert.rejects(start(f.ctx, request({ keepOnFailure: true })));
    f.world.failAt = undefined;
    await assert.rejects(start(f.ctx, request()), /was never fully created/);
  });
});

test('a start waits for the profile lock held by another command, then runs', async () => {
  await withFixture(async (f) => {
    const release = await lockProfile(f.ctx.home, 'demo', { timeoutMs: 1000, purpose: 'another minilab' });
    const started = start(f.ctx, request());
    await new Promise((r) => setTimeout(r, 600));
    assert.ok(f.lines.some((l) => l.includes('waiting for profile "demo": held by another minilab')));
    assert.ok(!f.world.calls.includes('provision'), 'nothing is made while the lock is held');
    await release();
    assert.equal((await started).action, 'created');
  });
});

test('delete removes the nodes, volumes, network, kubeconfig entry and profile', async () => {
  await withFixture(async (f) => {
    await start(f.ctx, request());
    const r = await deleteProfile(f.ctx, 'demo');
    assert.deepEqual(r.containers, [NODE]);
    assert.deepEqual(r.volumes, ['demo-var']);
    assert.equal(r.network, 'minilab-demo');
    assert.equal(r.kubeconfig?.context, 'demo');
    assert.equal(await f.ctx.profiles.read('demo'), undefined);
    await assert.rejects(clusterStatus(f.ctx, 'demo'), /has no cluster/);
  });
});

test('a cluster of three nodes: flannel instead of the bridge, workers join after the control plane, storage after them', async () => {
  await withFixture(async (f) => {
    const r = await start(f.ctx, request({ nodes: 3 }));
    const workers = ['demo-worker1', 'demo-worker2'];
    assert.deepEqual(r.nodes, [
      { name: NODE, role: 'control-plane' },
      ...workers.map((name) => ({ name, role: 'worker' })),
    ]);
    assert.deepEqual(f.world.calls, [
      'provision',
      ...[NODE, ...workers].map((n) => `boot ${n}`),
      `mark-creating ${NODE}`,
      ...[NODE, ...workers].map((n) => `serving-certs ${n}`),
      `read-components ${NODE}`,
      `kubeadm-first-pass ${NODE}`,
      `kubeadm-objects ${NODE}`,
      `read-admin-conf ${NODE}`,
      `unpack-images ${NODE}`,
      `unpack-images ${NODE}`,
      'api health /livez',
      `kubeadm-second-pass ${NODE}`,
      'api apply-manifest',
      // each join beside its node's unpacking of its first pods' images (the components read once)
      ...workers.map((n) => `kubeadm-join ${n}`),
      ...workers.map((n) => `unpack-images ${n}`),
      // The storage provisioner, which prefers a worker, once the workers are there to prefer,
      // applied while the token goes and the nodes turn Ready.
      `token-delete ${NODE}`,
      'api apply-storage',
      'api health /readyz',
      ...[NODE, ...workers].map(() => 'api node-ready'),
      'api coredns-ready',
      'api default-service-account',
      `mark-complete ${NODE}`,
    ]);
    // The provisioner runs on a worker: the control plane does not unpack it, but flannel's image
    // first (its container writes the CNI configuration the node's Ready waits for). The workers
    // unpack pause, flannel's image and kube-proxy's.
    const flannel = 'ghcr.io/flannel-io/flannel:v0.28.10';
    const joining = ['images.test/pause:3.10.2', flannel, 'images.test/kube-proxy:v1.37.2'];
    assert.deepEqual(unpacked(f.world.argv), [
      ['images.test/pause:3.10.2'],
      [flannel, 'images.test/coredns/coredns:v1.14.6', 'images.test/kube-proxy:v1.37.2'],
      joining,
      joining,
    ]);
    assert.deepEqual(
      f.ctx.reporter.timings.map((t) => t.name),
      [
        'Preflight checks',
        'Creating the node containers (3)',
        'Booting the node (systemd, containerd)',
        'Initializing the control plane (kubeadm init)',
        'Installing the pod network (flannel)',
        'Joining 2 workers',
        'Waiting for node Ready, CoreDNS and the default service account',
        'Installing the default StorageClass',
        'Writing the kubeconfig',
      ],
    );
    const status = await clusterStatus(f.ctx, 'demo');
    assert.deepEqual(
      status.nodes.map((n) => [n.name, n.role]),
      [[NODE, 'control-plane'], ...workers.map((w) => [w, 'worker'])],
    );
  });
});

test('node add copies the images loaded into the cluster to the new node before it joins, each from a node that has it', async () => {
  await withFixture(async (f) => {
    await start(f.ctx, request({ nodes: 2 }));
    // The node image's own images are on every node; app:v1 was loaded everywhere, tool:v2 on
    // the worker only (the control plane was stopped when it was loaded).
    f.world.preloaded.add('preloaded:v1');
    f.world.nodeImages.set(NODE, new Set(['preloaded:v1', 'app:v1']));
    f.world.nodeImages.set('demo-worker1', new Set(['preloaded:v1', 'app:v1', 'tool:v2']));
    f.world.nodeImages.set('demo-worker2', new Set(['preloaded:v1']));
    f.world.calls.length = 0;
    await addNode(f.ctx, 'demo');
    const copies = f.world.calls.filter((c) => /images-(export|label)/.test(c));
    assert.deepEqual(copies, [
      `images-export ${NODE}`,
      'images-label demo-worker2',
      'images-export demo-worker1',
      'images-label demo-worker2',
    ]);
    assert.deepEqual([...(f.world.nodeImages.get('demo-worker2') ?? [])].sort(), [
      'app:v1',
      'preloaded:v1',
      'tool:v2',
    ]);
    assert.ok(
      f.world.calls.indexOf('images-label demo-worker2') < f.world.calls.indexOf('kubeadm-join demo-worker2'),
      'copied before the kubelet starts',
    );
    assert.ok(f.ctx.reporter.timings.some((t) => t.name === 'Copying 2 images loaded into the cluster'));
  });
});

test('node add joins the new node even when copying a loaded image fails, and says which', async () => {
  await withFixture(async (f) => {
    await start(f.ctx, request({ nodes: 2 }));
    f.world.nodeImages.set(NODE, new Set(['app:v1']));
    f.world.failAt = `images-export ${NODE}`;
    const warnings: string[] = [];
    const warn = f.ctx.reporter.warn.bind(f.ctx.reporter);
    f.ctx.reporter.warn = (m: string) => {
      warnings.push(m);
      warn(m);
    };
    const added = await addNode(f.ctx, 'demo');
    assert.equal(added.node, 'demo-worker2');
    assert.ok(f.world.calls.includes('kubeadm-join demo-worker2'));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /not copied to demo-worker2: app:v1 .*minilab image load/);
  });
});

test('a worker that cannot join fails the start and every node of the run is removed', async () => {
  await withFixture(async (f) => {
    f.world.failAt = 'kubeadm-join demo-worker2';
    await assert.rejects(start(f.ctx, request({ nodes: 3 })), /injected failure/);
    assert.equal(f.ctx.reporter.timings.at(-1)?.name, 'Joining 2 workers');
    assert.deepEqual([...f.world.nodes.keys()], []);
    assert.deepEqual([...f.world.volumes], []);
    assert.deepEqual([...f.world.networks], []);
  });
});

test('node add makes, boots and joins the next free worker with a fresh token; node delete drains and removes it', async () => {
  await withFixture(async (f) => {
    await start(f.ctx, request({ nodes: 2 }));
    f.world.calls.length = 0;
    const added = await addNode(f.ctx, 'demo');
    assert.deepEqual(added, { profile: 'demo', node: 'demo-worker2', role: 'worker' });
    assert.deepEqual(f.world.calls, [
      `has-flannel ${NODE}`,
      // What the join needs from the control plane is asked for while the node is made (the
      // ranges first: NO_PROXY would need them before the node is made, behind a proxy).
      `read-service-subnet ${NODE}`,
      `token-create ${NODE}`,
      `read-admin-conf ${NODE}`,
      `images-ls ${NODE}`,
      'images-ls demo-worker1',
      'provision',
      // Nothing was loaded into the cluster: nothing to copy, so the join starts while it boots
      // (after its serving certificate).
      'serving-certs demo-worker2',
      // beside the join, once the node has booted: its first pods' images unpacked
      'boot demo-worker2',
      'kubeadm-join demo-worker2',
      'boot demo-worker2',
      'read-components demo-worker2',
      'unpack-images demo-worker2',
      `token-delete ${NODE}`,
      'api node-ready',
      // Ready, and kube-proxy there has written its rules: a pod placed there reaches Services.
      'kube-proxy-health demo-worker2',
    ]);
    assert.equal(f.world.volumeOf.get('demo-worker2'), 'demo-worker2-var', 'a volume of its own');

    f.world.calls.length = 0;
    const removed = await removeNode(f.ctx, 'demo', 'demo-worker1');
    assert.deepEqual(removed.containers, ['demo-worker1']);
    assert.deepEqual(removed.volumes, ['demo-worker1-var']);
    assert.deepEqual(f.world.calls, [
      `get-node ${NODE}`,
      `drain ${NODE}`,
      `delete-node-object ${NODE}`,
      'delete-node demo-worker1',
    ]);
    assert.deepEqual([...f.world.nodes.keys()].sort(), [NODE, 'demo-worker2']);
  });
});

test('node add that fails to join removes the new node, from the cluster and the engine', async () => {
  await withFixture(async (f) => {
    await start(f.ctx, request({ nodes: 2 }));
    f.world.failAt = 'kubeadm-join demo-worker2';
    await assert.rejects(addNode(f.ctx, 'demo'), /injected failure/);
    assert.ok(f.world.calls.includes(`delete-node-object ${NODE}`));
    assert.deepEqual([...f.world.nodes.keys()].sort(), [NODE, 'demo-worker1']);
    assert.deepEqual([...f.world.volumes].sort(), ['demo-var', 'demo-worker1-var']);
  });
});

test('node delete refuses the last control plane and unknown names; node add a taken or invalid name, or a control plane without a load balancer', async () => {
  await withFixture(async (f) => {
    await start(f.ctx, request({ nodes: 2 }));
    await assert.rejects(removeNode(f.ctx, 'demo', NODE), (e: Error & { exitCode?: number }) => {
      assert.match(e.message, /is the cluster's last control plane and cannot be removed/);
      assert.equal(e.exitCode, 2);
      return true;
    });
    await assert.rejects(removeNode(f.ctx, 'demo', 'demo-worker9'), /has no node "demo-worker9"/);
    await assert.rejects(
      addNode(f.ctx, 'demo', { name: 'demo-worker1' }),
      /has a node named "demo-worker1" already/,
    );
    await assert.rejects(addNode(f.ctx, 'demo', { name: 'Bad_Name' }), /invalid node name/);
    await assert.rejects(addNode(f.ctx, 'demo', { name: 'prod' }), /does not start with "demo-"/);
    await assert.rejects(
      addNode(f.ctx, 'demo', { controlPlane: true }),
      (e: Error & { exitCode?: number; hint?: string }) => {
        assert.match(e.message, /has one control plane and no load balancer/);
        assert.match(e.hint ?? '', /--control-planes 3/);
        assert.equal(e.exitCode, 2);
        return true;
      },
    );
    assert.deepEqual([...f.world.nodes.keys()].sort(), [NODE, 'demo-worker1']);
  });
});

test('node add to a cluster made with one node is refused before anything is made', async () => {
  await withFixture(async (f) => {
    await start(f.ctx, request());
    f.world.calls.length = 0;
    await assert.rejects(addNode(f.ctx, 'demo'), /was made with one node \(no flannel\)/);
    assert.deepEqual(f.world.calls, [`has-flannel ${NODE}`]);
  });
});

test('start --nodes on a cluster of another size is refused; a cluster without its control plane is named so', async () => {
  await withFixture(async (f) => {
    await start(f.ctx, request({ nodes: 2 }));
    await assert.rejects(
      start(f.ctx, request({ nodes: 3, explicitNodes: true })),
      /has 2 node\(s\), 1 of them control planes, not 3 with 1/,
    );
    assert.equal((await start(f.ctx, request({ nodes: 2, explicitNodes: true }))).action, 'resynced');
    f.world.nodes.delete(NODE);
    await assert.rejects(start(f.ctx, request()), /has lost its control-plane node/);
  });
});

test('an API server port taken between picking and starting is picked again; a taken user port is named', async () => {
  await withFixture(async (f) => {
    // The first plan's API port is taken by the time the node starts: a second port is picked.
    const original = f.ctx.provider.provision.bind(f.ctx.provider);
    let first: number | undefined;
    f.ctx.provider.provision = async (plan, journal) => {
      if (first === undefined) {
        first = plan.apiServerPort;
        f.world.takenPorts.add(first);
      }
      return original(plan, journal);
    };
    const r = await start(f.ctx, request());
    assert.equal(f.world.calls.filter((c) => c === 'provision').length, 2);
    assert.notEqual(r.apiServer, `https://127.0.0.1:${first}`);
    assert.match(r.apiServer, /^https:\/\/127\.0\.0\.1:\d+$/);
  });
  await withFixture(async (g) => {
    g.world.takenPorts.add(18080);
    await assert.rejects(
      start(g.ctx, request({ ports: [{ hostPort: 18080, containerPort: 30080, protocol: 'tcp' }] })),
      (e: Error & { hint?: string; exitCode?: number }) => {
        assert.equal(e.message, 'host port 18080 is already in use');
        assert.match(e.hint ?? '', /--ports HOST:30080/);
        assert.equal(e.exitCode, 3);
        return true;
      },
    );
    assert.deepEqual([...g.world.nodes.keys()], []);
    assert.equal(await g.ctx.profiles.read('demo'), undefined);
  });
});

test('three control planes and a worker: a load balancer named before kubeadm init, the other nodes join together after it', async () => {
  await withFixture(async (f) => {
    const r = await start(f.ctx, request({ nodes: 4, controlPlanes: 3 }));
    const cps = [NODE, 'demo-control-plane2', 'demo-control-plane3'];
    assert.deepEqual(r.nodes, [
      ...cps.map((name) => ({ name, role: 'control-plane' })),
      { name: 'demo-worker1', role: 'worker' },
    ]);
    const calls = f.world.calls;
    const at = (c: string) => calls.indexOf(c);
    assert.ok(at('configure-lb demo-external-load-balancer') > at(`boot ${NODE}`));
    assert.ok(at('configure-lb demo-external-load-balancer') < at(`kubeadm-first-pass ${NODE}`));
    assert.ok(
      at('kubeadm-join-control-plane demo-control-plane2') <
        at('kubeadm-join-control-plane demo-control-plane3'),
    );
    assert.ok(at('kubeadm-join demo-worker1') > at(`kubeadm-second-pass ${NODE}`));
    assert.ok(at(`token-delete ${NODE}`) > at('kubeadm-join-control-plane demo-control-plane3'));
    // The API endpoint is the load balancer's port, recorded on every control plane.
    const lb = await f.ctx.provider.loadBalancer('demo');
    assert.equal(lb?.state.ports[0]?.containerPort, 6443);
    assert.equal(r.apiServer, `https://127.0.0.1:${lb?.state.ports[0]?.hostPort}`);
    // stop: workers, control planes, then the load balancer; start brings the load balancer back first.
    f.world.calls.length = 0;
    await stop(f.ctx, 'demo');
    assert.deepEqual(
      f.world.calls.filter((c) => c.startsWith('stop-node')),
      ['demo-worker1', ...cps, 'demo-external-load-balancer'].map((n) => `stop-node ${n}`),
    );
    f.world.calls.length = 0;
    const again = await start(f.ctx, request());
    assert.equal(again.action, 'restarted');
    assert.equal(
      f.world.calls.filter((c) => c.startsWith('start-node'))[0],
      'start-node demo-external-load-balancer',
    );
    // delete removes the load balancer with the nodes.
    await deleteProfile(f.ctx, 'demo');
    assert.equal(await f.ctx.provider.loadBalancer('demo'), undefined);
  });
});

test('a restart of a cluster whose load balancer container is gone says so at once and starts nothing', async () => {
  await withFixture(async (f) => {
    await start(f.ctx, request({ nodes: 3, controlPlanes: 3 }));
    await stop(f.ctx, 'demo');
    f.world.nodes.delete('demo-external-load-balancer');
    f.world.calls.length = 0;
    await assert.rejects(
      start(f.ctx, request()),
      (err: Error & { kind?: string }) =>
        /lost its load balancer container \(demo-external-load-balancer\)/.test(err.message) &&
        err.kind === 'clusterFailed',
    );
    assert.deepEqual(
      f.world.calls.filter((c) => c.startsWith('start-node')),
      [],
    );
  });
});

test('node add --control-plane joins with freshly uploaded certificates and tells the load balancer; node delete takes it out of etcd and the load balancer', async () => {
  await withFixture(async (f) => {
    await start(f.ctx, request({ nodes: 3, controlPlanes: 3 }));
    f.world.calls.length = 0;
    const added = await addNode(f.ctx, 'demo', { controlPlane: true });
    assert.deepEqual(added, { profile: 'demo', node: 'demo-control-plane4', role: 'control-plane' });
    const calls = f.world.calls;
    const at = (c: string) => calls.indexOf(c);
    assert.ok(
      at(`upload-certs ${NODE}`) >= 0 &&
        at(`upload-certs ${NODE}`) < at('kubeadm-join-control-plane demo-control-plane4'),
    );
    assert.ok(
      at('configure-lb demo-external-load-balancer') > at('kubeadm-join-control-plane demo-control-plane4'),
    );
    assert.ok(f.lines.some((l) => /4 control planes survive no more failures than 3/.test(l)));
    f.world.calls.length = 0;
    await removeNode(f.ctx, 'demo', 'demo-control-plane4');
    assert.ok(calls.includes('kubeadm-reset demo-control-plane4'));
    assert.ok(at('configure-lb demo-external-load-balancer') < at('kubeadm-reset demo-control-plane4'));
    assert.ok(!f.world.nodes.has('demo-control-plane4'));
  });
});

test('on an HA cluster: a worker added stays out of the load balancer; a stopped control plane, or one whose removal leaves no etcd majority running, is not removed', async () => {
  await withFixture(async (f) => {
    await start(f.ctx, request({ nodes: 3, controlPlanes: 3 }));
    f.world.calls.length = 0;
    const added = await addNode(f.ctx, 'demo');
    assert.equal(added.role, 'worker');
    assert.ok(!f.world.calls.some((c) => c.startsWith('configure-lb')), 'the worker is no API backend');
    const [cp3] = (await f.ctx.provider.listNodes('demo')).filter((n) => n.name === 'demo-control-plane3');
    await f.ctx.provider.stopNode(cp3!, 1);
    f.world.calls.length = 0;
    await assert.rejects(
      removeNode(f.ctx, 'demo', 'demo-control-plane3'),
      (e: Error & { exitCode?: number; hint?: string }) => {
        assert.match(e.message, /demo-control-plane3 is stopped: it must run to leave etcd/);
        assert.match(e.hint ?? '', /minilab node start -p demo demo-control-plane3/);
        assert.equal(e.exitCode, 2);
        return true;
      },
    );
    await assert.rejects(
      removeNode(f.ctx, 'demo', 'demo-control-plane2'),
      (e: Error & { exitCode?: number }) => {
        assert.match(e.message, /would leave 1 of 2 control planes running: etcd needs a majority/);
        assert.equal(e.exitCode, 2);
        return true;
      },
    );
    assert.ok(
      !f.world.calls.some((c) => /drain|kubeadm-reset|configure-lb|delete-node/.test(c)),
      f.world.calls.join('\n'),
    );
    assert.ok(f.world.nodes.has('demo-control-plane2') && f.world.nodes.has('demo-control-plane3'));
  });
});
