import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, existsSync, type Stats } from 'node:fs';
import { lstat, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { connect as connectTcp } from 'node:net';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import getPort from 'get-port';
import { parse } from 'yaml';
import { projectRoot } from '../../src/version.js';
import type { DockerEngine } from '../../src/providers/docker/engine.js';
import { cleanupTestResources, connect, loadBusyboxImage, runId, TEST_LABEL } from '../helpers/engine.js';
import {
  deployEcho,
  echoServerArchive,
  kubeClients,
  podResult,
  sandbox,
  waitFor,
  waitForReadyNodes,
} from '../helpers/cluster.js';
import { spawnMinilab } from '../helpers/spawn.js';

const profile = `wf-${runId}`;
const node = `${profile}-control-plane`;
const image = `minilab-test/echo-wf:${runId}`;
/** An image that reaches the cluster only through a `docker save` file. */
const archived = `minilab-test/archived:${runId}`;
/** A start that fails, kept with --keep-on-failure; removed by the last test's delete --all. */
const kept = `${profile}-kept`;
/** The last test's own cluster: --wait none, --cpus, --memory, then delete --all. */
const small = `${profile}-small`;
let s: Awaited<ReturnType<typeof sandbox>>;
let engine: DockerEngine;

before(async () => {
  s = await sandbox('workflow');
  engine = await connect();
  const r = await s.minilab(['start', '-p', profile], { timeoutMs: 20 * 60_000 });
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  for (const p of [profile, kept, small])
    await s.minilab(['delete', '-p', p], { timeoutMs: 120_000 }).catch(() => undefined);
  await engine.images.remove(image).catch(() => undefined);
  await engine.images.remove(`${image}-alias`).catch(() => undefined);
  await engine.images.remove(archived).catch(() => undefined);
  await cleanupTestResources(engine);
  await s.cleanup();
});

/** A GET that fails after 15 s without an answer (a forward to the wrong port must not hang the test). */
const httpGet = (url: string, headers: Record<string, string> = {}) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = get(url, { headers, timeout: 15_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 15 s`)));
    req.on('error', reject);
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

test('the node runs containerd 2.x and runc built here: crictl lists the control plane, the kubelet and status -o json report them', async () => {
  const version = JSON.parse((await s.minilab(['version', '-o', 'json'])).stdout) as {
    runtime: { containerd: string; runc: string; crictl: string };
  };
  const { containerd, runc, crictl } = version.runtime;
  assert.match(containerd, /^v2\./);

  const ps = await s.minilab(['ssh', '-p', profile, '--', 'crictl', 'ps', '-o', 'json']);
  assert.equal(ps.code, 0, ps.stderr);
  const names = (
    JSON.parse(ps.stdout) as { containers: { metadata: { name: string }; state: string }[] }
  ).containers
    .filter((c) => c.state === 'CONTAINER_RUNNING')
    .map((c) => c.metadata.name);
  for (const c of [
    'etcd',
    'kube-apiserver',
    'kube-controller-manager',
    'kube-scheduler',
    'kube-proxy',
    'coredns',
  ])
    assert.ok(names.includes(c), `crictl ps lists ${c} running: ${names.join(', ')}`);

  const inNode = (script: string) => s.minilab(['ssh', '-p', profile, '--', 'sh', '-c', script]);
  const versions = await inNode('containerd --version; runc --version; crictl --version');
  assert.equal(versions.code, 0, versions.stderr);
  assert.match(
    versions.stdout,
    new RegExp(`^containerd github.com/containerd/containerd/v2 ${containerd} `, 'm'),
  );
  assert.match(versions.stdout, new RegExp(`^runc version ${runc.slice(1)}$`, 'm'));
  assert.match(versions.stdout, /^libseccomp: \d+\.\d+\.\d+$/m, 'runc is built with seccomp');
  assert.match(versions.stdout, new RegExp(`^crictl version ${crictl.slice(1)}$`, 'm'));
  const debian = await inNode('dpkg-query -W containerd runc 2>&1; true');
  assert.match(
    debian.stdout,
    /no packages found matching containerd/,
    "Debian's containerd is not installed",
  );

  const nodes = await s.minilab([
    'kubectl',
    '-p',
    profile,
    '--',
    'get',
    'nodes',
    '-o',
    'jsonpath={.items[*].status.nodeInfo.containerRuntimeVersion}',
  ]);
  assert.equal(nodes.stdout.trim(), `containerd://${containerd.slice(1)}`);
  const status = JSON.parse((await s.minilab(['status', '-p', profile, '-o', 'json'])).stdout) as {
    runtime?: { containerd: string; runc: string };
  };
  assert.deepEqual(status.runtime, { containerd, runc });
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
  // A second name of the same image: loaded as a containerd tag of the first, not streamed again.
  const alias = `${image}-alias`;
  const [repo, tag] = [alias.slice(0, alias.lastIndexOf(':')), alias.slice(alias.lastIndexOf(':') + 1)];
  await engine.client.docker.getImage(image).tag({ repo, tag });
  const both = await s.minilab(['image', 'load', '-p', profile, image, alias, '-o', 'json']);
  assert.equal(both.code, 0, both.stderr);
  assert.deepEqual(
    (JSON.parse(both.stdout) as { loaded: { status: string }[] }).loaded.map((l) => l.status),
    ['unchanged', 'loaded'],
  );
  const ls = await s.minilab(['image', 'ls', '-p', profile]);
  assert.match(ls.stdout, new RegExp(`docker.io/${image}`));
  assert.match(ls.stdout, new RegExp(`docker.io/${alias}`));
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

/** A pod in default that runs once (its image's command, or `command`), from an image the node has. */
const createPodOnce = (core: k8s.CoreV1Api, name: string, image: string, command?: string[]) =>
  core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name },
      spec: {
        restartPolicy: 'Never',
        containers: [{ name: 'c', image, imagePullPolicy: 'Never', ...(command ? { command } : {}) }],
      },
    },
  });

/** Every file under MINILAB_HOME and the kubeconfig's folder, with its mode, size, time and content digest. */
async function sandboxFiles(): Promise<string[]> {
  const out: string[] = [];
  for (const root of [s.home, dirname(s.kubeconfig)]) {
    for (const rel of await readdir(root, { recursive: true })) {
      const path = join(root, rel);
      const st = await lstat(path);
      if (!st.isFile()) continue;
      const digest = createHash('sha256')
        .update(await readFile(path))
        .digest('hex');
      out.push(`${path} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs} ${digest}`);
    }
  }
  return out.sort();
}

test('kubeconfig prints a kubeconfig that kubectl and the client library use to list the nodes, changing no file', async () => {
  const before = await sandboxFiles();
  const r = await s.minilab(['kubeconfig', '-p', profile]);
  assert.equal(r.code, 0, r.stderr);

  const config = new k8s.KubeConfig();
  config.loadFromString(r.stdout);
  assert.match(config.getCurrentCluster()?.server ?? '', /^https:\/\/127\.0\.0\.1:\d+$/);
  const nodes = await config.makeApiClient(k8s.CoreV1Api).listNode();
  assert.deepEqual(
    nodes.items.map((n) => n.metadata?.name),
    [node],
  );

  // As the README shows it, with the kubectl `minilab kubectl` fetched (its own HOME for its cache).
  const kubectlDir = join(s.home, 'cache', 'kubectl');
  const kubectl = join(kubectlDir, (await readdir(kubectlDir))[0] as string, 'kubectl');
  const { stdout } = await promisify(execFile)(
    'bash',
    [
      '-c',
      'KUBECONFIG=<("$0" "$1" kubeconfig -p "$2") "$3" get nodes -o name',
      process.execPath,
      join(projectRoot, 'dist', 'src', 'main.js'),
      profile,
      kubectl,
    ],
    { env: { ...s.env, HOME: join(s.dir, 'kubectl-home') } },
  );
  assert.equal(stdout.trim(), `node/${node}`);
  assert.deepEqual(
    await sandboxFiles(),
    before,
    'no file under MINILAB_HOME or beside the kubeconfig changed',
  );
});

test('image load --archive loads a docker save file; a pod runs the image with pullPolicy Never', async () => {
  const file = join(s.dir, 'archived.tar');
  await loadBusyboxImage(engine, archived, ['sh', '-c', 'echo ran from the archive']);
  await pipeline(await engine.images.save(archived), createWriteStream(file));
  // Gone from the engine: the cluster can get it only from the file.
  assert.equal(await engine.images.remove(archived), 'removed');

  const r = await s.minilab(['image', 'load', '-p', profile, '--archive', file, '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const { loaded } = JSON.parse(r.stdout) as { loaded: { ref: string; status: string; sizeBytes: number }[] };
  assert.deepEqual(
    loaded.map((l) => [l.ref, l.status, l.sizeBytes]),
    [[file, 'loaded', (await stat(file)).size]],
  );
  const ls = await s.minilab(['image', 'ls', '-p', profile, '-o', 'json']);
  const { images } = JSON.parse(ls.stdout) as { images: { ref: string; loaded: boolean }[] };
  assert.ok(
    images.some((i) => i.ref === `docker.io/${archived}` && i.loaded),
    `docker.io/${archived} listed as loaded: ${ls.stdout}`,
  );

  const { core } = kubeClients(s.kubeconfig, profile);
  await createPodOnce(core, 'archived', archived);
  const ran = await podResult(core, 'default', 'archived');
  assert.equal(ran.phase, 'Succeeded', ran.log);
  assert.equal(ran.log.trim(), 'ran from the archive');
});

test('image ls --node-images lists the node image the cluster runs; image ls shows its preloaded images, pinned and mirrored', async () => {
  const state = await engine.containers.inspect(node);
  assert.ok(state, `${node} exists`);
  const version = state.labels['io.minilab.kubernetes-version'];
  assert.match(version ?? '', /^v1\.\d+\.\d+$/);

  const r = await s.minilab(['image', 'ls', '--node-images', '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const nodeImages = (
    JSON.parse(r.stdout) as { images: { ref: string; version: string; sizeBytes: number }[] }
  ).images;
  assert.ok(
    nodeImages.every((i) => i.ref.startsWith('minilab/node:')),
    `only node images: ${nodeImages.map((i) => i.ref).join(', ')}`,
  );
  const running = nodeImages.find((i) => i.ref === state.image);
  assert.ok(running, `${state.image} is listed: ${r.stdout}`);
  assert.equal(running.version, version);
  assert.ok(running.sizeBytes > 100e6, `${running.sizeBytes} bytes: a whole node image`);
  const text = await s.minilab(['image', 'ls', '--node-images']);
  assert.match(text.stdout, new RegExp(`^${state.image.replace(/[.]/g, '\\.')}\\s+${version}\\s`, 'm'));

  const inCluster = await s.minilab(['image', 'ls', '-p', profile, '-o', 'json']);
  const { images } = JSON.parse(inCluster.stdout) as {
    images: { ref: string; pinned: boolean; loaded: boolean; mirrored: boolean }[];
  };
  for (const name of [
    'kube-apiserver',
    'kube-controller-manager',
    'kube-scheduler',
    'kube-proxy',
    'etcd',
    'coredns',
    'pause',
    'local-path-provisioner',
    'storage-helper',
  ]) {
    const preloaded = images.find((i) => i.ref.includes(`/${name}:`));
    assert.ok(
      preloaded?.pinned && !preloaded.loaded && preloaded.mirrored,
      `${name} is preloaded, pinned and in the mirror: ${inCluster.stdout}`,
    );
  }
});

test('logs -f prints new lines as they come; Ctrl-C ends it with 0, and no follower is left in the node', async () => {
  const { core } = kubeClients(s.kubeconfig, profile);
  const args = ['logs', '-p', profile, '--component', 'containerd', '-f', '--tail', '1'];
  // The engine cannot stop an exec: a follow must end in the node by itself.
  const followers = () => s.minilab(['ssh', '-p', profile, '--', 'pgrep', '-af', 'journalctl -u containerd']);
  const pod = `followed-${runId}`;
  const follow = spawnMinilab(args, s.env);
  try {
    await follow.see('stdout', /\S/, 30_000);
    // A new pod sandbox: containerd logs it (at info) after the follow began.
    await createPodOnce(core, pod, 'docker.io/minilab/storage-helper:v1', ['true']);
    // (containerd 1.7 printed the metadata as Name:POD, 2.x as name:"POD", escaped in the journal's
    // logfmt line as name:\"POD\")
    await follow.see('stdout', new RegExp(`RunPodSandbox for .*[Nn]ame:(\\\\")?${pod}`), 60_000);
    assert.deepEqual(await follow.stop('SIGINT'), { code: 0, signal: null }, follow.stderr());
  } finally {
    follow.kill();
    await core.deleteNamespacedPod({ name: pod, namespace: 'default' }).catch(() => undefined);
  }
  const left = await followers();
  assert.equal(left.code, 1, `still running in the node after Ctrl-C:\n${left.stdout}`);

  // A CLI killed outright: its connection goes, and the follow ends in the node all the same.
  const killed = spawnMinilab(args, s.env);
  try {
    await killed.see('stdout', /\S/, 30_000);
    assert.equal((await followers()).code, 0, 'the follow runs in the node');
    assert.deepEqual(await killed.stop('SIGKILL'), { code: null, signal: 'SIGKILL' });
    await waitFor('the follow to end in the node', 15_000, async () =>
      (await followers()).code === 1 ? true : undefined,
    );
  } finally {
    killed.kill();
  }
});

test('service --port reaches the port asked for; --list shows the background forwards until --stop', async () => {
  const { core } = kubeClients(s.kubeconfig, profile);
  // The first port leads nowhere (nothing listens on 9): only --port 82 reaches the echo server.
  await core.createNamespacedService({
    namespace: 'default',
    body: {
      metadata: { name: 'echo-ports' },
      spec: {
        selector: { app: 'echo' },
        ports: [
          { name: 'closed', port: 81, targetPort: 9 },
          { name: 'http', port: 82, targetPort: 8080 },
        ],
      },
    },
  });
  const absent = await s.minilab(['service', '-p', profile, 'echo-ports', '--port', '83', '--url']);
  assert.equal(absent.code, 4, absent.stderr);
  assert.match(absent.stderr, /^error: service "echo-ports" has no port 83$/m);
  assert.match(absent.stderr, /^hint: its ports: 81, 82$/m);

  const forwarded = await waitFor(
    'a forward of echo-ports port 82 (its endpoints listed)',
    30_000,
    async () => {
      const r = await s.minilab(['service', '-p', profile, 'echo-ports', '--port', '82', '--url']);
      if (r.code !== 0) throw new Error(r.stderr);
      return r.stdout.trim();
    },
  );
  assert.match(forwarded, /^http:\/\/127\.0\.0\.1:\d+$/);
  const res = await httpGet(`${forwarded}/`);
  assert.equal(res.status, 200);
  assert.match(res.body, /^hello from echo-/);

  const echo = await s.minilab(['service', '-p', profile, 'echo', '--url']);
  assert.equal(echo.code, 0, echo.stderr);
  const list = await s.minilab(['service', '-p', profile, '--list']);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(
    list.stdout.split('\n').filter(Boolean).sort(),
    [`default/echo\t${echo.stdout.trim()}`, `default/echo-ports\t${forwarded}`].sort(),
  );
  const stopped = await s.minilab(['service', '-p', profile, '--stop']);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.equal((await s.minilab(['service', '-p', profile, '--list'])).stdout, 'no background forwards\n');
  await waitFor('the forward to close', 10_000, async () =>
    httpGet(`${forwarded}/`).then(
      () => undefined,
      () => true,
    ),
  );
});

test('dashboard --port serves on that port; the port in use is refused with a hint', async () => {
  const port = await getPort({ host: '127.0.0.1' });
  const dashboard = spawnMinilab(['dashboard', '-p', profile, '--port', String(port), '--url'], s.env);
  try {
    const printed = await dashboard.see(
      'stdout',
      /^http:\/\/127\.0\.0\.1:(\d+)\/#token=([A-Za-z0-9_-]+)$/m,
      30_000,
    );
    assert.equal(Number(printed[1]), port);
    const info = await httpGet(`http://127.0.0.1:${port}/api/info`, {
      Authorization: `Bearer ${printed[2]}`,
    });
    assert.equal(info.status, 200, info.body);
    assert.equal((JSON.parse(info.body) as { profile: string }).profile, profile);

    const taken = await s.minilab(['dashboard', '-p', profile, '--port', String(port), '--url'], {
      timeoutMs: 60_000,
    });
    assert.equal(taken.code, 3, taken.stderr);
    assert.match(
      taken.stderr,
      new RegExp(`^error: cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)$`, 'm'),
    );
    assert.match(taken.stderr, /^hint: choose another port with --port/m);
    assert.deepEqual(await dashboard.stop('SIGINT'), { code: 0, signal: null }, dashboard.stderr());
  } finally {
    dashboard.kill();
  }
});

test('start --keep-on-failure keeps what a failed start made, for inspection', async () => {
  const keptNode = `${kept}-control-plane`;
  const start = spawnMinilab(['start', '-p', kept, '--keep-on-failure'], s.env);
  try {
    // The fault: the node container killed while the start boots it.
    await start.see('stderr', /^• Booting the node/m, 120_000);
    await waitFor(`${keptNode} to run, then killed`, 60_000, async () => {
      if (!(await engine.containers.inspect(keptNode))?.running) return undefined;
      await engine.containers.kill(keptNode);
      return true;
    });
    const ended = await start.exited;
    assert.equal(ended.code, 6, start.stderr());
    assert.match(start.stderr(), new RegExp(`^error: the node container ${keptNode} stopped`, 'm'));
  } finally {
    start.kill();
  }
  assert.match(
    start.stderr(),
    new RegExp(
      `kept the half-made cluster for inspection \\(--keep-on-failure\\); remove it with: minilab delete -p ${kept}$`,
      'm',
    ),
  );
  const byLabel = { 'io.minilab.profile': kept };
  assert.deepEqual(
    (await engine.containers.list(byLabel)).map((c) => c.name),
    [keptNode],
  );
  assert.deepEqual(await engine.volumes.list(byLabel), [`${kept}-var`]);
  assert.deepEqual(await engine.networks.list(byLabel), [`minilab-${kept}`]);
  const status = await s.minilab(['status', '-p', kept, '-o', 'json']);
  assert.notEqual(status.code, 0);
  assert.equal((JSON.parse(status.stdout) as { node: { container: string } }).node.container, 'exited');
});

// Last: delete --all removes the shared cluster too.
test('start --wait none --cpus 1 --memory 2g: back before the waits, with the limits in the engine, then Ready; delete --all removes every profile', async (t) => {
  const smallNode = `${small}-control-plane`;
  const r = await s.minilab(['start', '-p', small, '--wait', 'none', '--cpus', '1', '--memory', '2g'], {
    timeoutMs: 10 * 60_000,
  });
  assert.equal(r.code, 0, r.stderr);
  const { core, apps } = kubeClients(s.kubeconfig, small);
  const coreDns = async () =>
    (await apps.readNamespacedDeployment({ name: 'coredns', namespace: 'kube-system' })).status
      ?.availableReplicas ?? 0;
  t.diagnostic(`when start returned: CoreDNS available replicas ${await coreDns().catch(() => 'unknown')}`);
  assert.match(r.stderr, /^✓ Initializing the control plane \(kubeadm init\)/m);
  assert.match(r.stderr, /^✓ Writing the kubeconfig/m);
  assert.doesNotMatch(r.stderr, /Waiting for node Ready/, '--wait none skips the waits');

  const info = await engine.client.docker.getContainer(smallNode).inspect();
  assert.equal(info.HostConfig.NanoCpus, 1e9, '--cpus 1');
  assert.equal(info.HostConfig.Memory, 2 * 1024 ** 3, '--memory 2g');
  assert.equal(info.HostConfig.MemorySwap, 2 * 1024 ** 3, 'no swap beyond the memory limit');

  await waitForReadyNodes(core, [smallNode], 240_000);
  await waitFor('CoreDNS available', 240_000, async () => ((await coreDns()) >= 1 ? true : undefined));

  // delete --all removes every minilab cluster the engine holds, not only this MINILAB_HOME's:
  // run it only when each one is this file's (a developer's own clusters must not go).
  const foreign = (await engine.containers.list({ 'io.minilab.managed': 'true' }))
    .filter((c) => c.labels[TEST_LABEL] !== runId)
    .map((c) => c.name);
  assert.deepEqual(foreign, [], 'minilab containers this test did not make: delete --all would remove them');
  const listed = await s.minilab(['profile', 'list', '-o', 'json']);
  const names = (JSON.parse(listed.stdout) as { profiles: { name: string }[] }).profiles
    .map((p) => p.name)
    .sort();
  for (const p of [profile, small]) assert.ok(names.includes(p), `${p} in ${names.join(', ')}`);

  const all = await s.minilab(['delete', '--all', '-o', 'json'], { timeoutMs: 300_000 });
  assert.equal(all.code, 0, all.stderr);
  assert.deepEqual(
    (JSON.parse(all.stdout) as { deleted: { profile: string }[] }).deleted.map((d) => d.profile).sort(),
    names,
  );
  for (const p of names) {
    const byLabel = { 'io.minilab.profile': p };
    assert.deepEqual(await engine.containers.list(byLabel), [], `${p}: no container`);
    assert.deepEqual(await engine.volumes.list(byLabel), [], `${p}: no volume`);
    assert.deepEqual(await engine.networks.list(byLabel), [], `${p}: no network`);
  }
  assert.deepEqual(await readdir(join(s.home, 'profiles')).catch(() => []), [], 'no profile state left');
  const doc = parse(await readFile(s.kubeconfig, 'utf8')) as { contexts?: { name: string }[] | null };
  assert.deepEqual(
    (doc.contexts ?? []).map((c) => c.name).filter((c) => names.includes(c)),
    [],
    'no kubeconfig context left',
  );
  const again = await s.minilab(['delete', '--all']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, 'nothing to delete\n');
});
