import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, type Stats } from 'node:fs';
import { lstat, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { connect as connectTcp } from 'node:net';
import { join } from 'node:path';
import { projectRoot } from '../../src/version.js';
import type { DockerEngine } from '../../src/providers/docker/engine.js';
import { cleanupTestResources, connect, runId } from '../helpers/engine.js';
import { deployEcho, echoServerArchive, kubeClients, sandbox, waitFor } from '../helpers/cluster.js';

const profile = `wf-${runId}`;
const node = `${profile}-control-plane`;
const image = `minilab-test/echo-wf:${runId}`;
let s: Awaited<ReturnType<typeof sandbox>>;
let engine: DockerEngine;

before(async () => {
  s = await sandbox('workflow');
  engine = await connect();
  const r = await s.minilab(['start', '-p', profile], { timeoutMs: 20 * 60_000 });
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await s.minilab(['delete', '-p', profile], { timeoutMs: 120_000 }).catch(() => undefined);
  await engine.images.remove(image).catch(() => undefined);
  await cleanupTestResources(engine);
  await s.cleanup();
});

const httpGet = (url: string) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });

test('ssh runs a command with stdin streamed and its exit code returned', async () => {
  const r = await s.minilab(
    ['ssh', '-p', profile, '--', 'sh', '-c', 'cat; echo "on $(hostname)" >&2; exit 7'],
    { input: 'piped in\n' },
  );
  assert.equal(r.code, 7);
  assert.equal(r.stdout, 'piped in\n');
  assert.match(r.stderr, new RegExp(`on ${node}`));
});

test('ssh gives an interactive shell with a real TTY (tmux)', async () => {
  const session = `minilab-${runId}`;
  const exitFile = join(s.dir, 'ssh-exit');
  const envs = Object.entries({ MINILAB_HOME: s.home, KUBECONFIG: s.kubeconfig })
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const cmd = `${envs} ${process.execPath} ${join(projectRoot, 'dist/src/main.js')} ssh -p ${profile}; echo $? > ${exitFile}`;
  execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '120', '-y', '30', cmd]);
  try {
    const screen = () => execFileSync('tmux', ['capture-pane', '-p', '-t', session]).toString();
    await waitFor('a shell prompt', 20_000, async () => (/[#$] *$/m.test(screen()) ? true : undefined));
    execFileSync('tmux', ['send-keys', '-t', session, 'tty; stty size; echo mark-$((6*7))', 'Enter']);
    const shown = await waitFor('the command output', 20_000, async () =>
      screen().includes('mark-42') ? screen() : undefined,
    );
    assert.match(shown, /\/dev\/pts\/\d+/);
    assert.match(shown, /30 120/, 'the window size reaches the node');
    execFileSync('tmux', ['send-keys', '-t', session, 'exit 3', 'Enter']);
    const code = await waitFor('ssh to exit', 20_000, async () =>
      existsSync(exitFile) ? (await readFile(exitFile, 'utf8')).trim() : undefined,
    );
    assert.equal(code, '3');
  } finally {
    try {
      execFileSync('tmux', ['kill-session', '-t', session], { stdio: 'ignore' });
    } catch {
      // already ended
    }
  }
});

test("kubectl runs with the cluster's version against the profile", async () => {
  const r = await s.minilab(['kubectl', '-p', profile, '--', 'get', 'nodes', '-o', 'name']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), `node/${node}`);
  const v = await s.minilab(['kubectl', '-p', profile, '--', 'version', '--client', '-o', 'json']);
  assert.match(v.stdout, /"gitVersion": "v1\.\d+\.\d+"/);
  const bad = await s.minilab(['kubectl', '-p', profile, '--', 'get', 'pod', 'does-not-exist']);
  assert.equal(bad.code, 1, 'kubectl exit codes come through');
});

test("kubectl's admin kubeconfig is gone when it exits: none in the profile's folder", async () => {
  const r = await s.minilab(['kubectl', '-p', profile, '--', 'config', 'view', '--minify', '-o', 'name']);
  assert.equal(r.code, 0, r.stderr);
  const profileDir = join(s.home, 'profiles', profile);
  assert.deepEqual(
    (await readdir(profileDir)).filter((f) => f.includes('kubeconfig')),
    [],
    "no kubeconfig left in the profile's folder",
  );
});

test('image load streams a local image in, skips it when unchanged, and a pod runs it with pullPolicy Never', async () => {
  await engine.images.load(await echoServerArchive(image, s.dir));
  const first = await s.minilab(['image', 'load', '-p', profile, image, '-o', 'json']);
  assert.equal(first.code, 0, first.stderr);
  assert.equal((JSON.parse(first.stdout) as { loaded: { status: string }[] }).loaded[0]?.status, 'loaded');
  const second = await s.minilab(['image', 'load', '-p', profile, image, '-o', 'json']);
  assert.equal(
    (JSON.parse(second.stdout) as { loaded: { status: string }[] }).loaded[0]?.status,
    'unchanged',
  );
  const ls = await s.minilab(['image', 'ls', '-p', profile]);
  assert.match(ls.stdout, new RegExp(`docker.io/${image}`));
  const missing = await s.minilab(['image', 'load', '-p', profile, 'minilab-test/absent:nope']);
  assert.equal(missing.code, 4);
  assert.match(missing.stderr, /not in the Docker engine/);

  await deployEcho(kubeClients(s.kubeconfig, profile), image, { name: 'echo', port: 8080 });
});

test('service --url answers HTTP from the host until --stop; no endpoints is a clear error', async () => {
  const r = await s.minilab(['service', '-p', profile, 'echo', '--url']);
  assert.equal(r.code, 0, r.stderr);
  const url = r.stdout.trim();
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const res = await httpGet(`${url}/`);
  assert.equal(res.status, 200);
  assert.match(res.body, /^hello from echo-/);
  const stopped = await s.minilab(['service', '-p', profile, '--stop']);
  assert.match(stopped.stdout, /stopped default\/echo/);
  await waitFor('the forward to close', 10_000, async () =>
    httpGet(`${url}/`).then(
      () => undefined,
      () => true,
    ),
  );

  const { core } = kubeClients(s.kubeconfig, profile);
  await core.createNamespacedService({
    namespace: 'default',
    body: { metadata: { name: 'nobody' }, spec: { selector: { app: 'nobody' }, ports: [{ port: 80 }] } },
  });
  const none = await s.minilab(['service', '-p', profile, 'nobody', '--url']);
  assert.equal(none.code, 4);
  assert.match(none.stderr, /has no ready endpoints/);
});

test('service --url: a client resetting its connection leaves the forward serving; a stale record is neither used nor signalled', async () => {
  const r = await s.minilab(['service', '-p', profile, 'echo', '--url']);
  assert.equal(r.code, 0, r.stderr);
  const url = r.stdout.trim();
  const client = connectTcp(Number(new URL(url).port), '127.0.0.1');
  await once(client, 'connect');
  client.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await once(client, 'data');
  client.resetAndDestroy();
  await new Promise((res) => setTimeout(res, 500));
  assert.equal((await httpGet(`${url}/`)).status, 200, 'the forward outlived a reset client');
  assert.match((await s.minilab(['service', '-p', profile, '--stop'])).stdout, /stopped default\/echo/);

  // A record left by a forwarder gone long ago, whose PID another process holds now.
  const other = spawn('sleep', ['120'], { stdio: 'ignore' });
  try {
    const dir = join(s.home, 'profiles', profile, 'services');
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'default.echo.json'),
      JSON.stringify({
        pid: other.pid,
        process: { bootId: 'a-boot-before', startTime: '1', cmdline: 'node\0' },
        url: 'http://127.0.0.1:9',
        namespace: 'default',
        service: 'echo',
        startedAt: new Date(0).toISOString(),
      }),
    );
    const fresh = await s.minilab(['service', '-p', profile, 'echo', '--url']);
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.notEqual(fresh.stdout.trim(), 'http://127.0.0.1:9', 'the dead URL was not given out');
    assert.equal((await httpGet(`${fresh.stdout.trim()}/`)).status, 200);
    const stopped = await s.minilab(['service', '-p', profile, '--stop']);
    assert.equal(stopped.stdout, `stopped default/echo (${fresh.stdout.trim()})\n`);
    await new Promise((res) => setTimeout(res, 500));
    assert.equal(other.exitCode, null, 'the process holding the old PID was not signalled');
    assert.equal(other.signalCode, null);
  } finally {
    other.kill('SIGKILL');
  }
});

test('image load --archive of a directory is a usage error with a hint, not a stack trace', async () => {
  const r = await s.minilab(['image', 'load', '-p', profile, '--archive', s.dir]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`^error: archive ${s.dir} is not a file$`, 'm'));
  assert.match(r.stderr, /^hint: give the path of a docker save or OCI archive file$/m);
  assert.doesNotMatch(r.stderr, /EISDIR|^\s+at /m);
});

test('logs show a component, and --export writes a bundle', async () => {
  const kubelet = await s.minilab(['logs', '-p', profile, '--component', 'kubelet', '--tail', '5']);
  assert.equal(kubelet.code, 0, kubelet.stderr);
  assert.match(kubelet.stdout, /kubelet/);
  const api = await s.minilab(['logs', '-p', profile, '--component', 'kube-apiserver', '--tail', '5']);
  assert.equal(api.code, 0, api.stderr);
  assert.ok(api.stdout.trim().split('\n').length >= 1);
  const bad = await s.minilab(['logs', '-p', profile, '--component', 'nope']);
  assert.equal(bad.code, 2);

  const dir = join(s.dir, 'logs');
  const r = await s.minilab(['logs', '-p', profile, '--export', dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`written to ${dir}`));
  const files = await readdir(join(dir, node));
  for (const f of [
    'journal.log',
    'kubelet.log',
    'containerd.log',
    'versions.txt',
    'containers',
    'kubernetes',
    'node-console.log',
  ]) {
    assert.ok(files.includes(f), `${f} in the bundle (got ${files.join(', ')})`);
  }
  assert.match(await readFile(join(dir, node, 'versions.txt'), 'utf8'), /v1\.\d+\.\d+/);
  assert.ok(existsSync(join(dir, 'inspect.json')));
  const containers = await readdir(join(dir, node, 'containers'));
  assert.ok(
    containers.some((c) => c.includes('kube-apiserver')),
    'control-plane container logs are included',
  );
});

/** Every path below dir, with what lstat says of it. */
async function walk(dir: string): Promise<{ path: string; st: Stats }[]> {
  const out: { path: string; st: Stats }[] = [];
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const st = await lstat(path);
    out.push({ path, st });
    if (st.isDirectory()) out.push(...(await walk(path)));
  }
  return out;
}

test('logs --export follows no link in the node, two at once each finish, and the bundles are private', async () => {
  const inNode = (script: string) => s.minilab(['ssh', '-p', profile, '--', 'sh', '-c', script]);
  // A pod log folder holding links to the cluster CA's key, as a pod with a hostPath could plant.
  const planted = '/var/log/pods/zz_planted_0/c';
  const link = '/var/log/containers/planted_zz_c-0.log';
  const key = '/etc/kubernetes/pki/ca.key';
  const plant = await inNode(
    `mkdir -p ${planted} && ln -sf ${key} ${planted}/0.log && ln -sf ${key} ${link}`,
  );
  assert.equal(plant.code, 0, plant.stderr);
  try {
    const dirs = [join(s.dir, 'logs-a'), join(s.dir, 'logs-b')];
    const runs = await Promise.all(dirs.map((d) => s.minilab(['logs', '-p', profile, '--export', d])));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    for (const dir of dirs) {
      assert.equal((await lstat(dir)).mode & 0o777, 0o700, dir);
      const entries = await walk(dir);
      assert.ok(
        entries.some((e) => e.path.endsWith('journal.log')),
        `${dir} has the journal`,
      );
      assert.ok(
        entries.some((e) => e.path.includes('kube-apiserver')),
        `${dir} has the API server's log`,
      );
      for (const { path, st } of entries) {
        assert.ok(!st.isSymbolicLink(), `${path} is no link`);
        assert.equal(st.mode & 0o777, st.isDirectory() ? 0o700 : 0o600, path);
        if (st.isFile()) assert.doesNotMatch(await readFile(path, 'utf8'), /PRIVATE KEY/, path);
      }
    }
    const left = await inNode('ls -d /var/tmp/minilab-logs* 2>/dev/null || true');
    assert.equal(left.stdout.trim(), '', 'no log folder left in the node');
  } finally {
    await inNode(`rm -rf /var/log/pods/zz_planted_0 ${link}`);
  }
});

test('completion scripts name the commands and complete profiles', async () => {
  for (const shell of ['bash', 'zsh', 'fish']) {
    const r = await s.minilab(['completion', shell]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /start/);
    assert.match(r.stdout, /profiles/);
  }
  const script = (await s.minilab(['completion', 'bash'])).stdout;
  const out = execFileSync(
    'bash',
    ['-c', `${script}\nCOMP_WORDS=(minilab -p ""); COMP_CWORD=2; _minilab; echo "\${COMPREPLY[@]}"`],
    {
      env: { ...process.env, MINILAB_HOME: s.home },
    },
  ).toString();
  assert.match(out, new RegExp(profile));
});

test('commands on a missing cluster fail with a hint', async () => {
  for (const args of [
    ['ssh', '-p', 'absent-x'],
    ['kubectl', '-p', 'absent-x', '--', 'get', 'pods'],
    ['image', 'load', '-p', 'absent-x', image],
  ]) {
    const r = await s.minilab(args);
    assert.equal(r.code, 4, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /hint: create it with: minilab start -p absent-x/);
  }
});
