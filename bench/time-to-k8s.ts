/**
 * minilab's time-to-k8s benchmark (method of minikube's time-to-k8s, plus restart, delete,
 * latency and footprint). Run: npm run bench -- [--iterations N] [--nodes N] [--control-planes N]
 * [--profile NAME] [--out FILE] [--no-floor]. Needs the node image built (minilab image build).
 * Prints a table; writes JSON. With several nodes it also times `node add` of a worker to Ready
 * (then removes it) and reads every node's idle memory; with several control planes it stops the
 * first control plane's container and times how long until the API answers through the
 * kubeconfig (the load balancer), then how long `start` takes to bring that node back.
 * With --driver podman it runs the same iterations on podman and on Docker, alternating (one
 * Docker iteration, then one podman iteration, so that both see the machine in the same state),
 * and prints podman's medians beside Docker's with their ratio (the floor is not measured then).
 * With --driver qemu it runs the iterations on node VMs alone (say --iterations: under TCG one
 * takes about ten minutes) and adds the accelerator and the node's overlay disk size.
 */
import { Writable } from 'node:stream';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { DockerProvider } from '../src/providers/docker/provider.js';
import { PodmanProvider } from '../src/providers/podman/provider.js';
import { connectProvider } from '../src/providers/index.js';
import { minilabHome } from '../src/profile/store.js';
import type { Provider } from '../src/providers/types.js';
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
  /** podman: podman beside Docker in the same run; qemu: node VMs alone. */
  driver: 'docker' | 'podman' | 'qemu';
}

function driverArg(value: string | undefined): Args['driver'] {
  if (value === undefined || value === 'docker' || value === 'podman' || value === 'qemu')
    return value ?? 'docker';
  throw new Error(
    `--driver must be docker, podman (podman runs beside Docker) or qemu (alone), not "${value}"`,
  );
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
    floor: !argv.includes('--no-floor') && (get('--driver') ?? 'docker') === 'docker',
    driver: driverArg(get('--driver')),
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
  /** A node VM: the accelerator it ran under and the space its overlay disk takes. */
  vm?: { accel: string; overlayBytes: number };
}

/** The first control plane's VM (qemu): its accelerator and its overlay's allocated size. */
async function vmFigures(profile: string): Promise<IdleMemory['vm']> {
  const dir = join(minilabHome(process.env), 'profiles', profile, 'vm', `${profile}-control-plane`);
  const record = JSON.parse(await readFile(join(dir, 'machine.json'), 'utf8')) as { accel: string };
  return { accel: record.accel, overlayBytes: (await stat(join(dir, 'disk.qcow2'))).blocks * 512 };
}

async function iteration(
  args: Args,
  provider: Provider,
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
        '--driver',
        provider.driver,
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
    if (provider.driver === 'qemu') idleMemory.vm = await vmFigures(p);
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

/** One driver's run: its provider, profile, iterations and idle memory. */
interface DriverRun {
  driver: string;
  provider: Provider;
  profile: string;
  iterations: Iteration[];
  idleMemory?: IdleMemory;
}

/** Medians, minimums and maximums of every figure of a driver's iterations. */
function summarize(iterations: Iteration[]) {
  const keys = Object.keys(iterations[0] ?? {}) as (keyof Iteration)[];
  return Object.fromEntries(
    keys.map((k) => {
      const xs = iterations.map((it) => it[k] ?? 0);
      return [k, { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) }];
    }),
  ) as Record<keyof Iteration, { median: number; min: number; max: number }>;
}

const seconds = (k: keyof Iteration, v: number) => v / (k === 'nodeCpuSecondsDuringStart' ? 1 : 1000);
const mib = (m: IdleMemory | undefined) =>
  m && {
    controlPlane: Math.round(m.controlPlane / 2 ** 20),
    worker: m.worker === undefined ? undefined : Math.round(m.worker / 2 ** 20),
  };

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const docker = await DockerProvider.connect(process.env);
  const runs: DriverRun[] =
    args.driver === 'qemu'
      ? [
          {
            driver: 'qemu',
            provider: await connectProvider('qemu', { env: process.env, home: minilabHome(process.env) }),
            profile: args.profile,
            iterations: [],
          },
        ]
      : [{ driver: 'docker', provider: docker, profile: args.profile, iterations: [] }];
  if (args.driver === 'podman') {
    const podman = await PodmanProvider.open({
      env: process.env,
      uid: process.getuid?.(),
      log: join(tmpdir(), 'minilab-bench-podman-service.log'),
      start: true,
    });
    runs.push({ driver: 'podman', provider: podman, profile: `${args.profile}-podman`, iterations: [] });
  }
  const sizes: Record<string, number> = {};
  for (const r of runs) {
    const image = await r.provider.images.info(nodeImageRef(args.version));
    if (!image) {
      throw new Error(
        `node image ${nodeImageRef(args.version)} is not built for ${r.driver}: run minilab image build --driver ${r.driver} first`,
      );
    }
    sizes[r.driver] = Math.round(image.sizeBytes / 1e6);
  }
  const dir = await mkdtemp(join(tmpdir(), 'minilab-bench-'));
  const env = { ...process.env, KUBECONFIG: join(dir, 'kubeconfig'), NO_COLOR: '1' };
  let floor: Floor | undefined;
  try {
    for (const r of runs) await minilab(['delete', '-p', r.profile], env);
    for (let i = 0; i < args.iterations; i++) {
      for (const r of runs) {
        process.stderr.write(
          `iteration ${i + 1}/${args.iterations}${runs.length > 1 ? ` (${r.driver})` : ''}\n`,
        );
        const one = await iteration(
          { ...args, profile: r.profile },
          r.provider,
          env,
          i === args.iterations - 1,
        );
        r.iterations.push(one.it);
        r.idleMemory ??= one.idleMemory;
      }
    }
    // The floor, measured in the same run: plain processes in one prepared node.
    const floors: Floor[] = [];
    for (let i = 0; i < (args.floor ? Math.min(3, args.iterations) : 0); i++) {
      process.stderr.write(`floor ${i + 1}\n`);
      await must(['start', '-p', args.profile, '--wait', 'none', '--kubernetes-version', args.version], env);
      floors.push(await measureFloor(docker, args.profile));
      await must(['delete', '-p', args.profile], env);
    }
    if (floors.length > 0) {
      floor = {
        apiServerAnswering: median(floors.map((f) => f.apiServerAnswering)),
        nodeReady: median(floors.map((f) => f.nodeReady)),
      };
    }
  } finally {
    for (const r of runs) await minilab(['delete', '-p', r.profile], env);
    await rm(dir, { recursive: true, force: true });
  }
  const [main, other] = runs as [DriverRun, DriverRun | undefined];
  const summary = summarize(main.iterations);
  const keys = Object.keys(summary) as (keyof Iteration)[];
  const result = {
    date: new Date().toISOString(),
    machine: await machine(docker),
    kubernetesVersion: args.version,
    nodes: args.nodes,
    controlPlanes: args.controlPlanes,
    iterations: main.iterations.length,
    summary,
    idleMemoryMiB: mib(main.idleMemory),
    driver: main.driver,
    nodeImageMB: sizes[main.driver],
    vm: main.idleMemory?.vm && {
      accelerator: main.idleMemory.vm.accel,
      overlayMB: Math.round(main.idleMemory.vm.overlayBytes / 1e6),
    },
    floor,
    ratioToFloor: floor ? summary.total.median / floor.nodeReady : undefined,
    raw: main.iterations,
    podman: other && {
      engine: (await other.provider.info()).engine.version,
      summary: summarize(other.iterations),
      idleMemoryMiB: mib(other.idleMemory),
      nodeImageMB: sizes.podman,
      raw: other.iterations,
    },
  };
  await mkdir(join(args.out, '..'), { recursive: true });
  await writeFile(args.out, JSON.stringify(result, null, 2) + '\n');
  const col = (s: string) => s.padStart(8);
  const fmt = (k: keyof Iteration) => {
    const s = summary[k];
    const row = `${k.padEnd(28)} ${col(seconds(k, s.median).toFixed(2))} ${col(seconds(k, s.min).toFixed(2))} ${col(seconds(k, s.max).toFixed(2))}`;
    const p = result.podman?.summary[k];
    return p
      ? `${row} ${col(seconds(k, p.median).toFixed(2))} ${col((p.median / s.median).toFixed(2))}`
      : row;
  };
  console.log(
    `time-to-k8s${main.driver === 'docker' ? '' : ` (${main.driver}${result.vm ? `, ${result.vm.accelerator}` : ''})`}, ${main.iterations.length} iterations, Kubernetes ${args.version}, ${args.nodes} node(s), ${args.controlPlanes} control plane(s), ${result.machine.cpus} CPUs, ${result.machine.memoryGiB} GiB`,
  );
  console.log(
    `${'phase (seconds)'.padEnd(28)} ${col('median')} ${col('min')} ${col('max')}${other ? ` ${col('podman')} ${col('ratio')}` : ''}`,
  );
  for (const k of keys) console.log(fmt(k));
  console.log(
    `node memory after ${args.idleSeconds}s idle: control plane ${result.idleMemoryMiB?.controlPlane} MiB${result.idleMemoryMiB?.worker === undefined ? '' : `, worker ${result.idleMemoryMiB.worker} MiB`}; node image: ${result.nodeImageMB} MB`,
  );
  if (result.vm) {
    console.log(
      `node VM: accelerator ${result.vm.accelerator}, overlay disk ${result.vm.overlayMB} MB after the idle minute`,
    );
  }
  if (result.podman) {
    const m = result.podman.idleMemoryMiB;
    console.log(
      `podman ${result.podman.engine}: node memory after ${args.idleSeconds}s idle: control plane ${m?.controlPlane} MiB${m?.worker === undefined ? '' : `, worker ${m.worker} MiB`}; node image: ${result.podman.nodeImageMB} MB`,
    );
  }
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
