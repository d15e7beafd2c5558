import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forwardRules, syncForwardRules } from '../../src/providers/podman/forward-rules.js';
import { FakeIptables, spell } from '../helpers/fake-iptables.js';

const IN = '-i podman1 -m comment --comment "minilab:pm" -j ACCEPT';
const OUT =
  '-o podman1 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "minilab:pm" -j ACCEPT';

test("beside Docker: the bridge's two ACCEPT rules go first in DOCKER-USER, in order, once", async () => {
  const ipt = new FakeIptables({ 'filter FORWARD': 'DROP', 'filter DOCKER-USER': undefined });
  ipt.rulesOf('filter DOCKER-USER').push(['-j', 'RETURN']);
  assert.deepEqual(forwardRules('pm', 'podman1').map(spell), [IN, OUT]);
  await syncForwardRules(ipt.run, 'pm', 'podman1');
  assert.deepEqual(ipt.listed('filter DOCKER-USER'), [IN, OUT, '-j RETURN']);
  assert.deepEqual(ipt.listed('filter FORWARD'), [], "FORWARD itself is Docker's");
  ipt.calls.length = 0;
  await syncForwardRules(ipt.run, 'pm', 'podman1');
  assert.deepEqual(ipt.changes(), [], 'idempotent');
  assert.deepEqual(
    ipt.calls.filter((c) => c.startsWith('-S')),
    ['-S DOCKER-USER', '-S FORWARD'],
    'each chain listed once',
  );
});

test("a new bridge replaces the old one's rules, a gone network removes them; other profiles' rules stay", async () => {
  const ipt = new FakeIptables({ 'filter FORWARD': 'DROP', 'filter DOCKER-USER': undefined });
  await syncForwardRules(ipt.run, 'pm-2', 'podman2');
  await syncForwardRules(ipt.run, 'pm', 'podman1');
  await syncForwardRules(ipt.run, 'pm', 'podman3');
  const other = ipt.listed('filter DOCKER-USER').filter((r) => r.includes('minilab:pm-2'));
  assert.equal(other.length, 2);
  assert.deepEqual(ipt.listed('filter DOCKER-USER'), [
    IN.replace('podman1', 'podman3'),
    OUT.replace('podman1', 'podman3'),
    ...other,
  ]);
  await syncForwardRules(ipt.run, 'pm', undefined);
  assert.deepEqual(ipt.listed('filter DOCKER-USER'), other);
});

test('without Docker: in FORWARD when its policy drops, nothing when it accepts', async () => {
  const dropping = new FakeIptables({ 'filter FORWARD': 'DROP' });
  dropping.rulesOf('filter FORWARD').push(['-i', 'eth0', '-j', 'ufw-before-forward']);
  await syncForwardRules(dropping.run, 'pm', 'podman1');
  assert.deepEqual(dropping.listed('filter FORWARD'), [IN, OUT, '-i eth0 -j ufw-before-forward']);

  const accepting = new FakeIptables({ 'filter FORWARD': 'ACCEPT' });
  await syncForwardRules(accepting.run, 'pm', 'podman1');
  assert.deepEqual(accepting.changes(), []);
  // Rules written while it dropped go once it accepts.
  accepting.rulesOf('filter FORWARD').push(...forwardRules('pm', 'podman1'));
  await syncForwardRules(accepting.run, 'pm', 'podman1');
  assert.deepEqual(accepting.listed('filter FORWARD'), []);
});

test('Docker installed since: the rules move from FORWARD to DOCKER-USER', async () => {
  const ipt = new FakeIptables({ 'filter FORWARD': 'DROP', 'filter DOCKER-USER': undefined });
  ipt.rulesOf('filter FORWARD').push(...forwardRules('pm', 'podman1'), ['-j', 'DOCKER-USER']);
  await syncForwardRules(ipt.run, 'pm', 'podman1');
  assert.deepEqual(ipt.listed('filter FORWARD'), ['-j DOCKER-USER']);
  assert.deepEqual(ipt.listed('filter DOCKER-USER'), [IN, OUT]);
});

test('an iptables failure rejects with the command and what iptables said', async () => {
  const ipt = new FakeIptables({ 'filter FORWARD': 'DROP', 'filter DOCKER-USER': undefined });
  ipt.fail = '-I';
  await assert.rejects(
    syncForwardRules(ipt.run, 'pm', 'podman1'),
    /^Error: iptables -t filter -I DOCKER-USER -o podman1 .*: iptables: Resource problem\.$/,
  );
});
