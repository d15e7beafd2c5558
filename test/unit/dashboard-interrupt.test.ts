import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { projectRoot } from '../../src/version.js';

/**
 * A process waiting on interruption() beside proper-lockfile's signal-exit handler (as every
 * command that locks a file has): the first Ctrl-C settles it, then it stops in `stopMs`; returns
 * its output, exit code and the signal that ended it.
 */
function interrupted(signals: number, stopMs: number) {
  const script = `
import onExit from 'signal-exit';
import { interruption } from ${JSON.stringify(new URL('../../src/cli/interrupt.js', import.meta.url).href)};
onExit(() => undefined);
const keep = setInterval(() => undefined, 1000);
const stop = interruption();
console.log('ready');
await stop.happened;
console.log('stopping');
await new Promise((resolve) => setTimeout(resolve, ${stopMs}));
stop.dispose();
clearInterval(keep);
console.log('stopped');
`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: projectRoot });
  let out = '';
  let seen = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    // Ctrl-C once the process waits for it, and again (when asked) once it is stopping.
    for (const line of out.slice(seen.length).split('\n').slice(0, -1)) {
      if (line === 'ready' || (line === 'stopping' && signals === 2)) child.kill('SIGINT');
    }
    seen = out.slice(0, out.lastIndexOf('\n') + 1);
  });
  return new Promise<{ out: string; code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ out, code, signal })),
  );
}

test('the first Ctrl-C lets the command stop by itself (the dashboard: exit 0)', async () => {
  assert.deepEqual(await interrupted(1, 200), { out: 'ready\nstopping\nstopped\n', code: 0, signal: null });
});

test('a second Ctrl-C while stopping does not end (logs -f) ends the process as Ctrl-C does', async () => {
  assert.deepEqual(await interrupted(2, 30_000), { out: 'ready\nstopping\n', code: null, signal: 'SIGINT' });
});
