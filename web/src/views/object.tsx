import { useEffect, useState } from 'preact/hooks';
import type { ObjectDetail, ResourceRef } from '../../../src/dashboard/model.js';
import { api } from '../api.js';
import { ConfirmDialog, EventsTable, Table, notify } from '../components.js';
import { listHref, objectHref, refQuery } from '../route.js';
import { useNow } from '../store.js';

const isSecretRef = (ref: ResourceRef) => ref.group === '' && ref.resource === 'secrets';

/** One value of a Secret: hidden until asked for, read from the server only then. */
function SecretValue(props: { namespace: string; name: string; entry: string; bytes: number }) {
  const [shown, setShown] = useState<{ value: string; encoding: string }>();
  const [error, setError] = useState('');
  const reveal = () =>
    api<{ value: string; encoding: string }>(
      'GET',
      `/api/secret?${new URLSearchParams({ namespace: props.namespace, name: props.name, key: props.entry })}`,
    ).then(setShown, (err: Error) => setError(err.message));
  return (
    <tr>
      <th scope="row">{props.entry}</th>
      <td>{props.bytes} bytes</td>
      <td class="secret-value">
        {shown ? (
          <>
            <code aria-label={`Value of ${props.entry}`}>{shown.value}</code>
            {shown.encoding === 'base64' && <span class="hint"> (binary, shown as base64)</span>}
          </>
        ) : (
          <span class="hidden-value" aria-label={`Value of ${props.entry} is hidden`}>
            ••••••••
          </span>
        )}
        {error && <span class="error"> {error}</span>}
      </td>
      <td>
        <button
          type="button"
          aria-label={`${shown ? 'Hide' : 'Reveal'} ${props.entry}`}
          onClick={() => (shown ? setShown(undefined) : void reveal())}
        >
          {shown ? 'Hide' : 'Reveal'}
        </button>
      </td>
    </tr>
  );
}

/** One object of any kind: its YAML, its events, and for a Secret its keys with values on request. */
export function ObjectView(props: { target: ResourceRef; namespace: string; name: string }) {
  const { target, namespace, name } = props;
  const now = useNow();
  const [detail, setDetail] = useState<ObjectDetail>();
  const [error, setError] = useState('');
  const [confirm, setConfirm] = useState(false);
  useEffect(() => {
    setDetail(undefined);
    setError('');
    const query = refQuery(target, { namespace, name });
    api<ObjectDetail>('GET', `/api/object?${query}`).then(setDetail, (err: Error) => setError(err.message));
  }, [target.group, target.version, target.resource, namespace, name]);
  const kind = detail?.kind ?? target.resource;
  const title = `${kind} ${namespace ? `${namespace}/` : ''}${name}`;
  return (
    <>
      <div class="section-head">
        <h1>{title}</h1>
        <div class="actions">
          <a class="button" href={listHref(target, { namespace })}>
            All {target.resource}
          </a>
          {!isSecretRef(target) && (
            <a class="button" href={objectHref(target, namespace, name, 'edit')}>
              Edit
            </a>
          )}
          <button type="button" class="danger-text" onClick={() => setConfirm(true)}>
            Delete
          </button>
        </div>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {detail?.secretKeys && (
        <section aria-labelledby="secret-h">
          <h2 id="secret-h">Data</h2>
          <p class="hint">
            Values stay hidden until you reveal one. To change a Secret, paste its YAML under Create.
          </p>
          <Table
            label="Secret data"
            columns={['Key', 'Size', 'Value', 'Actions']}
            rows={detail.secretKeys}
            empty="No data."
            row={(k) => (
              <SecretValue key={k.key} namespace={namespace} name={name} entry={k.key} bytes={k.bytes} />
            )}
          />
        </section>
      )}
      <section aria-labelledby="events-h">
        <h2 id="events-h">Events</h2>
        <EventsTable
          label="Events"
          events={detail?.events ?? []}
          empty={detail ? 'No events about this object.' : 'Loading…'}
          now={now}
        />
      </section>
      <section aria-labelledby="yaml-h">
        <div class="section-head">
          <h2 id="yaml-h">YAML</h2>
          <button
            type="button"
            disabled={!detail}
            onClick={() =>
              void navigator.clipboard.writeText(detail?.yaml ?? '').then(
                () => notify('YAML copied.'),
                () => notify('Copying is not allowed here.'),
              )
            }
          >
            Copy
          </button>
        </div>
        <pre class="yaml" tabIndex={0} aria-label={`YAML of ${title}`} aria-busy={!detail}>
          {detail?.yaml ?? 'Loading…'}
        </pre>
      </section>
      {confirm && (
        <ConfirmDialog
          title={`Delete ${title}?`}
          confirmLabel={`Delete ${kind}`}
          danger
          onClose={() => setConfirm(false)}
          onConfirm={async () => {
            await api('DELETE', `/api/object?${refQuery(target, { namespace, name })}`);
            location.hash = listHref(target, { namespace });
            return `Deleting ${title}.`;
          }}
        >
          <p>The API server deletes it; what it owns (pods of a Deployment, say) goes too.</p>
        </ConfirmDialog>
      )}
    </>
  );
}
