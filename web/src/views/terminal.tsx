import { useEffect, useRef, useState } from 'preact/hooks';
import type { Terminal as XTerm } from '@xterm/xterm';
import { SHELLS } from '../../../src/dashboard/model.js';
import { api } from '../api.js';
import { notify } from '../components.js';
import { podHref } from '../route.js';
import { useStore } from '../store.js';

type Notice = { type: 'exit' | 'error'; message: string };

/**
 * Runs `make` with every <style> element made meanwhile given the page's style nonce, and puts
 * document.createElement back after: xterm.js makes its <style> elements (colours, cell sizes)
 * when a terminal opens and first fits, later changes rewrite their text, and the page's content
 * security policy admits only styles with the nonce.
 */
function withStampedStyles<T>(make: () => T): T {
  const nonce = document.querySelector<HTMLMetaElement>('meta[name="style-nonce"]')?.content;
  if (!nonce) return make();
  const original = document.createElement;
  const create = original.bind(document);
  document.createElement = ((tag: string, options?: ElementCreationOptions) => {
    const element = create(tag, options);
    if (element instanceof HTMLStyleElement) element.nonce = nonce;
    return element;
  }) as typeof document.createElement;
  try {
    return make();
  } finally {
    document.createElement = original;
  }
}

/**
 * xterm.js and its stylesheet, loaded when a terminal first opens: most visits never need it, and
 * the first page stays as small as before.
 */
async function loadXterm() {
  const [{ Terminal }, { FitAddon }] = await Promise.all([
    import('@xterm/xterm'),
    import('@xterm/addon-fit'),
    import('@xterm/xterm/css/xterm.css'),
  ]);
  return { Terminal, FitAddon };
}

/** One shell session: the page's WebSocket to the dashboard server, which joins it to the exec. */
function Session(props: {
  namespace: string;
  pod: string;
  container: string;
  shell: string;
  onEnd: (why: string) => void;
}) {
  const host = useRef<HTMLDivElement>(null);
  const term = useRef<XTerm | undefined>(undefined);
  const [status, setStatus] = useState('Connecting…');
  useEffect(() => {
    let socket: WebSocket | undefined;
    let observer: ResizeObserver | undefined;
    let stopped = false;
    void (async () => {
      const { Terminal, FitAddon } = await loadXterm();
      if (stopped || !host.current) return;
      const where = host.current;
      const fit = new FitAddon();
      const t = withStampedStyles(() => {
        const made = new Terminal({
          cursorBlink: true,
          fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace',
          fontSize: 14,
        });
        made.loadAddon(fit);
        made.open(where);
        fit.fit();
        return made;
      });
      term.current = t;
      // Tab goes to the shell (completion), so the keyboard could not leave the terminal: Escape then
      // Tab moves the focus on instead, as in CodeMirror (Escape still reaches the shell).
      let escaped = false;
      t.attachCustomKeyEventHandler((e) => {
        if (e.type !== 'keydown' || ['Shift', 'Control', 'Alt', 'Meta'].includes(e.key)) return true;
        const leave = escaped && e.key === 'Tab';
        escaped = e.key === 'Escape';
        return !leave;
      });
      const { path } = await api<{ path: string }>('POST', '/api/terminal', {
        namespace: props.namespace,
        pod: props.pod,
        container: props.container,
        shell: props.shell,
        cols: t.cols,
        rows: t.rows,
      }).catch((err: Error) => {
        props.onEnd(err.message);
        return { path: '' };
      });
      if (stopped || !path) return;
      const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`);
      socket = ws;
      ws.binaryType = 'arraybuffer';
      const encoder = new TextEncoder();
      ws.onopen = () => {
        setStatus(`Connected to ${props.container} in ${props.namespace}/${props.pod} (${props.shell})`);
        // Resizes while it connected were not sent: the size it has now is.
        ws.send(JSON.stringify({ type: 'resize', cols: t.cols, rows: t.rows }));
        t.focus();
      };
      ws.onmessage = (e: MessageEvent<ArrayBuffer | string>) => {
        if (typeof e.data !== 'string') return t.write(new Uint8Array(e.data));
        const n = JSON.parse(e.data) as Notice;
        setStatus(n.type === 'exit' ? `Session ended: ${n.message}` : n.message);
        if (n.type === 'error') props.onEnd(n.message);
      };
      ws.onclose = () =>
        setStatus((s) =>
          s.startsWith('Connected')
            ? 'Session closed'
            : s === 'Connecting…'
              ? 'Could not connect (the ticket expired, or the cluster is restarting): open the terminal again'
              : s,
        );
      t.onData((data) => ws.readyState === WebSocket.OPEN && ws.send(encoder.encode(data)));
      t.onResize(
        ({ cols, rows }) =>
          ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ type: 'resize', cols, rows })),
      );
      observer = new ResizeObserver(() => fit.fit());
      observer.observe(host.current);
    })();
    return () => {
      stopped = true;
      observer?.disconnect();
      socket?.close();
      term.current?.dispose();
    };
  }, []);
  const copy = () => {
    const text = term.current?.getSelection() ?? '';
    void navigator.clipboard.writeText(text).then(
      () => notify(text ? 'Selection copied.' : 'Nothing is selected.'),
      () => notify('Copying is not allowed here.'),
    );
  };
  return (
    <>
      <div class="section-head">
        <p class="hint" role="status">
          {status}
        </p>
        <p class="hint">Escape, then Tab: leave the terminal.</p>
        <button type="button" onClick={copy}>
          Copy selection
        </button>
      </div>
      <div class="terminal" ref={host} role="application" aria-label={`Terminal in ${props.container}`} />
    </>
  );
}

/** A shell in one container of a pod: choose the container and the shell, then connect. */
export function TerminalView(props: { namespace: string; pod: string }) {
  const store = useStore();
  const pod = store.find('Pod', props.namespace, props.pod);
  const containers = pod?.containers.filter((c) => !c.init).map((c) => c.name) ?? [];
  const [container, setContainer] = useState('');
  const [shell, setShell] = useState('sh');
  const [session, setSession] = useState(0);
  const [failure, setFailure] = useState('');
  const chosen = container || containers[0] || '';
  return (
    <>
      <div class="section-head">
        <h1>
          Terminal in {props.namespace}/{props.pod}
        </h1>
        <div class="actions">
          <a class="button" href={podHref(props.namespace, props.pod)}>
            Back to pod
          </a>
        </div>
      </div>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setFailure('');
          setSession((n) => n + 1);
        }}
      >
        <label class="field inline">
          <span>Container</span>
          <select value={chosen} onChange={(e) => setContainer(e.currentTarget.value)}>
            {containers.map((c) => (
              <option key={c}>{c}</option>
            ))}
          </select>
        </label>
        <label class="field inline">
          <span>Shell</span>
          <select value={shell} onChange={(e) => setShell(e.currentTarget.value)}>
            {SHELLS.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <button type="submit" class="primary" disabled={!chosen}>
          {session ? 'Reconnect' : 'Connect'}
        </button>
      </form>
      {failure && (
        <p class="error" role="alert">
          {failure}
        </p>
      )}
      {session > 0 && chosen && (
        <Session
          key={`${session}-${chosen}-${shell}`}
          namespace={props.namespace}
          pod={props.pod}
          container={chosen}
          shell={shell}
          onEnd={setFailure}
        />
      )}
    </>
  );
}
