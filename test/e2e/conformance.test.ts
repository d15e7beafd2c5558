// Kubernetes' own Conformance specs on a minilab cluster, through `npm run conformance`'s runner
// (test/conformance/run.ts): a short subset across Services, DNS, Deployments, StatefulSets,
// volumes, kubectl, probes, security contexts and admission webhooks, so that a change that
// breaks conformance is seen in CI. The whole suite (462 specs) takes far longer and is run by a
// person (README, Conformance). One cluster for the file; the suite's build is cached with the
// node image's (MINILAB_HOME/cache of the user running the tests), the cluster is the sandbox's.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { minilabHome } from '../../src/profile/store.js';
import { projectRoot } from '../../src/version.js';
import type { DockerEngine } from '../../src/providers/docker/engine.js';
import { cleanupTestResources, connect, runId } from '../helpers/engine.js';
import { runBin, sandbox, type Run } from '../helpers/cluster.js';
import type { PartSummary } from '../conformance/report.js';

const profile = `conf-${runId}`;

/** One spec per line: each must be selected and pass. */
const SUBSET = [
  String.raw`\[sig-network\] Services should serve a basic endpoint from pods`,
  String.raw`\[sig-network\] DNS should provide DNS for services`,
  String.raw`\[sig-apps\] Deployment RollingUpdateDeployment should delete old pods and create new ones`,
  String.raw`\[sig-apps\] StatefulSet .* should list, patch and delete a collection of StatefulSets`,
  String.raw`\[sig-storage\] ConfigMap should be consumable from pods in volume \[Conformance\]`,
  String.raw`\[sig-cli\] Kubectl client Kubectl describe should check if kubectl describe prints relevant information for rc and pods`,
  String.raw`\[sig-node\] Probing container with readiness probe should not be ready before initial delay and never restart`,
  String.raw`\[sig-node\] Security Context should support pod.Spec.SecurityContext.RunAsUser And pod.Spec.SecurityContext.RunAsGroup`,
  String.raw`\[sig-api-machinery\] AdmissionWebhook .* should be able to deny pod and configmap creation`,
];

let s: Awaited<ReturnType<typeof sandbox>>;
let engine: DockerEngine;

before(async () => {
  s = await sandbox('conformance');
  engine = await connect();
  const r = await s.minilab(['start', '-p', profile], { timeoutMs: 20 * 60_000 });
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await s.minilab(['delete', '-p', profile], { timeoutMs: 120_000 }).catch(() => undefined);
  await cleanupTestResources(engine);
  await s.cleanup();
});

/** The runner as `npm run conformance -- ARGS` runs it, with the sandbox's MINILAB_HOME. */
const conformance = (args: string[]): Promise<Run> =>
  runBin(args, s.env, {
    script: join(projectRoot, 'dist', 'test', 'conformance', 'run.js'),
    timeoutMs: 40 * 60_000,
  });

const kubectl = (args: string[]) => s.minilab(['kubectl', '-p', profile, '--', ...args]);

test('the Conformance subset passes: every selected spec, with reports and a summary', async () => {
  const out = join(s.dir, 'conformance');
  const r = await conformance([
    '-p',
    profile,
    '--procs',
    '3',
    '--focus',
    SUBSET.join('|'),
    '--cache-dir',
    join(minilabHome(process.env), 'cache'),
    '--out',
    out,
  ]);
  assert.equal(r.code, 0, `${r.stdout.slice(-4000)}\n${r.stderr}`);
  const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as { parts: PartSummary[] };
  assert.equal(summary.parts.length, 1);
  const part = summary.parts[0] as PartSummary;
  assert.deepEqual(
    { selected: part.selected, passed: part.passed, failed: part.failed, skipped: part.skipped },
    { selected: SUBSET.length, passed: SUBSET.length, failed: 0, skipped: 0 },
  );
  assert.match(
    r.stdout,
    new RegExp(`parallel: ${SUBSET.length} passed, 0 failed, 0 skipped of ${SUBSET.length} selected`),
  );
  const junit = await readFile(join(out, 'parallel.xml'), 'utf8');
  for (const spec of SUBSET) assert.match(junit, new RegExp(`testcase name="[^"]*${spec.replace(/"/g, '')}`));
  assert.ok(existsSync(join(out, 'parallel.log')));
});

test("agnhost as upstream's: its tools, files, links and the user and group the specs ask for", async () => {
  // loaded by the test above
  const pod = `agnhost-${runId}`;
  const run = await kubectl([
    'run',
    pod,
    '--image=registry.k8s.io/e2e-test-images/agnhost:2.66.1',
    '--restart=Never',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const wait = await kubectl(['wait', '--for=condition=Ready', `pod/${pod}`, '--timeout=120s']);
  assert.equal(wait.code, 0, wait.stderr);
  const script = [
    'set -e',
    'id user-defined-in-image',
    'ls -d /agnhost /agnhost-2 /uploads /localhost.crt /localhost.key /coredns /usr/local/bin/iperf',
    '/agnhost-2 --version',
    'for t in curl dig nc ip iperf bash socat nslookup wget sh; do command -v $t >/dev/null || { echo "no $t"; exit 1; }; done',
    'echo tools-ok',
  ].join('\n');
  const r = await kubectl(['exec', pod, '--', 'sh', '-c', script]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(
    r.stdout,
    /uid=1000\(user-defined-in-image\) gid=1000\(user-defined-in-image\) groups=1000\(user-defined-in-image\),50000\(group-defined-in-image\)/,
  );
  assert.match(r.stdout, /2\.66\.1/);
  assert.match(r.stdout, /tools-ok/);
});
