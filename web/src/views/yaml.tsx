import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { notify } from '../components.js';

export function YamlView(props: { kind: string; namespace: string; name: string }) {
  const [text, setText] = useState<string>();
  const [error, setError] = useState('');
  useEffect(() => {
    setText(undefined);
    setError('');
    const params = new URLSearchParams({ kind: props.kind, namespace: props.namespace, name: props.name });
    api<string>('GET', `/api/yaml?${params}`).then(setText, (err: Error) => setError(err.message));
  }, [props.kind, props.namespace, props.name]);
  const title = `${props.kind} ${props.namespace ? `${props.namespace}/` : ''}${props.name}`;
  return (
    <>
      <div class="section-head">
        <h1>{title}</h1>
        <div class="actions">
          <button type="button" onClick={() => history.back()}>
            Back
          </button>
          <button
            type="button"
            disabled={text === undefined}
            onClick={() =>
              void navigator.clipboard.writeText(text ?? '').then(
                () => notify('YAML copied.'),
                () => notify('Copying is not allowed here.'),
              )
            }
          >
            Copy
          </button>
        </div>
      </div>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : (
        <pre class="yaml" tabIndex={0} aria-label={`YAML of ${title}`} aria-busy={text === undefined}>
          {text ?? 'Loading…'}
        </pre>
      )}
    </>
  );
}
