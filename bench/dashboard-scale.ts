/**
 * The dashboard in headless Chromium. First, before any pods are made, how long from running
 * `minilab dashboard` to its first page shown with the cluster's nodes (a cold browser cache each
 * time: every run serves on a new port, a new origin). Then with a thousand pods: how long the
 * Workloads view takes to list them all on a fresh load, how soon a change (a pod made, a pod
 * deleted) shows in the open list, and how much memory the page then uses (its JS heap after a
 * garbage collection, its DOM nodes, and the RSS of Chromium's renderer processes).
 * Run: npm run bench:dashboard [-- --pods N --updates N --starts N --profile NAME --out FILE].
 * Makes a one-node cluster (deleted at the end) and the pods in one namespace, unscheduled (a node
 * runs at most 110): real objects the API server lists and watches, which the node does not run.
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
import { cpus, totalmem } from 'node:os';
import type { Page } from 'playwright-core';
import { median, minilab, must } from './common.js';

interface Args {
  pods: number;
  updates: number;
  starts: number;
  profile: string;
  out: string;
}

function parseArgs(argv: string[]): Args {
  const { values } = parseArgs_({
    args: argv,
    options: {
      pods: { type: 'string', default: '1000' },
      updates: { type: 'string', default: '10' },
      starts: { type: 'string', default: '5' },
      profile: { type: 'string', default: 'dash-bench' },
      out: { type: 'string' },
    },
  });
  const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, '');
  return {
    pods: Number(values.pods),
    updates: Number(values.updates),
    starts: Number(values.starts),
    profile: values.profile,
    out: values.out ?? join(projectRoot, 'bench-results', `dashboard-scale-${stamp}.json`),
  };
}

/**
 * A process's memory from /proc (Linux), in MiB: resident (RSS, shared pages counted whole) and
 * proportional (PSS, each shared page divided among the processes sharing it).
 */
async function memoryMiB(pid: number): Promise<{ rss: number; pss: number } | undefined> {
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(rollup)?.[1]);
  const [rss, pss] = [kb('Rss'), kb('Pss')];
  return Number.isFinite(rss) && Number.isFinite(pss) ? { rss: rss / 1024, pss: pss / 1024 } : undefined;
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const summary = (xs: number[]) => ({
  median: round(median(xs)),
  min: round(Math.min(...xs)),
  max: round(Math.max(...xs)),
});

type Browser = Awaited<ReturnType<typeof launchChromium>>;

/** A page with an empty HTTP cache, as a new origin (each run's own port) has. */
async function coldPage(browser: Browser): Promise<Page> {
  const page = await browser.context.newPage();
  await (await browser.context.newCDPSession(page)).send('Network.clearBrowserCache');
  return page;
}

/**
 * From running `minilab dashboard` to its URL printed, and to the first page showing the cluster's
 * nodes in the browser (the Overview with a node row, which needs the watches' first snapshot).
 */
async function firstPage(browser: Browser, env: NodeJS.ProcessEnv, profile: string) {
  const started = performance.now();
  const dashboard = await spawnDashboard(env, profile);
  const page = await coldPage(browser);
  try {
    await page.goto(dashboard.url);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.locator('section[aria-labelledby="nodes-h"] tbody th[scope="row"]').first().waitFor();
    return { urlMs: dashboard.startedMs, pageMs: performance.now() - started };
  } finally {
    await page.close();
    await stopDashboard(dashboard);
  }
}

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
  // Another browser for the list of pods: its renderers hold that one page, none of the pages before.
  let scaleBrowser: Browser | undefined;
  try {
    await must(['start', '-p', args.profile], env);
    const { core } = kubeClients(env.KUBECONFIG, args.profile);
    const starts: { urlMs: number; pageMs: number }[] = [];
    for (let i = 0; i < args.starts; i++) starts.push(await firstPage(browser, env, args.profile));

    let t = performance.now();
    await makeUnscheduledPods(core, namespace, args.pods);
    const createMs = performance.now() - t;

    await browser.close();
    scaleBrowser = await launchChromium();
    dashboard = await spawnDashboard(env, args.profile);
    const page = await coldPage(scaleBrowser);
    await page.goto(dashboard.url);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    // The Workloads view's namespace, as the page keeps it (read when the page loads).
    await page.evaluate(`sessionStorage.setItem('namespace', ${JSON.stringify(namespace)})`);
    // A new document: going from the page to itself with another fragment would only change the
    // route, keeping the namespace it had (all of them: more rows than pods made, never equal).
    await page.goto('about:blank');
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

    const cdp = await scaleBrowser.context.newCDPSession(page);
    await cdp.send('HeapProfiler.collectGarbage');
    await cdp.send('Performance.enable');
    const { metrics } = await cdp.send('Performance.getMetrics');
    const metric = (name: string) => metrics.find((m) => m.name === name)?.value ?? NaN;
    const browserCdp = await scaleBrowser.context.browser()?.newBrowserCDPSession();
    const info = (await browserCdp?.send('SystemInfo.getProcessInfo')) as
      { processInfo: { type: string; id: number }[] } | undefined;
    const renderers = (info?.processInfo ?? []).filter((p) => p.type === 'renderer');
    const renderersMiB = (await Promise.all(renderers.map((p) => memoryMiB(p.id))))
      .filter((m) => m !== undefined)
      .sort((a, b) => b.pss - a.pss)
      .map((m) => ({ rss: round(m.rss), pss: round(m.pss) }));

    const result = {
      date: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model,
        memoryGiB: Math.round(totalmem() / 2 ** 30),
      },
      firstPage: {
        runs: starts.length,
        urlPrintedMs: summary(starts.map((s) => s.urlMs)),
        nodesShownMs: summary(starts.map((s) => s.pageMs)),
      },
      pods: args.pods,
      createPodsS: round(createMs / 1000),
      urlPrintedMs: round(dashboard.startedMs, 0),
      listRenderedMs: round(renderMs, 0),
      podAppearsMs: summary(appear),
      podDisappearsMs: summary(disappear),
      jsHeapUsedMiB: round(metric('JSHeapUsedSize') / 2 ** 20),
      jsHeapTotalMiB: round(metric('JSHeapTotalSize') / 2 ** 20),
      domNodes: metric('Nodes'),
      // This browser's renderers (the page's, and a spare Chromium keeps ready), largest first.
      renderersMiB,
    };
    await mkdir(dirname(args.out), { recursive: true });
    await writeFile(args.out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
    console.log(`written to ${args.out}`);
  } finally {
    if (dashboard) await stopDashboard(dashboard);
    await browser.close();
    await scaleBrowser?.close();
    await minilab(['delete', '-p', args.profile], env);
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
