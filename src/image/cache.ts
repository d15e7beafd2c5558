import { createHash } from 'node:crypto';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** Every file below a path (or the path itself), sorted, for hashing. */
async function filesBelow(path: string): Promise<string[]> {
  const info = await lstat(path);
  if (!info.isDirectory()) return [path];
  const out: string[] = [];
  for (const entry of (await readdir(path, { withFileTypes: true })).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    if (entry.name === '.work' || entry.name === 'node_modules') continue;
    out.push(...(await filesBelow(join(path, entry.name))));
  }
  return out;
}

/**
 * A stage's cache key: a hash of its named inputs (strings) and of the contents, names and modes
 * of its input files. Same inputs, same key; anything changed, a new key.
 */
export async function cacheKey(inputs: {
  values?: Record<string, string>;
  paths?: string[];
  root?: string;
}): Promise<string> {
  const hash = createHash('sha256');
  for (const [k, v] of Object.entries(inputs.values ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    hash.update(`value ${k}=${v}\n`);
  }
  for (const p of inputs.paths ?? []) {
    for (const file of await filesBelow(p)) {
      const info = await lstat(file);
      const name = relative(inputs.root ?? '/', file);
      if (info.isSymbolicLink()) {
        hash.update(`link ${name} -> ${await readlink(file)}\n`);
        continue;
      }
      hash.update(`file ${name} ${(info.mode & 0o111) !== 0 ? 'x' : '-'}\n`);
      hash.update(await readFile(file));
    }
  }
  return hash.digest('hex').slice(0, 16);
}
