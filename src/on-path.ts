import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The executable of this name in the first of PATH's directories that has one. */
export function findOnPath(command: string, path = ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch {
      // not in this one
    }
  }
  return undefined;
}

/** Whether an executable of this name is in one of PATH's directories. */
export function onPath(command: string, path = ''): boolean {
  return findOnPath(command, path) !== undefined;
}
