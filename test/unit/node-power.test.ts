import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { startNode, stopNode } from '../../src/lifecycle/node-power.js';
import { removeNode } from '../../src/lifecycle/remove-node.js';
import { start, type StartRequest } from '../../src/lifecycle/start.js';
import { stop } from '../../src/lifecycle/stop.js';
import { lifecycleFixture, startRequest, type LifecycleFixture } from '../helpers/lifecycle-fixture.js';
const CP = 'demo-control-plane';
const LB = 'demo-external-load-balancer';

const fixture = () => lifecycleFixture('node-power');

type Fixture = LifecycleFixture;

async function withCluster(req: Partial<StartRequest>, run: (f: Fixture) => Promise<void>): Promise<void> {
  const f = await fixture();
  try {
    if (req.nodes) {
      await start(f.ctx, startRequest(req));
    }
    f.world.calls.length = 0;
    f.lines.length = 0;
    await run(f);
  } finally {
    await f.done();
  }
}

/** Which containers run, by name: what a refusal must leave as it was. */
const running = (f: Fixture) =>
  Object.fromEntries([...f.world.nodes].map(([name, n]) => [name, n.state.running]));

/** Asserts a refusal: its exit code, message and hint, and that nothing was stopped or started. */
async function refused(
  f: Fixture,
  op: () => Promise<unknown>,
  expected: { exitCode: number; message: RegExp; hint: RegExp },
): Promise<void> {
  const before = running(f);
  await assert.rejects(op(), (e: Error & { exitCode?: number; hint?: string }) => {
    assert.equal(e.exitCode, expected.exitCode, e.message);
    assert.match(e.message, expected.message);
    assert.match(e.hint ?? '', expected.hint);
    return true;
  });
  assert.deepEqual(running(f), before);
  assert.deepEqual(
    f.world.calls.filter((c) => /^(stop-kubelet|stop-node|start-node|boot) /.test(c)),
    [],
    'nothing stopped, started or booted',
  );
}

test('node stop stops the kubelet, then the container; the Node object stays; a second stop says so', async () => {
  await withCluster({ nodes: 2 }, async (f) => {
    const r = await stopNode(f.ctx, 'demo', 'demo-worker1');
    assert.deepEqual(r, { profile: 'demo', node: 'demo-worker1', role: 'worker', action: 'stopped' });
    assert.deepEqual(f.world.calls, ['stop-kubelet demo-worker1', 'stop-node demo-worker1']);
    assert.deepEqual(running(f), { [CP]: true, 'demo-worker1': false });
    // Not drained, not removed: Kubernetes sees it NotReady and reschedules by its own rules.
    assert.ok(f.world.volumes.has('demo-worker1-var'));
    f.world.calls.length = 0;
    const again = await stopNode(f.ctx, 'demo', 'demo-worker1');
    assert.equal(again.action, 'already-stopped');
    assert.deepEqual(f.world.calls, []);
  });
});

test('node start starts and boots a stopped node, then waits for it to be Ready; a running Ready node is only checked', async () => {
  await withCluster({ nodes: 2 }, async (f) => {
    await stopNode(f.ctx, 'demo', 'demo-worker1');
    f.world.calls.length = 0;
    const r = await startNode(f.ctx, 'demo', 'demo-worker1');
    assert.deepEqual(r, { profile: 'demo', node: 'demo-worker1', role: 'worker', action: 'started' });
    assert.deepEqual(f.world.calls, [
      `get-node ${CP}`,
      'start-node demo-worker1',
      'boot demo-worker1',
      `read-admin-conf ${CP}`,
      `get-node ${CP}`,
      'api node-ready',
    ]);
    assert.deepEqual(running(f), { [CP]: true, 'demo-worker1': true });
    f.world.calls.length = 0;
    const again = await startNode(f.ctx, 'demo', 'demo-worker1');
    assert.equal(again.action, 'already-running');
    assert.deepEqual(f.world.calls, [`read-admin-conf ${CP}`, 'api node-ready']);
  });
});

test('node start trusts Ready only once the restarted kubelet has reported: the Ready from before the stop is stale', async () => {
  await withCluster({ nodes: 2 }, async (f) => {
    await stopNode(f.ctx, 'demo', 'demo-worker1');
    const worker = f.world.nodes.get('demo-worker1');
    assert.ok(worker);
    // The container starts; its kubelet's first heartbeat reaches the API server at the fourth look.
    f.ctx.provider.startNode = async () => {
      Object.assign(worker.state, { running: true, status: 'running' });
    };
    let looks = 0;
    const call = f.world.call.bind(f.world);
    f.world.call = (name: string) => {
      call(name);
      if (name === `get-node ${CP}` && ++looks === 4) worker.state.startedAt = '2026-12-04T15:00:00Z';
    };
    f.world.calls.length = 0;
    assert.equal((await startNode(f.ctx, 'demo', 'demo-worker1')).action, 'started');
    assert.deepEqual(
      f.world.calls.filter((c) => c.startsWith('get-node') || c.startsWith('api')),
      [...Array<string>(4).fill(`get-node ${CP}`), 'api node-ready'],
    );
    assert.ok(f.lines.includes('    the kubelet has not reported since the start'));
  });
});

test('an unknown node is not found (exit 4) and the hint lists the nodes; a profile without a cluster too, before any lock', async () => {
  await withCluster({ nodes: 2 }, async (f) => {
    for (const op of [
      () => stopNode(f.ctx, 'demo', 'demo-worker9'),
      () => startNode(f.ctx, 'demo', 'demo-worker9'),
    ]) {
      await refused(f, op, {
        exitCode: 4,
        message: /profile "demo" has no node "demo-worker9"/,
        hint: /its nodes: demo-control-plane, demo-worker1/,
      });
    }
  });
  await withCluster({}, async (f) => {
    for (const op of [
      () => stopNode(f.ctx, 'ghost', 'ghost-worker1'),
      () => startNode(f.ctx, 'ghost', 'ghost-worker1'),
    ]) {
      await refused(f, op, {
        exitCode: 4,
        message: /profile "ghost" has no cluster/,
        hint: /minilab start -p ghost/,
      });
    }
    await assert.rejects(access(join(f.ctx.home, 'locks')), 'no lock was taken');
  });
});

test('the last running control plane is refused (exit 2), --force or not: the hint is the whole-cluster stop', async () => {
  await withCluster({ nodes: 2 }, async (f) => {
    for (const force of [false, true]) {
      await refused(f, () => stopNode(f.ctx, 'demo', CP, { force }), {
        exitCode: 2,
        message: /demo-control-plane is the last running control plane of profile "demo"/,
        hint: /minilab stop -p demo/,
      });
    }
  });
});

test('three control planes: one stops; the second would leave etcd without a majority and needs --force', async () => {
  await withCluster({ nodes: 3, controlPlanes: 3 }, async (f) => {
    assert.equal((await stopNode(f.ctx, 'demo', 'demo-control-plane3')).action, 'stopped');
    assert.deepEqual(
      f.lines.filter((l) => l.startsWith('!')),
      [],
      'no warning: 2 of 3 keep a majority',
    );
    f.world.calls.length = 0;
    await refused(f, () => stopNode(f.ctx, 'demo', 'demo-control-plane2'), {
      exitCode: 2,
      message: /stopping demo-control-plane2 leaves 1 of 3 control planes running: etcd needs 2/,
      hint: /minilab node start -p demo NAME\), or stop it anyway with --force/,
    });
    const forced = await stopNode(f.ctx, 'demo', 'demo-control-plane2', { force: true });
    assert.equal(forced.action, 'stopped');
    assert.ok(f.lines.some((l) => /etcd has no majority now \(1 of 3 members\)/.test(l)));
    assert.deepEqual(running(f), {
      [LB]: true,
      [CP]: true,
      'demo-control-plane2': false,
      'demo-control-plane3': false,
    });
    f.world.calls.length = 0;
    await refused(f, () => stopNode(f.ctx, 'demo', CP, { force: true }), {
      exitCode: 2,
      message: /last running control plane/,
      hint: /minilab stop -p demo/,
    });
    // A control plane starts again through the one still running.
    const r = await startNode(f.ctx, 'demo', 'demo-control-plane2');
    assert.deepEqual(r, {
      profile: 'demo',
      node: 'demo-control-plane2',
      role: 'control-plane',
      action: 'started',
    });
    assert.equal(running(f)['demo-control-plane2'], true);
  });
});

test('two control planes: stopping either would leave etcd without a majority', async () => {
  await withCluster({ nodes: 3, controlPlanes: 3 }, async (f) => {
    await removeNode(f.ctx, 'demo', 'demo-control-plane3');
    f.world.calls.length = 0;
    await refused(f, () => stopNode(f.ctx, 'demo', 'demo-control-plane2'), {
      exitCode: 2,
      message: /leaves 1 of 2 control planes running: etcd needs 2/,
      hint: /--force/,
    });
  });
});

test('node start needs a running control plane (the hint is minilab start); a stopped load balancer is started first', async () => {
  await withCluster({ nodes: 2 }, async (f) => {
    await stop(f.ctx, 'demo');
    f.world.calls.length = 0;
    for (const name of ['demo-worker1', CP]) {
      await refused(f, () => startNode(f.ctx, 'demo', name), {
        exitCode: 3,
        message: /the cluster of profile "demo" is stopped/,
        hint: /minilab start -p demo/,
      });
    }
  });
  await withCluster({ nodes: 4, controlPlanes: 3 }, async (f) => {
    await stopNode(f.ctx, 'demo', 'demo-worker1');
    await f.ctx.provider.stopNode((await f.ctx.provider.loadBalancer('demo'))!, 15);
    f.world.calls.length = 0;
    await startNode(f.ctx, 'demo', 'demo-worker1');
    assert.deepEqual(
      f.world.calls.filter((c) => c.startsWith('start-node')),
      [`start-node ${LB}`, 'start-node demo-worker1'],
    );
  });
});

test('node start fails at once, saying so, when the node stops again before it is Ready', async () => {
  await withCluster({ nodes: 2 }, async (f) => {
    await stopNode(f.ctx, 'demo', 'demo-worker1');
    // The container exits (killed, out of memory) before the kubelet reports Ready.
    f.ctx.kube = {
      ...f.ctx.kube,
      nodeReady: async (_entry, name) => {
        const n = f.world.nodes.get(name);
        if (n) Object.assign(n.state, { running: false, status: 'exited' });
        return 'NotReady';
      },
    };
    await assert.rejects(startNode(f.ctx, 'demo', 'demo-worker1'), (e: Error & { exitCode?: number }) => {
      assert.match(e.message, /the node container demo-worker1 stopped \(exited\)/);
      assert.equal(e.exitCode, 6);
      return true;
    });
  });
});

test('the CLI: one line of text, or one JSON document; refusals are one error line with a hint and their exit code', async () => {
  await withCluster({ nodes: 2 }, async (f) => {
    let r = await f.cli(['-p', 'demo', 'node', 'stop', 'demo-worker1']);
    assert.equal(r.code, 0);
    assert.equal(
      r.stdout,
      'Node demo-worker1 of cluster "demo" stopped (NotReady until: minilab node start -p demo demo-worker1)\n',
    );
    r = await f.cli(['-p', 'demo', 'node', 'stop', 'demo-worker1', '-o', 'json']);
    assert.deepEqual(JSON.parse(r.stdout), {
      profile: 'demo',
      node: 'demo-worker1',
      role: 'worker',
      action: 'already-stopped',
    });
    r = await f.cli(['-p', 'demo', 'node', 'stop', 'demo-worker1']);
    assert.equal(r.stdout, 'Node demo-worker1 of cluster "demo" is already stopped\n');
    r = await f.cli(['-p', 'demo', 'node', 'start', 'demo-worker1', '-o', 'json']);
    assert.equal(r.code, 0);
    assert.deepEqual(JSON.parse(r.stdout), {
      profile: 'demo',
      node: 'demo-worker1',
      role: 'worker',
      action: 'started',
    });
    r = await f.cli(['-p', 'demo', 'node', 'start', 'demo-worker1']);
    assert.equal(r.stdout, 'Node demo-worker1 of cluster "demo" is already running and Ready\n');
    r = await f.cli(['-p', 'demo', 'node', 'stop', CP]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.deepEqual(r.stderr, [
      'error: demo-control-plane is the last running control plane of profile "demo"',
      'hint: stop the whole cluster instead: minilab stop -p demo',
    ]);
    r = await f.cli(['-p', 'demo', 'node', 'start', 'nope']);
    assert.equal(r.code, 4);
    assert.equal(r.stderr.length, 2);
    // node list is as before.
    r = await f.cli(['-p', 'demo', 'node', 'list', '-o', 'json']);
    assert.deepEqual(
      (JSON.parse(r.stdout) as { nodes: { name: string; status: string }[] }).nodes.map((n) => [
        n.name,
        n.status,
      ]),
      [
        [CP, 'running'],
        ['demo-worker1', 'running'],
      ],
    );
  });
});
