import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { Document, isMap, isSeq, parseDocument, YAMLMap, YAMLSeq } from 'yaml';
import { MinilabError } from '../errors.js';
import {
  fileError,
  lockKubeconfigFile,
  makeFolder,
  ownerForNew,
  resolveLinks,
  writeKubeconfigFile,
} from './kubeconfig-file.js';

/** One cluster's kubeconfig entries, all named after the profile. */
export interface KubeconfigEntry {
  name: string;
  server: string;
  certificateAuthorityData: string;
  clientCertificateData: string;
  clientKeyData: string;
}

/**
 * The kubeconfig files in kubectl's loading order: the entries of $KUBECONFIG (empty ones and
 * repeats dropped), else ~/.kube/config.
 */
export function kubeconfigFiles(env: NodeJS.ProcessEnv): string[] {
  const listed = (env.KUBECONFIG ?? '').split(delimiter).filter((p) => p.trim() !== '');
  return listed.length > 0 ? [...new Set(listed)] : [join(env.HOME || homedir(), '.kube', 'config')];
}

/** The first file of the list: where a kubeconfig goes when no file of $KUBECONFIG exists yet. */
export function kubeconfigPath(env: NodeJS.ProcessEnv): string {
  return kubeconfigFiles(env)[0] as string;
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

const KEYS = ['clusters', 'users', 'contexts'] as const;

/** Long values of the user's entries stay on their lines (the YAML default folds them at 80 columns). */
const KEEP_LINES = { lineWidth: 0 };

function hasNamed(doc: Document, key: string, name: string): boolean {
  const seq = doc.get(key) as YAMLSeq | undefined | null;
  return Boolean(seq?.items.some((item) => isMap(item) && (item as YAMLMap).get('name') === name));
}

/** The kubeconfig fields of one of a profile's entries (cluster, user, context). */
function entryValue(key: (typeof KEYS)[number], entry: KubeconfigEntry): object {
  if (key === 'clusters') {
    return {
      cluster: { 'certificate-authority-data': entry.certificateAuthorityData, server: entry.server },
    };
  }
  if (key === 'users') {
    return {
      user: {
        'client-certificate-data': entry.clientCertificateData,
        'client-key-data': entry.clientKeyData,
      },
    };
  }
  return { context: { cluster: entry.name, user: entry.name } };
}

/** The files' documents, parsed: a malformed file anywhere in the list stops everything (as with kubectl). */
type Docs = Map<string, Document | undefined>;
function parseAll(files: string[], texts: Map<string, string | undefined>): Docs {
  return new Map(
    files.map((f) => {
      const text = texts.get(f);
      return [f, text === undefined ? undefined : parse(text, f)];
    }),
  );
}

/** The file kubectl writes a new entry to: the only file, else the first that exists, else the last. */
function defaultFile(files: string[], docs: Docs): string {
  if (files.length === 1) return files[0] as string;
  return files.find((f) => docs.get(f) !== undefined) ?? (files[files.length - 1] as string);
}

/** The current context as kubectl sees it: the first non-empty one, and the file setting it. */
function currentContext(files: string[], docs: Docs): { file: string; name: string } | undefined {
  for (const file of files) {
    const name = docs.get(file)?.get('current-context');
    if (typeof name === 'string' && name !== '') return { file, name };
  }
  return undefined;
}

/**
 * Adds or updates a profile's cluster, user and context the way kubectl edits a list of files:
 * each entry where it is already defined first, else in the default file; the current context in
 * the default file. Returns the new text of each file that changes, and the file holding the context.
 */
export function planUpsert(
  files: string[],
  texts: Map<string, string | undefined>,
  entry: KubeconfigEntry,
  switchContext: boolean,
): { writes: Map<string, string>; file: string } {
  const docs = parseAll(files, texts);
  const touched = new Set<string>();
  const edit = (file: string): Document => {
    let doc = docs.get(file);
    if (!doc) docs.set(file, (doc = parse('', file)));
    if (doc.contents === null) doc.contents = doc.createNode({}) as YAMLMap;
    if (doc.get('apiVersion') === undefined) doc.set('apiVersion', 'v1');
    if (doc.get('kind') === undefined) doc.set('kind', 'Config');
    touched.add(file);
    return doc;
  };
  const fallback = defaultFile(files, docs);
  let contextFile = fallback;
  for (const key of KEYS) {
    const file = files.find((f) => docs.get(f) && hasNamed(docs.get(f) as Document, key, entry.name));
    upsertNamed(edit(file ?? fallback), key, entry.name, entryValue(key, entry));
    if (key === 'contexts') contextFile = file ?? fallback;
  }
  const current = currentContext(files, docs);
  if ((switchContext || !current) && current?.name !== entry.name) {
    edit(fallback).set('current-context', entry.name);
  }
  const writes = new Map<string, string>();
  for (const file of touched) {
    const doc = docs.get(file) as Document;
    if (doc.get('preferences') === undefined) doc.set('preferences', doc.createNode({}));
    const text = doc.toString(KEEP_LINES);
    if (text !== texts.get(file)) writes.set(file, text);
  }
  return { writes, file: contextFile };
}

/**
 * Removes a profile's cluster, user and context from the file kubectl finds each in (the first
 * defining it), and clears the current context when it is this profile's; nothing else changes.
 */
export function planRemove(
  files: string[],
  texts: Map<string, string | undefined>,
  name: string,
): { writes: Map<string, string>; removed: boolean } {
  const docs = parseAll(files, texts);
  const touched = new Set<string>();
  for (const key of KEYS) {
    const file = files.find((f) => docs.get(f) && hasNamed(docs.get(f) as Document, key, name));
    if (!file) continue;
    const seq = (docs.get(file) as Document).get(key) as YAMLSeq;
    seq.items = seq.items.filter((item) => !(isMap(item) && (item as YAMLMap).get('name') === name));
    touched.add(file);
  }
  const current = currentContext(files, docs);
  if (current?.name === name) {
    (docs.get(current.file) as Document).set('current-context', '');
    touched.add(current.file);
  }
  const writes = new Map<string, string>();
  for (const file of touched) writes.set(file, (docs.get(file) as Document).toString(KEEP_LINES));
  return { writes, removed: touched.size > 0 };
}

/** Adds or updates a profile's cluster, user and context in one kubeconfig text; other entries stay as they are. */
export function upsertEntry(
  text: string,
  entry: KubeconfigEntry,
  switchContext: boolean,
  file = 'kubeconfig',
): string {
  const { writes } = planUpsert([file], new Map([[file, text]]), entry, switchContext);
  return writes.get(file) ?? text;
}

/** Removes a profile's cluster, user and context entries from one kubeconfig text; nothing else. */
export function removeEntry(
  text: string,
  name: string,
  file = 'kubeconfig',
): { text: string; removed: boolean } {
  const { writes, removed } = planRemove([file], new Map([[file, text]]), name);
  return { text: writes.get(file) ?? text, removed };
}

/** The named item of a list (clusters, users) as kubectl merges the files: the first file's wins. */
function firstNamed(files: string[], docs: Docs, key: string, name: string) {
  const path = files.find((f) => docs.get(f) && hasNamed(docs.get(f) as Document, key, name));
  if (!path) return undefined;
  const seq = (docs.get(path) as Document).get(key) as YAMLSeq;
  const item = seq.items.find((i) => isMap(i) && (i as YAMLMap).get('name') === name) as YAMLMap;
  return { path, item };
}

/**
 * A profile's entry as kubectl sees it across the files: its server, the file defining it, whether
 * it is current, and the credentials minilab wrote for it (its cluster's CA and its user's client
 * certificate) when all three are there.
 */
export function findEntry(
  files: string[],
  texts: Map<string, string | undefined>,
  name: string,
):
  | {
      server?: string;
      path: string;
      current: boolean;
      credentials?: Omit<KubeconfigEntry, 'name' | 'server'>;
    }
  | undefined {
  const docs = parseAll(files, texts);
  const found = firstNamed(files, docs, 'clusters', name);
  if (!found) return undefined;
  const cluster = found.item.get('cluster') as YAMLMap | undefined;
  const server = cluster?.get('server');
  const user = firstNamed(files, docs, 'users', name)?.item.get('user') as YAMLMap | undefined;
  const [ca, cert, key] = [
    cluster?.get('certificate-authority-data'),
    user?.get('client-certificate-data'),
    user?.get('client-key-data'),
  ];
  const credentials =
    typeof ca === 'string' && typeof cert === 'string' && typeof key === 'string'
      ? { certificateAuthorityData: ca, clientCertificateData: cert, clientKeyData: key }
      : undefined;
  return {
    server: typeof server === 'string' ? server : undefined,
    path: found.path,
    current: currentContext(files, docs)?.name === name,
    ...(credentials ? { credentials } : {}),
  };
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fileError('read', file, err as NodeJS.ErrnoException);
  }
}

export interface KubeconfigWriteOptions {
  /** The environment minilab runs in: under sudo, what it makes in the invoking user's folders is theirs. */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for a lock held by kubectl or another minilab. */
  lockTimeoutMs?: number;
}

/** kubectl and minilab hold a kubeconfig's lock for milliseconds: one held this long is most likely stale. */
const LOCK_TIMEOUT_MS = 10_000;

/**
 * Runs a read-modify-write of kubeconfig files under kubectl's locks (taken in sorted order, as
 * kubectl does, so two writers never wait on each other crosswise); a file reached through
 * symbolic links is also locked under its real name, which other names of it lead to. Each changed
 * file is written through its links, atomically, keeping its mode and owner (new ones: 0600).
 */
async function editKubeconfigs<T>(
  files: string[],
  plan: (texts: Map<string, string | undefined>) => { writes: Map<string, string>; result: T },
  opts: KubeconfigWriteOptions,
): Promise<T> {
  const env = opts.env ?? {};
  // The file a new entry goes to is created with its folder; other files are locked only when their folder exists.
  const existing = files.filter((f) => existsSync(f));
  const fallback = (files.length === 1 || existing.length === 0 ? files.at(-1) : existing[0]) as string;
  await makeFolder(dirname(fallback), await ownerForNew(dirname(fallback), env)).catch((err) => {
    throw fileError('write', fallback, err as NodeJS.ErrnoException);
  });
  const locked = new Set<string>();
  for (const file of files) {
    for (const path of [file, await resolveLinks(file)]) if (existsSync(dirname(path))) locked.add(path);
  }
  const releases: (() => Promise<void>)[] = [];
  try {
    for (const path of [...locked].sort()) {
      releases.push(await lockKubeconfigFile(path, opts.lockTimeoutMs ?? LOCK_TIMEOUT_MS));
    }
    const texts = new Map<string, string | undefined>();
    for (const file of files) texts.set(file, await readIfExists(file));
    const { writes, result } = plan(texts);
    for (const [file, text] of writes) await writeKubeconfigFile(file, text, env);
    return result;
  } finally {
    for (const release of releases.reverse()) await release();
  }
}

const asList = (files: string | string[]) => (typeof files === 'string' ? [files] : [...new Set(files)]);

/** Adds or updates the profile's entries in the kubeconfig file(s); returns the file holding its context. */
export async function writeKubeconfigEntry(
  files: string | string[],
  entry: KubeconfigEntry,
  switchContext: boolean,
  opts: KubeconfigWriteOptions = {},
): Promise<string> {
  const list = asList(files);
  return editKubeconfigs(
    list,
    (texts) => {
      const { writes, file } = planUpsert(list, texts, entry, switchContext);
      return { writes, result: file };
    },
    opts,
  );
}

/** Removes the profile's entries from the kubeconfig file(s); says whether there were any. */
export async function removeKubeconfigEntry(
  files: string | string[],
  name: string,
  opts: KubeconfigWriteOptions = {},
): Promise<boolean> {
  const list = asList(files);
  if (!list.some((f) => existsSync(f))) return false;
  return editKubeconfigs(
    list,
    (texts) => {
      const { writes, removed } = planRemove(list, texts, name);
      return { writes, result: removed };
    },
    opts,
  );
}

/** The profile's entry as kubectl sees it in the kubeconfig file(s). */
export async function readKubeconfigEntry(files: string | string[], name: string) {
  const list = asList(files);
  const texts = new Map<string, string | undefined>();
  for (const file of list) texts.set(file, await readIfExists(file));
  return findEntry(list, texts, name);
}

/** Refuses malformed kubeconfig files before anything is made or removed (they are left unchanged). */
export async function checkKubeconfigFiles(files: string[]): Promise<void> {
  const texts = new Map<string, string | undefined>();
  for (const file of files) texts.set(file, await readIfExists(file));
  parseAll(files, texts);
}
