import type { ResourceRef } from '../../src/dashboard/model.js';

/** What the generic list shows; part of its link, so a reload or a shared link keeps it. */
export interface ListFilter {
  namespace: string;
  labels: string;
  text: string;
}

export type Route =
  | { view: 'overview' }
  | { view: 'workloads' }
  | { view: 'services' }
  | { view: 'pod'; namespace: string; name: string }
  | { view: 'yaml'; kind: string; namespace: string; name: string }
  | { view: 'resources'; ref?: ResourceRef; filter: ListFilter }
  | { view: 'object'; ref: ResourceRef; namespace: string; name: string }
  | { view: 'edit'; ref: ResourceRef; namespace: string; name: string }
  | { view: 'create' }
  | { view: 'terminal'; namespace: string; pod: string };

/** The core group has no name; in links it is "core". */
const groupOf = (part: string) => (part === 'core' ? '' : part);

/**
 * Hash routes: #/workloads, #/pods/NS/NAME, #/terminal/NS/POD, #/yaml/KIND/NS/NAME, #/resources/GROUP/VERSION/RESOURCE?
 * namespace=&labels=&text=, #/object/GROUP/VERSION/RESOURCE/NS/NAME (and #/edit/...), #/create;
 * "-" stands for no namespace (cluster-scoped), "core" for the core group.
 */
export function parseRoute(hash: string): Route {
  const [path = '', search = ''] = hash.replace(/^#\/?/, '').split('?', 2);
  const parts = path.split('/').map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return '';
    }
  });
  const [first, a, b, c, d, e] = parts;
  if (first === 'workloads') return { view: 'workloads' };
  if (first === 'services') return { view: 'services' };
  if (first === 'create') return { view: 'create' };
  if (first === 'pods' && a && b) return { view: 'pod', namespace: a, name: b };
  if (first === 'terminal' && a && b) return { view: 'terminal', namespace: a, pod: b };
  if (first === 'yaml' && a && b && c) {
    return { view: 'yaml', kind: a, namespace: b === '-' ? '' : b, name: c };
  }
  if (first === 'resources') {
    const q = new URLSearchParams(search);
    const filter = {
      namespace: q.get('namespace') ?? '',
      labels: q.get('labels') ?? '',
      text: q.get('text') ?? '',
    };
    const ref = a && b && c ? { group: groupOf(a), version: b, resource: c } : undefined;
    return { view: 'resources', ref, filter };
  }
  if ((first === 'object' || first === 'edit') && a && b && c && d && e) {
    const ref = { group: groupOf(a), version: b, resource: c };
    return { view: first, ref, namespace: d === '-' ? '' : d, name: e };
  }
  return { view: 'overview' };
}

export const podHref = (namespace: string, name: string) =>
  `#/pods/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;

export const terminalHref = (namespace: string, pod: string) =>
  `#/terminal/${encodeURIComponent(namespace)}/${encodeURIComponent(pod)}`;

export const yamlHref = (kind: string, namespace: string, name: string) =>
  `#/yaml/${kind}/${encodeURIComponent(namespace || '-')}/${encodeURIComponent(name)}`;

const refPath = (ref: ResourceRef) =>
  `${encodeURIComponent(ref.group || 'core')}/${encodeURIComponent(ref.version)}/${encodeURIComponent(ref.resource)}`;

export function listHref(ref: ResourceRef, filter?: Partial<ListFilter>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filter ?? {})) if (v) q.set(k, v);
  const search = q.toString();
  return `#/resources/${refPath(ref)}${search ? `?${search}` : ''}`;
}

export const objectHref = (ref: ResourceRef, namespace: string, name: string, view = 'object') =>
  `#/${view}/${refPath(ref)}/${encodeURIComponent(namespace || '-')}/${encodeURIComponent(name)}`;

/** The query string the server takes for one resource. */
export const refQuery = (ref: ResourceRef, extra: Record<string, string> = {}) =>
  new URLSearchParams({ group: ref.group, version: ref.version, resource: ref.resource, ...extra });
