import * as k8s from '@kubernetes/client-node';
import { structuredPatch } from 'diff';
import { parseAllDocuments } from 'yaml';
import type { ClusterClients } from './cluster.js';
import { HttpError } from './errors.js';
import { kubeRequest } from './kubeapi.js';
import type { ApplyAnswer, DiffHunk, ResourceKind } from './model.js';
import { findKind, holdsHiddenPlaceholders, objectYaml, readObject, resourcePath } from './resources.js';

/** How changes made here are recorded in managedFields. */
export const FIELD_MANAGER = 'minilab-dashboard';

/**
 * apply: server-side apply (creates the object or updates the fields it names; what the YAML leaves
 * out stays). edit: what changed between the YAML as loaded (`original`) and as edited, sent as a
 * JSON merge patch, as kubectl edit does: a field removed in the editor is removed, and controllers
 * writing status meanwhile (a Deployment's, every few seconds after a change) do not make the edit
 * fail, as a replace carrying the loaded resourceVersion would.
 */
export type ApplyMode = 'apply' | 'edit';

export interface ApplyInput {
  yaml: string;
  mode: ApplyMode;
  /** For edit: the YAML as it was loaded. */
  original?: string;
  dryRun: boolean;
  /** Where a namespaced object without a namespace goes. */
  namespace: string;
  /**
   * Apply: take the fields another manager owns (kubectl's, a controller's) instead of failing with
   * the API server's conflict (409), as `kubectl apply --server-side --force-conflicts`.
   */
  force?: boolean;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The JSON merge patch (RFC 7386) that turns `before` into `after`: changed and new fields, null for
 * removed ones; lists are replaced whole. Undefined when they are the same.
 */
export function mergePatch(before: unknown, after: unknown): unknown {
  if (!isRecord(before) || !isRecord(after)) {
    return JSON.stringify(before) === JSON.stringify(after) ? undefined : after;
  }
  const patch: Record<string, unknown> = {};
  for (const key of Object.keys(before)) if (!Object.hasOwn(after, key)) patch[key] = null;
  for (const [key, value] of Object.entries(after)) {
    const change = Object.hasOwn(before, key) ? mergePatch(before[key], value) : value;
    if (change !== undefined) patch[key] = change;
  }
  return Object.keys(patch).length > 0 ? patch : undefined;
}

/** The one object in `yaml`, or a 400 saying what is wrong with it. */
export function parseManifest(yaml: string): k8s.KubernetesObject {
  const docs = parseAllDocuments(yaml);
  if (!Array.isArray(docs)) throw new HttpError(400, 'the YAML holds no object');
  const objects = docs.filter((d) => d.contents !== null);
  const broken = objects.find((d) => d.errors.length > 0);
  if (broken) {
    throw new HttpError(400, `the YAML does not parse: ${broken.errors[0]?.message.split('\n')[0] ?? ''}`);
  }
  if (objects.length !== 1) {
    throw new HttpError(400, `paste one object at a time (this YAML holds ${objects.length})`);
  }
  const obj: unknown = objects[0]?.toJS();
  const o = obj as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown } } | null;
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    throw new HttpError(400, 'the YAML is not an object');
  for (const [field, value] of [
    ['apiVersion', o.apiVersion],
    ['kind', o.kind],
    ['metadata.name', o.metadata?.name],
  ] as const) {
    if (typeof value !== 'string' || value === '') throw new HttpError(400, `the object has no ${field}`);
  }
  return o as k8s.KubernetesObject;
}

/** The kind an object's apiVersion and kind name, as the API server serves it. */
async function kindFor(clients: ClusterClients, obj: k8s.KubernetesObject): Promise<ResourceKind> {
  const [group, version] = (obj.apiVersion ?? '').includes('/')
    ? (obj.apiVersion ?? '').split('/', 2)
    : ['', obj.apiVersion ?? ''];
  const kind = await findKind(
    clients,
    (k) => k.group === group && k.version === version && k.kind === obj.kind,
  );
  if (!kind) {
    throw new HttpError(400, `the API server serves no kind ${obj.kind} in ${obj.apiVersion}`);
  }
  return kind;
}

/** The merge patch of an edit; the object's identity is not the editor's to change. */
function editPatch(original: string, edited: k8s.KubernetesObject, where: string): string {
  const loaded = parseManifest(original);
  const same = (o: k8s.KubernetesObject) =>
    [o.apiVersion, o.kind, o.metadata?.name, o.metadata?.namespace ?? ''].join(' ');
  if (same(loaded) !== same(edited)) {
    throw new HttpError(
      400,
      `an edit of ${where} cannot change its apiVersion, kind, name or namespace: use Create`,
    );
  }
  return JSON.stringify(mergePatch(loaded, edited) ?? {});
}

/** A unified diff of two YAML texts, in hunks with three lines of context. */
export function diffYaml(before: string, after: string): DiffHunk[] {
  return structuredPatch('live', 'result', before, after, '', '', { context: 3 }).hunks.map((h) => ({
    oldStart: h.oldStart,
    newStart: h.newStart,
    lines: h.lines,
  }));
}

/**
 * Applies one object from YAML, or with dryRun asks the API server what it would make of it (every
 * admission step and default, nothing stored), and answers the diff from the live object to that
 * result. A Secret's values stay hidden in the diff: it says which keys change, not to what.
 */
export async function applyManifest(clients: ClusterClients, input: ApplyInput): Promise<ApplyAnswer> {
  const obj = parseManifest(input.yaml);
  if (holdsHiddenPlaceholders(obj)) {
    throw new HttpError(
      400,
      'this Secret holds the placeholders the page shows for hidden values ("(hidden: ...)"): write the values themselves, or leave those keys and the last-applied annotation out',
    );
  }
  const kind = await kindFor(clients, obj);
  const metadata = { ...obj.metadata };
  delete metadata.managedFields;
  if (kind.namespaced) metadata.namespace ||= input.namespace || 'default';
  else delete metadata.namespace;
  const name = metadata.name ?? '';
  const namespace = metadata.namespace ?? '';
  const where = `${kind.kind} ${namespace ? `${namespace}/` : ''}${name}`;
  const body =
    input.mode === 'apply'
      ? JSON.stringify({ ...obj, metadata })
      : editPatch(input.original ?? '', obj, where);

  let live: k8s.KubernetesObject | undefined;
  try {
    live = await readObject(clients, kind, namespace, name);
  } catch (err) {
    if (!(err instanceof k8s.ApiException && err.code === 404)) throw err;
  }
  if (input.mode === 'edit' && !live) throw new HttpError(404, `${where} does not exist (any more)`);

  const query = new URLSearchParams({ fieldManager: FIELD_MANAGER });
  if (input.mode === 'apply' && input.force) query.set('force', 'true');
  if (input.dryRun) query.set('dryRun', 'All');
  const result = await kubeRequest<k8s.KubernetesObject>(clients.config, {
    method: 'PATCH',
    path: `${resourcePath(kind, namespace, name)}?${query}`,
    contentType: input.mode === 'apply' ? 'application/apply-patch+yaml' : 'application/merge-patch+json',
    body,
  });
  return {
    dryRun: input.dryRun,
    created: live === undefined,
    ref: { group: kind.group, version: kind.version, resource: kind.resource },
    kind: kind.kind,
    namespace,
    name,
    diff: diffYaml(live ? objectYaml(live) : '', objectYaml(result, live)),
  };
}
