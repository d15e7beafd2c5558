import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import type { Readable } from 'node:stream';
import { imageArchive, layerFromEntries } from '../../src/image/archive.js';
import { projectRoot } from '../../src/version.js';
import { runId, TEST_LABEL } from './engine.js';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** An isolated minilab environment: its own MINILAB_HOME and KUBECONFIG, resources labelled for cleanup. */
export async function sandbox(name: string) {
  const dir = await mkdtemp(join(tmpdir(), `minilab-${name}-`));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MINILAB_HOME: join(dir, 'home'),
    KUBECONFIG: join(dir, 'kube', 'config'),
    MINILAB_LABELS: `${TEST_LABEL}=${runId}`,
    NO_COLOR: '1',
  };
  return {
    dir,
    env,
    kubeconfig: env.KUBECONFIG as string,
    home: env.MINILAB_HOME as string,
    /** Runs the real CLI binary, as a user would. */
    minilab: (args: string[], opts: { timeoutMs?: number; input?: string } = {}) => runBin(args, env, opts),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Runs the CLI (or another of the project's built scripts, `opts.script`) with its output captured. */
export function runBin(
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: { timeoutMs?: number; input?: string; script?: string } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const script = opts.script ?? join(projectRoot, 'dist', 'src', 'main.js');
    const child = spawn(process.execPath, [script, ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} ${args.join(' ')} did not finish in ${opts.timeoutMs} ms\n${stderr}`));
    }, opts.timeoutMs ?? 600_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** Builds the tests' echo-server (a static Go program) and returns an image archive holding it. */
export async function echoServerArchive(ref: string, dir: string): Promise<Readable> {
  const bin = join(dir, 'echo-server');
  await promisify(execFile)('go', ['build', '-trimpath', '-ldflags', '-s -w', '-o', bin, '.'], {
    cwd: join(projectRoot, 'test', 'fixtures', 'echo-server'),
    env: { ...process.env, CGO_ENABLED: '0' },
  });
  const layer = await layerFromEntries(
    [
      { type: 'host-file', name: 'echo-server', path: bin, mode: 0o755 },
      { type: 'directory', name: 'data', mode: 0o777 },
      { type: 'directory', name: 'tmp', mode: 0o1777 },
    ],
    join(dir, 'echo-layer.tar'),
  );
  return imageArchive([{ ref, layers: [layer], config: { entrypoint: ['/echo-server'], cmd: ['serve'] } }]);
}

export function kubeClients(kubeconfigFile: string, context: string) {
  const config = new k8s.KubeConfig();
  config.loadFromFile(kubeconfigFile);
  config.setCurrentContext(context);
  return {
    config,
    core: config.makeApiClient(k8s.CoreV1Api),
    apps: config.makeApiClient(k8s.AppsV1Api),
  };
}

/** The PersistentVolumeClaim "data" (64Mi, default StorageClass) in namespace default. */
export async function createDataClaim(core: k8s.CoreV1Api): Promise<void> {
  await core.createNamespacedPersistentVolumeClaim({
    namespace: 'default',
    body: {
      metadata: { name: 'data' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '64Mi' } } },
    },
  });
}

export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | undefined>,
): Promise<T> {
  const started = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out waiting for ${what}: ${String(last ?? '')}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * A pod of `image` (never pulled) in namespace default that runs once with these arguments, with
 * additions to its spec and container; its phase and log once it has finished.
 */
export async function runPodOnce(
  core: k8s.CoreV1Api,
  name: string,
  image: string,
  args: string[],
  more: { spec?: Partial<k8s.V1PodSpec>; container?: Partial<k8s.V1Container>; timeoutMs?: number } = {},
) {
  await core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name },
      spec: {
        restartPolicy: 'Never',
        ...more.spec,
        containers: [{ name: 'c', image, imagePullPolicy: 'Never', args, ...more.container }],
      },
    },
  });
  return podResult(core, 'default', name, more.timeoutMs);
}

/** The spec of a client pod that reaches a Service just deployed: it runs again until it answers. */
export const SERVICE_CLIENT_SPEC: Partial<k8s.V1PodSpec> = { restartPolicy: 'OnFailure' };

/** A pod's logs once it has terminated (for pods that run one command and exit). */
export async function podResult(core: k8s.CoreV1Api, namespace: string, name: string, timeoutMs = 120_000) {
  const status = await waitFor(`pod ${name} to finish`, timeoutMs, async () => {
    const p = await core.readNamespacedPod({ name, namespace });
    return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p.status : undefined;
  });
  const log = await core
    .readNamespacedPodLog({ name, namespace })
    .catch((err: unknown) => `(no log: ${String(err)})`);
  // A failed pod's log says why it failed; a pod refused by its kubelet has none, its status does.
  const why =
    status.phase === 'Failed'
      ? `\nstatus: ${JSON.stringify({ reason: status.reason, message: status.message, containers: status.containerStatuses?.map((c) => c.state) })}`
      : '';
  return { phase: status.phase as string, log: `${String(log)}${why}` };
}

/** Creates a Deployment of the echo server (one replica, pullPolicy Never, label app=NAME) in default. */
export async function createEchoDeployment(
  apps: k8s.AppsV1Api,
  name: string,
  image: string,
  podSpec: Omit<k8s.V1PodSpec, 'containers'> = {},
): Promise<void> {
  const labels = { app: name };
  await apps.createNamespacedDeployment({
    namespace: 'default',
    body: {
      metadata: { name },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            ...podSpec,
            containers: [
              {
                name: 'echo',
                image,
                imagePullPolicy: 'Never',
                ports: [{ containerPort: 8080 }],
                // Ready once it listens, not once its process starts: a Service sends it nothing before.
                readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
              },
            ],
          },
        },
      },
    },
  });
}

/**
 * Deploys the echo server (one replica, pullPolicy Never) behind a Service and waits until it is
 * available. Each node's kube-proxy writes the Service's endpoint a moment later (until then it
 * refuses the Service's connections), so a client of the Service retries, as upstream's e2e
 * reachability checks do: `SERVICE_CLIENT_SPEC`.
 */
export async function deployEcho(
  clients: ReturnType<typeof kubeClients>,
  image: string,
  service: { name: string; port: number },
): Promise<void> {
  const labels = { app: service.name };
  await createEchoDeployment(clients.apps, service.name, image);
  await clients.core.createNamespacedService({
    namespace: 'default',
    body: {
      metadata: { name: service.name },
      spec: { selector: labels, ports: [{ port: service.port, targetPort: 8080 }] },
    },
  });
  await waitFor(`deployment ${service.name} to be available`, 120_000, async () => {
    const d = await clients.apps.readNamespacedDeployment({ name: service.name, namespace: 'default' });
    return (d.status?.availableReplicas ?? 0) >= 1 ? true : undefined;
  });
}

/** The names of the nodes whose Ready condition is True, sorted. */
export async function readyNodes(core: k8s.CoreV1Api): Promise<string[]> {
  const list = await core.listNode();
  return list.items
    .filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
    .map((n) => n.metadata?.name ?? '')
    .sort();
}

/** Waits until exactly these nodes are Ready (sorted names compared). */
export async function waitForReadyNodes(
  core: k8s.CoreV1Api,
  names: readonly string[],
  timeoutMs: number,
): Promise<void> {
  const want = [...names].sort().join(',');
  await waitFor(`nodes ${want} Ready`, timeoutMs, async () =>
    (await readyNodes(core)).join(',') === want ? true : undefined,
  );
}

/**
 * Request options that abort one API call after `ms`: a call that reached an API server just as
 * it stopped could otherwise hang. (The middleware keeps the client's own headers; it also names
 * the caller in User-Agent, the one public way to build a client-node middleware.)
 */
export function abortAfter(ms: number): k8s.ConfigurationOptions<k8s.ObservableMiddleware> {
  const base = k8s.setHeaderMiddleware('User-Agent', 'minilab-e2e');
  return {
    middleware: [
      {
        pre: (request) => {
          request.setSignal(AbortSignal.timeout(ms));
          return base.pre(request);
        },
        post: base.post,
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

/** Preloaded in every node (a shell and coreutils): the pods that use the PVC run it. */
const STORAGE_HELPER_IMAGE = 'docker.io/minilab/storage-helper:v1';

/** A pod on one node (by the scheduler, so a PVC can bind there) that runs a shell script once. */
async function runWithClaim(core: k8s.CoreV1Api, name: string, node: string, script: string) {
  return runPodOnce(core, name, STORAGE_HELPER_IMAGE, [], {
    spec: {
      nodeSelector: { 'kubernetes.io/hostname': node },
      terminationGracePeriodSeconds: 1,
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
    },
    container: { command: ['sh', '-c', script], volumeMounts: [{ name: 'data', mountPath: '/data' }] },
    timeoutMs: 300_000,
  });
}

/**
 * Makes the PVC "data" and writes `content` to /data/file from a pod on `node` (the volume is
 * made there: local-path binds when the first pod is scheduled). Later reads use readClaimFile.
 */
export async function writeClaimFile(core: k8s.CoreV1Api, node: string, content: string): Promise<void> {
  await createDataClaim(core);
  const r = await runWithClaim(core, 'claim-writer', node, `printf %s '${content}' > /data/file`);
  if (r.phase !== 'Succeeded') throw new Error(`the writer pod on ${node} failed: ${r.log}`);
}

/** What /data/file of the PVC "data" holds, read by a new pod (`name`) on `node`. */
export async function readClaimFile(core: k8s.CoreV1Api, node: string, name: string): Promise<string> {
  const r = await runWithClaim(core, name, node, 'cat /data/file');
  if (r.phase !== 'Succeeded') throw new Error(`the reader pod ${name} on ${node} failed: ${r.log}`);
  return r.log;
}

/**
 * When a node unpacked an image (the time containerd made the snapshot holding its top layer) and
 * when the first sandbox of the pods whose names match `pod` was made, in ms since the epoch; and
 * how many unpacking mounts and folders (src/lifecycle/unpack.ts) are left in the node. A sandbox
 * comes before its containers, and containerd's CRI would unpack the image only when it creates the
 * first of them: a snapshot older than the sandbox was made ahead of the pod.
 */
export async function unpackedBeforeFirstUse(
  exec: (cmd: string[]) => Promise<{ exitCode: number; stdout: string; stderr: string }>,
  image: string,
  pod: string,
): Promise<{ unpacked: number; sandbox: number; mounts: string; dirs: string; raw: string }> {
  const r = await exec([
    'bash',
    '-euo',
    'pipefail',
    '-c',
    `ref=$(ctr -n k8s.io images ls -q | grep -F "$1" | head -1)
     top=$(ctr -n k8s.io images usage "$ref" | tail -1 | cut -d' ' -f1)
     echo "snapshot=$(ctr -n k8s.io snapshots info "$top" | grep -o '"Created": *"[^"]*"' | cut -d'"' -f4)"
     echo "sandbox=$(crictl pods --name "$2" -o json | grep -o '"createdAt": *"[0-9]*"' | cut -d'"' -f4 | sort -n | head -1)"
     echo "mounts=$(grep -c ' /run/minilab-unpack' /proc/mounts || true)"
     echo "dirs=$( (ls -d /run/minilab-unpack.* 2>/dev/null || true) | wc -l)"`,
    'unpacked',
    image,
    pod,
  ]);
  if (r.exitCode !== 0) throw new Error(`reading ${image}'s snapshot in the node failed: ${r.stderr}`);
  const field = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(r.stdout)?.[1]?.trim() ?? '';
  const sandboxNs = field('sandbox');
  return {
    unpacked: Date.parse(field('snapshot')),
    sandbox: /^\d+$/.test(sandboxNs) ? Number(BigInt(sandboxNs) / 1_000_000n) : NaN,
    mounts: field('mounts'),
    dirs: field('dirs'),
    raw: r.stdout,
  };
}
