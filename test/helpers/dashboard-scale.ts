import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import type { Page } from 'playwright-core';
import { projectRoot } from '../../src/version.js';

export interface DashboardProcess {
  child: ChildProcessWithoutNullStreams;
  url: string;
  base: string;
  token: string;
  stderr: () => string;
  /** Milliseconds from spawning the command to the URL being printed. */
  startedMs: number;
}

/** Runs `minilab dashboard --url` as a user would, and waits for the URL it prints. */
export function spawnDashboard(env: NodeJS.ProcessEnv, profile: string): Promise<DashboardProcess> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [join(projectRoot, 'dist', 'src', 'main.js'), 'dashboard', '-p', profile, '--url'],
    { env },
  );
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no dashboard URL within 30 s\n${stderr}`)), 30_000);
    child.on('exit', (code) => reject(new Error(`minilab dashboard exited with ${code}\n${stderr}`)));
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      // The token is in the fragment, which a browser never sends to a server.
      const url = /^(http:\/\/127\.0\.0\.1:\d+\/)#token=([A-Za-z0-9_-]+)$/m.exec(stdout);
      if (!url) return;
      clearTimeout(timer);
      resolve({
        child,
        url: url[0],
        base: url[1] as string,
        token: url[2] as string,
        stderr: () => stderr,
        startedMs: performance.now() - started,
      });
    });
  });
}

export function stopDashboard(d: DashboardProcess): Promise<number | null> {
  if (d.child.exitCode !== null) return Promise.resolve(d.child.exitCode);
  return new Promise((resolve) => {
    d.child.once('exit', (code) => resolve(code));
    d.child.kill('SIGINT');
  });
}

/**
 * A pod no scheduler takes (its schedulerName names none), so it stays Pending: a real object the
 * API server lists and watches, costing the node nothing. A node runs at most 110 pods (the
 * kubelet's default maxPods, which minilab keeps), so a thousand pods cannot all run on one.
 */
export const unscheduledPod = (name: string): k8s.V1Pod => ({
  metadata: { name, labels: { app: 'scale' } },
  spec: {
    schedulerName: 'minilab-test-no-scheduler',
    // Never pulled: the pod is never bound to a node.
    containers: [{ name: 'pause', image: 'pause' }],
  },
});

export const scalePodName = (i: number) => `pause-${String(i).padStart(4, '0')}`;

/** Makes the namespace and `count` unscheduled pods in it, a few requests at a time. */
export async function makeUnscheduledPods(core: k8s.CoreV1Api, namespace: string, count: number) {
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      await core.createNamespacedPod({ namespace, body: unscheduledPod(scalePodName(i)) });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

const POD_ROWS = 'section[aria-labelledby="pods-h"] tbody th[scope="row"]';

/** The page's document, as far as these checks read it (this project's TypeScript knows no DOM). */
type PageGlobal = {
  document: { querySelectorAll(selector: string): ArrayLike<{ textContent: string | null }> };
};

/** How many rows the Pods table of the Workloads view shows now. */
export const shownPodRows = (page: Page) => page.locator(POD_ROWS).count();

/**
 * Resolves once the Pods table shows a row for `name` (present) or none (absent), checked every
 * frame. Functions, not strings: the page's CSP refuses eval.
 */
export async function podRowShown(page: Page, name: string, present: boolean, timeoutMs = 30_000) {
  await page.waitForFunction(
    ([selector, n, want]) =>
      Array.from((globalThis as unknown as PageGlobal).document.querySelectorAll(selector)).some(
        (th) => th.textContent === n,
      ) === want,
    [POD_ROWS, name, present] as const,
    { polling: 'raf', timeout: timeoutMs },
  );
}

/** Resolves once the Pods table shows exactly `count` rows, checked every frame. */
export async function podRowsReach(page: Page, count: number, timeoutMs = 120_000) {
  await page.waitForFunction(
    ([selector, n]) => (globalThis as unknown as PageGlobal).document.querySelectorAll(selector).length === n,
    [POD_ROWS, count] as const,
    { polling: 'raf', timeout: timeoutMs },
  );
}
