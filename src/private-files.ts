import { constants, fchmodSync, openSync } from 'node:fs';
import { chmod, mkdir, open, type FileHandle } from 'node:fs/promises';

/**
 * What minilab keeps under MINILAB_HOME (caches, logs, state) and what it writes into a log bundle
 * is its user's alone: folders 0700, files 0600, programs 0700. Modes are given explicitly, not
 * left to the umask (a usual 022 made them world-readable), and put right on what exists already.
 */

/** Write, create, truncate; never through a symbolic link planted where the file goes. */
const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;

/** A folder (missing parents too) that only its owner can list or enter. */
export async function privateDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  await chmod(path, 0o700);
}

/** Opens a file for writing that only its owner can read (0600, or `mode`), emptied if it was there. */
export async function openPrivateFile(path: string, mode = 0o600): Promise<FileHandle> {
  const handle = await open(path, WRITE_FLAGS, mode);
  try {
    await handle.chmod(mode);
  } catch (err) {
    await handle.close();
    throw err;
  }
  return handle;
}

/** Writes a file only its owner can read (0600, or `mode`), replacing what was there. */
export async function writePrivateFile(path: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const handle = await openPrivateFile(path, mode);
  try {
    await handle.writeFile(data);
  } finally {
    await handle.close();
  }
}

/** A log file opened for appending, 0600, as a descriptor a child process can write to. */
export function openPrivateLog(path: string): number {
  const fd = openSync(
    path,
    constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
    0o600,
  );
  fchmodSync(fd, 0o600);
  return fd;
}
