import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheKey } from '../../src/image/cache.js';

test('cache keys change with any input and only then', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-cache-'));
  try {
    await mkdir(join(dir, 'a'));
    await writeFile(join(dir, 'a', 'x.sh'), 'echo 1');
    await writeFile(join(dir, 'b.txt'), 'b');
    const key = () =>
      cacheKey({ values: { version: 'v1.36.5' }, paths: [join(dir, 'a'), join(dir, 'b.txt')], root: dir });
    const k1 = await key();
    assert.match(k1, /^[0-9a-f]{16}$/);
    assert.equal(await key(), k1, 'stable');
    await writeFile(join(dir, 'a', 'x.sh'), 'echo 2');
    const k2 = await key();
    assert.notEqual(k2, k1, 'content change');
    await chmod(join(dir, 'a', 'x.sh'), 0o755);
    const k3 = await key();
    assert.notEqual(k3, k2, 'mode change');
    await writeFile(join(dir, 'a', 'y.sh'), '');
    const k4 = await key();
    assert.notEqual(k4, k3, 'new file');
    const other = await cacheKey({
      values: { version: 'v1.37.2' },
      paths: [join(dir, 'a'), join(dir, 'b.txt')],
      root: dir,
    });
    assert.notEqual(other, k4, 'value change');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
