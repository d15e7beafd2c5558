import { useEffect, useState } from 'preact/hooks';
import type { ClusterState, Row, RowKind, StreamEvents } from '../../src/dashboard/model.js';

export type ServerState = 'connecting' | 'open' | 'lost';

/** The row type of a kind (WorkloadRow serves three kinds). */
type RowOf<K extends RowKind> = Row extends infer R
  ? R extends Row
    ? K extends R['kind']
      ? R
      : never
    : never
  : never;

/**
 * The page's copy of the cluster: one server-sent event stream fills it (a snapshot, then batches of
 * changes). EventSource reconnects by itself; every reconnect starts with a fresh snapshot.
 */
class Store {
  private rows = new Map<string, Row>();
  private readonly listeners = new Set<() => void>();
  private source?: EventSource;
  server: ServerState = 'connecting';
  cluster: ClusterState = { state: 'connecting' };
  /** False until the first snapshot arrived. */
  loaded = false;

  connect(): void {
    if (this.source) return;
    const source = new EventSource('/api/stream');
    this.source = source;
    source.onopen = () => this.set(() => (this.server = 'open'));
    source.onerror = () =>
      this.set(() => (this.server = source.readyState === EventSource.CLOSED ? 'lost' : 'connecting'));
    const on = <K extends keyof StreamEvents>(event: K, fn: (data: StreamEvents[K]) => void) =>
      source.addEventListener(event, (e) => this.set(() => fn(JSON.parse((e as MessageEvent<string>).data))));
    on('snapshot', ({ rows }) => {
      this.rows = new Map(rows.map((r) => [r.uid, r]));
      this.loaded = true;
    });
    on('changes', ({ upsert, remove }) => {
      for (const uid of remove) this.rows.delete(uid);
      for (const row of upsert) this.rows.set(row.uid, row);
    });
    on('cluster', (state) => (this.cluster = state));
  }

  private set(change: () => void): void {
    change();
    for (const l of this.listeners) l();
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  list<K extends RowKind>(kind: K, namespace = ''): RowOf<K>[] {
    const out: RowOf<K>[] = [];
    for (const row of this.rows.values()) {
      if (row.kind === kind && (namespace === '' || row.namespace === namespace)) out.push(row as RowOf<K>);
    }
    return out.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  }

  find<K extends RowKind>(kind: K, namespace: string, name: string): RowOf<K> | undefined {
    for (const row of this.rows.values()) {
      if (row.kind === kind && row.namespace === namespace && row.name === name) return row as RowOf<K>;
    }
    return undefined;
  }
}

export const store = new Store();

/** Re-renders the calling component whenever the store changes. */
export function useStore(): Store {
  const [, setVersion] = useState(0);
  useEffect(() => store.subscribe(() => setVersion((v) => v + 1)), []);
  return store;
}

/** The current time, refreshed every `ms` so ages stay right between changes. */
export function useNow(ms = 5000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}
