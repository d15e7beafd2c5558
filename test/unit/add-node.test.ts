import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kubeProxySynced } from '../../src/lifecycle/add-node.js';
import type { ExecResult, Node } from '../../src/providers/types.js';

const answering = (stdout: string) =>
  ({
    exec: async (): Promise<ExecResult> => ({ exitCode: 0, stdout, stderr: '', started: true }),
  }) as unknown as Node;

test('kube-proxy counts as synced once its health endpoint reports a sync for every IP family, not before', async () => {
  const head = 'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n';
  const body = (v4: string, v6: string) =>
    `${head}{"lastUpdated":"2026-12-04T19:45:50.89Z","currentTime":"2026-12-04T19:45:50.89Z","nodeEligible":true,"healthy":true,"status":{"IPv4":{"lastUpdated":"${v4}","healthy":true},"IPv6":{"lastUpdated":"${v6}","healthy":true}}}`;
  assert.equal(
    await kubeProxySynced(answering(body('2026-12-04T19:45:50.56Z', '2026-12-04T19:45:50.66Z'))),
    true,
  );
  // Starting: healthy, the top-level time is now, but IPv4 has not synced yet.
  assert.equal(
    await kubeProxySynced(answering(body('0001-01-01T00:00:00Z', '2026-12-04T19:45:50.66Z'))),
    'kube-proxy has not synced yet',
  );
  assert.equal(await kubeProxySynced(answering('')), 'kube-proxy not answering yet');
});
