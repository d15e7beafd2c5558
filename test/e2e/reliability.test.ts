// Reliability and security against real clusters: engine restart, stop/start and start/delete
// cycles, interrupted starts, concurrency, kubeconfig safety, bad input, exposure.
// One long-lived cluster (profile A) carries the data and is checked after every fault; the
// other profiles come and go. The closing test reports cases tried, faults injected and data lost.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  chown,
  lstat,
  mkdir,
  readFile,
  readdir,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { createSocket } from 'node:dgram';
import { request } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import { lockKubeconfigFile } from '../../src/kube/kubeconfig-file.js';
import { DockerEngine } from '../../src/providers/docker/engine.js';
import { projectRoot } from '../../src/version.js';
import { cleanupTestResources, connect, runId, TEST_LABEL } from '../helpers/engine.js';
import { assertOnlyOurContainersRun, ensureDockerdRunning, restartDockerd } from '../helpers/dockerd.js';
import { createDataClaim, kubeClients, runBin, sandbox, waitFor, type Run } from '../helpers/cluster.js';

const A = `rel-${runId}`;
const I = `rel-${runId}-i`;
const C1 = `rel-${runId}-c1`;
const C2 = `rel-${runId}-c2`;
const BAD = `rel-${runId}-bad`;
const PROFILES = [A, I, C1, C2, BAD];
const nodeOf = (profile: string) => `${profile}-control-plane`;
const DATA = `kept-${runId}`;
/** Preloaded in every node (a shell and coreutils): the pod that holds the PVC runs it. */
const HELPER_IMAGE = 'docker.io/minilab/storage-helper:v1';
const BIN = join(projectRoot, 'dist', 'src', 'main.js');

let s: Awaited<ReturnType<typeof sandbox>>;
let engine: DockerEngine;

/** What the closing note reports. */
const tally = { cases: 0, faults: [] as string[], dataChecks: 0, dataLost: 0, notes: [] as string[] };
/** Everything the CLI printed in this run, scanned for secrets at the end. */
const outputs: { args: string[]; text: string }[] = [];

/** A kubeconfig with other clusters, users and contexts and unusual but valid fields. */
const FOREIGN = `# the user's own kubeconfig: minilab must keep every byte of meaning in it
apiVersion: v1
kind: Config
preferences:
  colors: true
  extensions:
    - name: prefs.example.com
      extension: { theme: dark, "quoted key": [1, 2, 3] }
clusters:
  - name: prod
    cluster:
      server: https://prod.example.invalid:6443
      certificate-authority-data: Tk9UIEEgUkVBTCBDQQ==
      tls-server-name: api.prod.internal
      proxy-url: socks5://127.0.0.1:1080
      disable-compression: true
      extensions:
        - name: client.authentication.k8s.io/exec
          extension:
            audience: prod
            nested: { list: [a, b], flag: false }
  - name: "quoted: name"
    cluster: { server: "https://[::1]:8443", insecure-skip-tls-verify: true }
  - name: unicode-集群
    cluster:
      server: https://127.0.0.2:1
      certificate-authority: /etc/ssl/certs/ca-certificates.crt
users:
  - name: prod-admin
    user:
      exec:
        apiVersion: client.authentication.k8s.io/v1
        command: aws
        args: [eks, get-token, --cluster-name, prod]
        env:
          - name: AWS_PROFILE
            value: prod
        interactiveMode: Never
        provideClusterInfo: true
  - name: impersonator
    user: { token: not-a-real-token, as: someone, as-groups: [a, b], as-user-extra: { reason: [testing] } }
  - name: anchored
    user: &basic
      username: admin
      password: not-a-real-password
  - name: aliased
    user: *basic
contexts:
  - name: prod
    context:
      cluster: prod
      user: prod-admin
      namespace: web
      extensions:
        - name: ctx.example.com
          extension: { note: "a long line that goes on and on so that no formatter would want to keep it on one line as it is" }
  - name: local
    context: { cluster: unicode-集群, user: impersonator }
current-context: prod
`;

type Named = { name: string; [key: string]: unknown };
type KubeconfigDoc = {
  clusters?: Named[] | null;
  users?: Named[] | null;
  contexts?: Named[] | null;
  'current-context'?: string;
  preferences?: unknown;
};

before(async () => {
  s = await sandbox('reliability');
  engine = await connect();
  await mkdir(join(s.dir, 'kube'), { recursive: true, mode: 0o700 });
  await writeFile(s.kubeconfig, FOREIGN, { mode: 0o600 });
});

after(async () => {
  // The engine may be down if the restart test failed half-way: bring it back first.
  await ensureDockerdRunning().catch(() => undefined);
  engine = await connect().catch(() => engine);
  for (const p of PROFILES)
    await runBin(['delete', '-p', p], s.env, { timeoutMs: 120_000 }).catch(() => undefined);
  await cleanupTestResources(engine).catch(() => undefined);
  await s.cleanup();
});

function summary(): string {
  const kinds = new Map<string, number>();
  for (const f of tally.faults) kinds.set(f, (kinds.get(f) ?? 0) + 1);
  return [
    `reliability: ${tally.cases} cases tried, ${tally.faults.length} faults injected (${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}),`,
    `  ${tally.dataChecks} data checks, ${tally.dataLost} data lost`,
    ...tally.notes.map((n) => `  ${n}`),
  ].join('\n');
}

// ---- helpers --------------------------------------------------------------------------------

async function minilab(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  const r = await runBin(args, opts.env ?? s.env, { timeoutMs: opts.timeoutMs ?? 600_000 });
  outputs.push({ args, text: r.stdout + r.stderr });
  return r;
}

/** The CLI as a child process whose stderr lines can be awaited (to inject faults at a step). */
function spawnCli(args: string[], env: NodeJS.ProcessEnv = s.env) {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const watchers: { text: string; resolve: () => void }[] = [];
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
    for (const w of watchers.filter((x) => stderr.includes(x.text))) {
      watchers.splice(watchers.indexOf(w), 1);
      w.resolve();
    }
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; endedAt: number } & Run>(
    (resolve) =>
      child.on('close', (code, signal) => {
        outputs.push({ args, text: stdout + stderr });
        resolve({ code: code ?? -1, signal, endedAt: Date.now(), stdout, stderr });
      }),
  );
  return {
    child,
    done,
    stdout: () => stdout,
    /** Resolves when stderr shows the text, or false when the process ends first. */
    sawLine: (text: string) =>
      Promise.race([
        new Promise<boolean>((resolve) => {
          if (stderr.includes(text)) resolve(true);
          else watchers.push({ text, resolve: () => resolve(true) });
        }),
        done.then(() => stderr.includes(text)),
      ]),
  };
}

/** A user error: exactly one `error:` line, then a `hint:` line ending the output; nothing on stdout. */
function assertUserError(r: Run, code: number, message: RegExp, what: string): void {
  assert.equal(r.code, code, `${what}: exit code ${r.code}, want ${code}\n${r.stderr}`);
  assert.equal(r.stdout, '', `${what}: nothing on stdout`);
  const lines = r.stderr.trimEnd().split('\n');
  const errors = lines.filter((l) => l.startsWith('error: '));
  assert.equal(errors.length, 1, `${what}: one error line\n${r.stderr}`);
  const at = lines.indexOf(errors[0] as string);
  assert.match(lines[at + 1] ?? '', /^hint: \S/, `${what}: a hint right after the error\n${r.stderr}`);
  assert.equal(at + 2, lines.length, `${what}: the hint ends the output\n${r.stderr}`);
  assert.match(errors[0] as string, message, what);
  assert.doesNotMatch(r.stderr, /\n\s+at |undefined|\[object /, `${what}: no stack trace or placeholder`);
}

const clients = (profile: string, file = s.kubeconfig) => kubeClients(file, profile);

function readKubeconfig(file = s.kubeconfig): Promise<KubeconfigDoc> {
  return readFile(file, 'utf8').then((t) => (parse(t) ?? {}) as KubeconfigDoc);
}

/** Every entry of the kubeconfig not named after one of this run's profiles, with the current context. */
function foreignPart(doc: KubeconfigDoc) {
  const other = (items?: Named[] | null) => (items ?? []).filter((i) => !PROFILES.includes(i.name));
  return {
    clusters: other(doc.clusters),
    users: other(doc.users),
    contexts: other(doc.contexts),
    preferences: doc.preferences,
  };
}
const FOREIGN_PART = foreignPart(parse(FOREIGN) as KubeconfigDoc);

/** How many clusters, users and contexts carry a profile's name, over every file given. */
async function entryCount(profile: string, files: string[] = [s.kubeconfig]): Promise<number[]> {
  const counts = [0, 0, 0];
  for (const file of files.filter((f) => existsSync(f))) {
    const doc = await readKubeconfig(file);
    [doc.clusters, doc.users, doc.contexts].forEach((items, i) => {
      counts[i] = (counts[i] ?? 0) + (items ?? []).filter((x) => x.name === profile).length;
    });
  }
  return counts;
}

async function assertForeignIntact(what: string, file = s.kubeconfig): Promise<void> {
  const text = await readFile(file, 'utf8');
  assert.deepEqual(
    foreignPart(parse(text) as KubeconfigDoc),
    FOREIGN_PART,
    `${what}: other kubeconfig entries`,
  );
  assert.match(text, /# the user's own kubeconfig/, `${what}: the user's comment`);
  assert.equal((await stat(file)).mode & 0o777, 0o600, `${what}: kubeconfig mode`);
}

/** Every path under a directory with its type, mode and content digest (symlinks not followed). */
async function tree(dir: string, skip: (rel: string) => boolean = () => false): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string) => {
    const path = join(dir, rel);
    const st = await lstat(path).catch(() => undefined);
    if (!st || skip(rel)) return;
    if (st.isDirectory()) {
      out.set(rel + '/', `dir ${(st.mode & 0o777).toString(8)}`);
      for (const name of await readdir(path)) await walk(rel ? join(rel, name) : name);
    } else if (st.isSymbolicLink()) {
      out.set(rel, `link ${await readlink(path)}`);
    } else {
      const content = await readFile(path);
      out.set(rel, `file ${(st.mode & 0o777).toString(8)} ${content.length} ${content.toString('base64')}`);
    }
  };
  await walk('');
  return out;
}

/** The files under MINILAB_HOME, the kubectl cache aside (its binary is neither state nor secret). */
const homeFiles = async () => [...(await tree(s.home, (rel) => rel.startsWith('cache'))).keys()].sort();

/** Containers, volumes and networks of a profile, by label and by name. */
async function engineResources(profile: string): Promise<string[]> {
  const byLabel = { 'io.minilab.profile': profile };
  const all = [
    ...(await engine.containers.list(byLabel)).map((c) => `container ${c.name} ${c.id}`),
    ...(await engine.volumes.list(byLabel)).map((v) => `volume ${v}`),
    ...(await engine.networks.list(byLabel)).map((n) => `network ${n}`),
  ];
  const named = (n: string) => n === `minilab-${profile}` || n.startsWith(`${profile}-`);
  for (const c of await engine.containers.list({}))
    if (named(c.name)) all.push(`container ${c.name} ${c.id}`);
  for (const v of await engine.volumes.list({})) if (named(v)) all.push(`volume ${v}`);
  for (const n of await engine.networks.list({})) if (named(n)) all.push(`network ${n}`);
  return [...new Set(all)].sort();
}

/** Profile A as the other tests must leave it: same container, never restarted, same state files. */
async function profileSnapshot(profile: string) {
  const node = await engine.containers.inspect(nodeOf(profile));
  const doc = await readKubeconfig();
  const mine = (items?: Named[] | null) => (items ?? []).filter((i) => i.name === profile);
  return {
    container: node?.id,
    running: node?.running,
    startedAt: node?.startedAt,
    profileFile: await readFile(join(s.home, 'profiles', profile, 'profile.json'), 'utf8').catch(() => ''),
    kubeconfig: { clusters: mine(doc.clusters), users: mine(doc.users), contexts: mine(doc.contexts) },
  };
}

/** ConfigMap through the API and the PVC file through the pod holding it; `since` waits for a restarted pod. */
async function checkData(what: string, since = new Date(0)): Promise<void> {
  const { core } = clients(A);
  await waitFor(`pod keeper to run again (${what})`, 240_000, async () => {
    const p = await core.readNamespacedPod({ name: 'keeper', namespace: 'default' });
    const started = p.status?.containerStatuses?.[0]?.state?.running?.startedAt;
    const ready = p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    return ready && started && new Date(started) >= since ? true : undefined;
  });
  const cm = await waitFor(`ConfigMap keep (${what})`, 60_000, () =>
    core.readNamespacedConfigMap({ name: 'keep', namespace: 'default' }),
  );
  const file = await waitFor(`the PVC file (${what})`, 60_000, async () => {
    const r = await minilab(['kubectl', '-p', A, '--', 'exec', 'keeper', '--', 'cat', '/data/file']);
    return r.code === 0 ? r.stdout : undefined;
  });
  tally.dataChecks++;
  if (cm.data?.value !== DATA || file !== DATA) tally.dataLost++;
  assert.equal(cm.data?.value, DATA, `${what}: the ConfigMap`);
  assert.equal(file, DATA, `${what}: the file in the PVC`);
}

/** A second, rounded down, so it compares safely with the seconds of Kubernetes timestamps. */
const now = () => new Date(Math.floor(Date.now() / 1000) * 1000);

/** The local addresses listening on a port (tcp LISTEN, udp bound), from /proc/net. */
async function listeners(port: number): Promise<string[]> {
  const out: string[] = [];
  for (const proto of ['tcp', 'tcp6', 'udp', 'udp6']) {
    const text = await readFile(`/proc/net/${proto}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const [ipHex, portHex] = (f[1] ?? '').split(':');
      if (!ipHex || Number.parseInt(portHex ?? '', 16) !== port) continue;
      if (proto.startsWith('tcp') && f[3] !== '0A') continue;
      out.push(`${proto} ${decodeIp(ipHex)}`);
    }
  }
  return out;
}

/** /proc/net addresses are 32-bit words in host (little-endian) order. */
function decodeIp(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => (w.match(/../g) ?? []).reverse().map((b) => Number.parseInt(b, 16)));
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 255 && bytes[11] === 255) {
    return `::ffff:${bytes.slice(12).join('.')}`;
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return (
    groups
      .join(':')
      .replace(/\b(?:0:){2,}0?/, ':')
      .replace(/^0::/, '::') || '::'
  );
}

const loopback = (address: string) =>
  address.endsWith(' 127.0.0.1') ||
  address.endsWith(' 0:0:0:0:0:0:0:1') ||
  address.endsWith(' ::1') ||
  address.includes('::ffff:127.');

function httpGet(port: number, path: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
    (resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, headers, timeout: 10_000 }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end();
    },
  );
}

async function occupy(protocol: 'tcp' | 'udp'): Promise<{ port: number; close: () => void }> {
  if (protocol === 'udp') {
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
    return { port: socket.address().port, close: () => socket.close() };
  }
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

/** The kubectl minilab copied out of a node (present once `minilab kubectl` has run). */
async function kubectlBinary(): Promise<string> {
  const dir = join(s.home, 'cache', 'kubectl');
  const version = (await readdir(dir))[0] as string;
  return join(dir, version, 'kubectl');
}

function kubectl(args: string[], kubeconfig: string) {
  return kubectlBinary().then((bin) =>
    promisify(execFile)(bin, args, { env: { ...process.env, KUBECONFIG: kubeconfig } }),
  );
}

// ---- bad input --------------------------------------------------------------------------------

test('bad input: a one-line error with a hint and its own exit code, and nothing changes on disk or in the engine', async () => {
  const held = await occupy('tcp');
  const heldUdp = await occupy('udp');
  // A PATH with node but without go (or debootstrap): no way to build a node image.
  const noGo = { ...s.env, PATH: `${process.execPath.replace(/\/node$/, '')}:/usr/bin:/bin` };
  const closedPort = await occupy('tcp');
  closedPort.close();
  const cases: { args: string[]; code: number; message: RegExp; env?: NodeJS.ProcessEnv }[] = [
    { args: ['start', '-p', 'Rel-Upper'], code: 2, message: /invalid profile name "Rel-Upper"/ },
    { args: ['start', '-p', 'rel.dots'], code: 2, message: /invalid profile name "rel\.dots"/ },
    { args: ['start', '-p', '../x'], code: 2, message: /invalid profile name "\.\.\/x"/ },
    { args: ['start', '-p', 'a'.repeat(64)], code: 2, message: /longer than 63 characters/ },
    { args: ['start', '-p', ''], code: 2, message: /the profile name is empty/ },
    {
      args: ['status'],
      code: 2,
      message: /invalid profile name "NOPE"/,
      env: { ...s.env, MINILAB_PROFILE: 'NOPE' },
    },
    {
      args: ['start', '-p', BAD, '--kubernetes-version', '1.36'],
      code: 2,
      message: /invalid Kubernetes version "1\.36"/,
    },
    {
      args: ['start', '-p', BAD, '--kubernetes-version', 'v9.9.9'],
      code: 2,
      message: /invalid Kubernetes version "v9\.9\.9"/,
    },
    {
      args: ['start', '-p', BAD, '--kubernetes-version', 'latest'],
      code: 2,
      message: /invalid Kubernetes version "latest"/,
    },
    { args: ['start', '-p', BAD, '--kubernetes-version', 'v1.33.0'], code: 2, message: /older than v1\.34/ },
    {
      args: ['start', '-p', BAD, '--kubernetes-version', 'v1.99.0'],
      code: 3,
      message: /no node image minilab\/node:v1\.99\.0 and it cannot be built here: go is not on PATH/,
      env: noGo,
    },
    {
      args: ['start', '-p', BAD, '--memory', '100000g'],
      code: 3,
      message: /--memory 100000\.0g is more than the engine's/,
    },
    { args: ['start', '-p', BAD, '--memory', 'lots'], code: 2, message: /invalid --memory "lots"/ },
    { args: ['start', '-p', BAD, '--memory', '1g'], code: 2, message: /--memory below 1\.5g/ },
    {
      args: ['start', '-p', BAD, '--cpus', '1000'],
      code: 3,
      message: /--cpus 1000 is more than the engine's/,
    },
    { args: ['start', '-p', BAD, '--cpus', 'two'], code: 2, message: /--cpus must be a whole number/ },
    { args: ['start', '-p', BAD, '--cpus', '0'], code: 2, message: /--cpus must be at least 1/ },
    { args: ['start', '-p', BAD, '--ports', '8080'], code: 2, message: /invalid --ports "8080"/ },
    { args: ['start', '-p', BAD, '--ports', '70000:80'], code: 2, message: /port out of range/ },
    { args: ['start', '-p', BAD, '--ports', '8080:6443'], code: 2, message: /6443 is the API server/ },
    {
      args: ['start', '-p', BAD, '--ports', '18080:80', '--ports', '18080:81'],
      code: 2,
      message: /host port 18080\/tcp is given twice/,
    },
    {
      args: ['start', '-p', BAD, '--ports', `${held.port}:30080`],
      code: 3,
      message: new RegExp(`host port ${held.port} is already in use`),
    },
    {
      args: ['start', '-p', BAD, '--ports', `${heldUdp.port}:30053/udp`],
      code: 3,
      message: new RegExp(`host port ${heldUdp.port} is already in use`),
    },
    {
      args: ['start', '-p', BAD, '--wait', 'sometimes'],
      code: 2,
      message: /argument 'sometimes' is invalid/,
    },
    { args: ['start', '-p', BAD, '--frobnicate'], code: 2, message: /unknown option '--frobnicate'/ },
    { args: ['stop', '-p', BAD, '--force'], code: 2, message: /unknown option '--force'/ },
    { args: ['strat', '-p', BAD], code: 2, message: /unknown command 'strat'/ },
    { args: ['ssh', '-p', BAD], code: 4, message: new RegExp(`profile "${BAD}" has no cluster`) },
    {
      args: ['kubectl', '-p', BAD, '--', 'get', 'pods'],
      code: 4,
      message: new RegExp(`profile "${BAD}" has no cluster`),
    },
    {
      args: ['dashboard', '-p', BAD, '--url'],
      code: 4,
      message: new RegExp(`profile "${BAD}" has no cluster`),
    },
    {
      args: ['image', 'load', '-p', BAD, 'busybox:latest'],
      code: 4,
      message: new RegExp(`profile "${BAD}" has no cluster`),
    },
    { args: ['stop', '-p', BAD], code: 4, message: new RegExp(`profile "${BAD}" has no cluster`) },
    {
      args: ['start', '-p', BAD],
      code: 3,
      message: /no Docker engine at unix:\/\/\/nonexistent\/docker\.sock/,
      env: { ...s.env, DOCKER_HOST: 'unix:///nonexistent/docker.sock' },
    },
    {
      args: ['status', '-p', BAD],
      code: 3,
      message: new RegExp(`the Docker engine at tcp://127\\.0\\.0\\.1:${closedPort.port} does not answer`),
      env: { ...s.env, DOCKER_HOST: `tcp://127.0.0.1:${closedPort.port}` },
    },
  ];
  const before = await tree(s.dir);
  const engineBefore = [...(await engineResources(BAD)), ...(await engine.containers.list(testLabel()))];
  try {
    for (const c of cases) {
      tally.cases++;
      const r = await minilab(c.args, { env: c.env, timeoutMs: 60_000 });
      assertUserError(r, c.code, c.message, `minilab ${c.args.join(' ')}`);
      assert.deepEqual(await tree(s.dir), before, `minilab ${c.args.join(' ')}: nothing changed on disk`);
    }
  } finally {
    held.close();
    heldUdp.close();
  }
  const engineAfter = [...(await engineResources(BAD)), ...(await engine.containers.list(testLabel()))];
  assert.deepEqual(engineAfter, engineBefore, 'nothing changed in the engine');
});

const testLabel = () => ({ [TEST_LABEL]: runId });

// ---- the long-lived cluster -------------------------------------------------------------------

test('a cluster starts beside a kubeconfig full of other entries and keeps a ConfigMap and a file in a PVC', async () => {
  tally.cases++;
  // Extra ports over TCP and UDP, so the exposure test checks user ports too.
  const [tcp, udp] = [await occupy('tcp'), await occupy('udp')];
  tcp.close();
  udp.close();
  const r = await minilab([
    'start',
    '-p',
    A,
    '--no-switch-context',
    '--ports',
    `${tcp.port}:30080`,
    '--ports',
    `${udp.port}:30053/udp`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  await assertForeignIntact('after start');
  assert.deepEqual(await entryCount(A), [1, 1, 1]);
  assert.equal(
    (await readKubeconfig())['current-context'],
    'prod',
    '--no-switch-context kept the current context',
  );

  const { core } = clients(A);
  await core.createNamespacedConfigMap({
    namespace: 'default',
    body: { metadata: { name: 'keep' }, data: { value: DATA } },
  });
  await createDataClaim(core);
  await core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name: 'keeper' },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'keeper',
            image: HELPER_IMAGE,
            imagePullPolicy: 'Never',
            // Writes nothing itself: a lost file must show as lost, not be written again.
            command: ['sleep', 'infinity'],
            volumeMounts: [{ name: 'data', mountPath: '/data' }],
          },
        ],
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
      },
    },
  });
  await waitFor('pod keeper to be ready', 180_000, async () => {
    const p = await core.readNamespacedPod({ name: 'keeper', namespace: 'default' });
    return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? true : undefined;
  });
  const write = await minilab([
    'kubectl',
    '-p',
    A,
    '--',
    'exec',
    'keeper',
    '--',
    'sh',
    '-c',
    `printf %s ${DATA} > /data/file`,
  ]);
  assert.equal(write.code, 0, write.stderr);
  await checkData('after writing');
});

test('ssh, kubectl, dashboard and image load refuse a stopped cluster; image load a missing image', async () => {
  tally.cases++;
  const missing = await minilab(['image', 'load', '-p', A, `minilab-test/absent:${runId}`]);
  assertUserError(missing, 4, /not in the Docker engine/, 'image load of a missing image');
  // Taken before the stop: the keeper may well run again before `start` returns.
  const since = now();
  const stopped = await minilab(['stop', '-p', A]);
  assert.equal(stopped.code, 0, stopped.stderr);
  const before = await tree(s.dir, (rel) => rel.startsWith('home/cache'));
  for (const args of [
    ['ssh', '-p', A],
    ['ssh', '-p', A, '--', 'true'],
    ['kubectl', '-p', A, '--', 'get', 'pods'],
    ['dashboard', '-p', A, '--url'],
    ['image', 'load', '-p', A, HELPER_IMAGE],
  ]) {
    tally.cases++;
    const r = await minilab(args, { timeoutMs: 60_000 });
    assertUserError(
      r,
      3,
      new RegExp(`the cluster of profile "${A}" is stopped`),
      `minilab ${args.join(' ')}`,
    );
    assert.match(r.stderr, new RegExp(`hint: start it with: minilab start -p ${A}`));
  }
  assert.deepEqual(
    await tree(s.dir, (rel) => rel.startsWith('home/cache')),
    before,
    'nothing changed on disk',
  );
  const st = await minilab(['status', '-p', A]);
  assert.equal(st.code, 16 + 1 + 2 + 4, 'status of a stopped cluster');
  const started = await minilab(['start', '-p', A, '--no-switch-context']);
  assert.equal(started.code, 0, started.stderr);
  await checkData('after a stop and start', since);
});

test('a command in a node that outlives its deadline is ended there, not left running', async () => {
  tally.cases++;
  const marker = `deadline-${runId}`;
  // The marker rides in the command line, so the node's process list shows whether it still runs.
  const cmd = ['bash', '-c', `exec -a ${marker} sleep 300`];
  await assert.rejects(engine.exec.run(nodeOf(A), cmd, { timeoutMs: 2000 }), /timed out after 2\.0s/);
  let left = '';
  await waitFor('the abandoned command to end in the node', 30_000, async () => {
    const ps = await engine.exec.run(nodeOf(A), ['ps', '-eo', 'args']);
    left = ps.stdout
      .split('\n')
      .filter((l) => l.includes(marker))
      .join('; ');
    return left === '' ? true : undefined;
  });
  assert.equal(left, '', 'no process of the timed-out command is left in the node');
});

test('ten stop/start cycles keep the data and leak no container, volume, network, kubeconfig entry or file', async () => {
  const resources = await engineResources(A);
  const files = await homeFiles();
  const node = await engine.containers.inspect(nodeOf(A));
  for (let cycle = 1; cycle <= 10; cycle++) {
    tally.cases++;
    const stopped = await minilab(['stop', '-p', A]);
    assert.equal(stopped.code, 0, `cycle ${cycle}: stop\n${stopped.stderr}`);
    const since = now();
    const started = await minilab(['start', '-p', A, '--no-switch-context']);
    assert.equal(started.code, 0, `cycle ${cycle}: start\n${started.stderr}`);
    assert.match(started.stdout, /running again/);
    await checkData(`stop/start cycle ${cycle}`, since);
    assert.deepEqual(
      await engineResources(A),
      resources,
      `cycle ${cycle}: the same container, volume and network`,
    );
    assert.deepEqual(await entryCount(A), [1, 1, 1], `cycle ${cycle}: one cluster, user and context`);
    assert.deepEqual(await homeFiles(), files, `cycle ${cycle}: the same files under MINILAB_HOME`);
    await assertForeignIntact(`cycle ${cycle}`);
  }
  assert.equal(
    (await engine.containers.inspect(nodeOf(A)))?.id,
    node?.id,
    'the node container was never replaced',
  );
});

// ---- exposure ---------------------------------------------------------------------------------

test('exposure: loopback-only ports, 0600 files, a dashboard that refuses strangers, no secret in any output', async () => {
  tally.cases++;
  const node = await engine.containers.inspect(nodeOf(A));
  assert.ok(node && node.ports.length > 0);
  assert.deepEqual(node.ports.map((p) => `${p.containerPort}/${p.protocol}`).sort(), [
    '30053/udp',
    '30080/tcp',
    '6443/tcp',
  ]);
  const sockets: string[] = [];
  for (const p of node.ports) {
    assert.equal(p.hostIp, '127.0.0.1', `engine binding of ${p.containerPort}/${p.protocol}`);
    const bound = await listeners(p.hostPort);
    sockets.push(...bound.map((b) => `${b}:${p.hostPort}`));
    assert.deepEqual(
      bound.filter((b) => !loopback(b)),
      [],
      `host sockets on port ${p.hostPort}: ${bound.join(', ')}`,
    );
  }

  tally.notes.push(`host sockets of the node's ports: ${sockets.join(', ') || 'none (no userland proxy)'}`);

  const dashboard = spawnCli(['dashboard', '-p', A, '--url']);
  let token = '';
  try {
    const url = await waitFor(
      'the dashboard URL',
      60_000,
      async () => /http:\/\/\S+/.exec(dashboard.stdout())?.[0],
    );
    const u = new URL(url);
    // The token rides in the fragment, which a browser never sends to any server.
    token = new URLSearchParams(u.hash.slice(1)).get('token') ?? '';
    assert.ok(token.length >= 32, 'a long random token');
    assert.equal(u.search, '', 'nothing secret in the part of the URL that is sent');
    assert.equal(u.hostname, '127.0.0.1');
    const port = Number(u.port);
    const bound = await listeners(port);
    assert.ok(bound.length > 0, 'the dashboard listens');
    assert.deepEqual(
      bound.filter((b) => !loopback(b)),
      [],
      `dashboard sockets: ${bound.join(', ')}`,
    );
    const host = `127.0.0.1:${port}`;
    const bearer = (t: string) => ({ host, authorization: `Bearer ${t}` });
    const none = await httpGet(port, '/api/info', { host });
    assert.equal(none.status, 401, 'no token');
    const wrong = await httpGet(port, '/api/info', bearer('x'.repeat(token.length)));
    assert.equal(wrong.status, 401, 'a wrong token');
    const inQuery = await httpGet(port, `/api/info?token=${token}`, { host });
    assert.equal(inQuery.status, 401, 'the token in the query counts for nothing');
    const inCookie = await httpGet(port, '/api/info', {
      host,
      cookie: `minilab-dashboard-${port}=${token}`,
    });
    assert.equal(inCookie.status, 401, 'the token in a cookie counts for nothing');
    const foreign = await httpGet(port, '/api/info', { ...bearer(token), host: `evil.example:${port}` });
    assert.equal(foreign.status, 403, 'a foreign Host header');
    const rebinding = await httpGet(port, '/api/info', {
      ...bearer(token),
      host: `127.0.0.1:${port + 1}`,
    });
    assert.equal(rebinding.status, 403, 'another port in the Host header');
    for (const refused of [none, wrong, inQuery, inCookie, foreign, rebinding]) {
      assert.ok(
        !refused.body.includes(token) && !JSON.stringify(refused.headers).includes(token),
        'no token in a refusal',
      );
    }
    const ok = await httpGet(port, '/api/info', bearer(token));
    assert.equal(ok.status, 200, 'the right token and Host');
    const page = await httpGet(port, '/', { host });
    assert.ok(
      !page.body.includes(token) && !JSON.stringify(page.headers).includes(token),
      'the page holds no token',
    );
  } finally {
    dashboard.child.kill('SIGINT');
  }
  const ended = await dashboard.done;
  assert.equal(ended.code, 0, ended.stderr);
  assert.ok(!ended.stderr.includes(token), 'the token is printed only in the URL on stdout');

  // Files: the kubeconfig and everything under MINILAB_HOME holding the client key are 0600.
  const kc = await readKubeconfig();
  const user = (kc.users ?? []).find((u) => u.name === A) as unknown as { user: Record<string, string> };
  const keyData = user.user['client-key-data'] as string;
  const pem = Buffer.from(keyData, 'base64').toString();
  const pemBody = pem
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'))
    .join('');
  const secrets = [keyData, keyData.slice(100, 160), pemBody.slice(100, 160), token];
  assert.equal((await stat(s.kubeconfig)).mode & 0o777, 0o600);
  for (const [rel, desc] of await tree(s.home, (r) => r.startsWith('cache'))) {
    if (desc.startsWith('dir ')) {
      assert.equal(desc.split(' ')[1], '700', `${rel} is 0700`);
      continue;
    }
    const text = await readFile(join(s.home, rel), 'utf8');
    assert.equal(desc.split(' ')[1], '600', `${rel} is 0600`);
    // `minilab kubectl` ran in the tests above; its kubeconfig went when it ended: no file holds the key.
    assert.ok(!secrets.some((x) => x && text.includes(x)), `${rel} holds no key`);
  }

  // JSON output, logs, the log bundle and every error: no client key, no token.
  for (const args of [
    ['status', '-p', A, '-o', 'json'],
    ['profile', 'list', '-o', 'json'],
    ['start', '-p', A, '--no-switch-context', '-o', 'json'],
    ['image', 'ls', '-p', A, '-o', 'json'],
    ['logs', '-p', A, '--tail', '200'],
    ['logs', '-p', A, '--export', join(s.dir, 'logs')],
  ]) {
    const r = await minilab(args, { timeoutMs: 300_000 });
    assert.equal(r.code, 0, `minilab ${args.join(' ')}\n${r.stderr}`);
    if (args.includes('json')) JSON.parse(r.stdout);
  }
  const bundle = await tree(join(s.dir, 'logs'));
  assert.ok(bundle.size > 10, 'the log bundle has files');
  const leaks: string[] = [];
  for (const [rel, desc] of bundle) {
    if (!desc.startsWith('file ')) continue;
    const text = await readFile(join(s.dir, 'logs', rel), 'utf8');
    if (secrets.some((x) => x && text.includes(x)) || /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
      leaks.push(`logs bundle ${rel}`);
    }
  }
  for (const o of outputs) {
    if (secrets.some((x) => x && o.text.includes(x)) || /PRIVATE KEY-----/.test(o.text)) {
      // The dashboard prints its token in the one URL it shows: that is the point of it.
      const lines = o.text.split('\n').filter((l) => secrets.some((x) => x && l.includes(x)));
      if (o.args[0] === 'dashboard' && lines.every((l) => /^http:\/\/127\.0\.0\.1:\d+\/#token=/.test(l)))
        continue;
      leaks.push(`minilab ${o.args.join(' ')}`);
    }
  }
  assert.deepEqual(leaks, [], 'no secret in any output, log or bundle');
  await rm(join(s.dir, 'logs'), { recursive: true, force: true });
});

// ---- kubeconfig safety ----------------------------------------------------------------------

test('a malformed kubeconfig is refused with a clear error and left unchanged, by start and by delete', async () => {
  const good = await readFile(s.kubeconfig, 'utf8');
  const malformed = good.replace('clusters:', 'clusters: [unclosed\n  - oops:');
  await writeFile(s.kubeconfig, malformed, { mode: 0o600 });
  const node = await engine.containers.inspect(nodeOf(A));
  try {
    for (const args of [
      ['start', '-p', A],
      ['start', '-p', I],
      ['delete', '-p', A],
    ]) {
      tally.cases++;
      const r = await minilab(args);
      assert.equal(r.code, 3, `minilab ${args.join(' ')}\n${r.stderr}`);
      const error = r.stderr.split('\n').find((l) => l.startsWith('error: ')) ?? '';
      assert.match(error, new RegExp(`kubeconfig ${s.kubeconfig.replace(/[.]/g, '\\.')} is not valid YAML`));
      assert.match(r.stderr, /\nhint: fix or move .* aside; minilab left it unchanged\n$/);
      assert.equal(
        await readFile(s.kubeconfig, 'utf8'),
        malformed,
        `minilab ${args.join(' ')}: left unchanged`,
      );
      assert.equal((await stat(s.kubeconfig)).mode & 0o777, 0o600);
    }
    assert.deepEqual(await engineResources(I), [], 'start made nothing for a new profile');
    const still = await engine.containers.inspect(nodeOf(A));
    assert.equal(still?.id, node?.id, 'delete removed nothing');
    assert.equal(still?.running, true);
  } finally {
    await writeFile(s.kubeconfig, good, { mode: 0o600 });
  }
  await assertForeignIntact('after the malformed kubeconfig');
});

test('a $KUBECONFIG list is written as kubectl writes it and read as kubectl reads it', async () => {
  tally.cases++;
  const dir = join(s.dir, 'list');
  await mkdir(dir, { recursive: true });
  const [missing, other, later] = ['missing/config', 'other', 'later'].map((f) => join(dir, f)) as [
    string,
    string,
    string,
  ];
  const mirror = (f: string) => f.replace(`${dir}/`, `${dir}-kubectl/`);
  const port = (await engine.containers.inspect(nodeOf(A)))?.labels['io.minilab.apiserver-port'];
  const laterText = `apiVersion: v1\nkind: Config\nclusters:\n- name: ${A}\n  cluster:\n    server: https://127.0.0.1:1\n`;
  const setUp = async (base: string) => {
    await rm(base, { recursive: true, force: true });
    await mkdir(base, { recursive: true });
    await writeFile(join(base, 'other'), FOREIGN, { mode: 0o600 });
    await writeFile(join(base, 'later'), laterText, { mode: 0o600 });
  };
  await setUp(dir);
  await setUp(`${dir}-kubectl`);
  const list = [missing, other, later];
  const env = { ...s.env, KUBECONFIG: list.join(':') };

  // minilab: the cluster entry is where it was defined (later), the rest and the current context in
  // the first file that exists (other); the missing first file stays missing.
  const r = await minilab(['start', '-p', A], { env });
  assert.equal(r.code, 0, r.stderr);
  // kubectl, on a copy of the same files, making the same changes.
  const kenv = list.map(mirror).join(':');
  await kubectl(['config', 'set-cluster', A, `--server=https://127.0.0.1:${port}`], kenv);
  await kubectl(['config', 'set-credentials', A, '--token=x'], kenv);
  await kubectl(['config', 'set-context', A, `--cluster=${A}`, `--user=${A}`], kenv);
  await kubectl(['config', 'use-context', A], kenv);
  const where = async (f: string) => {
    if (!existsSync(f)) return 'absent';
    const doc = (parse(await readFile(f, 'utf8')) ?? {}) as KubeconfigDoc;
    const has = (items?: Named[] | null) => (items ?? []).some((i) => i.name === A);
    return `cluster:${has(doc.clusters)} user:${has(doc.users)} context:${has(doc.contexts)} current:${doc['current-context'] === A}`;
  };
  for (const f of list)
    assert.equal(await where(f), await where(mirror(f)), `${f}: as kubectl left its copy`);
  assert.equal(await where(missing), 'absent');
  await assertForeignIntact('other file of the list', other);

  // Read back as kubectl reads the list: the merged view has one context, current, that works.
  const view = await kubectl(['config', 'view', '--minify', '--raw', '-o', 'json'], list.join(':'));
  const merged = JSON.parse(view.stdout) as {
    'current-context': string;
    clusters: { cluster: { server: string } }[];
  };
  assert.equal(merged['current-context'], A);
  assert.equal(merged.clusters[0]?.cluster.server, `https://127.0.0.1:${port}`);
  const nodes = await kubectl(['get', 'nodes', '-o', 'name'], list.join(':'));
  assert.equal(nodes.stdout.trim(), `node/${nodeOf(A)}`);
  const st = await minilab(['status', '-p', A, '-o', 'json'], { env });
  assert.equal(st.code, 0, st.stdout + st.stderr);
  assert.equal((JSON.parse(st.stdout) as { kubeconfig: { path: string } }).kubeconfig.path, later);
  await rm(`${dir}-kubectl`, { recursive: true, force: true });
});

test("a symlinked kubeconfig under sudo -E: start writes through the link, keeps the user as owner, and shares kubectl's lock", async () => {
  tally.cases++;
  const dir = join(s.dir, 'linked');
  const user = { uid: 1000, gid: 1000 };
  // A user's home whose ~/.kube/config is a dotfile manager's link, as `sudo -E` passes it to root.
  const home = join(dir, 'home');
  const real = join(dir, 'dotfiles', 'kube-config');
  const link = join(home, '.kube', 'config');
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'dotfiles'), { recursive: true });
  await mkdir(join(home, '.kube'), { recursive: true, mode: 0o700 });
  await writeFile(real, FOREIGN, { mode: 0o600 });
  for (const p of [home, join(home, '.kube'), join(dir, 'dotfiles'), real])
    await chown(p, user.uid, user.gid);
  await symlink(real, link);
  const { KUBECONFIG: _unused, ...base } = s.env;
  const env = { ...base, HOME: home, SUDO_UID: String(user.uid), SUDO_GID: String(user.gid) };

  // kubectl's lock (an empty <file>.lock) is held for 5 s: start waits for it, then writes.
  await writeFile(`${link}.lock`, '', { mode: 0 });
  const run = minilab(['start', '-p', A, '--no-switch-context'], { env });
  await new Promise((r) => setTimeout(r, 5000));
  assert.deepEqual(await entryCount(A, [real]), [0, 0, 0], 'nothing written while kubectl holds the lock');
  const releasedAt = Date.now();
  await rm(`${link}.lock`);
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await stat(real)).mtimeMs >= releasedAt - 5, 'written once the lock was released');
  assert.ok((await lstat(link)).isSymbolicLink(), 'the link is still a link');
  assert.equal(await readlink(link), real);
  const after = await stat(real);
  assert.deepEqual(
    [after.uid, after.gid, after.mode & 0o777],
    [user.uid, user.gid, 0o600],
    "still the user's",
  );
  assert.deepEqual(await entryCount(A, [real]), [1, 1, 1]);
  await assertForeignIntact('written through a link', real);
  assert.deepEqual(await readdir(join(home, '.kube')), ['config'], 'no lock or temporary file left');
  assert.deepEqual(await readdir(join(dir, 'dotfiles')), ['kube-config']);
  const nodes = await kubectl(['--context', A, 'get', 'nodes', '-o', 'name'], link);
  assert.equal(nodes.stdout.trim(), `node/${nodeOf(A)}`);

  // While minilab holds the lock, kubectl refuses to write; once released, it writes.
  const release = await lockKubeconfigFile(link, 1000);
  await assert.rejects(
    kubectl(['config', 'set-context', 'other', '--cluster=prod'], link),
    /config\.lock: file exists/,
  );
  await release();
  await kubectl(['config', 'set-context', 'other', '--cluster=prod'], link);
  await kubectl(['config', 'delete-context', 'other'], link);

  // A new ~/.kube/config in the user's home is made theirs, not root's.
  const fresh = join(dir, 'fresh');
  await mkdir(fresh);
  await chown(fresh, user.uid, user.gid);
  const made = await minilab(['start', '-p', A, '--no-switch-context'], { env: { ...env, HOME: fresh } });
  assert.equal(made.code, 0, made.stderr);
  for (const [p, mode] of [
    [join(fresh, '.kube'), 0o700],
    [join(fresh, '.kube', 'config'), 0o600],
  ] as const) {
    const st = await stat(p);
    assert.deepEqual([st.uid, st.gid, st.mode & 0o777], [user.uid, user.gid, mode], p);
  }

  // A kubeconfig that cannot be written: the running cluster stays, exit 7 says why and what to run.
  await rm(link);
  await symlink(join(dir, 'missing', 'config'), link);
  const failed = await minilab(['start', '-p', A, '--no-switch-context'], { env });
  assertUserError(
    failed,
    7,
    new RegExp(`the cluster of profile "${A}" is up, but its kubeconfig was not written`),
    'unwritable kubeconfig',
  );
  const st = await minilab(['status', '-p', A]);
  assert.equal(st.code, 0, st.stdout + st.stderr);
  await mkdir(join(dir, 'missing'));
  const resynced = await minilab(['start', '-p', A, '--no-switch-context'], { env });
  assert.equal(resynced.code, 0, resynced.stderr);
  assert.deepEqual(await entryCount(A, [join(dir, 'missing', 'config')]), [1, 1, 1]);

  // The profile records the sandbox's kubeconfig again, for the tests that follow.
  const back = await minilab(['start', '-p', A, '--no-switch-context']);
  assert.equal(back.code, 0, back.stderr);
  await rm(dir, { recursive: true, force: true });
});

// ---- engine restart ---------------------------------------------------------------------------

test('after the Docker engine restarts, the cluster comes back by itself with its data, and the kubeconfig works', async () => {
  tally.cases++;
  await assertOnlyOurContainersRun(engine);
  const before = await engine.containers.inspect(nodeOf(A));
  const since = now();
  tally.faults.push('engine restart');
  engine = await restartDockerd();
  const back = await waitFor('the node container to run again', 120_000, async () => {
    const n = await engine.containers.inspect(nodeOf(A));
    return n?.running ? n : undefined;
  });
  assert.equal(back.id, before?.id, 'the same container, restarted by its restart policy');
  // The kubeconfig as it was: node Ready, and the pod holding the PVC running again.
  await waitFor('node Ready through the kubeconfig', 240_000, async () => {
    const n = await clients(A).core.readNode({ name: nodeOf(A) });
    return n.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' ? true : undefined;
  });
  await checkData('after the engine restart', since);
  const st = await minilab(['status', '-p', A]);
  if (st.code === 16 + 8) {
    // The API server port changed: start re-syncs the kubeconfig.
    const resync = await minilab(['start', '-p', A, '--no-switch-context']);
    assert.equal(resync.code, 0, resync.stderr);
  } else {
    assert.equal(st.code, 0, st.stdout + st.stderr);
  }
  const again = await minilab(['status', '-p', A]);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  await assertForeignIntact('after the engine restart');
});

// ---- interrupted starts -----------------------------------------------------------------------

type Fault = 'SIGINT' | 'SIGKILL' | 'kill-node';
/** Every step of a first start, each with a fault; the kinds rotate so each is used twice or more. */
const INTERRUPTIONS: { step: string; fault: Fault }[] = [
  { step: 'Creating the node container', fault: 'SIGKILL' },
  { step: 'Booting the node (systemd, containerd)', fault: 'kill-node' },
  { step: 'Initializing the control plane (kubeadm init)', fault: 'SIGINT' },
  { step: 'Initializing the control plane (kubeadm init)', fault: 'kill-node' },
  { step: 'Installing the default StorageClass', fault: 'SIGKILL' },
  { step: 'Waiting for node Ready, CoreDNS and the default service account', fault: 'kill-node' },
  { step: 'Writing the kubeconfig', fault: 'SIGINT' },
];

/** The cluster is whole: status all up, default StorageClass, CoreDNS, a kubeconfig context. */
async function assertComplete(profile: string): Promise<void> {
  const st = await minilab(['status', '-p', profile]);
  assert.equal(st.code, 0, st.stdout + st.stderr);
  const config = new k8s.KubeConfig();
  config.loadFromFile(s.kubeconfig);
  config.setCurrentContext(profile);
  const sc = await config.makeApiClient(k8s.StorageV1Api).readStorageClass({ name: 'standard' });
  assert.equal(sc.metadata?.annotations?.['storageclass.kubernetes.io/is-default-class'], 'true');
  const dns = await clients(profile).core.listNamespacedPod({
    namespace: 'kube-system',
    labelSelector: 'k8s-app=kube-dns',
  });
  assert.ok(dns.items.length > 0, 'CoreDNS runs');
}

/** After a delete: nothing of the profile left in the engine, the kubeconfig or MINILAB_HOME. */
async function assertGone(profile: string, files: string[], what: string, kubeconfigs = [s.kubeconfig]) {
  assert.deepEqual(await engineResources(profile), [], `${what}: no container, volume or network`);
  assert.deepEqual(await entryCount(profile, kubeconfigs), [0, 0, 0], `${what}: no kubeconfig entry`);
  assert.deepEqual(await homeFiles(), files, `${what}: no file left under MINILAB_HOME`);
}

test('a start interrupted at each step (node killed, CLI SIGINT or SIGKILL) is completed by the next start or names what to run', async () => {
  const files = await homeFiles();
  const untouched = await profileSnapshot(A);
  for (const { step, fault } of INTERRUPTIONS) {
    tally.cases++;
    const what = `${fault} during "${step}"`;
    const cli = spawnCli(['start', '-p', I]);
    if (!(await cli.sawLine(`• ${step}`))) {
      assert.fail(`${what}: the step never ran\n${(await cli.done).stderr}`);
    }
    if (fault === 'kill-node') {
      await waitFor(`${what}: the node container to run`, 60_000, async () => {
        if (!(await engine.containers.inspect(nodeOf(I)))?.running) return undefined;
        await engine.containers.kill(nodeOf(I));
        return true;
      });
    } else {
      cli.child.kill(fault);
    }
    tally.faults.push(fault === 'kill-node' ? 'node container killed' : `CLI ${fault}`);
    const first = await cli.done;
    if (fault !== 'kill-node') {
      // A signal that came after the last step may find the start already done.
      assert.ok(first.signal === fault || first.code === 0, `${what}: ended by the signal (${first.code})`);
    } else {
      // The failing start says what happened and removes what it made.
      assertUserError(first, 6, new RegExp(`the node container ${nodeOf(I)} stopped`), what);
      assert.deepEqual(await engineResources(I), [], `${what}: the failed start removed what it made`);
    }

    // The next start completes, or fails saying exactly what to run; then that completes.
    const next = await minilab(['start', '-p', I]);
    let outcome = 'the next start completed';
    if (next.code !== 0) {
      const hint = next.stderr.split('\n').find((l) => l.startsWith('hint: ')) ?? '';
      const commands = hint.match(/minilab [^&]+/g)?.map((c) => c.trim()) ?? [];
      assert.ok(commands.length > 0, `${what}: the next start names what to run\n${next.stderr}`);
      for (const command of commands) {
        const r = await minilab(command.split(/\s+/).slice(1));
        assert.equal(r.code, 0, `${what}: ${command}\n${r.stderr}`);
      }
      outcome = `the next start said to run ${commands.join(' && ')}, which completed`;
    }
    const ended = first.signal ?? `exit ${first.code}`;
    tally.notes.push(`${what}: the interrupted start ended (${ended}); ${outcome}`);
    await assertComplete(I);
    assert.deepEqual(await profileSnapshot(A), untouched, `${what}: profile ${A} untouched`);
    await assertForeignIntact(what);

    const deleted = await minilab(['delete', '-p', I]);
    assert.equal(deleted.code, 0, deleted.stderr);
    await assertGone(I, files, what);
  }
  await checkData('after the interrupted starts of another profile');
});

// ---- concurrency ------------------------------------------------------------------------------

test('two profiles start at once, commands on one profile wait for its lock, and concurrent kubeconfig writes lose nothing', async () => {
  tally.cases += 3;
  const files = await homeFiles();
  const stopA = await minilab(['stop', '-p', A]);
  assert.equal(stopA.code, 0, stopA.stderr);

  const one = spawnCli(['start', '-p', C1]);
  const two = spawnCli(['start', '-p', C2]);
  if (!(await one.sawLine('• Creating the node container'))) assert.fail((await one.done).stderr);
  const waiting = spawnCli(['stop', '-p', C1]);
  const [r1, r2, stop] = await Promise.all([one.done, two.done, waiting.done]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(stop.code, 0, stop.stderr);
  assert.match(
    stop.stderr,
    new RegExp(`waiting for profile "${C1}": held by minilab start -p ${C1} \\(pid \\d+\\)`),
  );
  assert.ok(stop.endedAt >= r1.endedAt, 'stop ran after start');
  assert.match(stop.stdout, /Stopped cluster/);
  const st1 = await minilab(['status', '-p', C1]);
  assert.equal(st1.code, 16 + 1 + 2 + 4, 'C1 was started, then stopped');

  const ports = await Promise.all(
    [C1, C2].map(
      async (p) => (await engine.containers.inspect(nodeOf(p)))?.labels['io.minilab.apiserver-port'],
    ),
  );
  assert.notEqual(ports[0], ports[1], 'different API server ports');
  const n2 = await clients(C2).core.readNode({ name: nodeOf(C2) });
  assert.equal(n2.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
  for (const p of [A, C1, C2]) assert.deepEqual(await entryCount(p), [1, 1, 1], `${p} in the kubeconfig`);
  await assertForeignIntact('after two starts at once');

  const [d1, d2] = await Promise.all([minilab(['delete', '-p', C1]), minilab(['delete', '-p', C2])]);
  assert.equal(d1.code, 0, d1.stderr);
  assert.equal(d2.code, 0, d2.stderr);
  for (const p of [C1, C2]) await assertGone(p, files, `concurrent delete of ${p}`);
  assert.deepEqual(await entryCount(A), [1, 1, 1]);
  await assertForeignIntact('after two deletes at once');

  const since = now();
  const startA = await minilab(['start', '-p', A, '--no-switch-context']);
  assert.equal(startA.code, 0, startA.stderr);
  await checkData('after the concurrency test', since);
});

// ---- start/delete cycles ----------------------------------------------------------------------

test('five start/delete cycles, with a $KUBECONFIG list, leak nothing', async () => {
  const files = await homeFiles();
  const list = [join(s.dir, 'cycles', 'first'), s.kubeconfig];
  const env = { ...s.env, KUBECONFIG: list.join(':') };
  for (let cycle = 1; cycle <= 5; cycle++) {
    tally.cases++;
    const started = await minilab(['start', '-p', I, '--no-switch-context'], { env });
    assert.equal(started.code, 0, `cycle ${cycle}: start\n${started.stderr}`);
    assert.deepEqual(await entryCount(I, list), [1, 1, 1]);
    const deleted = await minilab(['delete', '-p', I], { env });
    assert.equal(deleted.code, 0, `cycle ${cycle}: delete\n${deleted.stderr}`);
    await assertGone(I, files, `start/delete cycle ${cycle}`, list);
    assert.equal(
      existsSync(list[0] as string),
      false,
      'the missing first file of the list was never created',
    );
    await assertForeignIntact(`start/delete cycle ${cycle}`);
  }
});

test('a node whose pod cgroup was left frozen (runc interrupted mid-update) is still deleted, leaving nothing', async () => {
  tally.cases++;
  tally.faults.push('frozen pod cgroup in the node');
  const files = await homeFiles();
  const started = await minilab(['start', '-p', I, '--no-switch-context']);
  assert.equal(started.code, 0, started.stderr);
  const node = await engine.containers.inspect(nodeOf(I));
  assert.ok(node, 'the node exists');
  // Freeze one pod container's cgroup from a privileged helper that sees the host's cgroup tree:
  // what an interrupted runc leaves behind. On cgroup v1 (freezer.state) the engine cannot kill
  // the node without minilab's thaw; on v2 (cgroup.freeze) SIGKILL still works, so there this
  // case checks only that delete copes.
  const freeze = `if [ -d /host-cgroup/freezer ]; then
      d=$(find /host-cgroup/freezer -type d -path "*${node.id}*kubepods*cri-containerd-*" | head -n1); f="$d/freezer.state"; v=FROZEN
    else
      d=$(find /host-cgroup -type d -path "*${node.id}*kubepods*cri-containerd-*" | head -n1); f="$d/cgroup.freeze"; v=1
    fi
    [ -n "$d" ] && [ -e "$f" ] || { echo "no pod cgroup found" >&2; exit 1; }
    echo $v > "$f"; echo "state: $(cat "$f")"`;
  const image = (await engine.images.info(node.image))?.id ?? node.image;
  const helper = `rel-freeze-${runId}`;
  await engine.containers.createPlain({
    name: helper,
    image,
    entrypoint: ['sh', '-c', freeze],
    labels: testLabel(),
    privileged: true,
    binds: ['/sys/fs/cgroup:/host-cgroup'],
  });
  try {
    await engine.containers.start(helper);
    await engine.containers.waitForExit(helper, 60_000);
    const out = await text(await engine.containers.logs(helper));
    assert.match(out, /state: (FROZEN|FREEZING|1)\n/, `the helper froze a pod cgroup: ${out}`);
  } finally {
    await engine.containers.remove(helper);
  }
  const deleted = await minilab(['delete', '-p', I]);
  assert.equal(deleted.code, 0, `delete of a node with a frozen pod cgroup\n${deleted.stderr}`);
  await assertGone(I, files, 'delete with a frozen pod cgroup');
  await assertForeignIntact('delete with a frozen pod cgroup');
});

// ---- the end ----------------------------------------------------------------------------------

test('deleting the long-lived cluster leaves the kubeconfig as the user wrote it and nothing else behind', async () => {
  tally.cases++;
  await checkData('before the final delete');
  const r = await minilab(['delete', '-p', A]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await engineResources(A), [], 'no container, volume or network');
  assert.deepEqual(
    (await homeFiles()).filter((f) => !f.endsWith('/') || PROFILES.some((p) => f.includes(p))),
    [],
    'no profile file or directory left under MINILAB_HOME',
  );
  // Everything but the current context (starts without --no-switch-context moved it, deletes cleared it).
  const meaning = (text: string) => ({ ...(parse(text) as KubeconfigDoc), 'current-context': undefined });
  assert.deepEqual(
    meaning(await readFile(s.kubeconfig, 'utf8')),
    meaning(FOREIGN),
    'the kubeconfig means what it did',
  );
  await assertForeignIntact('after the final delete');
  assert.deepEqual(await engine.containers.list(testLabel()), []);
  assert.deepEqual(await engine.volumes.list(testLabel()), []);
  assert.deepEqual(await engine.networks.list(testLabel()), []);
});

test('closing note', (t) => {
  t.diagnostic(summary());
  assert.equal(tally.dataLost, 0, 'no data lost');
});
