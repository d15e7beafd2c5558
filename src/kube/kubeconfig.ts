import { mkdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { Document, isMap, isSeq, parseDocument, YAMLMap, YAMLSeq } from 'yaml';
import { MinilabError } from '../errors.js';
import { acquireLock } from '../profile/lock.js';
import { writeFileAtomic } from '../profile/store.js';

/** One cluster's kubeconfig entries, all named after the profile. */
export interface KubeconfigEntry {
  name: string;
  server: string;
  certificateAuthorityData: string;
  clientCertificateData: string;
  clientKeyData: string;
}

/** The file kubectl would write to: the first file of $KUBECONFIG, else ~/.kube/config. */
export function kubeconfigPath(env: NodeJS.ProcessEnv): string {
  const first = (env.KUBECONFIG ?? '').split(':').find((p) => p.trim() !== '');
  return first ?? join(env.HOME || homedir(), '.kube', 'config');
}

/** A kubeconfig holding just this entry (what `minilab kubeconfig` prints). */
export function renderKubeconfig(entry: KubeconfigEntry): string {
  return upsertEntry('', entry, true);
}

function parse(text: string, file: string): Document {
  if (text.trim() === '') return new Document({});
  const doc = parseDocument(text);
  if (doc.errors.length > 0 || !(isMap(doc.contents) || doc.contents === null)) {
    throw new MinilabError(
      'environment',
      `kubeconfig ${file} is not valid YAML: ${doc.errors[0]?.message.split('\n')[0] ?? 'not a mapping'}`,
      {
        hint: `fix or move ${file} aside; minilab left it unchanged`,
      },
    );
  }
  for (const key of ['clusters', 'users', 'contexts']) {
    const value = doc.get(key);
    if (value !== undefined && value !== null && !isSeq(value)) {
      throw new MinilabError('environment', `kubeconfig ${file}: "${key}" is not a list`, {
        hint: `fix or move ${file} aside; minilab left it unchanged`,
      });
    }
  }
  return doc;
}

function list(doc: Document, key: string): YAMLSeq {
  let seq = doc.get(key) as YAMLSeq | undefined | null;
  if (!seq) {
    seq = new YAMLSeq();
    doc.set(key, seq);
  }
  return seq;
}

/** Replaces (or adds) the named item of a list, keeping every other item and its position. */
function upsertNamed(doc: Document, key: string, name: string, value: object): void {
  const seq = list(doc, key);
  const node = doc.createNode({ name, ...value });
  const index = seq.items.findIndex((item) => isMap(item) && (item as YAMLMap).get('name') === name);
  if (index >= 0) seq.items[index] = node;
  else seq.items.push(node);
}

/** Adds or updates a profile's cluster, user and context; other entries stay as they are. */
export function upsertEntry(
  text: string,
  entry: KubeconfigEntry,
  switchContext: boolean,
  file = 'kubeconfig',
): string {
  const doc = parse(text, file);
  if (doc.contents === null) doc.contents = doc.createNode({}) as YAMLMap;
  if (doc.get('apiVersion') === undefined) doc.set('apiVersion', 'v1');
  if (doc.get('kind') === undefined) doc.set('kind', 'Config');
  upsertNamed(doc, 'clusters', entry.name, {
    cluster: { 'certificate-authority-data': entry.certificateAuthorityData, server: entry.server },
  });
  upsertNamed(doc, 'users', entry.name, {
    user: { 'client-certificate-data': entry.clientCertificateData, 'client-key-data': entry.clientKeyData },
  });
  upsertNamed(doc, 'contexts', entry.name, { context: { cluster: entry.name, user: entry.name } });
  if (switchContext || !doc.get('current-context')) doc.set('current-context', entry.name);
  if (doc.get('preferences') === undefined) doc.set('preferences', doc.createNode({}));
  return doc.toString();
}

/** Removes a profile's cluster, user and context entries; nothing else. */
export function removeEntry(
  text: string,
  name: string,
  file = 'kubeconfig',
): { text: string; removed: boolean } {
  const doc = parse(text, file);
  let removed = false;
  for (const key of ['clusters', 'users', 'contexts']) {
    const seq = doc.get(key) as YAMLSeq | undefined | null;
    if (!seq) continue;
    const before = seq.items.length;
    seq.items = seq.items.filter((item) => !(isMap(item) && (item as YAMLMap).get('name') === name));
    removed ||= seq.items.length !== before;
  }
  if (doc.get('current-context') === name) {
    doc.set('current-context', '');
    removed = true;
  }
  return { text: doc.toString(), removed };
}

/** Reads a profile's entry back (status uses it to say whether the kubeconfig is in sync). */
export function findEntry(text: string, name: string): { server?: string; current: boolean } | undefined {
  const doc = parse(text, 'kubeconfig');
  const clusters = doc.get('clusters') as YAMLSeq | undefined | null;
  const cluster = clusters?.items.find((i) => isMap(i) && (i as YAMLMap).get('name') === name) as
    YAMLMap | undefined;
  if (!cluster) return undefined;
  const server = (cluster.get('cluster') as YAMLMap | undefined)?.get('server');
  return {
    server: typeof server === 'string' ? server : undefined,
    current: doc.get('current-context') === name,
  };
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Runs a read-modify-write of a kubeconfig file under its lock, written atomically with mode 0600. */
async function editKubeconfig(file: string, edit: (text: string) => string | undefined): Promise<boolean> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const release = await acquireLock(file, `kubeconfig ${file}`, {
    timeoutMs: 30_000,
    purpose: 'minilab kubeconfig update',
  });
  try {
    const before = await readIfExists(file);
    const after = edit(before ?? '');
    if (after === undefined || after === before) return false;
    const mode = before === undefined ? 0o600 : (await stat(file)).mode & 0o777 & ~0o077;
    await writeFileAtomic(file, after, mode || 0o600);
    return true;
  } finally {
    await release();
  }
}

export async function writeKubeconfigEntry(
  file: string,
  entry: KubeconfigEntry,
  switchContext: boolean,
): Promise<void> {
  await editKubeconfig(file, (text) => upsertEntry(text, entry, switchContext, file));
}

export async function removeKubeconfigEntry(file: string, name: string): Promise<boolean> {
  if ((await readIfExists(file)) === undefined) return false;
  let removed = false;
  await editKubeconfig(file, (text) => {
    const r = removeEntry(text, name, file);
    removed = r.removed;
    return r.removed ? r.text : undefined;
  });
  return removed;
}

export async function readKubeconfigEntry(file: string, name: string) {
  const text = await readIfExists(file);
  return text === undefined ? undefined : findEntry(text, name);
}
