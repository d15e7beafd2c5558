import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { exportLogs, extractBundle } from '../../src/cluster/logs.js';
import type { ExecResult, Node, NodeState, Provider } from '../../src/providers/types.js';

type Entry = Partial<tarStream.Header> & { name: string; body?: string };

/** A tar stream of these entries, as a node's copy-out sends it. */
function tarOf(entries: Entry[]): Readable {
  const pack = tarStream.pack();
  for (const { body, ...header } of entries) pack.entry(header, body ?? '');
  pack.finalize();
  return pack as unknown as Readable;
}

/** Every path below dir: its kind, mode and (files) content, or (links) target. */
async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string) => {
    for (const name of await readdir(join(dir, rel))) {
      const path = join(dir, rel, name);
      const st = await lstat(path);
      const mode = (st.mode & 0o777).toString(8);
      const key = join(rel, name);
      if (st.isSymbolicLink()) out[key] = `link -> ${await readlink(path)}`;
      else if (st.isDirectory()) {
        out[key] = `dir ${mode}`;
        await walk(key);
      } else out[key] = `file ${mode} ${await readFile(path, 'utf8')}`;
    }
  };
  await walk('');
  return out;
}

test("a node's log folder is extracted as plain files only: links, ../ and paths outside are skipped", async () => {
  const root = await mkdtemp(join(tmpdir(), 'minilab-extract-'));
  try {
    const outside = join(root, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'keep'), 'original');
    const target = join(root, 'bundle', 'node');
    await mkdir(target, { recursive: true });
    // Left in the bundle folder by someone else: links to outside it.
    await symlink(outside, join(target, 'planted-dir'));
    await symlink(join(outside, 'keep'), join(target, 'planted-file'));
    const top = 'minilab-logs-0123';
    const skipped = await extractBundle(
      tarOf([
        { name: `${top}/`, type: 'directory', mode: 0o777 },
        { name: `${top}/journal.log`, mode: 0o666, body: 'journal' },
        { name: `${top}/pods/ns_pod_uid/c/0.log`, mode: 0o644, body: 'pod log' },
        { name: `${top}/ca.key`, type: 'symlink', linkname: '/etc/kubernetes/pki/ca.key' },
        { name: `${top}/passwd`, type: 'link', linkname: '/etc/passwd' },
        { name: `${top}/../../escape.txt`, body: 'escaped' },
        { name: `${top}/pods/../../../escape2.txt`, body: 'escaped' },
        { name: '/abs.txt', body: 'escaped' },
        { name: 'elsewhere/x.txt', body: 'escaped' },
        { name: `${top}/planted-dir/x.txt`, body: 'escaped' },
        { name: `${top}/planted-file`, body: 'overwritten' },
        { name: `${top}/fifo`, type: 'fifo' },
      ]),
      target,
      top,
    );
    assert.deepEqual(await readdir(outside), ['keep'], 'nothing written outside');
    assert.equal(await readFile(join(outside, 'keep'), 'utf8'), 'original');
    assert.deepEqual((await readdir(root)).sort(), ['bundle', 'outside']);
    assert.deepEqual(await readdir(join(root, 'bundle')), ['node']);
    assert.deepEqual(await tree(target), {
      'journal.log': 'file 600 journal',
      pods: 'dir 700',
      'pods/ns_pod_uid': 'dir 700',
      'pods/ns_pod_uid/c': 'dir 700',
      'pods/ns_pod_uid/c/0.log': 'file 600 pod log',
      'planted-dir': `link -> ${outside}`,
      'planted-file': `link -> ${join(outside, 'keep')}`,
    });
    assert.deepEqual(skipped.sort(), [
      '/abs.txt',
      'elsewhere/x.txt',
      `${top}/../../escape.txt`,
      `${top}/ca.key`,
      `${top}/fifo`,
      `${top}/passwd`,
      `${top}/planted-dir/x.txt`,
      `${top}/planted-file`,
      `${top}/pods/../../../escape2.txt`,
    ]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

/** A running node that records each command, and sends back a log folder named as asked. */
function logNode(name: string, opts: { failCopy?: boolean } = {}) {
  const commands: string[][] = [];
  const state = { name, role: 'control-plane', profile: 'p', running: true } as NodeState;
  const node = {
    name,
    role: 'control-plane',
    profile: 'p',
    state,
    async exec(cmd: string[]): Promise<ExecResult> {
      commands.push(cmd);
      return { exitCode: 0, stdout: '', stderr: '', started: true };
    },
    async copyOut(path: string): Promise<Readable> {
      // Another export's turn in between: both run at once.
      await new Promise((r) => setTimeout(r, 20));
      if (opts.failCopy) throw new Error('copy failed');
      const top = basename(path);
      return tarOf([
        { name: `${top}/`, type: 'directory' },
        { name: `${top}/journal.log`, body: `journal of ${name}` },
      ]);
    },
    async logs(): Promise<Readable> {
      return Readable.from([Buffer.from(`console of ${name}\n`)]);
    },
  } as unknown as Node;
  return { node, commands };
}

const provider = { info: async () => ({ driver: 'fake' }) } as unknown as Provider;

/** The node folder an export's script collected into (its last argument), and the script. */
function collected(commands: string[][]): { path: string; script: string } {
  const run = commands.find((c) => c[0] === 'bash');
  assert.ok(run, 'the collection script ran');
  assert.deepEqual(run.slice(0, 4), ['bash', '-euo', 'pipefail', '-c']);
  assert.equal(run.length, 7);
  return { path: run[6]!, script: run[4]! };
}

test('two exports at once use a node folder each, passed as an argument, removed afterwards; the bundle is private', async () => {
  const root = await mkdtemp(join(tmpdir(), 'minilab-export-'));
  try {
    const a = logNode('p-control-plane');
    const b = logNode('p-control-plane');
    await Promise.all([
      exportLogs(provider, [a.node], join(root, 'a')),
      exportLogs(provider, [b.node], join(root, 'b')),
    ]);
    const [pa, pb] = [collected(a.commands), collected(b.commands)];
    assert.match(pa.path, /^\/var\/tmp\/minilab-logs-[0-9a-f]{16}$/);
    assert.notEqual(pa.path, pb.path, 'each export has its own folder in the node');
    assert.ok(!pa.script.includes(pa.path), 'the folder is an argument, not script text');
    assert.doesNotMatch(pa.script, /cp -[a-zA-Z]*L/, 'links in the node are not followed');
    assert.deepEqual(a.commands.at(-1), ['rm', '-rf', pa.path]);
    assert.deepEqual(b.commands.at(-1), ['rm', '-rf', pb.path]);
    const bundle = await tree(join(root, 'a'));
    assert.deepEqual(
      Object.fromEntries(Object.entries(bundle).map(([k, v]) => [k, v.split(' ').slice(0, 2).join(' ')])),
      {
        'inspect.json': 'file 600',
        'p-control-plane': 'dir 700',
        'p-control-plane/journal.log': 'file 600',
        'p-control-plane/node-console.log': 'file 600',
      },
    );
    assert.equal(((await lstat(join(root, 'a'))).mode & 0o777).toString(8), '700');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a failed copy still removes the folder in the node, and says why in the bundle (0600)', async () => {
  const root = await mkdtemp(join(tmpdir(), 'minilab-export-'));
  try {
    const n = logNode('p-control-plane', { failCopy: true });
    await exportLogs(provider, [n.node], root);
    const { path } = collected(n.commands);
    assert.deepEqual(n.commands.at(-1), ['rm', '-rf', path]);
    const bundle = await tree(root);
    assert.equal(bundle['p-control-plane/export-error.txt'], 'file 600 copy failed\n');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
