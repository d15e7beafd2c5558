import { randomBytes } from 'node:crypto';
import {
  chown,
  lstat,
  mkdir,
  open,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { readFileSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { MinilabError, formatMs } from '../errors.js';
import { processExists } from '../profile/background.js';

/** Who owns a file. */
export interface Owner {
  uid: number;
  gid: number;
}

/** Linux's limit on links followed in one path (MAXSYMLINKS). */
const MAX_LINKS = 40;

/**
 * The file a kubeconfig path names after following its chain of symbolic links (a dotfile manager's
 * ~/.kube/config): writes go there, so the links stay links, as with kubectl. A dangling link names
 * the file it points at, which a write creates.
 */
export async function resolveLinks(file: string): Promise<string> {
  let path = file;
  for (let hops = 0; hops <= MAX_LINKS; hops++) {
    try {
      if (!(await lstat(path)).isSymbolicLink()) return path;
      path = resolve(dirname(path), await readlink(path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return path;
      throw fileError('read', file, err as NodeJS.ErrnoException);
    }
  }
  throw new MinilabError(
    'environment',
    `kubeconfig ${file}: more than ${MAX_LINKS} symbolic links in a row (a loop?)`,
    { hint: `point ${file} at a real file; minilab left it unchanged` },
  );
}

/** A failed read or write of a kubeconfig as one line naming the file, with what to do. */
export function fileError(action: 'read' | 'write', file: string, err: NodeJS.ErrnoException): MinilabError {
  return new MinilabError(
    'environment',
    `cannot ${action} kubeconfig ${file}: ${err.message.split('\n')[0]}`,
    {
      hint: `check that ${file} and its folder are writable (or set KUBECONFIG to another file)`,
      cause: err,
    },
  );
}

/**
 * Under sudo, what root makes inside a folder of the invoking user (their home, ~/.kube) is theirs:
 * the owner a new file or folder at `path` gets, when the nearest folder above it that exists
 * belongs to SUDO_UID. Otherwise none (it stays the creator's, as any file it makes).
 */
export async function ownerForNew(path: string, env: NodeJS.ProcessEnv): Promise<Owner | undefined> {
  if (process.getuid?.() !== 0 || !env.SUDO_UID || !env.SUDO_GID) return undefined;
  const owner = { uid: Number(env.SUDO_UID), gid: Number(env.SUDO_GID) };
  if (!Number.isSafeInteger(owner.uid) || !Number.isSafeInteger(owner.gid) || owner.uid === 0)
    return undefined;
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const info = await stat(dir).catch(() => undefined);
    if (info) return info.uid === owner.uid ? owner : undefined;
    if (dirname(dir) === dir) return undefined;
  }
}

/** Makes a folder and the missing ones above it (mode 0700), each given to `owner` when there is one. */
export async function makeFolder(dir: string, owner: Owner | undefined): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: 0o700 });
  if (!first || !owner) return;
  for (let d = dir; d.length >= first.length; d = dirname(d)) await chown(d, owner.uid, owner.gid);
}

/**
 * Writes the file a kubeconfig path names (through its links) atomically: a temporary file in that
 * file's own folder, renamed over it. An existing file keeps its mode and owner (a user's
 * kubeconfig written by `sudo -E minilab` stays theirs); a new one is 0600, and under sudo the
 * invoking user's when it is made in a folder of theirs. A file whose owner cannot be kept (only
 * root gives files away) is written in place, as kubectl writes every file.
 */
export async function writeKubeconfigFile(file: string, text: string, env: NodeJS.ProcessEnv): Promise<void> {
  const target = await resolveLinks(file);
  try {
    const before = await stat(target).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (!before && !(await stat(dirname(target)).catch(() => undefined))) {
      const where = target === file ? '' : ` is a link to ${target}, whose`;
      throw new MinilabError(
        'environment',
        `kubeconfig ${file}${where} folder ${dirname(target)} does not exist`,
        {
          hint: `create ${dirname(target)}, or point ${file} at a file in an existing folder`,
        },
      );
    }
    const mode = before ? before.mode & 0o7777 : 0o600;
    const owner = before ? { uid: before.uid, gid: before.gid } : await ownerForNew(target, env);
    if (!(await replaceFile(target, text, mode, owner))) await writeFile(target, text);
  } catch (err) {
    throw err instanceof MinilabError ? err : fileError('write', file, err as NodeJS.ErrnoException);
  }
}

/** The atomic write; false (nothing changed) when the new file cannot be given the owner. */
async function replaceFile(target: string, text: string, mode: number, owner?: Owner): Promise<boolean> {
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const handle = await open(tmp, 'wx', 0o600);
  let renamed = false;
  try {
    await handle.writeFile(text);
    const made = await handle.stat();
    if (owner && (made.uid !== owner.uid || made.gid !== owner.gid)) {
      const refused = await handle.chown(owner.uid, owner.gid).then(
        () => false,
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'EPERM') return true;
          throw err;
        },
      );
      if (refused) return false;
    }
    // After chown, which may clear set-id bits; chmod is not cut by the umask as open's mode is.
    await handle.chmod(mode);
    await handle.sync();
    await rename(tmp, target);
    renamed = true;
    return true;
  } finally {
    await handle.close();
    if (!renamed) await rm(tmp, { force: true });
  }
}

/** What a minilab holder writes into its lock file (kubectl leaves its own empty). */
const HOLDER = /^minilab pid (\d+) on (\S+)/;

/**
 * Takes kubectl's lock on a kubeconfig file: `<file>.lock`, a file created with O_EXCL (client-go's
 * clientcmd lockFile), so kubectl and minilab exclude each other. kubectl gives up at once on a held
 * lock; minilab waits for it up to `timeoutMs` (its holders keep it for milliseconds), then names
 * the lock file to remove: a lock left by a crashed writer is never taken over silently.
 */
export async function lockKubeconfigFile(file: string, timeoutMs: number): Promise<() => Promise<void>> {
  const lock = `${file}.lock`;
  const started = Date.now();
  // A token of this holding: a release removes the lock only while it is still this one.
  const mine = `minilab pid ${process.pid} on ${hostname()} ${randomBytes(6).toString('hex')}\n`;
  for (;;) {
    const made = await createLock(lock, mine).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') return false;
      throw fileError('write', file, err);
    });
    if (made) {
      return async () => {
        held.delete(lock);
        releaseSignalsIfIdle();
        if ((await readFile(lock, 'utf8').catch(() => '')) === mine)
          await unlink(lock).catch(() => undefined);
      };
    }
    if (Date.now() - started >= timeoutMs) {
      const error = await stillLocked(file, lock, timeoutMs);
      if (error) throw error;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Creates a lock file saying who holds it (EEXIST when it is held). The signal handlers are set
 * before the file is made, and the file counts as held from the moment it exists: a Ctrl-C at any
 * point removes it (before, the default action could end the process between the two and leave
 * an empty lock that the next command took for kubectl's).
 */
async function createLock(lock: string, holder: string): Promise<true> {
  creating++;
  watchSignals(true);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(lock, 'wx', 0o600);
    held.set(lock, holder);
  } catch (err) {
    creating--;
    if (deferred) releaseAndDie(deferred);
    else releaseSignalsIfIdle();
    throw err;
  }
  creating--;
  // a signal that came while the file was being made ends the process now, the file removed
  if (deferred) releaseAndDie(deferred);
  try {
    await handle.writeFile(holder);
    return true;
  } catch (err) {
    held.delete(lock);
    await unlink(lock).catch(() => undefined);
    throw err;
  } finally {
    await handle.close();
    releaseSignalsIfIdle();
  }
}

/** The lock files this process holds, with their tokens: a signal that ends it mid-write removes them. */
const held = new Map<string, string>();
/** Locks being created (open in flight): a signal then waits for the open to end. */
let creating = 0;
let deferred: NodeJS.Signals | undefined;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Takes the signal handlers off once no lock is held or being made. */
function releaseSignalsIfIdle(): void {
  if (held.size === 0 && creating === 0) watchSignals(false);
}

function watchSignals(on: boolean): void {
  for (const signal of SIGNALS) {
    process.off(signal, releaseAndDie);
    if (on) process.once(signal, releaseAndDie);
  }
}

/**
 * Removes the held locks (written or still empty: this process made them), then lets the signal
 * end the process as it would have. While a lock file is being created it waits for that.
 */
function releaseAndDie(signal: NodeJS.Signals): void {
  if (creating > 0) {
    deferred ??= signal;
    watchSignals(true);
    return;
  }
  for (const [lock, mine] of held) {
    try {
      if (mine.startsWith(readFileSync(lock, 'utf8'))) unlinkSync(lock);
    } catch {
      // Gone already.
    }
  }
  held.clear();
  watchSignals(false);
  process.kill(process.pid, signal);
}

/** The error for a lock that outlasted the wait, saying what is known of its holder (none: it is gone now). */
async function stillLocked(file: string, lock: string, timeoutMs: number): Promise<MinilabError | undefined> {
  const info = await lstat(lock).catch(() => undefined);
  if (!info) return undefined;
  let holder: string;
  if (info.isDirectory()) holder = 'a folder: the lock format of an earlier minilab';
  else {
    const text = await readFile(lock, 'utf8').catch(() => '');
    const [, pid, host] = HOLDER.exec(text) ?? [];
    if (pid && host === hostname()) {
      holder = `written by minilab pid ${pid}, ${processExists(Number(pid)) ? 'still running' : 'which is no longer running: the lock is stale'}`;
    } else if (pid) holder = `written by minilab pid ${pid} on ${host}`;
    else holder = text.trim() === '' ? 'empty, as kubectl leaves its lock' : 'written by another program';
  }
  return new MinilabError(
    'timeout',
    `kubeconfig ${file} is still locked after ${formatMs(timeoutMs)}: ${lock} exists (${holder})`,
    {
      hint: `if nothing (kubectl or another minilab) is writing that kubeconfig now, the lock is stale: remove it (rm ${info.isDirectory() ? '-r ' : ''}${lock}) and run the command again`,
    },
  );
}
