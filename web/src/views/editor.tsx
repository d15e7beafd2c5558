import { useEffect, useState } from 'preact/hooks';
import type { ApplyAnswer, ObjectDetail, ResourceRef } from '../../../src/dashboard/model.js';
import { api } from '../api.js';
import { notify } from '../components.js';
import { objectHref, refQuery } from '../route.js';
import { useStore } from '../store.js';

const EXAMPLE = `apiVersion: v1
kind: ConfigMap
metadata:
  name: example
data:
  greeting: hello
`;

function Diff(props: { answer: ApplyAnswer }) {
  const { answer } = props;
  const what = `${answer.kind} ${answer.namespace ? `${answer.namespace}/` : ''}${answer.name}`;
  if (answer.diff.length === 0) return <p class="hint">{what}: the API server would change nothing.</p>;
  return (
    <>
      <p class="hint">
        {answer.created
          ? `${what} would be created:`
          : `Changes to ${what}, as the API server would make them:`}
      </p>
      <pre class="diff" tabIndex={0} aria-label={`Changes to ${what}`}>
        {answer.diff.map((h) => (
          <span key={`${h.oldStart}-${h.newStart}`}>
            <span class="diff-hunk">{`@@ -${h.oldStart} +${h.newStart} @@\n`}</span>
            {h.lines.map((line, i) => (
              <span
                key={i}
                class={line.startsWith('+') ? 'diff-add' : line.startsWith('-') ? 'diff-del' : undefined}
              >{`${line}\n`}</span>
            ))}
          </span>
        ))}
      </pre>
    </>
  );
}

/**
 * YAML in, a server-side dry run's diff out, then apply. `target` set: edits that live object (its
 * YAML loaded; what the user changed in it is sent). Unset: creates or updates by server-side apply.
 */
export function Editor(props: { target?: ResourceRef; namespace?: string; name?: string }) {
  const editing = props.target !== undefined;
  const store = useStore();
  const [text, setText] = useState(editing ? '' : EXAMPLE);
  const [namespace, setNamespace] = useState(() => sessionStorage.getItem('namespace') || 'default');
  const [preview, setPreview] = useState<ApplyAnswer>();
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [kind, setKind] = useState('');
  const [original, setOriginal] = useState('');
  /**
   * The last preview or apply was refused for fields another manager owns (kubectl's, a
   * controller's): it may be sent again taking them, and the apply after a forced preview is forced.
   */
  const [conflict, setConflict] = useState<'preview' | 'apply'>();
  const [forced, setForced] = useState(false);
  useEffect(() => {
    if (!props.target) return;
    const query = refQuery(props.target, { namespace: props.namespace ?? '', name: props.name ?? '' });
    api<ObjectDetail>('GET', `/api/object?${query}`).then(
      (d) => {
        setText(d.yaml);
        setOriginal(d.yaml);
        setKind(d.kind);
      },
      (err: Error) => setError(err.message),
    );
  }, [props.target?.group, props.target?.version, props.target?.resource, props.namespace, props.name]);

  const send = async (dryRun: boolean, force = forced) => {
    setBusy(true);
    setError('');
    setConflict(undefined);
    setForced(force);
    try {
      const answer = await api<ApplyAnswer>('POST', '/api/apply', {
        yaml: text,
        mode: editing ? 'edit' : 'apply',
        original: editing ? original : undefined,
        dryRun,
        namespace,
        force,
      });
      if (dryRun) setPreview(answer);
      else {
        const what = `${answer.kind} ${answer.namespace ? `${answer.namespace}/` : ''}${answer.name}`;
        notify(`${what} ${answer.created ? 'created' : 'applied'}.`);
        location.hash = objectHref(answer.ref, answer.namespace, answer.name);
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      setError(message);
      // The API server's words for a field another manager owns (HTTP 409 on server-side apply).
      const refused = !editing && /^Apply failed with \d+ conflicts?/.test(message);
      setConflict(refused ? (dryRun ? 'preview' : 'apply') : undefined);
      setPreview(undefined);
    } finally {
      setBusy(false);
    }
  };
  const title = editing
    ? `Edit ${kind || props.target?.resource} ${props.namespace ? `${props.namespace}/` : ''}${props.name}`
    : 'Create or apply';
  return (
    <>
      <div class="section-head">
        <h1>{title}</h1>
        {editing && props.target && (
          <div class="actions">
            <a class="button" href={objectHref(props.target, props.namespace ?? '', props.name ?? '')}>
              Cancel
            </a>
          </div>
        )}
      </div>
      <p class="hint">
        {editing
          ? 'What you change here is changed in the object (a removed field is removed), as kubectl edit does.'
          : 'One object: created if new, else the fields it names are applied (server-side apply).'}{' '}
        Preview asks the API server for a dry run; nothing changes until you apply.
      </p>
      {!editing && (
        <label class="field inline">
          <span>Namespace for an object without one</span>
          <select
            value={namespace}
            onChange={(e) => {
              setNamespace(e.currentTarget.value);
              // The preview was of the other namespace.
              setPreview(undefined);
              setForced(false);
            }}
          >
            {[...new Set(['default', namespace, ...store.list('Namespace').map((n) => n.name)])].map((ns) => (
              <option key={ns} value={ns}>
                {ns}
              </option>
            ))}
          </select>
        </label>
      )}
      <label class="field">
        <span>YAML</span>
        <textarea
          class="editor"
          spellcheck={false}
          autocomplete="off"
          value={text}
          onInput={(e) => {
            setText(e.currentTarget.value);
            // A preview is of the text it was made from: any change asks for a new one.
            setPreview(undefined);
            setForced(false);
          }}
        />
      </label>
      <div class="actions editor-actions">
        <button type="button" disabled={busy || !text.trim()} onClick={() => void send(true)}>
          Preview changes
        </button>
        <button
          type="button"
          class="primary"
          disabled={busy || !preview || preview.diff.length === 0}
          onClick={() => void send(false)}
        >
          Apply
        </button>
        {conflict && (
          <button
            type="button"
            class="danger"
            disabled={busy}
            onClick={() => void send(conflict === 'preview', true)}
          >
            {conflict === 'preview' ? 'Preview taking those fields' : 'Apply taking those fields'}
          </button>
        )}
      </div>
      {error && (
        <pre class="error api-error" role="alert">
          {error}
        </pre>
      )}
      {preview && <Diff answer={preview} />}
    </>
  );
}
