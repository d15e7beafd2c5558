export type Route =
  | { view: 'overview' }
  | { view: 'workloads' }
  | { view: 'services' }
  | { view: 'pod'; namespace: string; name: string }
  | { view: 'yaml'; kind: string; namespace: string; name: string };

/** Hash routes: #/workloads, #/pods/NS/NAME, #/yaml/KIND/NS/NAME ("-" for cluster-scoped). */
export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'workloads') return { view: 'workloads' };
  if (parts[0] === 'services') return { view: 'services' };
  if (parts[0] === 'pods' && parts[1] && parts[2])
    return { view: 'pod', namespace: parts[1], name: parts[2] };
  if (parts[0] === 'yaml' && parts[1] && parts[2] && parts[3]) {
    return { view: 'yaml', kind: parts[1], namespace: parts[2] === '-' ? '' : parts[2], name: parts[3] };
  }
  return { view: 'overview' };
}

export const podHref = (namespace: string, name: string) =>
  `#/pods/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;

export const yamlHref = (kind: string, namespace: string, name: string) =>
  `#/yaml/${kind}/${encodeURIComponent(namespace || '-')}/${encodeURIComponent(name)}`;
