import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';
import { table } from '../../src/cli/output.js';

test('version -o json prints exactly one JSON document on stdout', async () => {
  const r = await runCli(['version', '-o', 'json']);
  assert.equal(r.code, 0);
  const data = JSON.parse(r.stdout) as {
    minilab: string;
    defaultKubernetesVersion: string;
    runtime: { containerd: string; runc: string; crictl: string };
  };
  assert.match(data.minilab, /^\d+\.\d+\.\d+/);
  assert.match(data.defaultKubernetesVersion, /^v1\.\d+\.\d+$/);
  // the versions images/runtime/build.sh pins
  assert.match(data.runtime.containerd, /^v2\.\d+\.\d+$/);
  assert.match(data.runtime.runc, /^v1\.\d+\.\d+$/);
  assert.match(data.runtime.crictl, /^v1\.\d+\.\d+$/);
  assert.equal(r.stderr, '');
});

test('--version and --help exit 0', async () => {
  const v = await runCli(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
  const h = await runCli(['--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /Usage: minilab/);
});

test('unknown flags and commands are usage errors with a hint', async () => {
  for (const args of [['version', '--bogus'], ['nonsense'], ['version', '-o', 'yaml']]) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.match(lines[0] ?? '', /^error: /);
    assert.match(lines.at(-1) ?? '', /^hint: /);
    assert.equal(r.stdout, '');
  }
});

test('a bad profile name is refused before anything runs', async () => {
  const r = await runCli(['-p', 'Bad.Name', 'profile', 'list'], {
    ...process.env,
    DOCKER_HOST: 'unix:///nonexistent',
  });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /invalid profile name "Bad.Name"/);
});

test('an unreachable engine is an environment error (exit 3) with a hint', async () => {
  // DOCKER_HOST names the engine: Docker is the driver, whatever else the machine has.
  const r = await runCli(['image', 'ls', '--node-images'], {
    ...process.env,
    DOCKER_HOST: 'unix:///nonexistent.sock',
  });
  assert.equal(r.code, 3);
  assert.match(r.stderr, /^error: no Docker engine at unix:\/\/\/nonexistent.sock/);
  assert.match(r.stderr, /\nhint: /);
});

test('tables align columns', () => {
  assert.equal(table(['A', 'BB'], [['xxx', 'y']]), 'A     BB\nxxx   y\n');
});

test('a mistyped command gets the suggestion as its hint', async () => {
  const r = await runCli(['strat']);
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr,
    "error: unknown command 'strat'\nhint: did you mean start? (minilab --help lists them)\n",
  );
});
