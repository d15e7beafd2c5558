import { parseAllDocuments, stringify } from 'yaml';
import { apiGroup, type ClusterConfig } from './cluster-config.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };
interface Arg {
  name: string;
  value: string;
}

const KUBEADM_GROUP = 'kubeadm.k8s.io';
/** Keys whose v1beta4 value is a list of {name, value}: patches merge into them by name. */
const ARG_LISTS = new Set(['extraArgs', 'kubeletExtraArgs']);
/**
 * Arguments whose value is itself "k=v,k2=v2": a patch adds to them key by key. kind's ingress
 * guide sets node-labels in a patch; replacing the value would drop minilab's own node label.
 */
const KEYED_ARGS = new Set(['node-labels', 'feature-gates', 'runtime-config']);

/**
 * minilab's kubeadm configuration (the output of kubeadmConfig() or joinConfig()) with a config
 * file's feature gates, runtime config and kubeadm patches applied, documents in the same order.
 *
 * Patches are JSON merge patches (RFC 7396) matched by kind, and by API group when they name an
 * apiVersion (any version: kind users write kubeadm.k8s.io/v1beta3). As kind does, extraArgs and
 * kubeletExtraArgs merge by name, given as v1beta3 maps or v1beta4 lists (a null value removes the
 * argument), and certSANs are added to, so a patch cannot drop the arguments and names minilab's
 * cluster needs by accident.
 */
export function customizeKubeadm(
  yamlText: string,
  cfg: Pick<ClusterConfig, 'featureGates' | 'runtimeConfig' | 'kubeadmConfigPatches'>,
): string {
  const docs = parseYaml(yamlText);
  for (const doc of docs) applySettings(doc, cfg);
  const patches = cfg.kubeadmConfigPatches.flatMap((text) => parseYaml(text));
  const patched = docs.map((doc) =>
    patches.reduce<JsonObject>((d, p) => (matches(d, p) ? applyPatch(d, p) : d), doc),
  );
  return patched.map((d) => stringify(d)).join('---\n');
}

function parseYaml(text: string): JsonObject[] {
  return parseAllDocuments(text, { uniqueKeys: true }).flatMap((doc) => {
    const error = doc.errors[0];
    if (error) throw error;
    const value = doc.toJS() as Json;
    return isObject(value) ? [value] : [];
  });
}

/** Feature gates for every component that takes them; runtime config for the API server. */
function applySettings(doc: JsonObject, cfg: Pick<ClusterConfig, 'featureGates' | 'runtimeConfig'>): void {
  const gates = Object.keys(cfg.featureGates).length > 0;
  const runtime = Object.keys(cfg.runtimeConfig).length > 0;
  switch (doc.kind) {
    case 'ClusterConfiguration':
      if (gates) {
        for (const component of ['apiServer', 'controllerManager', 'scheduler']) {
          setListArg(child(doc, component), 'feature-gates', cfg.featureGates);
        }
      }
      if (runtime) setListArg(child(doc, 'apiServer'), 'runtime-config', cfg.runtimeConfig);
      break;
    case 'KubeletConfiguration':
    case 'KubeProxyConfiguration':
      if (gates) doc.featureGates = sortedKeys({ ...asObject(doc.featureGates), ...cfg.featureGates });
      break;
  }
}

function child(doc: JsonObject, key: string): JsonObject {
  const existing = doc[key];
  if (isObject(existing)) return existing;
  const created: JsonObject = {};
  doc[key] = created;
  return created;
}

/** Sets a "k=v,k2=v2" argument in a component's extraArgs, added to the value already there. */
function setListArg(component: JsonObject, name: string, values: Record<string, string | boolean>): void {
  const value = Object.entries(values)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(',');
  component.extraArgs = mergeArgs(toArgs(component.extraArgs), [{ name, value }]) as unknown as Json;
}

/** Two "k=v,k2=v2" values as one, the second's keys winning, keys sorted (the same file, the same text). */
function mergeKeyed(current: string, added: string): string {
  const merged: Record<string, string> = {};
  for (const pair of `${current},${added}`.split(',')) {
    const eq = pair.indexOf('=');
    if (eq > 0) merged[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return Object.keys(merged)
    .sort()
    .map((k) => `${k}=${merged[k]}`)
    .join(',');
}

/** kind matches a patch by kind, and by API group when the patch names an apiVersion. */
function matches(doc: JsonObject, patch: JsonObject): boolean {
  if (doc.kind !== patch.kind) return false;
  if (typeof patch.apiVersion !== 'string') return true;
  return typeof doc.apiVersion === 'string' && apiGroup(doc.apiVersion) === apiGroup(patch.apiVersion);
}

function applyPatch(doc: JsonObject, patch: JsonObject): JsonObject {
  const body = Object.fromEntries(Object.entries(patch).filter(([k]) => k !== 'apiVersion' && k !== 'kind'));
  const kubeadm = typeof doc.apiVersion === 'string' && apiGroup(doc.apiVersion) === KUBEADM_GROUP;
  return mergePatch(doc, body, kubeadm) as JsonObject;
}

/** RFC 7396 (maps merge, null deletes, anything else replaces), with kubeadm's arguments and SANs merged. */
function mergePatch(target: Json | undefined, patch: Json, kubeadm: boolean): Json {
  if (!isObject(patch)) return patch;
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else if (kubeadm && ARG_LISTS.has(key)) {
      result[key] = mergeArgs(toArgs(result[key]), patchArgs(value)) as unknown as Json;
    } else if (kubeadm && key === 'certSANs' && Array.isArray(value) && Array.isArray(result[key])) {
      const sans = result[key] as Json[];
      result[key] = [...sans, ...value.filter((v) => !sans.includes(v))];
    } else result[key] = mergePatch(result[key], value, kubeadm);
  }
  return result;
}

/** A v1beta4 argument list (or a v1beta3 map, converted) as {name, value} items. */
function toArgs(value: Json | undefined): Arg[] {
  if (Array.isArray(value)) {
    return value.flatMap((item) =>
      isObject(item) && typeof item.name === 'string'
        ? [{ name: item.name, value: String(item.value ?? '') }]
        : [],
    );
  }
  if (isObject(value)) {
    return Object.entries(value).flatMap(([name, v]) => (v === null ? [] : [{ name, value: String(v) }]));
  }
  return [];
}

/** A patch's arguments, v1beta3 map or v1beta4 list; a null value means "remove". */
function patchArgs(value: Json): { name: string; value: string | null }[] {
  const entries: [string, Json][] = Array.isArray(value)
    ? value.flatMap((item) =>
        isObject(item) && typeof item.name === 'string'
          ? [[item.name, item.value ?? null] as [string, Json]]
          : [],
      )
    : isObject(value)
      ? Object.entries(value)
      : [];
  return entries.map(([name, v]) => ({ name, value: v === null ? null : String(v) }));
}

/**
 * Replaces arguments by name in place (first occurrence), appends new ones, removes those set to
 * null; "k=v,..." arguments (KEYED_ARGS) are added to key by key.
 */
function mergeArgs(args: Arg[], changes: { name: string; value: string | null }[]): Arg[] {
  let out = args.map((a) => ({ ...a }));
  for (const change of changes) {
    if (change.value === null) {
      out = out.filter((a) => a.name !== change.name);
      continue;
    }
    const existing = out.find((a) => a.name === change.name);
    if (existing) {
      existing.value = KEYED_ARGS.has(change.name) ? mergeKeyed(existing.value, change.value) : change.value;
    } else
      out.push({
        name: change.name,
        value: KEYED_ARGS.has(change.name) ? mergeKeyed('', change.value) : change.value,
      });
  }
  return out;
}

function sortedKeys<T extends Json>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function asObject(value: Json | undefined): JsonObject {
  return isObject(value) ? value : {};
}

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
