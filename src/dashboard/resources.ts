import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { ClusterClients } from './cluster.js';
import { HttpError } from './errors.js';
import { kubeRequest, kubeStream } from './kubeapi.js';
import type {
  Cell,
  ObjectDetail,
  ObjectEvent,
  ResourceKind,
  ResourceRef,
  ResourceTable,
  ResourceTableRow,
  TableColumn,
} from './model.js';

/** Aggregated discovery (GA since Kubernetes 1.30): every group, version and resource in two requests. */
const AGGREGATED = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json';
const TABLE = 'application/json;as=Table;g=meta.k8s.io;v=v1,application/json';

interface DiscoveredResource {
  resource: string;
  responseKind?: { kind?: string };
  scope?: string;
  verbs?: string[];
}
interface AggregatedList {
  kind: 'APIGroupDiscoveryList';
  items: {
    metadata?: { name?: string };
    versions?: { version: string; resources?: DiscoveredResource[] }[];
  }[];
}
interface LegacyResourceList {
  resources: { name: string; kind: string; namespaced: boolean; verbs: string[] }[];
}

/**
 * The kinds the API server lists, in every version it serves (the group's preferred one, first in
 * discovery, marked), sorted by group and kind; subresources (pods/log) and what cannot be listed
 * (tokenreviews) are left out.
 */
export function kindsFromDiscovery(lists: AggregatedList[]): ResourceKind[] {
  const out: ResourceKind[] = [];
  for (const list of lists) {
    for (const group of list.items) {
      for (const [i, v] of (group.versions ?? []).entries()) {
        for (const r of v.resources ?? []) {
          const kind = r.responseKind?.kind;
          if (!kind || r.resource.includes('/') || !(r.verbs ?? []).includes('list')) continue;
          out.push({
            group: group.metadata?.name ?? '',
            version: v.version,
            resource: r.resource,
            kind,
            namespaced: r.scope === 'Namespaced',
            verbs: r.verbs ?? [],
            preferred: i === 0,
          });
        }
      }
    }
  }
  return sortKinds(out);
}

const sortKinds = (kinds: ResourceKind[]) =>
  kinds.sort((a, b) => a.group.localeCompare(b.group) || a.kind.localeCompare(b.kind));

/** The same from the per-version documents, for an API server without aggregated discovery. */
async function legacyDiscovery(clients: ClusterClients): Promise<ResourceKind[]> {
  const groups = await kubeRequest<{
    groups: { name: string; versions?: { version: string }[]; preferredVersion?: { version: string } }[];
  }>(clients.config, { path: '/apis' });
  const versions = [
    { group: '', version: 'v1', path: '/api/v1', preferred: true },
    ...groups.groups.flatMap((g) =>
      (g.versions ?? (g.preferredVersion ? [g.preferredVersion] : [])).map(({ version }) => ({
        group: g.name,
        version,
        path: `/apis/${g.name}/${version}`,
        preferred: version === g.preferredVersion?.version,
      })),
    ),
  ];
  const lists = await Promise.all(
    versions.map(async (v) => {
      // A broken aggregated API (metrics-server starting) must not hide every other group.
      const list = await kubeRequest<LegacyResourceList>(clients.config, { path: v.path }).catch(
        () => undefined,
      );
      return (list?.resources ?? [])
        .filter((r) => !r.name.includes('/') && r.verbs.includes('list'))
        .map((r) => ({ ...v, resource: r.name, kind: r.kind, namespaced: r.namespaced, verbs: r.verbs }));
    }),
  );
  return sortKinds(lists.flat().map(({ path: _path, ...kind }) => kind));
}

const DISCOVERY_TTL_MS = 10_000;
const discovered = new WeakMap<ClusterClients, { at: number; kinds: Promise<ResourceKind[]> }>();

/**
 * Every kind the API server serves, remembered for a few seconds per connection (a CRD just made
 * shows up on the next look, and the page asks once per view, not once per row).
 */
export function discoverKinds(clients: ClusterClients, fresh = false): Promise<ResourceKind[]> {
  const cached = discovered.get(clients);
  if (cached && !fresh && Date.now() - cached.at < DISCOVERY_TTL_MS) return cached.kinds;
  const kinds = (async () => {
    const lists = await Promise.all(
      ['/api', '/apis'].map((path) =>
        kubeRequest<{ kind?: string }>(clients.config, { path, accept: AGGREGATED }),
      ),
    );
    if (lists.every((l) => l.kind === 'APIGroupDiscoveryList'))
      return kindsFromDiscovery(lists as AggregatedList[]);
    return legacyDiscovery(clients);
  })();
  discovered.set(clients, { at: Date.now(), kinds });
  kinds.catch(() => discovered.delete(clients));
  return kinds;
}

/** The kind `same` picks, from discovery as remembered, else as the API server answers now (a CRD just made). */
export async function findKind(
  clients: ClusterClients,
  same: (k: ResourceKind) => boolean,
): Promise<ResourceKind | undefined> {
  return (await discoverKinds(clients)).find(same) ?? (await discoverKinds(clients, true)).find(same);
}

/** The kind that `ref` names, or a 404 saying the server does not serve it. */
export async function kindOf(clients: ClusterClients, ref: ResourceRef): Promise<ResourceKind> {
  const kind = await findKind(
    clients,
    (k) => k.group === ref.group && k.version === ref.version && k.resource === ref.resource,
  );
  if (!kind) {
    const gv = ref.group ? `${ref.group}/${ref.version}` : ref.version;
    throw new HttpError(404, `the API server serves no resource "${ref.resource}" in ${gv}`);
  }
  return kind;
}

/** A name as one segment of an API path: "." and ".." would walk the path instead (no object has them). */
function segment(value: string, what: string): string {
  if (value === '.' || value === '..') throw new HttpError(400, `"${value}" is not a ${what}`);
  return encodeURIComponent(value);
}

/** The API path of a collection or, with a name, of one object. */
export function resourcePath(kind: ResourceKind, namespace: string, name = ''): string {
  const base = kind.group ? `/apis/${kind.group}/${kind.version}` : `/api/${kind.version}`;
  const ns = kind.namespaced && namespace ? `/namespaces/${segment(namespace, 'namespace')}` : '';
  return `${base}${ns}/${kind.resource}${name ? `/${segment(name, 'name')}` : ''}`;
}

interface ApiTable {
  kind?: string;
  metadata?: { continue?: string; resourceVersion?: string };
  columnDefinitions?: (TableColumn & { priority?: number })[];
  rows?: { cells?: unknown[]; object?: { metadata?: k8s.V1ObjectMeta } }[];
  items?: k8s.KubernetesObject[];
}

const LIST_LIMIT = 1000;

const cell = (v: unknown): Cell =>
  v === null || v === undefined || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
    ? (v ?? null)
    : JSON.stringify(v);

/** The printer columns shown (priority 0, the ones kubectl get shows without -o wide), by index. */
const shownColumns = (table: ApiTable) =>
  (table.columnDefinitions ?? []).flatMap((c, i) => ((c.priority ?? 0) === 0 ? [i] : []));

/** A Table's rows with the cells of the columns at `shown`. */
const tableRows = (table: ApiTable, shown: number[]): ResourceTableRow[] =>
  (table.rows ?? []).map((r) => ({
    uid: r.object?.metadata?.uid ?? '',
    name: r.object?.metadata?.name ?? '',
    namespace: r.object?.metadata?.namespace ?? '',
    cells: shown.map((i) => cell(r.cells?.[i])),
  }));

/**
 * The rows as the API server renders them for kubectl get: its printer columns (priority 0, the
 * ones shown without -o wide), and of each object only its name, namespace and uid (never the rest
 * of its metadata: a Secret's last-applied annotation holds its values).
 */
export function tableFromApi(table: ApiTable): ResourceTable {
  if (table.kind !== 'Table') {
    // An API server that renders no Table: name and age, as kubectl prints then.
    return {
      columns: [
        { name: 'Name', type: 'string', format: 'name', description: 'Name of the object' },
        { name: 'Created', type: 'string', format: 'date-time', description: 'When it was created' },
      ],
      rows: (table.items ?? []).map((o) => ({
        uid: o.metadata?.uid ?? '',
        name: o.metadata?.name ?? '',
        namespace: o.metadata?.namespace ?? '',
        cells: [o.metadata?.name ?? '', cell(o.metadata?.creationTimestamp)],
      })),
      truncated: Boolean(table.metadata?.continue),
    };
  }
  const all = table.columnDefinitions ?? [];
  const shown = shownColumns(table);
  return {
    columns: shown.map((i) => {
      const c = all[i] as TableColumn;
      return { name: c.name, type: c.type, format: c.format, description: c.description };
    }),
    rows: tableRows(table, shown),
    truncated: Boolean(table.metadata?.continue),
  };
}

/** The list of one kind, in one namespace or all, optionally by label selector, as a Table. */
async function listTable(
  clients: ClusterClients,
  kind: ResourceKind,
  namespace: string,
  labelSelector: string,
): Promise<ApiTable> {
  const query = new URLSearchParams({ limit: String(LIST_LIMIT), includeObject: 'Metadata' });
  if (labelSelector) query.set('labelSelector', labelSelector);
  return kubeRequest<ApiTable>(clients.config, {
    path: `${resourcePath(kind, namespace)}?${query}`,
    accept: TABLE,
  });
}

/**
 * How long one watch runs before the API server ends it; the list is read afresh then (as the
 * client's informers do every few minutes), which also repairs anything a watch could have missed.
 */
const WATCH_S = 300;
/** Changes within this long go to the page together (a thousand objects made at once: a few messages). */
const BATCH_MS = 100;

/**
 * A list kept live: the Table (`table`), then each change as it happens (`changes`: rows made or
 * changed, uids gone), from a watch with the same Table rendering that kubectl get --watch uses
 * (every event one object as a one-row Table). Resolves when the watch ends (the API server's
 * WATCH_S, its resourceVersion expired, `signal` aborted): the caller lists again. A list cut at
 * LIST_LIMIT is not watched (the watch would add what the page never listed): it resolves after
 * `rereadMs` instead. A refusal throws.
 */
export async function watchResource(
  clients: ClusterClients,
  ref: ResourceRef,
  namespace: string,
  labelSelector: string,
  send: {
    table(table: ResourceTable): void;
    changes(changes: { upsert: ResourceTableRow[]; remove: string[] }): void;
  },
  signal: AbortSignal,
  rereadMs = 5000,
): Promise<void> {
  const kind = await kindOf(clients, ref);
  const listed = await listTable(clients, kind, namespace, labelSelector);
  const table = tableFromApi(listed);
  send.table(table);
  const version = listed.metadata?.resourceVersion;
  if (table.truncated || !version || listed.kind !== 'Table' || !kind.verbs.includes('watch')) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, rereadMs);
      signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
    return;
  }
  const shown = shownColumns(listed);
  const query = new URLSearchParams({
    watch: '1',
    resourceVersion: version,
    timeoutSeconds: String(WATCH_S),
    includeObject: 'Metadata',
  });
  if (labelSelector) query.set('labelSelector', labelSelector);
  let pending = { upsert: new Map<string, ResourceTableRow>(), remove: new Set<string>() };
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (pending.upsert.size === 0 && pending.remove.size === 0) return;
    const { upsert, remove } = pending;
    pending = { upsert: new Map(), remove: new Set() };
    send.changes({ upsert: [...upsert.values()], remove: [...remove] });
  };
  let expired = false;
  const stop = new AbortController();
  const abort = () => stop.abort();
  signal.addEventListener('abort', abort, { once: true });
  try {
    await kubeStream(
      clients.config,
      { path: `${resourcePath(kind, namespace)}?${query}`, accept: TABLE },
      (event) => {
        const e = event as { type?: string; object?: ApiTable };
        if (e.type === 'ERROR') {
          // 410 Gone: the version is too old to watch from. Listing again gives a new one.
          expired = true;
          return stop.abort();
        }
        if (e.type !== 'ADDED' && e.type !== 'MODIFIED' && e.type !== 'DELETED') return;
        for (const row of tableRows(e.object ?? {}, shown)) {
          if (e.type === 'DELETED') {
            pending.upsert.delete(row.uid);
            pending.remove.add(row.uid);
          } else {
            pending.remove.delete(row.uid);
            pending.upsert.set(row.uid, row);
          }
        }
        timer ??= setTimeout(flush, BATCH_MS);
      },
      stop.signal,
    );
  } finally {
    signal.removeEventListener('abort', abort);
    if (signal.aborted || expired) clearTimeout(timer);
    else flush();
  }
}

const HIDDEN_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

const isSecret = (o: k8s.KubernetesObject) => o.kind === 'Secret' && o.apiVersion === 'v1';

/**
 * A Secret as it may be shown: every value replaced by its size (and whether it differs from the
 * same key in `before`, for a diff); kubectl's last-applied annotation, which holds the values in
 * clear, replaced too. Other objects come back as they are.
 */
export function hideSecretValues(
  obj: k8s.KubernetesObject,
  before?: k8s.KubernetesObject,
): k8s.KubernetesObject {
  if (!isSecret(obj)) return obj;
  const s = obj as k8s.V1Secret;
  const old = before as k8s.V1Secret | undefined;
  const hide = (
    values: Record<string, string> | undefined,
    oldValues: Record<string, string> | undefined,
    base64: boolean,
  ) =>
    values &&
    Object.fromEntries(
      Object.entries(values).map(([key, value]) => {
        const bytes = base64 ? Buffer.from(value, 'base64').length : Buffer.byteLength(value);
        const changed = old !== undefined && oldValues?.[key] !== value ? ', changed' : '';
        return [key, `(hidden: ${bytes} bytes${changed})`];
      }),
    );
  const annotations = s.metadata?.annotations;
  return {
    ...s,
    metadata: {
      ...s.metadata,
      ...(annotations?.[HIDDEN_ANNOTATION] !== undefined
        ? { annotations: { ...annotations, [HIDDEN_ANNOTATION]: '(hidden: holds the values)' } }
        : {}),
    },
    ...(s.data ? { data: hide(s.data, old?.data, true) } : {}),
    ...(s.stringData ? { stringData: hide(s.stringData, old?.stringData, false) } : {}),
  } as k8s.KubernetesObject;
}

/**
 * Whether a Secret's YAML carries what hideSecretValues shows in place of its values (copied from
 * the page): applied, it would write the placeholders as values.
 */
export function holdsHiddenPlaceholders(obj: k8s.KubernetesObject): boolean {
  if (!isSecret(obj)) return false;
  const s = obj as k8s.V1Secret;
  const values = [
    ...Object.values(s.data ?? {}),
    ...Object.values(s.stringData ?? {}),
    s.metadata?.annotations?.[HIDDEN_ANNOTATION],
  ];
  return values.some((v) => typeof v === 'string' && v.startsWith('(hidden: '));
}

/** The object as YAML for people: without managedFields, a Secret's values hidden. */
export function objectYaml(obj: k8s.KubernetesObject, before?: k8s.KubernetesObject): string {
  const shown = hideSecretValues(obj, before);
  const { managedFields: _managed, ...metadata } = shown.metadata ?? {};
  return stringify({ ...shown, metadata }, { aliasDuplicateObjects: false });
}

/** Reads one object; 404 says which. */
export function readObject(
  clients: ClusterClients,
  kind: ResourceKind,
  namespace: string,
  name: string,
): Promise<k8s.KubernetesObject> {
  return kubeRequest<k8s.KubernetesObject>(clients.config, { path: resourcePath(kind, namespace, name) });
}

/** Events whose involved object is `uid`, newest first. */
async function eventsOf(clients: ClusterClients, namespace: string, uid: string): Promise<ObjectEvent[]> {
  const query = new URLSearchParams({ fieldSelector: `involvedObject.uid=${uid}` });
  const path = `${namespace ? `/api/v1/namespaces/${encodeURIComponent(namespace)}` : '/api/v1'}/events?${query}`;
  const list = await kubeRequest<k8s.CoreV1EventList>(clients.config, { path });
  return list.items
    .map((e) => ({
      type: e.type ?? '',
      reason: e.reason ?? '',
      message: e.message ?? '',
      count: e.count ?? e.series?.count ?? 1,
      last: String(e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp ?? ''),
    }))
    .sort((a, b) => b.last.localeCompare(a.last));
}

/** One object for the detail view: YAML (a Secret's values hidden) and its events. */
export async function objectDetail(
  clients: ClusterClients,
  ref: ResourceRef,
  namespace: string,
  name: string,
): Promise<ObjectDetail> {
  const kind = await kindOf(clients, ref);
  const obj = await readObject(clients, kind, namespace, name);
  const uid = obj.metadata?.uid ?? '';
  const detail: ObjectDetail = {
    kind: kind.kind,
    apiVersion: obj.apiVersion ?? '',
    uid,
    yaml: objectYaml(obj),
    events: uid ? await eventsOf(clients, kind.namespaced ? namespace : '', uid) : [],
  };
  if (isSecret(obj)) {
    const data = (obj as k8s.V1Secret).data ?? {};
    detail.secretKeys = Object.keys(data)
      .sort()
      .map((key) => ({ key, bytes: Buffer.from(data[key] ?? '', 'base64').length }));
  }
  return detail;
}

/**
 * One value of a Secret, decoded, for the user who asked to see it. Text as text; anything that is
 * not UTF-8 as base64, said so.
 */
export async function secretValue(
  clients: ClusterClients,
  namespace: string,
  name: string,
  key: string,
): Promise<{ value: string; encoding: 'utf8' | 'base64' }> {
  const secret = await clients.core.readNamespacedSecret({ namespace, name });
  const encoded = secret.data?.[key];
  if (encoded === undefined || !Object.hasOwn(secret.data ?? {}, key)) {
    throw new HttpError(404, `secret ${namespace}/${name} has no key "${key}"`);
  }
  const raw = Buffer.from(encoded, 'base64');
  try {
    return { value: new TextDecoder('utf-8', { fatal: true }).decode(raw), encoding: 'utf8' };
  } catch {
    return { value: encoded, encoding: 'base64' };
  }
}

/** Deletes one object, as kubectl delete does (dependents by the garbage collector, in the background). */
export async function deleteObject(
  clients: ClusterClients,
  ref: ResourceRef,
  namespace: string,
  name: string,
): Promise<void> {
  const kind = await kindOf(clients, ref);
  if (!kind.verbs.includes('delete')) throw new HttpError(405, `${kind.resource} cannot be deleted`);
  await kubeRequest(clients.config, {
    method: 'DELETE',
    path: resourcePath(kind, namespace, name),
    contentType: 'application/json',
    body: JSON.stringify({ kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' }),
  });
}
