// Runs the compiled test suites with node's test runner, one file at a time (integration and
// end-to-end tests share one Docker engine and two cores). Usage: node scripts/run-tests.mjs [unit|integration|e2e ...]
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const suites = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['unit', 'integration', 'e2e'];
const files = suites.flatMap((suite) => {
  const dir = join('dist', 'test', suite);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.test.js'))
    .sort()
    .map((f) => join(dir, f));
});
if (files.length === 0) {
  console.error(`no test files found for: ${suites.join(', ')} (did the build run?)`);
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
