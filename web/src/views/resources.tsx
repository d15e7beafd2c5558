import { useEffect, useMemo, useState } from 'preact/hooks';
import type {
  ResourceEvents,
  ResourceKind,
  ResourceRef,
  ResourceTable,
  ResourceTableRow,
} from '../../../src/dashboard/model.js';
import { api } from '../api.js';
import { NO_SESSION, openEventStream } from '../session.js';
import { NamespaceSelect, Table } from '../components.js';
import { listHref, objectHref, refQuery, type ListFilter } from '../route.js';
import { useStore } from '../store.js';

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

const byName = (a: ResourceTableRow, b: ResourceTableRow) =>
  a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name);

/**
 * The API's table for one kind, kept live while shown: the server lists it, then streams what
 * changes (a watch); the stream reconnects by itself, and each reconnect lists afresh.
 */
function useTable(target: ResourceRef, namespace: string, labels: string) {
  const [table, setTable] = useState<ResourceTable>();
  const [error, setError] = useState('');
  useEffect(() => {
    setTable(undefined);
    const query = refQuery(target, { namespace, labelSelector: labels });
    const stream = openEventStream<ResourceEvents>(`/api/resources/watch?${query}`, {
      on: {
        table: (t) => {
          setTable({ ...t, rows: [...t.rows].sort(byName) });
          setError('');
        },
        changes: ({ upsert, remove }) =>
          setTable((t) => {
            if (!t) return t;
            const rows = new Map(t.rows.map((r) => [r.uid, r]));
            for (const uid of remove) rows.delete(uid);
            for (const r of upsert) rows.set(r.uid, r);
            return { ...t, rows: [...rows.values()].sort(byName) };
          }),
        failure: ({ message }) => setError(message),
      },
      onError: (retrying, status) => {
        if (!retrying) setError(status === 401 ? NO_SESSION : `the list could not be read (HTTP ${status})`);
      },
    });
    return () => stream.close();
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
