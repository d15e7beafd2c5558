/**
 * The dashboard with a thousand pods, in headless Chromium: how long the Workloads view takes to
 * list them all on a fresh load, how soon a change (a pod made, a pod deleted) shows in the open
 * list, and how much memory the page then uses (its JS heap after a garbage collection, its DOM
 * nodes, and the RSS of Chromium's renderer processes).
 * Run: npm run bench:dashboard [-- --pods N --updates N --profile NAME --out FILE]. Makes a
 * one-node cluster (deleted at the end) and the pods in one namespace, unscheduled (a node runs at
 * most 110): real objects the API server lists and watches, which the node does not run.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs as parseArgs_ } from 'node:util';
import { projectRoot } from '../src/version.js';
import { launchChromium } from '../test/helpers/browser.js';
import { kubeClients } from '../test/helpers/cluster.js';
import {
  makeUnscheduledPods,
  podRowShown,
  podRowsReach,
  spawnDashboard,
  stopDashboard,
  unscheduledPod,
  type DashboardProcess,
} from '../test/helpers/dashboard-scale.js';
import { median, minilab, must } from './common.js';

interface Args {
  pods: number;
  updates: number;
  profile: string;
  out: string;
}

function parseArgs(argv: string[]): Args {
  const { values } = parseArgs_({
    args: argv,
    options: {
      pods: { type: 'string', default: '1000' },
      updates: { type: 'string', default: '10' },
      profile: { type: 'string', default: 'dash-bench' },
      out: { type: 'string' },
    },
  });
  const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, '');
  return {
    pods: Number(values.pods),
    updates: Number(values.updates),
    profile: values.profile,
    out: values.out ?? join(projectRoot, 'bench-results', `dashboard-scale-${stamp}.json`),
  };
}

/** Resident memory of a process, from /proc (Linux), in MiB. */
async function rssMiB(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  return kb === undefined ? undefined : Number(kb) / 1024;
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const summary = (xs: number[]) => ({
  median: round(median(xs)),
  min: round(Math.min(...xs)),
  max: round(Math.max(...xs)),
});

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const dir = await mkdtemp(join(tmpdir(), 'minilab-bench-dashboard-'));
  const env = {
    ...process.env,
    MINILAB_HOME: join(dir, 'home'),
    KUBECONFIG: join(dir, 'kubeconfig'),
    NO_COLOR: '1',
  };
  const namespace = 'scale';
  let dashboard: DashboardProcess | undefined;
  const browser = await launchChromium();
  try {
    await must(['start', '-p', args.profile], env);
    const { core } = kubeClients(env.KUBECONFIG, args.profile);
    let t = performance.now();
    await makeUnscheduledPods(core, namespace, args.pods);
    const createMs = performance.now() - t;

    dashboard = await spawnDashboard(env, args.profile);
    const page = await browser.context.newPage();
    await page.goto(dashboard.url);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    // The Workloads view's namespace, as the page keeps it.
    await page.evaluate(`sessionStorage.setItem('namespace', ${JSON.stringify(namespace)})`);
    t = performance.now();
    await page.goto(`${dashboard.base}#/workloads`);
    await podRowsReach(page, args.pods);
    const renderMs = performance.now() - t;

    const appear: number[] = [];
    const disappear: number[] = [];
    for (let i = 0; i < args.updates; i++) {
      const name = `extra-${i}`;
      t = performance.now();
      await core.createNamespacedPod({ namespace, body: unscheduledPod(name) });
      await podRowShown(page, name, true);
      appear.push(performance.now() - t);
      t = performance.now();
      await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 });
      await podRowShown(page, name, false);
      disappear.push(performance.now() - t);
    }

    const cdp = await browser.context.newCDPSession(page);
    await cdp.send('HeapProfiler.collectGarbage');
    await cdp.send('Performance.enable');
    const { metrics } = await cdp.send('Performance.getMetrics');
    const metric = (name: string) => metrics.find((m) => m.name === name)?.value ?? NaN;
    const browserCdp = await browser.context.browser()?.newBrowserCDPSession();
    const info = (await browserCdp?.send('SystemInfo.getProcessInfo')) as
      { processInfo: { type: string; id: number }[] } | undefined;
    const renderers = (info?.processInfo ?? []).filter((p) => p.type === 'renderer');
    const rss = (await Promise.all(renderers.map((p) => rssMiB(p.id)))).filter((n) => n !== undefined);

    const result = {
      date: new Date().toISOString(),
      pods: args.pods,
      createPodsS: round(createMs / 1000),
      urlPrintedMs: round(dashboard.startedMs, 0),
      listRenderedMs: round(renderMs, 0),
      podAppearsMs: summary(appear),
      podDisappearsMs: summary(disappear),
      jsHeapUsedMiB: round(metric('JSHeapUsedSize') / 2 ** 20),
      jsHeapTotalMiB: round(metric('JSHeapTotalSize') / 2 ** 20),
      domNodes: metric('Nodes'),
      rendererRssMiB: rss.map((n) => round(n)),
    };
    await mkdir(dirname(args.out), { recursive: true });
    await writeFile(args.out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
    console.log(`written to ${args.out}`);
  } finally {
    if (dashboard) await stopDashboard(dashboard);
    await browser.close();
    await minilab(['delete', '-p', args.profile], env);
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
