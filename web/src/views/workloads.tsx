import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { PodMetricsAnswer, PodRow, WorkloadRow } from '../../../src/dashboard/model.js';
import { api } from '../api.js';
import { Badge, ConfirmDialog, Table, YamlLink, podTone } from '../components.js';
import { age, bytes, cpu } from '../format.js';
import { podHref } from '../route.js';
import { useNow, useStore } from '../store.js';
import { NoUsageHint, useUsage } from '../usage.js';

type Dialog =
  | { action: 'scale'; row: WorkloadRow }
  | { action: 'restart'; row: WorkloadRow }
  | { action: 'delete'; row: PodRow };

const full = (r: { namespace: string; name: string }) => `${r.namespace}/${r.name}`;

function ScaleDialog(props: { row: WorkloadRow; onClose: () => void }) {
  const [replicas, setReplicas] = useState(String(props.row.desired));
  return (
    <ConfirmDialog
      title={`Scale deployment ${full(props.row)}`}
      confirmLabel="Scale"
      onClose={props.onClose}
      onConfirm={async () => {
        const n = Number(replicas);
        if (!/^\d+$/.test(replicas.trim())) throw new Error('Enter a whole number of replicas.');
        await api('POST', '/api/scale', {
          namespace: props.row.namespace,
          name: props.row.name,
          replicas: n,
        });
        return `Scaling ${full(props.row)} to ${n} replica${n === 1 ? '' : 's'}.`;
      }}
    >
      <p>
        It runs {props.row.desired} replica{props.row.desired === 1 ? '' : 's'} now ({props.row.ready} ready).
      </p>
      <label class="field">
        <span>Replicas</span>
        <input
          type="number"
          min={0}
          max={100}
          required
          autoFocus
          value={replicas}
          onInput={(e) => setReplicas(e.currentTarget.value)}
        />
      </label>
    </ConfirmDialog>
  );
}

function Actions(props: { children: ComponentChildren }) {
  return <div class="actions">{props.children}</div>;
}

function WorkloadTable(props: {
  title: string;
  rows: WorkloadRow[];
  allNamespaces: boolean;
  now: number;
  loaded: boolean;
  scalable?: boolean;
  onAction: (d: Dialog) => void;
}) {
  const id = `${props.title.toLowerCase()}-h`;
  return (
    <section aria-labelledby={id}>
      <h2 id={id}>{props.title}</h2>
      <Table
        label={props.title}
        columns={[
          'Name',
          props.allNamespaces && 'Namespace',
          'Ready',
          'Up to date',
          'Available',
          'Age',
          'Actions',
        ]}
        rows={props.rows}
        empty={props.loaded ? `No ${props.title.toLowerCase()}.` : 'Loading…'}
        row={(r) => (
          <tr key={r.uid} data-name={r.name}>
            <th scope="row">{r.name}</th>
            {props.allNamespaces && <td>{r.namespace}</td>}
            <td>
              <Badge tone={r.ready >= r.desired ? 'ok' : 'warn'}>
                <span class="replicas">
                  {r.ready}/{r.desired}
                </span>
              </Badge>
            </td>
            <td>{r.upToDate}</td>
            <td>{r.available}</td>
            <td>{age(r.created, props.now)}</td>
            <td>
              <Actions>
                {props.scalable && (
                  <button
                    type="button"
                    aria-label={`Scale ${r.name}`}
                    onClick={() => props.onAction({ action: 'scale', row: r })}
                  >
                    Scale
                  </button>
                )}
                <button
                  type="button"
                  aria-label={`Restart ${r.name}`}
                  onClick={() => props.onAction({ action: 'restart', row: r })}
                >
                  Restart
                </button>
                <YamlLink kind={r.kind} namespace={r.namespace} name={r.name} />
              </Actions>
            </td>
          </tr>
        )}
      />
    </section>
  );
}

export function Workloads(props: { namespace: string; profile?: string }) {
  const store = useStore();
  const now = useNow();
  const [dialog, setDialog] = useState<Dialog>();
  const ns = props.namespace;
  const all = ns === '';
  const jobs = store.list('Job', ns);
  const pods = store.list('Pod', ns);
  const { usage } = useUsage<PodMetricsAnswer>(`/api/metrics/pods?namespace=${encodeURIComponent(ns)}`);
  const podUsage = new Map(usage?.available ? usage.pods.map((u) => [full(u), u]) : []);
  const withUsage = Boolean(usage?.available);
  const close = () => setDialog(undefined);
  return (
    <>
      <h1>Workloads</h1>
      <WorkloadTable
        title="Deployments"
        rows={store.list('Deployment', ns)}
        allNamespaces={all}
        now={now}
        loaded={store.loaded}
        scalable
        onAction={setDialog}
      />
      <WorkloadTable
        title="StatefulSets"
        rows={store.list('StatefulSet', ns)}
        allNamespaces={all}
        now={now}
        loaded={store.loaded}
        onAction={setDialog}
      />
      <WorkloadTable
        title="DaemonSets"
        rows={store.list('DaemonSet', ns)}
        allNamespaces={all}
        now={now}
        loaded={store.loaded}
        onAction={setDialog}
      />

      <section aria-labelledby="jobs-h">
        <h2 id="jobs-h">Jobs</h2>
        <Table
          label="Jobs"
          columns={['Name', all && 'Namespace', 'Completions', 'Status', 'Age', 'Actions']}
          rows={jobs}
          empty="No jobs."
          row={(j) => (
            <tr key={j.uid}>
              <th scope="row">{j.name}</th>
              {all && <td>{j.namespace}</td>}
              <td>
                {j.succeeded}/{j.completions}
              </td>
              <td>
                <Badge tone={j.status === 'Complete' ? 'ok' : j.status === 'Failed' ? 'bad' : 'warn'}>
                  {j.status}
                </Badge>
              </td>
              <td>{age(j.created, now)}</td>
              <td>
                <YamlLink kind="Job" namespace={j.namespace} name={j.name} />
              </td>
            </tr>
          )}
        />
      </section>

      <section aria-labelledby="pods-h">
        <h2 id="pods-h">Pods</h2>
        <Table
          label="Pods"
          columns={[
            'Name',
            all && 'Namespace',
            'Ready',
            'Status',
            'Restarts',
            withUsage && 'CPU',
            withUsage && 'Memory',
            'Age',
            'Node',
            'Actions',
          ]}
          rows={pods}
          empty={store.loaded ? 'No pods.' : 'Loading…'}
          row={(p) => {
            const u = podUsage.get(full(p));
            return (
              <tr key={p.uid} data-name={p.name}>
                <th scope="row">
                  <a href={podHref(p.namespace, p.name)}>{p.name}</a>
                </th>
                {all && <td>{p.namespace}</td>}
                <td>
                  {p.readyCount}/{p.containerCount}
                </td>
                <td>
                  <Badge tone={podTone(p.status, p.readyCount === p.containerCount)}>{p.status}</Badge>
                </td>
                <td>{p.restarts}</td>
                {withUsage && <td>{u ? cpu(u.cpu) : '—'}</td>}
                {withUsage && <td>{u ? bytes(u.memory) : '—'}</td>}
                <td>{age(p.created, now)}</td>
                <td>{p.node}</td>
                <td>
                  <Actions>
                    <a class="button" href={podHref(p.namespace, p.name)} aria-label={`Logs of ${p.name}`}>
                      Logs
                    </a>
                    <button
                      type="button"
                      class="danger-text"
                      aria-label={`Delete ${p.name}`}
                      disabled={p.deleting}
                      onClick={() => setDialog({ action: 'delete', row: p })}
                    >
                      Delete
                    </button>
                    <YamlLink kind="Pod" namespace={p.namespace} name={p.name} />
                  </Actions>
                </td>
              </tr>
            );
          }}
        />
        <NoUsageHint usage={usage} profile={props.profile} />
      </section>

      {dialog?.action === 'scale' && <ScaleDialog row={dialog.row} onClose={close} />}
      {dialog?.action === 'restart' && (
        <RestartDialog
          kind={dialog.row.kind}
          namespace={dialog.row.namespace}
          name={dialog.row.name}
          onClose={close}
        />
      )}
      {dialog?.action === 'delete' && (
        <DeletePodDialog namespace={dialog.row.namespace} name={dialog.row.name} onClose={close} />
      )}
    </>
  );
}

export function RestartDialog(props: { kind: string; namespace: string; name: string; onClose: () => void }) {
  const what = `${props.kind.toLowerCase()} ${props.namespace}/${props.name}`;
  return (
    <ConfirmDialog
      title={`Restart ${what}`}
      confirmLabel="Restart"
      onClose={props.onClose}
      onConfirm={async () => {
        await api('POST', '/api/restart', { kind: props.kind, namespace: props.namespace, name: props.name });
        return `Restarting ${what}: its pods are being replaced.`;
      }}
    >
      <p>Its pods are replaced one by one, as kubectl rollout restart does.</p>
    </ConfirmDialog>
  );
}

export function DeletePodDialog(props: { namespace: string; name: string; onClose: () => void }) {
  const what = `${props.namespace}/${props.name}`;
  return (
    <ConfirmDialog
      title={`Delete pod ${what}`}
      confirmLabel="Delete pod"
      danger
      onClose={props.onClose}
      onConfirm={async () => {
        await api(
          'DELETE',
          `/api/pod?namespace=${encodeURIComponent(props.namespace)}&name=${encodeURIComponent(props.name)}`,
        );
        return `Deleting pod ${what}.`;
      }}
    >
      <p>A pod owned by a controller is replaced by a new one; any other pod is gone for good.</p>
    </ConfirmDialog>
  );
}
