/** Labels are the record of what minilab owns: status, delete and cleanup rediscover everything from them. */
export const LABEL_PREFIX = 'io.minilab';
export const Labels = {
  managed: `${LABEL_PREFIX}.managed`,
  profile: `${LABEL_PREFIX}.profile`,
  role: `${LABEL_PREFIX}.role`,
  node: `${LABEL_PREFIX}.node`,
  kind: `${LABEL_PREFIX}.kind`,
  apiServerPort: `${LABEL_PREFIX}.apiserver-port`,
  version: `${LABEL_PREFIX}.kubernetes-version`,
} as const;

export type ResourceKind = 'node' | 'network' | 'volume' | 'build' | 'helper';

export function ownedLabels(
  profile: string,
  kind: ResourceKind,
  extra: Record<string, string> = {},
): Record<string, string> {
  return { ...extra, [Labels.managed]: 'true', [Labels.profile]: profile, [Labels.kind]: kind };
}

/** Parses MINILAB_LABELS ("k=v,k2=v2"): extra labels put on every resource (tests use it to find what they made). */
export function parseExtraLabels(value: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of (value ?? '').split(',')) {
    const trimmed = pair.trim();
    if (!trimmed) continue;
    const eq = trimmed.indexOf('=');
    if (eq <= 0) labels[trimmed] = '';
    else labels[trimmed.slice(0, eq)] = trimmed.slice(eq + 1);
  }
  return labels;
}

export function labelFilter(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => (v === '' ? k : `${k}=${v}`));
}
