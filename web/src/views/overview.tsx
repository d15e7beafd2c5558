import type { DashboardInfo, MetricsAnswer, NodeRow, NodeUsage } from '../../../src/dashboard/model.js';
import type { UsageSample } from '../../../src/dashboard/series.js';
import { Badge, Table } from '../components.js';
import { age, percent } from '../format.js';
import { podHref, yamlHref } from '../route.js';
import { useNow, useStore } from '../store.js';
import { NoUsageHint, useUsage } from '../usage.js';
import { UsageChart, formatMeasure, type Measure } from '../chart.js';
import { quantity } from '../../../src/dashboard/quantity.js';

export function Overview(props: { info?: DashboardInfo }) {
  const store = useStore();
  const now = useNow();
  const { usage: metrics, reload } = useUsage<MetricsAnswer>('/api/metrics/nodes');

  const nodes = store.list('Node');
  const pods = store.list('Pod');
  const deployments = store.list('Deployment');
  const warnings = store
    .list('Event')
    .filter((e) => e.type === 'Warning')
    .sort((a, b) => b.last.localeCompare(a.last))
    .slice(0, 15);
  const usage = (name: string) =>
    metrics?.available ? metrics.nodes.find((n) => n.name === name) : undefined;
  const history = (name: string) => (metrics?.available ? metrics.history?.[name] : undefined);
  const count = (phase: string) => pods.filter((p) => p.phase === phase).length;

  return (
    <>
      <h1>Overview</h1>
      <section aria-labelledby="cluster-h" class="cards">
        <h2 id="cluster-h" class="visually-hidden">
          Cluster summary
        </h2>
        <dl class="card">
          <dt>Profile</dt>
          <dd>{props.info?.profile ?? '…'}</dd>
          <dt>API server</dt>
          <dd>
            <code>{props.info?.apiServer ?? '…'}</code>
          </dd>
          <dt>Kubernetes</dt>
          <dd>{nodes[0]?.kubeletVersion ?? '…'}</dd>
        </dl>
        <dl class="card">
          <dt>Nodes ready</dt>
          <dd>
            {nodes.filter((n) => n.ready === 'True').length} / {nodes.length}
          </dd>
          <dt>Deployments available</dt>
          <dd>
            {deployments.filter((d) => d.available >= d.desired).length} / {deployments.length}
          </dd>
          <dt>Pods</dt>
          <dd>
            {count('Running')} running, {count('Pending')} pending, {count('Failed')} failed
          </dd>
        </dl>
      </section>

      <section aria-labelledby="nodes-h">
        <div class="section-head">
          <h2 id="nodes-h">Nodes</h2>
          {metrics?.available && (
            <button type="button" onClick={reload}>
              Refresh usage
            </button>
          )}
        </div>
        <Table
          label="Nodes"
          columns={['Name', 'Status', 'Roles', 'Version', 'CPU', 'Memory', 'Pods', 'Age']}
          rows={nodes}
          empty={store.loaded ? 'No nodes.' : 'Loading…'}
          row={(n) => {
            const u = usage(n.name);
            const h = history(n.name);
            return (
              <tr key={n.uid}>
                <th scope="row">
                  <a href={yamlHref('Node', '', n.name)}>{n.name}</a>
                </th>
                <td>
                  <Badge tone={n.ready === 'True' ? 'ok' : 'bad'}>
                    {n.ready === 'True' ? 'Ready' : 'NotReady'}
                  </Badge>
                  {n.problems.map((p) => (
                    <Badge key={p} tone="warn">
                      {p}
                    </Badge>
                  ))}
                </td>
                <td>{n.roles.join(', ') || '—'}</td>
                <td>{n.kubeletVersion}</td>
                <NodeUsageCell node={n} measure="cpu" usage={u} samples={h} now={now} />
                <NodeUsageCell node={n} measure="memory" usage={u} samples={h} now={now} />
                <td>
                  {pods.filter((p) => p.node === n.name && !['Succeeded', 'Failed'].includes(p.phase)).length}{' '}
                  / {n.capacity.pods}
                </td>
                <td>{age(n.created, now)}</td>
              </tr>
            );
          }}
        />
        <NoUsageHint usage={metrics} profile={props.info?.profile} />
      </section>

      <section aria-labelledby="warnings-h">
        <h2 id="warnings-h">Recent warnings</h2>
        <Table
          label="Recent warning events"
          columns={['Last seen', 'Object', 'Reason', 'Message', 'Count']}
          rows={warnings}
          empty="No warnings. All quiet."
          row={(e) => (
            <tr key={e.uid}>
              <td>{age(e.last, now)}</td>
              <td>
                {e.object.kind === 'Pod' ? (
                  <a href={podHref(e.object.namespace, e.object.name)}>
                    {e.object.namespace}/{e.object.name}
                  </a>
                ) : (
                  `${e.object.kind} ${e.object.namespace ? `${e.object.namespace}/` : ''}${e.object.name}`
                )}
              </td>
              <td>{e.reason}</td>
              <td class="message">{e.message}</td>
              <td>{e.count}</td>
            </tr>
          )}
        />
      </section>
    </>
  );
}

/** A node's capacity of one measure; with metrics, its use now (of what is allocatable) and over the last minutes. */
function NodeUsageCell(props: {
  node: NodeRow;
  measure: Measure;
  usage?: NodeUsage;
  samples?: UsageSample[];
  now: number;
}) {
  const { node, measure, usage: u } = props;
  return (
    <td>
      <span>
        {u ? `${formatMeasure(measure, u[measure])} of ` : ''}
        {formatMeasure(measure, node.capacity[measure])}
        {u ? percent(u[measure], node.allocatable[measure]) : ''}
      </span>
      {props.samples && (
        <UsageChart
          what={node.name}
          measure={measure}
          samples={props.samples}
          now={props.now}
          max={quantity(node.allocatable[measure])}
        />
      )}
    </td>
  );
}
