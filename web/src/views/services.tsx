import { useEffect, useState } from 'preact/hooks';
import type { PortForwardInfo, ServiceRow } from '../../../src/dashboard/model.js';
import { api } from '../api.js';
import { Table, YamlLink, notify } from '../components.js';
import { age } from '../format.js';
import { useNow, useStore } from '../store.js';

export function Services(props: { namespace: string }) {
  const store = useStore();
  const now = useNow();
  const [forwards, setForwards] = useState<PortForwardInfo[]>([]);
  const [busy, setBusy] = useState('');
  useEffect(() => {
    api<PortForwardInfo[]>('GET', '/api/port-forwards').then(setForwards, () => undefined);
  }, []);
  const all = props.namespace === '';
  const services = store.list('Service', props.namespace);

  const open = async (s: ServiceRow, port: number) => {
    const key = `${s.namespace}/${s.name}/${port}`;
    // Opened now, inside the click, so the browser lets the new tab through; it is pointed at the
    // forward once that exists.
    const tab = window.open('about:blank', '_blank');
    setBusy(key);
    try {
      const f = await api<PortForwardInfo>('POST', '/api/port-forwards', {
        namespace: s.namespace,
        service: s.name,
        port,
      });
      setForwards((list) => [...list.filter((x) => x.id !== f.id), f]);
      if (tab) tab.location.href = f.url;
      notify(`${s.name}:${port} is at ${f.url}`);
    } catch (err) {
      tab?.close();
      notify(`Could not forward ${s.name}:${port}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      setBusy('');
    }
  };
  const stop = async (f: PortForwardInfo) => {
    await api('DELETE', `/api/port-forwards?id=${encodeURIComponent(f.id)}`);
    setForwards((list) => list.filter((x) => x.id !== f.id));
    notify(`Stopped forwarding ${f.service}:${f.port}.`);
  };

  return (
    <>
      <h1>Services</h1>
      <Table
        label="Services"
        columns={['Name', all && 'Namespace', 'Type', 'Cluster IP', 'External IP', 'Ports', 'Age', 'Actions']}
        rows={services}
        empty={store.loaded ? 'No services.' : 'Loading…'}
        row={(s) => (
          <tr key={s.uid} data-name={s.name}>
            <th scope="row">{s.name}</th>
            {all && <td>{s.namespace}</td>}
            <td>{s.type}</td>
            <td>
              <code>{s.clusterIP}</code>
            </td>
            <td>
              {s.external.length > 0 ? (
                <code>{s.external.join(', ')}</code>
              ) : s.type === 'LoadBalancer' ? (
                <span class="hint" title="minilab addons enable loadbalancer serves them on 127.0.0.1">
                  pending
                </span>
              ) : (
                ''
              )}
            </td>
            <td>
              <ul class="ports">
                {s.ports.map((p) => {
                  const key = `${s.namespace}/${s.name}/${p.port}`;
                  const f = forwards.find((x) => x.id === key);
                  const forwardable = p.protocol === 'TCP' && Object.keys(s.selector).length > 0;
                  return (
                    <li key={key}>
                      <span>
                        {p.port}/{p.protocol}
                        {p.targetPort !== String(p.port) ? ` → ${p.targetPort}` : ''}
                        {p.nodePort ? ` (node ${p.nodePort})` : ''}
                      </span>
                      {/* served on the host by the loadbalancer add-on: no forward needed */}
                      {s.external.includes('127.0.0.1') && p.protocol === 'TCP' ? (
                        <a href={`http://127.0.0.1:${p.port}/`} target="_blank" rel="noopener noreferrer">
                          http://127.0.0.1:{p.port}/
                        </a>
                      ) : (
                        forwardable &&
                        (f ? (
                          <a href={f.url} target="_blank" rel="noopener noreferrer">
                            {f.url}
                          </a>
                        ) : (
                          <button
                            type="button"
                            disabled={busy === key}
                            aria-label={`Open ${s.name} port ${p.port} locally`}
                            onClick={() => void open(s, p.port)}
                          >
                            {busy === key ? 'Opening…' : 'Open'}
                          </button>
                        ))
                      )}
                    </li>
                  );
                })}
              </ul>
            </td>
            <td>{age(s.created, now)}</td>
            <td>
              <YamlLink kind="Service" namespace={s.namespace} name={s.name} />
            </td>
          </tr>
        )}
      />

      <section aria-labelledby="forwards-h">
        <h2 id="forwards-h">Local port-forwards</h2>
        {forwards.length === 0 ? (
          <p class="hint">
            None. "Open" on a service port forwards a local port on 127.0.0.1 to a ready pod behind it, for as
            long as the dashboard runs.
          </p>
        ) : (
          <ul class="forwards">
            {forwards.map((f) => (
              <li key={f.id}>
                <a href={f.url} target="_blank" rel="noopener noreferrer">
                  {f.url}
                </a>{' '}
                → {f.namespace}/{f.service}:{f.port}{' '}
                <button
                  type="button"
                  onClick={() => void stop(f)}
                  aria-label={`Stop forwarding ${f.service} port ${f.port}`}
                >
                  Stop
                </button>
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}
