import type { ComponentChildren } from 'preact';
import { useEffect, useId, useRef, useState } from 'preact/hooks';
import type { ObjectEvent } from '../../src/dashboard/model.js';
import { age } from './format.js';
import { yamlHref } from './route.js';
import { useStore } from './store.js';

/**
 * A table in a scrollable, keyboard-focusable frame (narrow windows scroll it sideways). `columns` names
 * the header cells (`false` leaves one out); `row` renders one `<tr>`; `empty` is the row shown when there
 * are no rows (none if not given).
 */
export function Table<T>(props: {
  label: string;
  columns: (string | false)[];
  rows: T[];
  row: (r: T) => ComponentChildren;
  empty?: ComponentChildren;
}) {
  const columns = props.columns.filter((c) => c !== false);
  return (
    <div class="table-frame" role="region" aria-label={props.label} tabIndex={0}>
      <table>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c} scope="col">
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.length === 0 && props.empty !== undefined && (
            <tr>
              <td colSpan={columns.length} class="empty">
                {props.empty}
              </td>
            </tr>
          )}
          {props.rows.map((r) => props.row(r))}
        </tbody>
      </table>
    </div>
  );
}

/** The "YAML" button of a table row, named after the row for screen readers. */
export function YamlLink(props: { kind: string; namespace: string; name: string }) {
  return (
    <a
      class="button"
      href={yamlHref(props.kind, props.namespace, props.name)}
      aria-label={`YAML of ${props.name}`}
    >
      YAML
    </a>
  );
}

export type Tone = 'ok' | 'warn' | 'bad' | 'idle';

export function Badge(props: { tone: Tone; children: ComponentChildren }) {
  return <span class={`badge badge-${props.tone}`}>{props.children}</span>;
}

export function podTone(status: string, ready: boolean): Tone {
  if (status === 'Running') return ready ? 'ok' : 'warn';
  if (status === 'Succeeded' || status === 'Completed') return 'idle';
  if (/Pending|ContainerCreating|PodInitializing|Init:\d|Terminating/.test(status)) return 'warn';
  return 'bad';
}

let announce: (message: string) => void = () => undefined;

/** Says what just happened, in a polite live region (read out by screen readers). */
export function notify(message: string): void {
  announce(message);
}

export function Announcer() {
  const [message, setMessage] = useState('');
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    announce = (m) => {
      setMessage(m);
      clearTimeout(timer);
      timer = setTimeout(() => setMessage(''), 6000);
    };
    return () => clearTimeout(timer);
  }, []);
  return (
    <div class={message ? 'notice visible' : 'notice'} role="status" aria-live="polite">
      {message}
    </div>
  );
}

/**
 * A modal confirmation (native <dialog>: focus stays inside, Escape cancels). `onConfirm` returns the
 * message to announce; a failure is shown inside the dialog.
 */
export function ConfirmDialog(props: {
  title: string;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => Promise<string>;
  onClose: () => void;
  children?: ComponentChildren;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      notify(await props.onConfirm());
      ref.current?.close();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };
  return (
    <dialog ref={ref} aria-labelledby={titleId} onClose={props.onClose}>
      <form onSubmit={submit}>
        <h2 id={titleId}>{props.title}</h2>
        {props.children}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <div class="dialog-actions">
          <button type="button" onClick={() => ref.current?.close()}>
            Cancel
          </button>
          <button type="submit" class={props.danger ? 'danger' : 'primary'} disabled={busy}>
            {busy ? 'Working…' : props.confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}

/** Events about one object, newest first as given. */
export function EventsTable(props: {
  label: string;
  events: (ObjectEvent & { uid?: string })[];
  empty: string;
  now: number;
}) {
  return (
    <Table
      label={props.label}
      columns={['Last seen', 'Type', 'Reason', 'Message', 'Count']}
      rows={props.events}
      empty={props.empty}
      row={(e) => (
        <tr key={e.uid ?? `${e.last}-${e.reason}-${e.message}`}>
          <td>{age(e.last, props.now)}</td>
          <td>
            <Badge tone={e.type === 'Warning' ? 'warn' : 'idle'}>{e.type}</Badge>
          </td>
          <td>{e.reason}</td>
          <td class="message">{e.message}</td>
          <td>{e.count}</td>
        </tr>
      )}
    />
  );
}

/** A choice of namespace from the live list ("" is all of them); one not (or no longer) listed stays. */
export function NamespaceSelect(props: {
  value: string;
  onChange: (namespace: string) => void;
  class?: string;
}) {
  const namespaces = useStore()
    .list('Namespace')
    .map((n) => n.name);
  return (
    <label class={`field inline ${props.class ?? ''}`}>
      <span>Namespace</span>
      <select value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
        <option value="">All namespaces</option>
        {(namespaces.includes(props.value) || props.value === ''
          ? namespaces
          : [...namespaces, props.value]
        ).map((ns) => (
          <option key={ns} value={ns}>
            {ns}
          </option>
        ))}
      </select>
    </label>
  );
}
