/**
 * minilab's time-to-k8s benchmark (method of minikube's time-to-k8s, plus restart, delete,
 * latency and footprint). Run: npm run bench -- [--iterations N] [--nodes N] [--control-planes N]
 * [--profile NAME] [--out FILE] [--no-floor]. Needs the node image built (minilab image build).
 * Prints a table; writes JSON. With several nodes it also times `node add` of a worker to Ready
 * (then removes it) and reads every node's idle memory; with several control planes it stops the
 * first control plane's container and times how long until the API answers through the
 * kubeconfig (the load balancer), then how long `start` takes to bring that node back.
 */
import { Writable } from 'node:stream';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { DockerProvider } from '../src/providers/docker/provider.js';
import { controlPlane } from '../src/lifecycle/nodes.js';
import { nodeImageRef } from '../src/image/components.js';
import { nodeResources } from '../src/cluster/resources.js';
import { machine, median, minilab, must } from './common.js';
import { measureFloor, type Floor } from './floor.js';
import { DEFAULT_KUBERNETES_VERSION, projectRoot } from '../src/version.js';

interface Args {
  iterations: number;
  profile: string;
  out: string;
  idleSeconds: number;
  version: string;
  /** Nodes of the cluster, control planes included. */
  nodes: number;
  controlPlanes: number;
  /** Whether to measure the floor (plain processes in one node) after the iterations. */
  floor: boolean;
}

function parseArgs(argv: string[]): Args {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    iterations: Number(get('--iterations') ?? 5),
    profile: get('--profile') ?? 'bench',
    out:
      get('--out') ??
      join(
        projectRoot,
        'bench-results',
        `time-to-k8s-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.json`,
      ),
    idleSeconds: Number(get('--idle-seconds') ?? 60),
    version: get('--kubernetes-version') ?? DEFAULT_KUBERNETES_VERSION,
    nodes: Number(get('--nodes') ?? get('--control-planes') ?? 1),
    controlPlanes: Number(get('--control-planes') ?? 1),
    floor: !argv.includes('--no-floor'),
  };
}

const now = () => performance.now();

/** Polls `check` (one small API call each time) until it returns true; resolves to the elapsed ms. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 180_000): Promise<number> {
  const started = now();
  for (;;) {
    if (await check().catch(() => false)) return now() - started;
    if (now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs a command in a pod through the API (like `kubectl exec`); true when it exits 0. */
function execSucceeds(exec: k8s.Exec, pod: string, command: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const sink = new Writable({ write: (_c, _e, done) => done() });
    exec
      .exec('default', pod, 'app', command, sink, sink, null, false, (status) =>
        resolve(status.status === 'Success'),
      )
      .then((ws) => ws.on('close', () => resolve(false)))
      .catch(() => resolve(false));
  });
}

interface Iteration {
  commandExec: number;
  apiServerAnswering: number;
  kubernetesService: number;
  dnsService: number;
  appRunning: number;
  dnsAnswering: number;
  total: number;
  nodeCpuSecondsDuringStart: number;
  restartToReady: number;
  stop: number;
  delete: number;
  statusLatency: number;
  versionLatency: number;
  /** Several nodes: `node add` of a worker until it is Ready (the command's own wait). */
  nodeAdd?: number;
  /** Several control planes: from the first one's container stopped to the API answering. */
  failover?: number;
  /** Several control planes: `start` bringing the stopped control plane back Ready. */
  nodeRestart?: number;
}

interface IdleMemory {
  /** The control plane's (the largest of several). */
  controlPlane: number;
  /** The largest worker's, if any. */
  worker?: number;
}

async function iteration(
  args: Args,
  provider: DockerProvider,
  env: NodeJS.ProcessEnv,
  measureIdle: boolean,
): Promise<{ it: Iteration; idleMemory?: IdleMemory }> {
  const p = args.profile;
  const commandExec = (
    await must(
      [
        'start',
        '-p',
        p,
        '--kubernetes-version',
        args.version,
        '--nodes',
        String(args.nodes),
        '--control-planes',
        String(args.controlPlanes),
      ],
      env,
    )
  ).ms;
  const nodeCpuSecondsDuringStart = (await nodeResources((await controlPlane(provider, p)).node)).cpuSeconds;
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(env.KUBECONFIG as string);
  kc.setCurrentContext(p);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const apiServerAnswering = await until('the API server', async () => Boolean(await core.getAPIResources()));
  const kubernetesService = await until('the kubernetes Service', async () =>
    Boolean(await core.readNamespacedService({ name: 'kubernetes', namespace: 'default' })),
  );
  const dnsService = await until('the kube-dns Service', async () =>
    Boolean(await core.readNamespacedService({ name: 'kube-dns', namespace: 'kube-system' })),
  );

  // App running, as minikube's time-to-k8s measures it: a Deployment and its Service are
  // created, then `nc localhost 8080` run in the app's pod (an exec through the API) is retried
  // until it succeeds. The app is busybox's nc serving port 8080 (the preloaded helper image).
  const appStarted = now();
  await apps.createNamespacedDeployment({
    namespace: 'default',
    body: {
      metadata: { name: 'bench-app' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'bench-app' } },
        template: {
          metadata: { labels: { app: 'bench-app' } },
          spec: {
            containers: [
              {
                name: 'app',
                image: 'docker.io/minilab/storage-helper:v1',
                imagePullPolicy: 'Never',
                command: ['nc', '-ll', '-p', '8080', '-e', 'echo', 'ok'],
                ports: [{ containerPort: 8080 }],
              },
            ],
          },
        },
      },
    },
  });
  await core.createNamespacedService({
    namespace: 'default',
    body: {
      metadata: { name: 'bench-app' },
      spec: { selector: { app: 'bench-app' }, ports: [{ port: 8080, targetPort: 8080 }] },
    },
  });
  const exec = new k8s.Exec(kc);
  const inApp = async (command: string[]) => {
    const pods = await core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=bench-app' });
    const pod = pods.items.find((x) => x.status?.phase === 'Running');
    if (!pod?.metadata?.name) return false;
    return execSucceeds(exec, pod.metadata.name, command);
  };
  await until('the app to answer', () => inApp(['nc', '-w', '1', 'localhost', '8080']));
  const appRunning = now() - appStarted;

  // DNS answering, as minikube's time-to-k8s measures it: nslookup of the app's Service name,
  // run in the app's pod, retried until it succeeds.
  const dnsAnswering = await until('the app pod to resolve a Service name', () =>
    inApp(['nslookup', 'bench-app.default.svc.cluster.local']),
  );
  let idleMemory: IdleMemory | undefined;
  if (measureIdle) {
    process.stderr.write(`  idle for ${args.idleSeconds}s before reading memory ...\n`);
    await new Promise((r) => setTimeout(r, args.idleSeconds * 1000));
    const { nodes } = await controlPlane(provider, p);
    const memory = async (role: string) => {
      const of = nodes.filter((n) => n.role === role);
      if (of.length === 0) return undefined;
      return Math.max(...(await Promise.all(of.map(nodeResources))).map((r) => r.memoryBytes));
    };
    idleMemory = { controlPlane: (await memory('control-plane')) ?? 0, worker: await memory('worker') };
  }
  const extra: Pick<Iteration, 'nodeAdd' | 'failover' | 'nodeRestart'> = {};
  if (args.nodes > 1) {
    extra.nodeAdd = (await must(['node', 'add', '-p', p, '--name', `${p}-bench-added`], env)).ms;
    await must(['node', 'delete', '-p', p, `${p}-bench-added`], env);
  }
  if (args.controlPlanes > 1) {
    const first = (await controlPlane(provider, p)).nodes.find((n) => n.name === `${p}-control-plane`);
    if (!first) throw new Error(`no node ${p}-control-plane`);
    await provider.stopNode(first, 10);
    extra.failover = await until('the API through the load balancer', async () =>
      Boolean(await core.listNode()),
    );
    extra.nodeRestart = (await must(['start', '-p', p], env)).ms;
  }
  const statusLatency = (await minilab(['status', '-p', p], env)).ms;
  const versionLatency = (await minilab(['version'], env)).ms;
  const stop = (await must(['stop', '-p', p], env)).ms;
  const restartToReady = (await must(['start', '-p', p], env)).ms;
  const del = (await must(['delete', '-p', p], env)).ms;
  const total = commandExec + apiServerAnswering + kubernetesService + dnsService + appRunning + dnsAnswering;
  return {
    it: {
      commandExec,
      apiServerAnswering,
      kubernetesService,
      dnsService,
      appRunning,
      dnsAnswering,
      total,
      nodeCpuSecondsDuringStart,
      restartToReady,
      stop,
      delete: del,
      statusLatency,
      versionLatency,
      ...extra,
    },
    idleMemory,
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const provider = await DockerProvider.connect(process.env);
  const image = await provider.images.info(nodeImageRef(args.version));
  if (!image)
    throw new Error(`node image ${nodeImageRef(args.version)} is not built: run minilab image build first`);
  const dir = await mkdtemp(join(tmpdir(), 'minilab-bench-'));
  const env = { ...process.env, KUBECONFIG: join(dir, 'kubeconfig'), NO_COLOR: '1' };
  const iterations: Iteration[] = [];
  let idleMemory: IdleMemory | undefined;
  let floor: Floor | undefined;
  try {
    await minilab(['delete', '-p', args.profile], env);
    for (let i = 0; i < args.iterations; i++) {
      process.stderr.write(`iteration ${i + 1}/${args.iterations}\n`);
      const r = await iteration(args, provider, env, i === args.iterations - 1);
      iterations.push(r.it);
      idleMemory ??= r.idleMemory;
    }
    // The floor, measured in the same run: plain processes in one prepared node.
    const floors: Floor[] = [];
    for (let i = 0; i < (args.floor ? Math.min(3, args.iterations) : 0); i++) {
      process.stderr.write(`floor ${i + 1}\n`);
      await must(['start', '-p', args.profile, '--wait', 'none', '--kubernetes-version', args.version], env);
      floors.push(await measureFloor(provider, args.profile));
      await must(['delete', '-p', args.profile], env);
    }
    if (floors.length > 0) {
      floor = {
        apiServerAnswering: median(floors.map((f) => f.apiServerAnswering)),
        nodeReady: median(floors.map((f) => f.nodeReady)),
      };
    }
  } finally {
    await minilab(['delete', '-p', args.profile], env);
    await rm(dir, { recursive: true, force: true });
  }
  const keys = Object.keys(iterations[0] ?? {}) as (keyof Iteration)[];
  const summary = Object.fromEntries(
    keys.map((k) => {
      const xs = iterations.map((it) => it[k] ?? 0);
      return [k, { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) }];
    }),
  );
  const result = {
    date: new Date().toISOString(),
    machine: await machine(provider),
    kubernetesVersion: args.version,
    nodes: args.nodes,
    controlPlanes: args.controlPlanes,
    iterations: iterations.length,
    summary,
    idleMemoryMiB: idleMemory && {
      controlPlane: Math.round(idleMemory.controlPlane / 2 ** 20),
      worker: idleMemory.worker === undefined ? undefined : Math.round(idleMemory.worker / 2 ** 20),
    },
    nodeImageMB: Math.round(image.sizeBytes / 1e6),
    floor,
    ratioToFloor: floor ? summary.total!.median / floor.nodeReady : undefined,
    raw: iterations,
  };
  await mkdir(join(args.out, '..'), { recursive: true });
  await writeFile(args.out, JSON.stringify(result, null, 2) + '\n');
  const fmt = (k: keyof Iteration) => {
    const s = summary[k]!;
    const unit = k === 'nodeCpuSecondsDuringStart' ? 1 : 1000;
    return `${k.padEnd(28)} ${(s.median / unit).toFixed(2).padStart(8)} ${(s.min / unit).toFixed(2).padStart(8)} ${(s.max / unit).toFixed(2).padStart(8)}`;
  };
  console.log(
    `time-to-k8s, ${iterations.length} iterations, Kubernetes ${args.version}, ${args.nodes} node(s), ${args.controlPlanes} control plane(s), ${result.machine.cpus} CPUs, ${result.machine.memoryGiB} GiB`,
  );
  console.log(
    `${'phase (seconds)'.padEnd(28)} ${'median'.padStart(8)} ${'min'.padStart(8)} ${'max'.padStart(8)}`,
  );
  for (const k of keys) console.log(fmt(k));
  console.log(
    `node memory after ${args.idleSeconds}s idle: control plane ${result.idleMemoryMiB?.controlPlane} MiB${result.idleMemoryMiB?.worker === undefined ? '' : `, worker ${result.idleMemoryMiB.worker} MiB`}; node image: ${result.nodeImageMB} MB`,
  );
  if (floor) {
    console.log(
      `floor (plain processes, median of ${Math.min(3, args.iterations)}): API answering ${(floor.apiServerAnswering / 1000).toFixed(2)} s, node Ready ${(floor.nodeReady / 1000).toFixed(2)} s; total / floor = ${result.ratioToFloor?.toFixed(2)}`,
    );
  }
  console.log(`written to ${args.out}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
