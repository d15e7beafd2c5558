import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import getPort from 'get-port';
import { parse, stringify } from 'yaml';
import type { ClusterClients } from '../../src/dashboard/cluster.js';
import { connectedTo, fakeApiClients, profilesOf, readEvents } from '../helpers/dashboard-fake-api.js';
import type { ApplyAnswer, ObjectDetail, ResourceKind, ResourceTable } from '../../src/dashboard/model.js';
import {
  discoverKinds,
  hideSecretValues,
  kindsFromDiscovery,
  tableFromApi,
} from '../../src/dashboard/resources.js';
import { diffYaml, mergePatch, parseManifest } from '../../src/dashboard/apply.js';
import { HttpError } from '../../src/dashboard/errors.js';
import { createGuard, type Guard } from '../../src/dashboard/security.js';
import { startServer, type DashboardServer } from '../../src/dashboard/server.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

const discovery = (groups: { name: string; versions: { version: string; resources: object[] }[] }[]) => ({
  kind: 'APIGroupDiscoveryList',
  apiVersion: 'apidiscovery.k8s.io/v2',
  items: groups.map((g) => ({ metadata: { name: g.name }, versions: g.versions })),
});
const res = (resource: string, kind: string, scope: string, verbs = ['get', 'list', 'create', 'delete']) => ({
  resource,
  responseKind: { group: '', version: '', kind },
  scope,
  verbs,
});
const CORE = discovery([
  {
    name: '',
    versions: [
      {
        version: 'v1',
        resources: [
          res('pods', 'Pod', 'Namespaced'),
          res('pods/log', 'Pod', 'Namespaced', ['get']),
          res('secrets', 'Secret', 'Namespaced'),
          res('namespaces', 'Namespace', 'Cluster'),
          res('bindings', 'Binding', 'Namespaced', ['create']),
        ],
      },
    ],
  },
]);
const GROUPS = discovery([
  {
    name: 'stable.example.com',
    versions: [
      { version: 'v2', resources: [res('crontabs', 'CronTab', 'Namespaced')] },
      { version: 'v1', resources: [res('crontabs', 'CronTab', 'Namespaced')] },
    ],
  },
  {
    name: 'apps',
    versions: [{ version: 'v1', resources: [res('deployments', 'Deployment', 'Namespaced')] }],
  },
]);

test('discovery lists every listable kind in every version served, its preferred one marked, custom resources included', () => {
  const kinds = kindsFromDiscovery([CORE, GROUPS] as Parameters<typeof kindsFromDiscovery>[0]);
  assert.deepEqual(
    kinds.map(
      (k) =>
        `${k.group}/${k.version}/${k.resource}:${k.kind}:${k.namespaced ? 'ns' : 'cluster'}${k.preferred ? '' : ' (not preferred)'}`,
    ),
    [
      '/v1/namespaces:Namespace:cluster',
      '/v1/pods:Pod:ns',
      '/v1/secrets:Secret:ns',
      'apps/v1/deployments:Deployment:ns',
      'stable.example.com/v2/crontabs:CronTab:ns',
      'stable.example.com/v1/crontabs:CronTab:ns (not preferred)',
    ],
  );
});

const TABLE = {
  kind: 'Table',
  apiVersion: 'meta.k8s.io/v1',
  metadata: { resourceVersion: '7' },
  columnDefinitions: [
    { name: 'Name', type: 'string', format: 'name', description: 'the name', priority: 0 },
    { name: 'Type', type: 'string', format: '', description: 'the type', priority: 0 },
    { name: 'Internal', type: 'string', format: '', description: 'wide only', priority: 1 },
    { name: 'Age', type: 'string', format: '', description: 'age', priority: 0 },
  ],
  rows: [
    {
      cells: ['db', 'Opaque', 'x', '5m'],
      object: {
        kind: 'PartialObjectMetadata',
        metadata: {
          name: 'db',
          namespace: 'default',
          uid: 'u-db',
          annotations: {
            'kubectl.kubernetes.io/last-applied-configuration': '{"data":{"password":"aHVudGVyMg=="}}',
          },
        },
      },
    },
  ],
};

test("a list keeps the API's printer columns shown without -o wide, and of the metadata only the names", () => {
  const table = tableFromApi(TABLE);
  assert.deepEqual(
    table.columns.map((c) => c.name),
    ['Name', 'Type', 'Age'],
  );
  assert.deepEqual(table.rows, [
    { uid: 'u-db', name: 'db', namespace: 'default', cells: ['db', 'Opaque', '5m'] },
  ]);
  assert.equal(table.truncated, false);
  assert.doesNotMatch(JSON.stringify(table), /aHVudGVyMg|last-applied/);
  // An API server that answers a plain list: name and creation time.
  const plain = tableFromApi({
    items: [
      {
        metadata: { name: 'a', namespace: 'n', uid: 'u', creationTimestamp: '2026-01-01T00:00:00Z' as never },
      },
    ],
    metadata: { continue: 'more' },
  });
  assert.deepEqual(plain.rows[0]?.cells, ['a', '2026-01-01T00:00:00Z']);
  assert.equal(plain.truncated, true);
});

const secret = (data: Record<string, string>): k8s.V1Secret => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: {
    name: 'db',
    namespace: 'default',
    annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ data }) },
  },
  data,
});

test("a Secret's values and kubectl's copy of them are hidden; a diff says which key changed", () => {
  const live = secret({ password: b64('hunter2'), user: b64('admin') });
  const shown = hideSecretValues(live) as k8s.V1Secret;
  assert.deepEqual(shown.data, { password: '(hidden: 7 bytes)', user: '(hidden: 5 bytes)' });
  assert.doesNotMatch(JSON.stringify(shown), /aHVudGVyMg|YWRtaW4|hunter2/);
  const next = hideSecretValues(
    secret({ password: b64('swordfish'), user: b64('admin') }),
    live,
  ) as k8s.V1Secret;
  assert.deepEqual(next.data, { password: '(hidden: 9 bytes, changed)', user: '(hidden: 5 bytes)' });
  // Other kinds pass as they are.
  const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: 'b' } };
  assert.equal(hideSecretValues(cm), cm);
});

test('the editor takes one object with apiVersion, kind and name, and says what is wrong otherwise', () => {
  const refused = (yaml: string, message: RegExp) =>
    assert.throws(
      () => parseManifest(yaml),
      (err: unknown) => err instanceof HttpError && err.status === 400 && message.test(err.message),
      yaml,
    );
  refused('kind: [', /^the YAML does not parse: /);
  refused(
    'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\n',
    /one object at a time \(this YAML holds 2\)/,
  );
  refused('apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n', /has no metadata\.name/);
  refused('- a\n- b\n', /not an object/);
  refused('', /holds 0/);
  assert.equal(
    parseManifest('---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n').kind,
    'ConfigMap',
  );
});

test('a diff is unified, in hunks with three lines of context', () => {
  const before = ['a: 1', 'b: 2', 'c: 3', 'd: 4', 'e: 5', 'f: 6', 'g: 7', ''].join('\n');
  const after = before.replace('f: 6', 'f: 60');
  assert.deepEqual(diffYaml(before, after), [
    { oldStart: 3, newStart: 3, lines: [' c: 3', ' d: 4', ' e: 5', '-f: 6', '+f: 60', ' g: 7'] },
  ]);
  assert.deepEqual(diffYaml(before, before), []);
});

/** A small API server: aggregated discovery, Tables, objects in memory, dry-run and apply, Status errors. */
interface Asked {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}
const asked: Asked[] = [];
const lastAsked = (): Asked | undefined => asked[asked.length - 1];
const objects = new Map<string, Record<string, unknown>>();
let aggregated = true;
let api: Server;
let clients: ClusterClients;
let guard: Guard;
let server: DashboardServer;

const status = (code: number, message: string, reason = '') => ({
  kind: 'Status',
  apiVersion: 'v1',
  status: 'Failure',
  message,
  reason,
  code,
});

before(async () => {
  api = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://api');
      const body = Buffer.concat(chunks).toString();
      asked.push({ method: req.method ?? '', path: url.pathname + url.search, headers: req.headers, body });
      const reply = (code: number, data: unknown) => {
        res.writeHead(code, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(data));
      };
      const accept = req.headers.accept ?? '';
      const p = url.pathname;
      if (p === '/api' || p === '/apis') {
        if (aggregated && accept.includes('as=APIGroupDiscoveryList'))
          return reply(200, p === '/api' ? CORE : GROUPS);
        if (p === '/api') return reply(200, { kind: 'APIVersions', versions: ['v1'] });
        return reply(200, {
          kind: 'APIGroupList',
          groups: [{ name: 'apps', preferredVersion: { groupVersion: 'apps/v1', version: 'v1' } }],
        });
      }
      if (p === '/api/v1') {
        return reply(200, {
          kind: 'APIResourceList',
          resources: [
            { name: 'pods', kind: 'Pod', namespaced: true, verbs: ['list'] },
            { name: 'pods/log', kind: 'Pod', namespaced: true, verbs: ['get'] },
          ],
        });
      }
      if (p === '/apis/apps/v1') return reply(503, status(503, 'unavailable'));
      if (p === '/api/v1/namespaces/default/secrets' && accept.includes('as=Table')) return reply(200, TABLE);
      if (p === '/api/v1/namespaces/default/events') {
        return reply(200, {
          items: [
            {
              metadata: { name: 'e1' },
              type: 'Normal',
              reason: 'Created',
              message: 'made it',
              count: 2,
              lastTimestamp: '2026-01-01T00:00:00Z',
              involvedObject: {},
            },
          ],
        });
      }
      const obj = objects.get(p);
      if (req.method === 'GET')
        return obj
          ? reply(200, obj)
          : reply(404, status(404, `"${p.split('/').pop()}" not found`, 'NotFound'));
      if (req.method === 'DELETE') {
        objects.delete(p);
        return reply(200, status(200, 'deleted'));
      }
      const sent = JSON.parse(body) as { metadata: Record<string, unknown>; spec?: { replicas?: number } };
      if ((sent.spec?.replicas ?? 0) > 10) {
        return reply(
          422,
          status(
            422,
            'Deployment.apps "web" is invalid: spec.replicas: Invalid value: 11: too many',
            'Invalid',
          ),
        );
      }
      const result = {
        ...(req.method === 'PATCH' && obj ? obj : {}),
        ...sent,
        metadata: {
          ...(obj?.metadata as object),
          ...sent.metadata,
          uid: 'u-1',
          resourceVersion: obj ? '2' : '1',
          managedFields: [{ manager: 'x' }],
        },
      };
      if (url.searchParams.get('dryRun') !== 'All') objects.set(p, result);
      return reply(obj ? 200 : 201, result);
    });
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  clients = fakeApiClients(api, 'api-token');
  guard = createGuard(await getPort({ host: '127.0.0.1' }));
  server = await startServer(
    {
      guard,
      profiles: profilesOf(connectedTo(clients)),
      assetsDir: await mkdtemp(join(tmpdir(), 'minilab-dashboard-resources-')),
    },
    guard.port,
  );
});

after(async () => {
  await server.close();
  api.closeAllConnections();
  await new Promise<void>((resolve) => api.close(() => resolve()));
});

function call(
  method: string,
  path: string,
  opts: { body?: unknown; origin?: string | false } = {},
): Promise<{ status: number; data: unknown }> {
  const headers: Record<string, string> = {
    host: `127.0.0.1:${guard.port}`,
    authorization: `Bearer ${guard.token}`,
  };
  if (opts.origin !== false && method !== 'GET')
    headers.origin = opts.origin ?? `http://127.0.0.1:${guard.port}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: guard.port, path, method, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        let data: unknown = text;
        try {
          data = JSON.parse(text);
        } catch {
          // plain text
        }
        resolve({ status: res.statusCode ?? 0, data });
      });
    });
    req.on('error', reject);
    req.end(opts.body === undefined ? undefined : JSON.stringify(opts.body));
  });
}

test('the kinds, a list in the Table rendering by label selector, with the connection credentials', async () => {
  asked.length = 0;
  const kinds = await call('GET', '/api/resources');
  assert.equal(kinds.status, 200);
  assert.deepEqual(
    (kinds.data as ResourceKind[]).filter((k) => k.kind === 'CronTab').map((k) => k.version),
    ['v2'],
    'the list offers the preferred version only',
  );
  const list = await readEvents(
    guard.port,
    guard.token,
    '/api/resources/watch?group=&version=v1&resource=secrets&namespace=default&labelSelector=app%3Dweb',
    (events) => events.length > 0,
  );
  assert.equal(list.status, 200);
  assert.equal(list.events[0]?.event, 'table', JSON.stringify(list.events));
  assert.deepEqual(
    (list.events[0]?.data as ResourceTable).rows.map((r) => r.name),
    ['db'],
  );
  const tableCall = asked.find((a) => a.path.startsWith('/api/v1/namespaces/default/secrets'));
  assert.equal(
    tableCall?.path,
    '/api/v1/namespaces/default/secrets?limit=1000&includeObject=Metadata&labelSelector=app%3Dweb',
  );
  assert.match(String(tableCall?.headers.accept), /^application\/json;as=Table;g=meta\.k8s\.io;v=v1/);
  assert.equal(tableCall?.headers.authorization, 'Bearer api-token');
  const unknown = await readEvents(
    guard.port,
    guard.token,
    '/api/resources/watch?group=nope.io&version=v1&resource=things',
    (events) => events.length > 0,
  );
  assert.deepEqual(unknown.events[0]?.event, 'failure');
  assert.match(
    (unknown.events[0]?.data as { message: string }).message,
    /serves no resource "things" in nope\.io\/v1/,
  );
});

test('names that would leave the collection, and bad versions, are refused before the API is asked', async () => {
  asked.length = 0;
  for (const path of [
    '/api/object?group=&version=v1&resource=pods&namespace=default&name=..',
    '/api/object?group=&version=v1&resource=pods&namespace=default&name=a%2Fb',
    '/api/object?group=&version=..&resource=pods&namespace=default&name=a',
    '/api/object?group=&version=v1&resource=pods%2F..&name=a',
    '/api/resources/watch?group=a%2Fb&version=v1&resource=pods',
  ]) {
    assert.equal((await call('GET', path)).status, 400, path);
  }
  assert.deepEqual(asked, []);
});

test('a Secret in detail: values hidden, keys and sizes listed, events read; one value on request', async () => {
  objects.set('/api/v1/namespaces/default/secrets/db', {
    ...secret({ password: b64('hunter2') }),
    metadata: { ...secret({}).metadata, uid: 'u-db', managedFields: [{ manager: 'kubectl' }] },
  });
  asked.length = 0;
  const detail = await call(
    'GET',
    '/api/object?group=&version=v1&resource=secrets&namespace=default&name=db',
  );
  assert.equal(detail.status, 200, JSON.stringify(detail.data));
  const d = detail.data as ObjectDetail;
  assert.deepEqual(d.secretKeys, [{ key: 'password', bytes: 7 }]);
  assert.doesNotMatch(JSON.stringify(d), /hunter2|aHVudGVyMg|managedFields/);
  assert.deepEqual(parse(d.yaml).data, { password: '(hidden: 7 bytes)' });
  assert.deepEqual(
    d.events.map((e) => `${e.reason} ${e.count}`),
    ['Created 2'],
  );
  assert.ok(
    asked.some((a) => a.path === '/api/v1/namespaces/default/events?fieldSelector=involvedObject.uid%3Du-db'),
  );
  const value = await call('GET', '/api/secret?namespace=default&name=db&key=password');
  assert.deepEqual(value.data, { value: 'hunter2', encoding: 'utf8' });
  assert.equal((await call('GET', '/api/secret?namespace=default&name=db&key=user')).status, 404);
});

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
`;

test('YAML is dry-run first (server-side apply, dryRun=All), answered as a diff, then applied', async () => {
  objects.clear();
  asked.length = 0;
  const body = { yaml: DEPLOYMENT, mode: 'apply', dryRun: true, namespace: 'team' };
  const preview = await call('POST', '/api/apply', { body });
  assert.equal(preview.status, 200, JSON.stringify(preview.data));
  const p = preview.data as ApplyAnswer;
  assert.equal(p.created, true);
  assert.deepEqual(
    [p.namespace, p.name, p.kind, p.ref.resource],
    ['team', 'web', 'Deployment', 'deployments'],
  );
  assert.ok(p.diff[0]?.lines.includes('+  replicas: 1'), JSON.stringify(p.diff));
  assert.ok(!JSON.stringify(p.diff).includes('managedFields'));
  const patch = asked.find((a) => a.method === 'PATCH');
  assert.equal(
    patch?.path,
    '/apis/apps/v1/namespaces/team/deployments/web?fieldManager=minilab-dashboard&dryRun=All',
    "another manager's fields are not taken unless asked",
  );
  assert.equal(patch?.headers['content-type'], 'application/apply-patch+yaml');
  assert.equal(objects.size, 0, 'a dry run stores nothing');

  const applied = await call('POST', '/api/apply', { body: { ...body, dryRun: false } });
  assert.equal(applied.status, 200);
  assert.equal((applied.data as ApplyAnswer).dryRun, false);
  assert.ok(objects.has('/apis/apps/v1/namespaces/team/deployments/web'));

  // An edit sends what changed in the editor as a merge patch; the diff is against what is live.
  const original = stringify(objects.get('/apis/apps/v1/namespaces/team/deployments/web'));
  const edited = original.replace('replicas: 1', 'replicas: 3');
  const change = await call('POST', '/api/apply', {
    body: { yaml: edited, original, mode: 'edit', dryRun: true, namespace: '' },
  });
  assert.equal(change.status, 200, JSON.stringify(change.data));
  assert.deepEqual(
    (change.data as ApplyAnswer).diff.flatMap((h) => h.lines.filter((l) => /^[-+]/.test(l))),
    ['-  resourceVersion: "1"', '+  resourceVersion: "2"', '-  replicas: 1', '+  replicas: 3'],
  );
  assert.equal(lastAsked()?.method, 'PATCH');
  assert.equal(lastAsked()?.headers['content-type'], 'application/merge-patch+json');
  assert.equal(lastAsked()?.body, '{"spec":{"replicas":3}}');
  const renamed = await call('POST', '/api/apply', {
    body: {
      yaml: edited.replace('name: web', 'name: web2'),
      original,
      mode: 'edit',
      dryRun: true,
      namespace: '',
    },
  });
  assert.equal(renamed.status, 400);
  assert.match(
    (renamed.data as { error: string }).error,
    /cannot change its apiVersion, kind, name or namespace/,
  );
});

test('asked to, apply takes the fields of other managers (force); an object of a version that is not preferred applies', async () => {
  asked.length = 0;
  const body = { yaml: DEPLOYMENT, mode: 'apply', dryRun: true, namespace: 'team', force: true };
  assert.equal((await call('POST', '/api/apply', { body })).status, 200);
  assert.equal(
    lastAsked()?.path,
    '/apis/apps/v1/namespaces/team/deployments/web?fieldManager=minilab-dashboard&force=true&dryRun=All',
  );
  const crontab = 'apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: c\n';
  const old = await call('POST', '/api/apply', {
    body: { yaml: crontab, mode: 'apply', dryRun: true, namespace: 'team' },
  });
  assert.equal(old.status, 200, JSON.stringify(old.data));
  assert.equal(lastAsked()?.path.split('?')[0], '/apis/stable.example.com/v1/namespaces/team/crontabs/c');
});

test('YAML naming "." or ".." as name or namespace, or a Secret with the page\'s placeholders, is refused before the API is asked', async () => {
  asked.length = 0;
  const secretYaml = (data: string) =>
    `apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: default\ndata:\n  password: ${data}\n`;
  for (const yaml of [
    DEPLOYMENT.replace('name: web', 'name: ".."'),
    DEPLOYMENT.replace('name: web', 'name: web\n  namespace: "."'),
    secretYaml('"(hidden: 7 bytes)"'),
  ]) {
    const r = await call('POST', '/api/apply', {
      body: { yaml, mode: 'apply', dryRun: true, namespace: 'team' },
    });
    assert.equal(r.status, 400, yaml);
  }
  assert.deepEqual(
    asked.filter((a) => !a.path.startsWith('/api?') && a.path !== '/api' && a.path !== '/apis'),
    [],
  );
});

test('a merge patch names what changed, null for what was removed, lists whole', () => {
  const before = { a: 1, b: { c: 2, d: 3 }, list: [1, 2], same: { x: 1 } };
  const after = { a: 1, b: { c: 20 }, list: [1], same: { x: 1 }, added: 'y' };
  assert.deepEqual(mergePatch(before, after), { b: { c: 20, d: null }, list: [1], added: 'y' });
  assert.equal(mergePatch(before, structuredClone(before)), undefined);
});

test("the API's refusals come through as it words them, with its status", async () => {
  const invalid = await call('POST', '/api/apply', {
    body: {
      yaml: DEPLOYMENT.replace('replicas: 1', 'replicas: 11'),
      mode: 'apply',
      dryRun: true,
      namespace: '',
    },
  });
  assert.equal(invalid.status, 422);
  assert.equal(
    (invalid.data as { error: string }).error,
    'Deployment.apps "web" is invalid: spec.replicas: Invalid value: 11: too many',
  );
  const gone = `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: gone, namespace: team}\nspec: {replicas: 2}\n`;
  const missing = await call('POST', '/api/apply', {
    body: { yaml: gone, original: gone, mode: 'edit', dryRun: true, namespace: '' },
  });
  assert.equal(missing.status, 404);
  assert.match((missing.data as { error: string }).error, /^Deployment team\/gone does not exist/);
  const unknown = await call('POST', '/api/apply', {
    body: {
      yaml: 'apiVersion: nope.io/v1\nkind: Thing\nmetadata: {name: a}\n',
      mode: 'apply',
      dryRun: true,
      namespace: '',
    },
  });
  assert.equal(unknown.status, 400);
  assert.match((unknown.data as { error: string }).error, /serves no kind Thing in nope\.io\/v1/);
});

test('applying and deleting need the dashboard origin, like every change', async () => {
  objects.set('/api/v1/namespaces/default/pods/p', {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p' },
  });
  asked.length = 0;
  const body = { yaml: DEPLOYMENT, mode: 'apply', dryRun: false, namespace: '' };
  assert.equal((await call('POST', '/api/apply', { body, origin: false })).status, 403);
  assert.equal((await call('POST', '/api/apply', { body, origin: 'http://evil.example' })).status, 403);
  const del = '/api/object?group=&version=v1&resource=pods&namespace=default&name=p';
  assert.equal((await call('DELETE', del, { origin: false })).status, 403);
  assert.deepEqual(asked, []);
  const deleted = await call('DELETE', del);
  assert.equal(deleted.status, 200, JSON.stringify(deleted.data));
  assert.equal(lastAsked()?.method, 'DELETE');
  assert.ok(!objects.has('/api/v1/namespaces/default/pods/p'));
});

test('without aggregated discovery, each group version is read; one that fails hides only itself', async () => {
  aggregated = false;
  try {
    const kinds = await discoverKinds(clients, true);
    assert.deepEqual(
      kinds.map((k) => `${k.group}/${k.version}/${k.resource}`),
      ['/v1/pods'],
    );
  } finally {
    aggregated = true;
  }
});
