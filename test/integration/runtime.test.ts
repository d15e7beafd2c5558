import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import tarStream from 'tar-stream';
import type { Engine } from '../../src/runtime/engine.js';
import { ownedLabels } from '../../src/runtime/labels.js';
import type { NodeSpec } from '../../src/runtime/types.js';
import { cleanupTestResources, connect, loadBusyboxImage, runId, testLabels } from '../helpers/engine.js';

const image = `minilab-test/busybox:${runId}`;
const profile = `it-${runId}`;
let engine: Engine;

const spec = (): NodeSpec => ({
  name: `${profile}-control-plane`,
  hostname: `${profile}-control-plane`,
  image,
  profile,
  role: 'control-plane',
  network: `minilab-${profile}`,
  varVolume: `${profile}-var`,
  ports: [],
  labels: ownedLabels(profile, 'node', testLabels),
  mountLibModules: false,
});

before(async () => {
  engine = await connect();
  await loadBusyboxImage(engine, image, [
    '/bin/sh',
    '-c',
    'trap "exit 0" TERM; while true; do sleep 1; done',
  ]);
});

after(async () => {
  await cleanupTestResources(engine);
  await engine.removeImage(image);
  const left = await cleanupTestResources(engine);
  assert.deepEqual(left, [], 'nothing labelled by the tests remains');
});

test('a loaded image archive is known to the engine under its tag', async () => {
  const info = await engine.imageInfo(image);
  assert.ok(info, 'image exists');
  assert.ok(info.tags.includes(image));
  assert.equal(await engine.imageInfo(`minilab-test/absent:${runId}`), undefined);
});

test('networks and volumes are created once and report whether this call created them', async () => {
  const labels = ownedLabels(profile, 'network', testLabels);
  assert.deepEqual(await engine.ensureNetwork(spec().network, labels), { created: true });
  assert.deepEqual(await engine.ensureNetwork(spec().network, labels), { created: false });
  assert.deepEqual(await engine.ensureVolume(spec().varVolume, labels), { created: true });
  assert.deepEqual(await engine.ensureVolume(spec().varVolume, labels), { created: false });
});

test('a node-like container runs and is rediscovered from its labels', async () => {
  const node = await engine.createNode(spec());
  assert.equal(node.status, 'created');
  await engine.start(node.name);
  await engine.start(node.name); // already running is success
  const found = await engine.listContainers({ 'io.minilab.profile': profile });
  assert.deepEqual(
    found.map((c) => [c.name, c.role, c.running]),
    [[node.name, 'control-plane', true]],
  );
  const state = await engine.inspect(node.name);
  assert.ok(state?.ip, 'the node has an IP on its network');
});

test('exec separates stdout and stderr and returns the exit code', async () => {
  const r = await engine.exec(spec().name, ['sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.deepEqual(r, { exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
  const piped = await engine.exec(spec().name, ['sh', '-c', 'cat | wc -c'], { input: 'hello world' });
  assert.equal(piped.stdout.trim(), '11');
  const noTty = await engine.exec(spec().name, ['tty']);
  assert.equal(noTty.exitCode, 1, 'no TTY without asking for one');
});

test('exec with a TTY gets a terminal and the exit status', async () => {
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
  const code = await engine.execInteractive(spec().name, ['sh', '-c', 'tty; stty size; exit 4'], {
    stdin,
    stdout,
  });
  assert.equal(code, 4);
  const text = Buffer.concat(chunks).toString();
  assert.match(text, /\/dev\/pts\/\d+/);
  assert.match(text, /30 100/, 'the window size is forwarded');
});

test('files are copied in and out as tar streams', async () => {
  const pack = tarStream.pack();
  pack.entry({ name: 'hello.txt', mode: 0o644 }, 'from the host\n');
  pack.finalize();
  await engine.exec(spec().name, ['mkdir', '-p', '/var/lib/test']);
  await engine.putArchive(spec().name, '/var/lib/test', pack as unknown as Readable);
  const r = await engine.exec(spec().name, ['cat', '/var/lib/test/hello.txt']);
  assert.equal(r.stdout, 'from the host\n');

  const out = await engine.getArchive(spec().name, '/var/lib/test/hello.txt');
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
    out.pipe(extract);
  });
  assert.deepEqual(files, { 'hello.txt': 'from the host\n' });
});

test('stop, start and remove are idempotent, and /var data survives a restart', async () => {
  const name = spec().name;
  await engine.stop(name, 3);
  await engine.stop(name, 3);
  assert.equal((await engine.inspect(name))?.running, false);
  await engine.start(name);
  const r = await engine.exec(name, ['cat', '/var/lib/test/hello.txt']);
  assert.equal(r.stdout, 'from the host\n');
  assert.equal(await engine.remove(name), 'removed');
  assert.equal(await engine.remove(name), 'absent');
  assert.equal(await engine.inspect(name), undefined);
  assert.equal(await engine.removeVolume(spec().varVolume), 'removed');
  assert.equal(await engine.removeVolume(spec().varVolume), 'absent');
  assert.equal(await engine.removeNetwork(spec().network), 'removed');
  assert.equal(await engine.removeNetwork(spec().network), 'absent');
});

test('a missing container is "not found", not an error, for stop and remove', async () => {
  await engine.stop(`${profile}-nothing`);
  assert.equal(await engine.remove(`${profile}-nothing`), 'absent');
});
