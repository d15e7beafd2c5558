import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, stat } from 'node:fs/promises';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import * as k8s from '@kubernetes/client-node';
import type { DockerEngine } from '../../src/providers/docker/engine.js';
import { imageArchive, layerFromEntries } from '../../src/image/archive.js';
import { projectRoot } from '../../src/version.js';
import { cleanupTestResources, connect, runId } from '../helpers/engine.js';
import { kubeClients, sandbox, waitFor } from '../helpers/cluster.js';
import { launchChromium } from '../helpers/browser.js';
import {
  makeUnscheduledPods,
  podRowShown,
  podRowsReach,
  scalePodName,
  shownPodRows,
  spawnDashboard,
  stopDashboard,
  unscheduledPod,
  type DashboardProcess,
} from '../helpers/dashboard-scale.js';

const profile = `dash-${runId}`;
const node = `${profile}-control-plane`;
/** A second, idle cluster: what the profile switcher switches to. */
const other = `dash-b-${runId}`;
const image = `minilab-test/busybox:${runId}`;
const screenshots = join(projectRoot, 'docs', 'screenshots');
let s: Awaited<ReturnType<typeof sandbox>>;
let engine: DockerEngine;
let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
let dashboard: DashboardProcess | undefined;
let page: Page;
/** When this run began: the screenshots must be newer. */
const startedAt = Date.now();

function plainGet(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function screenshot(name: string): Promise<void> {
  await mkdir(screenshots, { recursive: true });
  // Without the last action's notice; set through the DOM, as the page's CSP refuses injected styles.
  await page.evaluate(`window.scrollTo(0, 0); document.querySelector('.notice').style.visibility = 'hidden'`);
  await page.screenshot({ path: join(screenshots, `${name}.png`) });
  await page.evaluate(`document.querySelector('.notice').style.visibility = ''`);
}

const clients = () => kubeClients(s.kubeconfig, profile);
const deploymentRow = (name: string) =>
  page
    .locator('section[aria-labelledby="deployments-h"] tbody tr')
    .filter({ has: page.getByRole('rowheader', { name }) });

/** A busybox image (the host's static binary) that serves a page and writes a numbered line every second. */
async function loadTestImage(): Promise<void> {
  const layer = await layerFromEntries(
    [
      { type: 'host-file', name: 'bin/busybox', path: '/bin/busybox', mode: 0o755 },
      ...['sh', 'sleep', 'echo', 'mkdir', 'httpd'].map((t) => ({
        type: 'symlink' as const,
        name: `bin/${t}`,
        target: 'busybox',
      })),
      ...['tmp', 'www', 'proc', 'sys', 'dev', 'etc'].map((d) => ({ type: 'directory' as const, name: d })),
      { type: 'file', name: 'www/index.html', content: 'hello from the dashboard test\n' },
    ],
    join(s.dir, 'busybox-layer.tar'),
  );
  const archive = imageArchive([{ ref: image, layers: [layer], config: { cmd: ['sh'] } }]);
  const r = await engine.exec.run(node, ['ctr', '-n', 'k8s.io', 'images', 'import', '-'], { input: archive });
  assert.equal(r.exitCode, 0, r.stderr);
}

before(async () => {
  s = await sandbox('dashboard');
  engine = await connect();
});

after(async () => {
  if (dashboard) await stopDashboard(dashboard);
  await browser?.close();
  await s.minilab(['delete', '-p', other], { timeoutMs: 120_000 }).catch(() => undefined);
  await s.minilab(['delete', '-p', profile], { timeoutMs: 120_000 }).catch(() => undefined);
  await cleanupTestResources(engine);
  await s.cleanup();
});

test('a cluster to look at', async () => {
  const r = await s.minilab(['start', '-p', profile], { timeoutMs: 20 * 60_000 });
  assert.equal(r.code, 0, r.stderr);
  await loadTestImage();
});

test('the dashboard is served at once and shows the node Ready', async (t) => {
  browser = await launchChromium();
  page = await browser.context.newPage();
  dashboard = await spawnDashboard(s.env, profile);
  const beforeLoad = performance.now();
  await page.goto(dashboard.url);
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  const shownMs = dashboard.startedMs + (performance.now() - beforeLoad);
  t.diagnostic(
    `URL printed ${Math.round(dashboard.startedMs)} ms after the command; page shown at ${Math.round(shownMs)} ms`,
  );
  // The page keeps the token in sessionStorage and drops it from the address bar; no cookie.
  assert.equal(page.url(), dashboard.base);
  assert.deepEqual(await browser.context.cookies(), []);
  const nodes = page.getByRole('region', { name: 'Nodes' });
  await nodes.getByRole('row').filter({ hasText: node }).getByText('Ready', { exact: true }).waitFor();
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();
  // A reload keeps the session.
  await page.reload();
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();
  assert.equal(page.url(), dashboard.base);
});

test('the profile switcher shows another running cluster without restarting the dashboard, and a reload keeps it', async () => {
  // Started after the dashboard: the switcher reads the profiles when opened.
  const r = await s.minilab(['start', '-p', other], { timeoutMs: 10 * 60_000 });
  assert.equal(r.code, 0, r.stderr);
  const nodes = page.getByRole('region', { name: 'Nodes' });
  const readyNode = (name: string) =>
    nodes.getByRole('row').filter({ hasText: name }).getByText('Ready', { exact: true });
  const switcher = page.getByRole('combobox', { name: 'Profile' });
  await switcher.focus();
  await switcher.locator('option', { hasText: other }).waitFor({ state: 'attached' });
  await switcher.selectOption(other);
  await page.waitForURL(`${dashboard!.base}?profile=${other}`);
  await readyNode(`${other}-control-plane`).waitFor({ timeout: 60_000 });
  assert.equal(await nodes.getByRole('row').filter({ hasText: node }).count(), 0);
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();
  assert.equal(await switcher.inputValue(), other);
  await screenshot('profile-switch');

  // A deep link into the other profile survives a reload.
  await page.getByRole('link', { name: 'Workloads' }).click();
  await page.waitForURL(`${dashboard!.base}?profile=${other}#/workloads`);
  await page.reload();
  const pods = page.getByRole('region', { name: 'Pods' });
  await pods.getByRole('rowheader', { name: `kube-apiserver-${other}-control-plane` }).waitFor();
  assert.equal(await pods.getByRole('rowheader', { name: `kube-apiserver-${node}` }).count(), 0);

  // Back to the first: its own nodes, none of the other's; Back in the browser returns to the other.
  await page.getByRole('link', { name: 'Overview' }).click();
  await switcher.selectOption(profile);
  await readyNode(node).waitFor({ timeout: 30_000 });
  assert.equal(await nodes.getByRole('row').filter({ hasText: other }).count(), 0);
  await page.goBack();
  await readyNode(`${other}-control-plane`).waitFor({ timeout: 30_000 });
  await page.goForward();
  await readyNode(node).waitFor({ timeout: 30_000 });

  // A late answer for a profile left behind is dropped: the other's info held back 2 s while the
  // page goes there and straight back, the page still names the first (where its calls go).
  let held = 0;
  await page.route('**/api/info', async (route) => {
    if (route.request().headers()['x-minilab-profile'] === other) {
      held += 1;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    await route.continue();
  });
  await switcher.selectOption(other);
  // The view stays (#/): the address differs in its query only.
  await page.waitForURL((url) => url.searchParams.get('profile') === other);
  // The page asks once it has rendered the switch (after the address changed): going back before
  // that, as a CI run did, leaves no answer to drop and holds nothing.
  await waitFor("the other profile's info to be asked for", 10_000, async () =>
    held > 0 ? true : undefined,
  );
  await switcher.selectOption(profile);
  await readyNode(node).waitFor({ timeout: 30_000 });
  await new Promise((resolve) => setTimeout(resolve, 3000));
  assert.equal(held, 1);
  assert.equal(await page.title(), `${profile} · minilab dashboard`);
  assert.equal(await switcher.inputValue(), profile);
  await page.unroute('**/api/info');

  const deleted = await s.minilab(['delete', '-p', other], { timeoutMs: 120_000 });
  assert.equal(deleted.code, 0, deleted.stderr);
});

test('requests without the token, or with a foreign Host header, are refused', async () => {
  const d = dashboard!;
  const bearer = { Authorization: `Bearer ${d.token}` };
  // The page holds no data and is served to anyone; the API only with the token in the header.
  assert.equal((await plainGet(d.base)).status, 200);
  assert.equal((await plainGet(`${d.base}api/info`)).status, 401);
  assert.equal((await plainGet(`${d.base}api/info?token=${d.token}`)).status, 401);
  assert.equal((await plainGet(`${d.base}api/info`, { Cookie: `token=${d.token}` })).status, 401);
  assert.equal((await plainGet(`${d.base}api/info`, bearer)).status, 200);
  const rebound = await plainGet(`${d.base}api/info`, {
    ...bearer,
    Host: `rebound.example:${new URL(d.base).port}`,
  });
  assert.equal(rebound.status, 403);
  // A tab without the token says what to do.
  const bare = await browser!.context.newPage();
  await bare.goto(d.base);
  await bare.getByRole('status').filter({ hasText: 'open the URL that minilab dashboard printed' }).waitFor();
  await bare.close();
});

test('another server on 127.0.0.1 receives no dashboard credential from the logged-in browser', async () => {
  const d = dashboard!;
  const seen: IncomingHttpHeaders[] = [];
  const other = createServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { 'Content-Type': 'text/html' }).end('<title>other</title>other server');
  });
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  const port = (other.address() as AddressInfo).port;
  try {
    // What a port-forwarded workload gets: tabs opened on it, by both loopback names and on the
    // dashboard's own paths, in the browser that holds a session (a cookie for 127.0.0.1 would go
    // along with each), and a navigation started by a dashboard page. (The dashboard page cannot
    // fetch from another port at all: its CSP allows connections to itself only.)
    const tab = await browser!.context.newPage();
    for (const url of [
      `http://127.0.0.1:${port}/`,
      `http://localhost:${port}/`,
      `http://127.0.0.1:${port}/api/info`,
    ]) {
      await tab.goto(url);
    }
    await tab.goto(d.url);
    await tab.getByRole('heading', { name: 'Overview' }).waitFor();
    // Deferred, so the evaluation returns before the navigation ends its context.
    await tab.evaluate(`setTimeout(() => (location.href = 'http://127.0.0.1:${port}/from-dashboard'))`);
    await tab.waitForURL(`http://127.0.0.1:${port}/from-dashboard`);
    await tab.close();
    assert.ok(seen.length >= 4, `the other server saw ${seen.length} requests`);
    for (const headers of seen) {
      assert.equal(headers.cookie, undefined, JSON.stringify(headers));
      assert.equal(headers.authorization, undefined);
      assert.ok(!JSON.stringify(headers).includes(d.token), JSON.stringify(headers));
    }
  } finally {
    // The dashboard's page is the one in front again for the tests after this one. (Added when the
    // terminal test lost keys; that test failed in CI with it too, so it was not the cause.)
    await page.bringToFront();
    // The browser keeps its connections open: close them, or close() waits until it lets go.
    other.closeAllConnections();
    await new Promise<void>((resolve) => other.close(() => resolve()));
  }
});

test('a deployment created through the API appears live, without a reload', async () => {
  await page.getByRole('link', { name: 'Workloads' }).click();
  await page.getByRole('heading', { name: 'Deployments' }).waitFor();
  const { apps, core } = clients();
  await apps.createNamespacedDeployment({
    namespace: 'default',
    body: {
      metadata: { name: 'web' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: {
            terminationGracePeriodSeconds: 1,
            containers: [
              {
                name: 'web',
                image,
                imagePullPolicy: 'Never',
                command: [
                  'sh',
                  '-c',
                  'httpd -p 8080 -h /www; i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 1; done',
                ],
                ports: [{ containerPort: 8080, name: 'http' }],
                readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
              },
            ],
          },
        },
      },
    },
  });
  await core.createNamespacedService({
    namespace: 'default',
    body: {
      metadata: { name: 'web' },
      spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
    },
  });
  await deploymentRow('web').waitFor({ timeout: 10_000 });
  await deploymentRow('web').locator('.replicas').filter({ hasText: '1/1' }).waitFor({ timeout: 120_000 });
  await screenshot('workloads');
});

test('scaling from the UI changes the replica count in the cluster', async () => {
  await page.getByRole('button', { name: 'Scale web' }).click();
  const dialog = page.getByRole('dialog', { name: 'Scale deployment default/web' });
  await dialog.getByLabel('Replicas').fill('2');
  await dialog.getByRole('button', { name: 'Scale' }).click();
  await dialog.waitFor({ state: 'detached' });
  const { apps } = clients();
  await waitFor('spec.replicas to be 2', 10_000, async () => {
    const d = await apps.readNamespacedDeployment({ name: 'web', namespace: 'default' });
    return d.spec?.replicas === 2 ? true : undefined;
  });
  await deploymentRow('web').locator('.replicas').filter({ hasText: '2/2' }).waitFor({ timeout: 120_000 });
});

test('pod logs stream live', async () => {
  const pods = page.getByRole('region', { name: 'Pods' });
  await pods.getByRole('link', { name: /^web-/ }).first().click();
  await page.getByRole('heading', { name: /^Pod web-/ }).waitFor();
  const log = page.getByRole('log');
  await log.filter({ hasText: /tick \d+/ }).waitFor({ timeout: 30_000 });
  const last = async () =>
    Math.max(...[...(await log.innerText()).matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));
  const seen = await last();
  await log.filter({ hasText: `tick ${seen + 2}` }).waitFor({ timeout: 15_000 });
  await screenshot('pod');
});

test('a shell opened in a pod runs echo, and the output shows', async () => {
  await page.getByRole('link', { name: 'Terminal' }).click();
  await page.getByRole('heading', { name: /^Terminal in default\/web-/ }).waitFor();
  await page.getByLabel('Shell').selectOption('sh');
  await page.getByRole('button', { name: 'Connect' }).click();
  await page
    .getByRole('status')
    .filter({ hasText: /^Connected to web in default\/web-.* \(sh\)$/ })
    .waitFor({ timeout: 15_000 });
  const terminal = page.getByRole('application', { name: 'Terminal in web' });
  // The shell's prompt first: keys typed before it are echoed ahead of the banner.
  await terminal.locator('.xterm-rows').filter({ hasText: '#' }).waitFor({ timeout: 15_000 });
  await terminal.click();
  // The output differs from what was typed: it shows only if the shell ran it.
  await page.keyboard.type('echo minilab-$((6*7))\n');
  await terminal.locator('.xterm-rows').filter({ hasText: 'minilab-42' }).waitFor({ timeout: 15_000 });
  await screenshot('terminal');
  // exit, typed where the echo was: seen echoed, then sent, so a key lost on the way fails here and
  // says so.
  const rows = terminal.locator('.xterm-rows');
  await page.keyboard.type('exit');
  await rows
    .filter({ hasText: '# exit' })
    .waitFor({ timeout: 15_000 })
    .catch(async (err: Error) => {
      throw new Error(`${err.message}\nterminal: ${JSON.stringify((await rows.innerText()).trim())}`);
    });
  await page.keyboard.press('Enter');
  await page
    .getByRole('status')
    .filter({ hasText: 'Session ended: the shell exited' })
    .waitFor({ timeout: 15_000 })
    .catch(async (err: Error) => {
      const status = await page.getByRole('status').allInnerTexts();
      const text = (await rows.innerText()).trim().split('\n').slice(-3).join(' | ');
      throw new Error(`${err.message}\nstatus: ${status.join(' | ')}\nterminal: ${text}`);
    });
  // The keyboard can leave the terminal: Escape, then Tab (Tab alone completes in the shell).
  // Checked once the shell has ended: Escape reaches the shell too, and in two CI runs on this
  // machine nothing of `exit`, typed after Escape, Tab and a click back, showed in the terminal.
  await terminal.click();
  await page.keyboard.press('Escape');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate<boolean>("document.activeElement?.closest('.terminal') == null"), true);
  await page.goBack();
});

test('a service port opens on a local URL through a port-forward', async () => {
  await page.getByRole('link', { name: 'Services' }).click();
  const popup = page.waitForEvent('popup');
  await page.getByRole('button', { name: 'Open web port 80 locally' }).click();
  const tab = await popup;
  await tab.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.match(await tab.locator('body').innerText(), /hello from the dashboard test/);
  await tab.close();
  const link = page
    .getByRole('region', { name: 'Services' })
    .getByRole('link', { name: /^http:\/\/127\.0\.0\.1/ });
  const local = await plainGet((await link.getAttribute('href')) as string);
  assert.match(local.body, /hello from the dashboard test/);
  await screenshot('services');
});

test('the overview counts the new workload', async () => {
  await page.getByRole('link', { name: 'Overview' }).click();
  const summary = page.getByRole('region', { name: 'Cluster summary' });
  await summary.getByText('Deployments available').waitFor();
  await summary.getByText(/^3 \/ 3$/).waitFor({ timeout: 60_000 });
  await screenshot('overview');
});

test('YAML of a listed resource, a rollout restart and a pod deletion, each confirmed', async () => {
  await page.getByRole('link', { name: 'Workloads' }).click();
  await page.getByRole('link', { name: 'YAML of web' }).first().click();
  const yaml = page.getByLabel('YAML of Deployment default/web');
  await yaml.filter({ hasText: 'kind: Deployment' }).waitFor();
  assert.doesNotMatch(await yaml.innerText(), /managedFields/);
  await page.getByRole('button', { name: 'Back' }).click();

  await page.getByRole('button', { name: 'Restart web' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Restart' }).click();
  const { apps, core } = clients();
  await waitFor('the restartedAt annotation', 10_000, async () => {
    const d = await apps.readNamespacedDeployment({ name: 'web', namespace: 'default' });
    return d.spec?.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt'];
  });
  await deploymentRow('web').locator('.replicas').filter({ hasText: '2/2' }).waitFor({ timeout: 120_000 });

  const victim = (
    await core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=web' })
  ).items.find((p) => !p.metadata?.deletionTimestamp)?.metadata?.name as string;
  await page.getByRole('button', { name: `Delete ${victim}` }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete pod' }).click();
  await page.getByRole('rowheader', { name: victim }).waitFor({ state: 'detached', timeout: 60_000 });
});

test('a narrow window needs no sideways scrolling of the page', async () => {
  await page.setViewportSize({ width: 400, height: 800 });
  await page.getByRole('heading', { name: 'Pods' }).waitFor();
  const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the window`);
  await screenshot('workloads-narrow');
  await page.setViewportSize({ width: 1280, height: 800 });
});

/** The value a textarea holds once it holds `text` (loaded asynchronously). */
async function editorValue(text: string): Promise<string> {
  const area = page.getByRole('textbox', { name: 'YAML' });
  return waitFor(`the editor to hold ${text}`, 15_000, async () => {
    const value = await area.inputValue();
    return value.includes(text) ? value : undefined;
  });
}

const kindLink = (kind: string) =>
  page.getByRole('navigation', { name: 'Resource kinds' }).getByRole('link', { name: kind, exact: true });

test('a CRD and its custom resource appear in the generic view, filtered by namespace, labels and text', async () => {
  const { config } = clients();
  const crds = config.makeApiClient(k8s.ApiextensionsV1Api);
  await crds.createCustomResourceDefinition({
    body: {
      metadata: { name: 'crontabs.stable.example.com' },
      spec: {
        group: 'stable.example.com',
        scope: 'Namespaced',
        names: { plural: 'crontabs', singular: 'crontab', kind: 'CronTab' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: { spec: { type: 'object', properties: { cronSpec: { type: 'string' } } } },
              },
            },
            additionalPrinterColumns: [{ name: 'Schedule', type: 'string', jsonPath: '.spec.cronSpec' }],
          },
        ],
      },
    },
  });
  const objects = k8s.KubernetesObjectApi.makeApiClient(config);
  const cronTab = (name: string, tier: string) => ({
    apiVersion: 'stable.example.com/v1',
    kind: 'CronTab',
    metadata: { name, namespace: 'default', labels: { tier } },
    spec: { cronSpec: '0 3 * * *' },
  });
  // The API serves the new kind a moment after the CRD is made.
  await waitFor('the CronTab kind to be served', 30_000, async () =>
    objects.create(cronTab('nightly', 'batch')).then(
      () => true,
      () => undefined,
    ),
  );
  await objects.create(cronTab('hourly', 'web'));

  await page.getByRole('link', { name: 'Resources', exact: true }).click();
  await kindLink('CronTab').click();
  const list = page.getByRole('region', { name: 'CronTab' });
  await list.getByRole('rowheader', { name: 'nightly' }).waitFor({ timeout: 15_000 });
  await list.getByRole('rowheader', { name: 'hourly' }).waitFor();
  // The API's printer column of the CRD, rendered by the API server.
  await list.getByRole('columnheader', { name: 'Schedule' }).waitFor();
  await list.getByRole('row').filter({ hasText: 'nightly' }).getByText('0 3 * * *').waitFor();

  await page.getByLabel('Label selector').fill('tier=batch');
  await page.getByLabel('Label selector').press('Enter');
  await list.getByRole('rowheader', { name: 'hourly' }).waitFor({ state: 'detached' });
  await list.getByRole('rowheader', { name: 'nightly' }).waitFor();
  // Labels hold the chosen option or value too: "Namespace All namespaces".
  await page.getByLabel('Namespace').selectOption('kube-system');
  await list.getByText('No crontabs.').waitFor();
  await page.getByLabel('Namespace').selectOption('default');
  await list.getByRole('rowheader', { name: 'nightly' }).waitFor();
  await page.getByLabel('Filter').fill('night');
  // The filters are in the link: a reload shows the same list.
  await page.waitForURL(
    /#\/resources\/stable\.example\.com\/v1\/crontabs\?namespace=default&labels=tier%3Dbatch&text=night$/,
  );
  await page.reload();
  await list.getByRole('rowheader', { name: 'nightly' }).waitFor({ timeout: 15_000 });
  assert.equal(await page.getByLabel('Label selector').inputValue(), 'tier=batch');
  assert.equal(await list.getByRole('rowheader', { name: 'hourly' }).count(), 0);
  await screenshot('resources');

  await list.getByRole('link', { name: 'nightly' }).click();
  await page.getByRole('heading', { name: 'CronTab default/nightly' }).waitFor();
  await page
    .getByLabel('YAML of CronTab default/nightly')
    .filter({ hasText: 'cronSpec: 0 3 * * *' })
    .waitFor();
  await screenshot('resource-detail');
});

const PASTED = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: pasted
spec:
  replicas: 1
  selector:
    matchLabels: {app: pasted}
  template:
    metadata:
      labels: {app: pasted}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: main
          image: ${image}
          imagePullPolicy: Never
          command: [sh, -c, sleep 3600]
`;

test('a Deployment created from pasted YAML, then edited through a dry-run diff; refusals as the API words them', async () => {
  const { apps } = clients();
  await page.getByRole('link', { name: 'Create', exact: true }).click();
  const editor = page.getByRole('textbox', { name: 'YAML' });
  await editor.fill(PASTED.replace('replicas: 1', 'replicas: -1'));
  await page.getByRole('button', { name: 'Preview changes' }).click();
  await page
    .getByRole('alert')
    .filter({ hasText: 'spec.replicas: Invalid value: -1: must be greater than or equal to 0' })
    .waitFor();

  await editor.fill(PASTED);
  await page.getByRole('button', { name: 'Preview changes' }).click();
  const created = page.getByLabel('Changes to Deployment default/pasted');
  await created.filter({ hasText: '+kind: Deployment' }).waitFor();
  // A dry run: nothing exists yet.
  await assert.rejects(apps.readNamespacedDeployment({ name: 'pasted', namespace: 'default' }));
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByRole('heading', { name: 'Deployment default/pasted' }).waitFor();
  const live = await apps.readNamespacedDeployment({ name: 'pasted', namespace: 'default' });
  assert.equal(live.spec?.replicas, 1);
  assert.ok(live.metadata?.managedFields?.some((f) => f.manager === 'minilab-dashboard'));

  await page.getByRole('link', { name: 'Edit' }).click();
  const yaml = await editorValue('replicas: 1');
  await editor.fill(yaml.replace(/^ {2}replicas: 1$/m, '  replicas: 2'));
  await page.getByRole('button', { name: 'Preview changes' }).click();
  const diff = page.getByLabel('Changes to Deployment default/pasted');
  await diff.filter({ hasText: '+  replicas: 2' }).waitFor();
  assert.match(await diff.innerText(), /^- {2}replicas: 1$/m);
  assert.equal(
    (await apps.readNamespacedDeployment({ name: 'pasted', namespace: 'default' })).spec?.replicas,
    1,
  );
  // The editor at its top and the whole diff in the picture.
  await editor.evaluate((el: { scrollTop: number }) => {
    el.scrollTop = 0;
  });
  await page.setViewportSize({ width: 1280, height: 1200 });
  await screenshot('apply-diff');
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByRole('heading', { name: 'Deployment default/pasted' }).waitFor();
  await waitFor('spec.replicas of pasted to be 2', 10_000, async () => {
    const d = await apps.readNamespacedDeployment({ name: 'pasted', namespace: 'default' });
    return d.spec?.replicas === 2 ? true : undefined;
  });
});

test("a secret's value stays hidden until revealed, and the server never logs it", async () => {
  const { core } = clients();
  const password = `hunter2-${runId}`;
  await core.createNamespacedSecret({
    namespace: 'default',
    body: { metadata: { name: 'db-credentials' }, stringData: { password, user: 'admin' } },
  });
  await page.getByRole('link', { name: 'Resources', exact: true }).click();
  await kindLink('Secret').click();
  const list = page.getByRole('region', { name: 'Secret' });
  await list.getByRole('link', { name: 'db-credentials' }).click();
  await page.getByRole('heading', { name: 'Secret default/db-credentials' }).waitFor();
  const value = page.getByLabel('Value of password', { exact: true });
  await page.getByLabel('Value of password is hidden').waitFor();
  const yaml = page.getByLabel('YAML of Secret default/db-credentials');
  await yaml.filter({ hasText: 'password: "(hidden: ' }).waitFor();
  const encoded = Buffer.from(password).toString('base64');
  const shown = await page.locator('main').innerText();
  assert.ok(!shown.includes(password) && !shown.includes(encoded), 'the value is on the page before Reveal');
  await screenshot('secret');

  await page.getByRole('button', { name: 'Reveal password' }).click();
  await value.filter({ hasText: password }).waitFor();
  await page.getByLabel('Value of user is hidden').waitFor();
  await page.getByRole('button', { name: 'Hide password' }).click();
  await page.getByLabel('Value of password is hidden').waitFor();
  assert.ok(!dashboard!.stderr().includes(password), 'the dashboard wrote the value to its output');
});

test('the dashboard reconnects after the cluster restarts', async () => {
  await page.getByRole('link', { name: 'Overview' }).click();
  const stop = await s.minilab(['stop', '-p', profile], { timeoutMs: 180_000 });
  assert.equal(stop.code, 0, stop.stderr);
  await page.getByRole('status').filter({ hasText: 'Cluster unreachable' }).waitFor({ timeout: 60_000 });
  const start = await s.minilab(['start', '-p', profile], { timeoutMs: 10 * 60_000 });
  assert.equal(start.code, 0, start.stderr);
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: 120_000 });
  const nodes = page.getByRole('region', { name: 'Nodes' });
  await nodes
    .getByRole('row')
    .filter({ hasText: node })
    .getByText('Ready', { exact: true })
    .waitFor({ timeout: 120_000 });
});

// Last of the cluster's tests, so every view and screenshot above is of a cluster without metrics.
test('with metrics-server enabled, the overview shows node usage and the pods list pod usage', async () => {
  await page.getByRole('link', { name: 'Overview' }).click();
  await page
    .getByText(`Run minilab addons enable metrics-server -p ${profile} to see it.`)
    .waitFor({ timeout: 60_000 });
  const enable = await s.minilab(['addons', 'enable', 'metrics-server', '-p', profile], {
    timeoutMs: 5 * 60_000,
  });
  assert.equal(enable.code, 0, enable.stderr);

  // The page reads usage again by itself (every 15 s): no reload.
  const nodeRow = page.getByRole('region', { name: 'Nodes' }).getByRole('row').filter({ hasText: node });
  await nodeRow.getByText(/^(\d+m|[\d.]+ cores) of [\d.]+ cores \(\d+%\)$/).waitFor({ timeout: 60_000 });
  await nodeRow.getByText(/^[\d.]+ (KiB|MiB|GiB) of [\d.]+ (MiB|GiB) \(\d+%\)$/).waitFor();
  // Charts of the last minutes, drawn once there are two readings (kept by the server every 15 s).
  const overMinutes = (measure: string, what: string) =>
    page.getByRole('img', {
      name: new RegExp(
        `^${measure} of ${what} over the last \\d+ min: now .*, peak .* \\(([2-9]|\\d\\d+) readings\\)$`,
      ),
    });
  await overMinutes('CPU', node).waitFor({ timeout: 60_000 });
  await overMinutes('Memory', node).waitFor();
  assert.match(
    (await overMinutes('CPU', node).locator('polyline').getAttribute('points')) ?? '',
    /^[\d.]+,[\d.]+ /,
  );
  await screenshot('overview-metrics');

  await page.getByRole('link', { name: 'Workloads' }).click();
  await page.getByLabel('Namespace').selectOption('kube-system');
  const pods = page.getByRole('region', { name: 'Pods' });
  await pods.getByRole('columnheader', { name: 'Namespace' }).waitFor({ state: 'detached' });
  await pods.getByRole('columnheader', { name: 'CPU' }).waitFor({ timeout: 60_000 });
  const apiserver = `kube-apiserver-${node}`;
  /** The kube-apiserver pod's row as the page shows it now, by column. */
  const shown = async () => {
    // Text content, not innerText: the stylesheet upper-cases the headers.
    const columns = await pods.getByRole('columnheader').allTextContents();
    const row = pods
      .getByRole('row')
      .filter({ has: page.getByRole('rowheader', { name: apiserver, exact: true }) });
    const cells = [
      ...(await row.getByRole('rowheader').allTextContents()),
      ...(await row.getByRole('cell').allTextContents()),
    ];
    return Object.fromEntries(columns.map((c, i) => [c.toLowerCase(), cells[i]?.trim()]));
  };
  const usage = await waitFor('usage of the kube-apiserver pod', 60_000, async () => {
    const now = await shown();
    if (now.name !== apiserver || now.cpu === undefined || now.cpu === '—')
      throw new Error(JSON.stringify(now));
    return now;
  });
  assert.match(String(usage.cpu), /^(\d+m|[\d.]+ cores)$/);
  assert.match(String(usage.memory), /^[\d.]+ (KiB|MiB|GiB)$/);
  // The whole list in the picture: as tall a window as the page.
  const height = await page.evaluate<number>('document.documentElement.scrollHeight');
  await page.setViewportSize({ width: 1280, height: Math.min(Math.max(height, 800), 2000) });
  await screenshot('pods-metrics');
  await page.setViewportSize({ width: 1280, height: 800 });

  // A pod's own charts, on its page.
  await pods.getByRole('link', { name: apiserver, exact: true }).click();
  await page.getByRole('heading', { name: `Pod ${apiserver}` }).waitFor();
  await overMinutes('CPU', apiserver).waitFor({ timeout: 60_000 });
  await overMinutes('Memory', apiserver).waitFor();
  await screenshot('pod-usage');
  await page.goBack();
  await page.getByLabel('Namespace').selectOption({ label: 'All namespaces' });
});

test('1,000 pods (unscheduled: a node runs at most 110) are all listed, and the list stays live', async () => {
  // Speed and memory at this size are measured by npm run bench:dashboard, not asserted here.
  const { core } = clients();
  const namespace = 'scale';
  const count = 1000;
  await makeUnscheduledPods(core, namespace, count);
  try {
    await page.getByRole('link', { name: 'Workloads' }).click();
    await page.getByLabel('Namespace').selectOption(namespace);
    await podRowsReach(page, count);
    // A change shows without a reload: a pod deleted, another made.
    await core.deleteNamespacedPod({ name: scalePodName(500), namespace, gracePeriodSeconds: 0 });
    await podRowShown(page, scalePodName(500), false);
    await core.createNamespacedPod({ namespace, body: unscheduledPod('pause-extra') });
    await podRowShown(page, 'pause-extra', true);
    assert.equal(await shownPodRows(page), count);
  } finally {
    await page.getByLabel('Namespace').selectOption({ label: 'All namespaces' });
    await core.deleteNamespace({ name: namespace });
  }
});

test('Ctrl-C stops the dashboard cleanly', async () => {
  const d = dashboard!;
  dashboard = undefined;
  assert.equal(await stopDashboard(d), 0, d.stderr());
  assert.match(d.stderr(), /Dashboard stopped/);
  await assert.rejects(plainGet(d.base));
  // Written by this run (the files in git prove nothing).
  for (const name of [
    'overview',
    'workloads',
    'pod',
    'services',
    'overview-metrics',
    'pods-metrics',
    'resources',
    'resource-detail',
    'apply-diff',
    'secret',
    'terminal',
    'profile-switch',
    'pod-usage',
  ]) {
    const shot = await stat(join(screenshots, `${name}.png`));
    assert.ok(shot.size > 1000, name);
    assert.ok(shot.mtimeMs >= startedAt, `${name}.png was not written by this run`);
  }
});
