import { useEffect, useState } from 'preact/hooks';
import type { ClusterState, Row, RowKind, StreamEvents } from '../../src/dashboard/model.js';
import { openEventStream } from './session.js';

/**
 * refused: the server does not take this page's token (none, or one of an earlier run); gone: it has
 * no such profile (deleted while shown).
 */
export type ServerState = 'connecting' | 'open' | 'lost' | 'refused' | 'gone';

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
 * changes). The stream reconnects by itself; every reconnect starts with a fresh snapshot.
 */
class Store {
  private rows = new Map<string, Row>();
  private readonly listeners = new Set<() => void>();
  private stream?: { close(): void };
  server: ServerState = 'connecting';
  cluster: ClusterState = { state: 'connecting' };
  /** False until the first snapshot arrived. */
  loaded = false;

  connect(): void {
    if (this.stream) return;
    this.stream = openEventStream<StreamEvents>('/api/stream', {
      on: {
        snapshot: ({ rows }) =>
          this.set(() => {
            this.rows = new Map(rows.map((r) => [r.uid, r]));
            this.loaded = true;
          }),
        changes: ({ upsert, remove }) =>
          this.set(() => {
            for (const uid of remove) this.rows.delete(uid);
            for (const row of upsert) this.rows.set(row.uid, row);
          }),
        cluster: (state) => this.set(() => (this.cluster = state)),
      },
      onOpen: () => this.set(() => (this.server = 'open')),
      onError: (retrying, status) =>
        this.set(() => {
          if (retrying) this.server = 'connecting';
          else this.server = status === 401 ? 'refused' : status === 404 ? 'gone' : 'lost';
        }),
    });
  }

  /** Starts afresh (another profile's cluster): nothing of the last one stays shown. */
  reconnect(): void {
    this.stream?.close();
    this.stream = undefined;
    this.set(() => {
      this.rows = new Map();
      this.loaded = false;
      this.server = 'connecting';
      this.cluster = { state: 'connecting' };
    });
    this.connect();
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
