import { useEffect, useRef, useState } from 'preact/hooks';
import type { LogEvents, PodHistoryAnswer } from '../../../src/dashboard/model.js';
import { MEASURE_NAMES, UsageChart, span, type Measure } from '../chart.js';
import { NoUsageHint, useUsage } from '../usage.js';
import { Badge, EventsTable, Table, podTone } from '../components.js';
import { age } from '../format.js';
import { terminalHref, yamlHref } from '../route.js';
import { NO_SESSION, openEventStream } from '../session.js';
import { useNow, useStore } from '../store.js';
import { DeletePodDialog } from './workloads.js';

const MAX_LINES = 5000;

/** Follows one container's log through /api/logs (server-sent events) while `follow` is on. */
function useLog(namespace: string, pod: string, container: string, follow: boolean) {
  const [lines, setLines] = useState<string[]>([]);
  const [status, setStatus] = useState('');
  useEffect(() => {
    if (!container) return;
    setLines([]);
    setStatus(follow ? 'Connecting…' : 'Loading…');
    const params = new URLSearchParams({ namespace, pod, container, follow: String(follow), tail: '500' });
    // The server ends the stream on purpose: do not let it reconnect and replay the tail.
    const source = openEventStream<LogEvents>(`/api/logs?${params}`, {
      on: {
        lines: ({ lines: more }) => setLines((old) => [...old, ...more].slice(-MAX_LINES)),
        end: ({ reason }) => {
          source.close();
          setStatus(follow ? `Stopped: ${reason}.` : '');
        },
        failure: ({ message }) => {
          source.close();
          setStatus(`No log: ${message}`);
        },
      },
      onOpen: () => setStatus(follow ? 'Following' : ''),
      onError: (retrying, status) => {
        if (!retrying) setStatus(status === 401 ? NO_SESSION : 'The log stream was refused.');
      },
    });
    return () => source.close();
  }, [namespace, pod, container, follow]);
  return { lines, status };
}

/** The pod's CPU and memory over the last minutes, from the server's history of the metrics API. */
function PodUsageCharts(props: { namespace: string; name: string; now: number; profile?: string }) {
  const query = new URLSearchParams({ namespace: props.namespace, name: props.name });
  const { usage } = useUsage<PodHistoryAnswer>(`/api/metrics/pod?${query}`);
  const samples = usage?.available ? usage.history : [];
  return (
    <section aria-labelledby="usage-h">
      <h2 id="usage-h">Usage</h2>
      {usage?.available && (
        <div class="charts">
          {(['cpu', 'memory'] as Measure[]).map((measure) => (
            <figure key={measure}>
              <figcaption>
                {MEASURE_NAMES[measure]}, last {span(samples, props.now).minutes} min
              </figcaption>
              <UsageChart
                what={props.name}
                measure={measure}
                samples={samples}
                now={props.now}
                width={360}
                height={72}
              />
            </figure>
          ))}
        </div>
      )}
      <NoUsageHint usage={usage} profile={props.profile} />
    </section>
  );
}

export function PodDetail(props: { namespace: string; name: string; profile?: string }) {
  const store = useStore();
  const now = useNow();
  const pod = store.find('Pod', props.namespace, props.name);
  const [container, setContainer] = useState('');
  const [follow, setFollow] = useState(true);
  const [deleting, setDeleting] = useState(false);
  const logRef = useRef<HTMLPreElement>(null);
  const containers = pod?.containers ?? [];
  const chosen = container || containers.find((c) => !c.init)?.name || containers[0]?.name || '';
  const log = useLog(props.namespace, props.name, pod ? chosen : '', follow);

  useEffect(() => {
    const el = logRef.current;
    if (el && follow) el.scrollTop = el.scrollHeight;
  }, [log.lines, follow]);

  if (!pod) {
    return (
      <>
        <h1>Pod {props.name}</h1>
        <p role="status">
          {store.loaded ? `Pod ${props.namespace}/${props.name} does not exist (any more).` : 'Loading…'}{' '}
          <a href="#/workloads">Back to workloads</a>
        </p>
      </>
    );
  }
  const events = store
    .list('Event', props.namespace)
    .filter((e) => e.object.uid === pod.uid || (e.object.kind === 'Pod' && e.object.name === pod.name))
    .sort((a, b) => b.last.localeCompare(a.last));

  return (
    <>
      <div class="section-head">
        <h1>Pod {pod.name}</h1>
        <div class="actions">
          <a class="button" href={terminalHref(pod.namespace, pod.name)}>
            Terminal
          </a>
          <a class="button" href={yamlHref('Pod', pod.namespace, pod.name)}>
            YAML
          </a>
          <button type="button" class="danger-text" disabled={pod.deleting} onClick={() => setDeleting(true)}>
            Delete pod
          </button>
        </div>
      </div>
      <dl class="card facts">
        <dt>Namespace</dt>
        <dd>{pod.namespace}</dd>
        <dt>Status</dt>
        <dd>
          <Badge tone={podTone(pod.status, pod.readyCount === pod.containerCount)}>{pod.status}</Badge>
        </dd>
        <dt>Ready</dt>
        <dd>
          {pod.readyCount}/{pod.containerCount}
        </dd>
        <dt>Restarts</dt>
        <dd>{pod.restarts}</dd>
        <dt>Node</dt>
        <dd>{pod.node || '—'}</dd>
        <dt>Pod IP</dt>
        <dd>{pod.ip || '—'}</dd>
        <dt>Age</dt>
        <dd>{age(pod.created, now)}</dd>
        <dt>Controlled by</dt>
        <dd>{pod.owner ? `${pod.owner.kind} ${pod.owner.name}` : '—'}</dd>
      </dl>

      <PodUsageCharts namespace={pod.namespace} name={pod.name} now={now} profile={props.profile} />

      <section aria-labelledby="containers-h">
        <h2 id="containers-h">Containers</h2>
        <Table
          label="Containers"
          columns={['Name', 'Image', 'State', 'Ready', 'Restarts']}
          rows={pod.containers}
          row={(c) => (
            <tr key={c.name}>
              <th scope="row">
                {c.name}
                {c.init ? ' (init)' : ''}
              </th>
              <td>
                <code>{c.image}</code>
              </td>
              <td>{c.state}</td>
              <td>{c.ready ? 'yes' : 'no'}</td>
              <td>{c.restarts}</td>
            </tr>
          )}
        />
      </section>

      <section aria-labelledby="logs-h">
        <div class="section-head">
          <h2 id="logs-h">Logs</h2>
          <div class="log-controls">
            <label class="field inline">
              <span>Container</span>
              <select value={chosen} onChange={(e) => setContainer(e.currentTarget.value)}>
                {pod.containers.map((c) => (
                  <option key={c.name} value={c.name}>
                    {c.name}
                    {c.init ? ' (init)' : ''}
                  </option>
                ))}
              </select>
            </label>
            <label class="check">
              <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} />
              Follow
            </label>
          </div>
        </div>
        <p class="hint" aria-live="polite">
          {log.status}
        </p>
        <pre class="log" ref={logRef} role="log" aria-label={`Log of container ${chosen}`} tabIndex={0}>
          {log.lines.length > 0 ? log.lines.join('\n') : ' '}
        </pre>
      </section>

      <section aria-labelledby="events-h">
        <h2 id="events-h">Events</h2>
        <EventsTable label="Events of this pod" events={events} empty="No events." now={now} />
      </section>
      {deleting && (
        <DeletePodDialog namespace={pod.namespace} name={pod.name} onClose={() => setDeleting(false)} />
      )}
    </>
  );
}
