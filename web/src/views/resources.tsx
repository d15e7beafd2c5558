import { useEffect, useMemo, useState } from 'preact/hooks';
import type { ResourceKind, ResourceRef, ResourceTable } from '../../../src/dashboard/model.js';
import { api } from '../api.js';
import { NamespaceSelect, Table } from '../components.js';
import { listHref, objectHref, refQuery, type ListFilter } from '../route.js';
import { useStore } from '../store.js';

/** How often an open list is read again: the generic views ask the API, they hold no watch. */
const REFRESH_MS = 5000;

/** Every kind the API server serves, read again each time a view asks (a new CRD shows up). */
export function useKinds(): { kinds?: ResourceKind[]; error: string } {
  const connected = useStore().cluster.state === 'connected';
  const [kinds, setKinds] = useState<ResourceKind[]>();
  const [error, setError] = useState('');
  useEffect(() => {
    if (!connected) return;
    api<ResourceKind[]>('GET', '/api/resources').then(
      (k) => {
        setKinds(k);
        setError('');
      },
      (err: Error) => setError(err.message),
    );
  }, [connected]);
  return { kinds, error };
}

export const sameRef = (a: ResourceRef, b: ResourceRef) =>
  a.group === b.group && a.version === b.version && a.resource === b.resource;

function KindIndex(props: { kinds?: ResourceKind[]; current?: ResourceRef; namespace: string }) {
  const [find, setFind] = useState('');
  const groups = new Map<string, ResourceKind[]>();
  const needle = find.trim().toLowerCase();
  for (const k of props.kinds ?? []) {
    if (needle && !`${k.kind} ${k.resource} ${k.group}`.toLowerCase().includes(needle)) continue;
    const list = groups.get(k.group) ?? [];
    list.push(k);
    groups.set(k.group, list);
  }
  return (
    <nav class="kinds" aria-label="Resource kinds">
      <label class="field">
        <span>Find a kind</span>
        <input type="search" value={find} onInput={(e) => setFind(e.currentTarget.value)} />
      </label>
      {!props.kinds && <p class="hint">Loading kinds…</p>}
      {[...groups].map(([group, kinds]) => (
        <div key={group} class="kind-group">
          <h2>{group || 'core'}</h2>
          <ul>
            {kinds.map((k) => (
              <li key={k.resource}>
                <a
                  href={listHref(k, { namespace: k.namespaced ? props.namespace : '' })}
                  aria-current={props.current && sameRef(k, props.current) ? 'page' : undefined}
                  title={`${k.resource}.${k.group || 'core'}/${k.version}`}
                >
                  {k.kind}
                </a>
              </li>
            ))}
          </ul>
        </div>
      ))}
    </nav>
  );
}

/** The API's table for one kind, read while shown and again every REFRESH_MS. */
function useTable(target: ResourceRef, namespace: string, labels: string) {
  const [table, setTable] = useState<ResourceTable>();
  const [error, setError] = useState('');
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    setTable(undefined);
    const load = async () => {
      if (document.visibilityState !== 'hidden') {
        const query = refQuery(target, { namespace, labelSelector: labels });
        await api<ResourceTable>('GET', `/api/resources/list?${query}`).then(
          (t) => {
            if (stopped) return;
            setTable(t);
            setError('');
          },
          (err: Error) => !stopped && setError(err.message),
        );
      }
      if (!stopped) timer = setTimeout(() => void load(), REFRESH_MS);
    };
    void load();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [target.group, target.version, target.resource, namespace, labels]);
  return { table, error };
}

function KindList(props: { kind: ResourceKind; filter: ListFilter; onFilter: (f: ListFilter) => void }) {
  const { kind, filter } = props;
  const namespace = kind.namespaced ? filter.namespace : '';
  const { table, error } = useTable(kind, namespace, filter.labels);
  const [labels, setLabels] = useState(filter.labels);
  const withNamespace = kind.namespaced && namespace === '';
  const needle = filter.text.trim().toLowerCase();
  const rows = useMemo(
    () =>
      (table?.rows ?? []).filter(
        (r) => !needle || [r.namespace, ...r.cells].join(' ').toLowerCase().includes(needle),
      ),
    [table, needle],
  );
  const columns = table?.columns ?? [];
  const title = `${kind.kind} (${kind.resource}${kind.group ? `.${kind.group}` : ''}/${kind.version})`;
  return (
    <section aria-labelledby="kind-h" class="kind-list">
      <h1 id="kind-h">{title}</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          props.onFilter({ ...filter, labels: labels.trim() });
        }}
      >
        {kind.namespaced && (
          <NamespaceSelect
            value={filter.namespace}
            onChange={(ns) => props.onFilter({ ...filter, namespace: ns })}
          />
        )}
        <label class="field inline">
          <span>Label selector</span>
          <input
            type="text"
            placeholder="app=web,tier!=db"
            value={labels}
            onInput={(e) => setLabels(e.currentTarget.value)}
            onChange={(e) => props.onFilter({ ...filter, labels: e.currentTarget.value.trim() })}
          />
        </label>
        <label class="field inline">
          <span>Filter</span>
          <input
            type="search"
            value={filter.text}
            onInput={(e) => props.onFilter({ ...filter, text: e.currentTarget.value })}
          />
        </label>
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <Table
        label={kind.kind}
        columns={[
          columns[0]?.name ?? 'Name',
          withNamespace && 'Namespace',
          ...columns.slice(1).map((c) => c.name),
        ]}
        rows={rows}
        empty={table ? `No ${kind.resource}${needle ? ' match the filter' : ''}.` : 'Loading…'}
        row={(r) => (
          <tr key={r.uid || `${r.namespace}/${r.name}`}>
            <th scope="row">
              <a href={objectHref(kind, r.namespace, r.name)}>{String(r.cells[0] ?? r.name)}</a>
            </th>
            {withNamespace && <td>{r.namespace}</td>}
            {r.cells.slice(1).map((c, i) => (
              <td key={i}>{c === null ? '' : String(c)}</td>
            ))}
          </tr>
        )}
      />
      {table?.truncated && <p class="hint">Only the first {table.rows.length} are listed.</p>}
    </section>
  );
}

export function Resources(props: { target?: ResourceRef; filter: ListFilter }) {
  const { kinds, error } = useKinds();
  const [filter, setFilter] = useState(props.filter);
  const kind = props.target && kinds?.find((k) => sameRef(k, props.target as ResourceRef));
  const update = (f: ListFilter) => {
    setFilter(f);
    // The link keeps the filter (reload, back, a shared link) without a new history entry each key.
    if (props.target) history.replaceState(null, '', listHref(props.target, f));
  };
  return (
    <div class="resources">
      <KindIndex kinds={kinds} current={props.target} namespace={filter.namespace} />
      <div class="resources-main">
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        {!props.target && (
          <>
            <h1>Resources</h1>
            <p class="hint">
              Every kind the API server serves, custom resources included. Choose one to list its objects.
            </p>
          </>
        )}
        {props.target && kinds && !kind && (
          <p class="error" role="alert">
            The API server serves no {props.target.resource} in{' '}
            {props.target.group ? `${props.target.group}/` : ''}
            {props.target.version}.
          </p>
        )}
        {kind && <KindList kind={kind} filter={filter} onFilter={update} />}
      </div>
    </div>
  );
}
