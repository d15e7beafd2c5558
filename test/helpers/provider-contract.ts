import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { RunJournal } from '../../src/lifecycle/journal.js';
import { providerFailure } from '../../src/providers/errors.js';
import type { ClusterPlan, Node, Provider } from '../../src/providers/types.js';

/** What a provider's contract run needs: the provider, and an image (or disk) its nodes can boot from. */
export interface ContractSetup {
  provider: Provider;
  /** Boots to a process that keeps running; has sh, cat, echo, mkdir, tty, stty, wc, sleep. */
  image: string;
  /** A profile name no one else uses; resources carry `labels`. */
  profile: string;
  labels: Record<string, string>;
  /** Removes everything the run made; returns what was left. */
  cleanup(): Promise<string[]>;
}

const freePort = () =>
  new Promise<{ port: number; server: Server }>((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ port: typeof address === 'object' && address ? address.port : 0, server });
    });
  });

function planFor(
  setup: ContractSetup,
  profile: string,
  apiServerPort: number,
  extra: number[] = [],
): ClusterPlan {
  return {
    profile,
    kubernetesVersion: 'v0.0.0-contract',
    image: setup.image,
    apiServerPort,
    env: {},
    labels: setup.labels,
    nodes: [
      {
        name: `${profile}-control-plane`,
        role: 'control-plane',
        ports: [
          { hostIp: '127.0.0.1', hostPort: apiServerPort, containerPort: 6443, protocol: 'tcp' },
          ...extra.map((p) => ({
            hostIp: '127.0.0.1',
            hostPort: p,
            containerPort: 8080,
            protocol: 'tcp' as const,
          })),
        ],
      },
    ],
  };
}

async function readTar(stream: Readable): Promise<Record<string, string>> {
  const extract = tarStream.extract();
  const files: Record<string, string> = {};
  await new Promise<void>((resolve, reject) => {
    extract.on('entry', (h, body, next) => {
      let text = '';
      body.on('data', (c: unknown) => (text += String(c)));
      body.on('end', () => {
        files[h.name] = text;
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
    stream.pipe(extract);
  });
  return files;
}

/**
 * The contract every provider passes (Docker, podman, qemu): the same cases, run
 * against the real engine or hypervisor. Registers node:test cases in the calling file.
 */
export function providerContract(name: string, makeSetup: () => Promise<ContractSetup>): void {
  let setup: ContractSetup;
  let node: Node;
  let apiPort: number;
  const journal = new RunJournal();

  before(async () => {
    setup = await makeSetup();
  });
  after(async () => {
    const left = await setup.cleanup();
    const again = await setup.cleanup();
    assert.deepEqual(
      again,
      [],
      `${name}: nothing labelled by the tests remains (first pass removed ${left.join(', ')})`,
    );
  });

  test(`${name}: provision makes the plan's nodes and journals each resource it made`, async () => {
    const { port, server } = await freePort();
    await new Promise((r) => server.close(r));
    apiPort = port;
    const nodes = await setup.provider.provision(planFor(setup, setup.profile, apiPort), journal);
    assert.equal(nodes.length, 1);
    node = nodes[0] as Node;
    assert.equal(node.role, 'control-plane');
    assert.equal(node.profile, setup.profile);
    assert.equal(node.state.running, true);
    assert.ok(node.state.ip, 'the node has an IP address');
    assert.ok(
      journal.entries.some((e) => e.kind === 'node' && e.name === node.name),
      `journal: ${JSON.stringify(journal.entries)}`,
    );
    const listed = await setup.provider.listNodes(setup.profile);
    assert.deepEqual(
      listed.map((n) => [n.name, n.role, n.state.running]),
      [[node.name, 'control-plane', true]],
    );
    assert.ok(
      (await setup.provider.listNodes()).some((n) => n.name === node.name),
      'listed among all nodes',
    );
    assert.deepEqual(setup.provider.apiEndpoint(listed), { host: '127.0.0.1', port: apiPort });
  });

  test(`${name}: exec separates stdout and stderr, passes stdin and returns the exit code`, async () => {
    const r = await node.exec(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.deepEqual(r, { exitCode: 3, stdout: 'out\n', stderr: 'err\n', started: true });
    const piped = await node.exec(['sh', '-c', 'cat | wc -c'], { input: 'hello world' });
    assert.equal(piped.stdout.trim(), '11');
    const noTty = await node.exec(['tty']);
    assert.equal(noTty.exitCode, 1, 'no TTY without asking for one');
    const missing = await node.exec(['/no/such/command']);
    assert.notEqual(missing.exitCode, 0);
    assert.equal(missing.started, false, 'a command that cannot start is reported as never started');
  });

  test(`${name}: streaming exec delivers output as it comes and the exit code`, async () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const code = await node.execStream(['sh', '-c', 'echo one; echo two; exit 5'], {
      stdout: out,
      stderr: new PassThrough(),
    });
    assert.equal(code, 5);
    assert.equal(Buffer.concat(chunks).toString(), 'one\ntwo\n');
  });

  test(`${name}: a streaming exec that stops sending fails after stallMs; one that keeps sending does not`, async () => {
    const started = performance.now();
    await assert.rejects(
      node.execStream(['sh', '-c', 'echo first; sleep 20; echo late'], {
        stdout: new PassThrough(),
        stderr: new PassThrough(),
        timeoutMs: 30_000,
        stallMs: 1500,
      }),
      (err: Error & { kind?: string }) =>
        err.kind === 'timeout' && /sent nothing for 1\.5s/.test(err.message),
    );
    const waited = performance.now() - started;
    assert.ok(waited < 15_000, `failed when the stream stopped, not at the end (${Math.round(waited)} ms)`);
    // Output every half second for 3 s: never 1.5 s without a byte.
    const code = await node.execStream(['sh', '-c', 'for i in 1 2 3 4 5 6; do echo $i; sleep 0.5; done'], {
      stdout: new PassThrough().resume(),
      stderr: new PassThrough(),
      stallMs: 1500,
    });
    assert.equal(code, 0);
  });

  test(`${name}: exec with a TTY gets a terminal and the exit status`, async () => {
    const stdin = Object.assign(new PassThrough(), {
      isTTY: false,
      isRaw: false,
    }) as unknown as NodeJS.ReadStream;
    const chunks: Buffer[] = [];
    const stdout = Object.assign(new PassThrough(), {
      columns: 100,
      rows: 30,
    }) as unknown as NodeJS.WriteStream;
    stdout.on('data', (c: Buffer) => chunks.push(c));
    const code = await node.execInteractive(['sh', '-c', 'tty; stty size; exit 4'], { stdin, stdout });
    assert.equal(code, 4);
    const text = Buffer.concat(chunks).toString();
    assert.match(text, /\/dev\/pts\/\d+/);
    assert.match(text, /30 100/, 'the window size is forwarded');
  });

  test(`${name}: files are copied in and out as tar streams`, async () => {
    const pack = tarStream.pack();
    pack.entry({ name: 'hello.txt', mode: 0o644 }, 'from the host\n');
    pack.finalize();
    await node.exec(['mkdir', '-p', '/var/lib/test']);
    await node.copyIn('/var/lib/test', pack as unknown as Readable);
    assert.equal((await node.exec(['cat', '/var/lib/test/hello.txt'])).stdout, 'from the host\n');
    assert.deepEqual(await readTar(await node.copyOut('/var/lib/test/hello.txt')), {
      'hello.txt': 'from the host\n',
    });
  });

  test(`${name}: a host port in use is a typed failure naming the port, and nothing is left`, async () => {
    const { port: taken, server } = await freePort();
    const { port: api, server: apiServer } = await freePort();
    await new Promise((r) => apiServer.close(r));
    const other = `${setup.profile}-b`;
    const j = new RunJournal();
    try {
      await assert.rejects(setup.provider.provision(planFor(setup, other, api, [taken]), j), (err) => {
        assert.deepEqual(providerFailure(err, 'port-taken'), { reason: 'port-taken', hostPort: taken });
        return true;
      });
    } finally {
      await new Promise((r) => server.close(r));
    }
    assert.ok(
      !j.entries.some((e) => e.kind === 'node'),
      'the node that could not start is not in the journal',
    );
    await setup.provider.deleteCluster(other, j.entries);
    assert.deepEqual(await setup.provider.listNodes(other), []);
  });

  test(`${name}: stop and start are idempotent, and /var survives a restart`, async () => {
    await setup.provider.stopNode(node, 3);
    await setup.provider.stopNode(node, 3);
    assert.equal((await node.refresh())?.running, false);
    await setup.provider.startNode(node);
    await setup.provider.startNode(node);
    assert.equal((await node.refresh())?.running, true);
    assert.equal((await node.exec(['cat', '/var/lib/test/hello.txt'])).stdout, 'from the host\n');
    const log = await node.logs({ tail: 10 });
    log.resume();
    await new Promise((r) => log.on('end', r));
  });

  test(`${name}: delete removes exactly the journal's resources, then everything, and is idempotent`, async () => {
    const removed = await setup.provider.deleteCluster(setup.profile, journal.entries);
    // a container driver removes containers (and volumes), a VM driver VMs
    assert.deepEqual([...removed.containers, ...(removed.vms ?? [])], [node.name]);
    assert.equal(await node.refresh(), undefined);
    assert.deepEqual(await setup.provider.listNodes(setup.profile), []);
    const again = await setup.provider.deleteCluster(setup.profile);
    assert.deepEqual([...again.containers, ...again.volumes, ...(again.vms ?? [])], []);
  });
}
