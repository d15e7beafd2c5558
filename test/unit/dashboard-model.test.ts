import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as k8s from '@kubernetes/client-node';
import { LiveCluster } from '../../src/dashboard/cluster.js';
import { eventRow, podRow, serviceRow } from '../../src/dashboard/summarize.js';
import { MinilabError } from '../../src/errors.js';

test('a pod row says what kubectl would: readiness, restarts and the waiting reason', () => {
  const pod = {
    metadata: {
      name: 'web-1',
      namespace: 'default',
      uid: 'u1',
      creationTimestamp: new Date('2026-01-01T00:00:00Z'),
      ownerReferences: [
        { kind: 'ReplicaSet', name: 'web-abc', controller: true, apiVersion: 'apps/v1', uid: 'r' },
      ],
    },
    spec: {
      nodeName: 'n',
      containers: [
        { name: 'app', image: 'app:1' },
        { name: 'side', image: 'side:1' },
      ],
    },
    status: {
      phase: 'Running',
      containerStatuses: [
        {
          name: 'app',
          ready: false,
          restartCount: 4,
          image: 'app:1',
          imageID: '',
          state: { waiting: { reason: 'CrashLoopBackOff' } },
        },
        { name: 'side', ready: true, restartCount: 1, image: 'side:1', imageID: '', state: { running: {} } },
      ],
    },
  } as unknown as k8s.V1Pod;
  const row = podRow(pod);
  assert.equal(row.status, 'CrashLoopBackOff');
  assert.equal(row.readyCount, 1);
  assert.equal(row.containerCount, 2);
  assert.equal(row.restarts, 5);
  assert.equal(row.created, '2026-01-01T00:00:00.000Z');
  assert.deepEqual(row.owner, { kind: 'ReplicaSet', name: 'web-abc' });
  assert.equal(row.containers[0]?.state, 'waiting (CrashLoopBackOff)');
});

test('rows read the same from typed lists (Date) and raw watch events (strings)', () => {
  const raw = {
    metadata: { name: 'p', namespace: 'd', uid: 'u', creationTimestamp: '2026-01-01T00:00:00Z' },
  };
  const typed = { metadata: { ...raw.metadata, creationTimestamp: new Date('2026-01-01T00:00:00Z') } };
  assert.deepEqual(podRow(raw as unknown as k8s.V1Pod), podRow(typed as unknown as k8s.V1Pod));
  assert.equal(
    podRow({ metadata: { ...raw.metadata, deletionTimestamp: 'x' } } as unknown as k8s.V1Pod).status,
    'Terminating',
  );
});

test('service ports keep named target ports; events fall back to eventTime', () => {
  const svc = serviceRow({
    metadata: { name: 's', namespace: 'd', uid: 'u' },
    spec: {
      ports: [{ name: 'http', port: 80, targetPort: 'http' as unknown as k8s.IntOrString }],
      selector: { a: 'b' },
    },
  } as k8s.V1Service);
  assert.deepEqual(svc.ports, [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'http' }]);
  assert.deepEqual(svc.external, []);
  const lb = serviceRow({
    metadata: { name: 'web', namespace: 'd', uid: 'w' },
    spec: { type: 'LoadBalancer', ports: [{ port: 8080 }] },
    status: { loadBalancer: { ingress: [{ ip: '127.0.0.1', ipMode: 'Proxy' }, { hostname: 'lb.example' }] } },
  });
  assert.deepEqual(lb.external, ['127.0.0.1', 'lb.example']);
  const ev = eventRow({
    metadata: { name: 'e', namespace: 'd', uid: 'e1' },
    involvedObject: { kind: 'Pod', name: 'p', namespace: 'd', uid: 'u' },
    eventTime: '2026-02-02T00:00:00.000000Z',
    series: { count: 3 },
    type: 'Warning',
    reason: 'BackOff',
  } as unknown as k8s.CoreV1Event);
  assert.equal(ev.last, '2026-02-02T00:00:00.000Z');
  assert.equal(ev.count, 3);
});

test('an unreachable cluster is retried with backoff, and stop ends the retries', async () => {
  let attempts = 0;
  const cluster = new LiveCluster({
    resolve: async () => {
      attempts++;
      throw new MinilabError('environment', 'the cluster of profile "dev" is stopped');
    },
    backoffMs: [20],
  });
  const states: string[] = [];
  cluster.subscribe((e) => {
    if (e.type === 'cluster') states.push(e.state.state);
  });
  cluster.start();
  while (attempts < 3) await new Promise((r) => setTimeout(r, 5));
  assert.equal(cluster.state.state, 'reconnecting');
  assert.match('message' in cluster.state ? cluster.state.message : '', /is stopped/);
  assert.equal(cluster.clients(), undefined);
  await cluster.stop();
  const seen = attempts;
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(attempts, seen, 'no attempts after stop');
  assert.ok(states.every((s) => s === 'reconnecting'));
});
