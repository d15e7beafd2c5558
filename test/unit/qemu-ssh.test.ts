import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import ssh2, { type Connection, type PseudoTtyInfo, type ServerChannel, type WindowChangeInfo } from 'ssh2';
import tarFs from 'tar-fs';
import tarStream from 'tar-stream';
import { MinilabError } from '../../src/errors.js';
import { ProviderError, providerFailure } from '../../src/providers/errors.js';
import { SshConnection, generateKeyPair, shellQuote, type SshTarget } from '../../src/providers/qemu/ssh.js';
import type { TerminalIO } from '../../src/providers/types.js';

const hostKey = generateKeyPair();
const clientKey = generateKeyPair();

/**
 * An sshd stand-in: ssh2's server with a pinned host key, accepting only the client key, running
 * each command for real with `sh -c` as sshd runs it through the login shell, and reporting the
 * exit status or the signal that ended it.
 */
interface Guest {
  port: number;
  commands: string[];
  ptys: PseudoTtyInfo[];
  resizes: WindowChangeInfo[];
  shells: number;
  connections: number;
  refuseExec: boolean;
  /** Ends every client connection (a VM that went away) and keeps listening. */
  drop(): void;
  close(): Promise<void>;
}

async function startGuest(port = 0, key = hostKey): Promise<Guest> {
  const allowed = ssh2.utils.parseKey(clientKey.publicKey);
  if (allowed instanceof Error) throw allowed;
  const clients = new Set<Connection>();
  const children = new Set<ChildProcess>();
  const run = (channel: ServerChannel, args: string[]) => {
    // its own process group, so that close() ends what it started too (a `sleep` holding its pipes)
    const child = spawn('sh', args, { stdio: 'pipe', detached: true });
    children.add(child);
    child.stdout.pipe(channel, { end: false });
    child.stderr.pipe(channel.stderr, { end: false });
    channel.pipe(child.stdin).on('error', () => undefined);
    child.stdin.on('error', () => undefined);
    child.on('close', async (code, signal) => {
      children.delete(child);
      if (channel.writableLength > 0) await once(channel, 'drain');
      if (code !== null) channel.exit(code);
      else channel.exit(String(signal).replace(/^SIG/, ''));
      channel.end();
    });
  };
  const guest: Guest = {
    port: 0,
    commands: [],
    ptys: [],
    resizes: [],
    shells: 0,
    connections: 0,
    refuseExec: false,
    drop: () => clients.forEach((c) => c.end()),
    close: async () => {
      for (const child of children) {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // the group is gone already: its 'close' has not come yet
        }
      }
      clients.forEach((c) => c.end());
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server = new ssh2.Server({ hostKeys: [key.privateKey] }, (client) => {
    guest.connections++;
    clients.add(client);
    client.on('close', () => clients.delete(client));
    client.on('error', () => undefined);
    client.on('authentication', (ctx) => {
      // as ssh2's server example checks a key: its type, its bytes, then the signature over the session
      if (
        ctx.method !== 'publickey' ||
        ctx.key.algo !== allowed.type ||
        !ctx.key.data.equals(allowed.getPublicSSH()) ||
        (ctx.signature && ctx.blob && !allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo))
      ) {
        return ctx.reject(['publickey']);
      }
      ctx.accept();
    });
    client.on('ready', () =>
      client.on('session', (accept) => {
        const session = accept();
        session.on('pty', (ok, _no, info) => (guest.ptys.push(info), ok?.()));
        session.on('window-change', (ok, _no, info) => (guest.resizes.push(info), ok?.()));
        session.on('exec', (ok, no, info) => {
          if (guest.refuseExec) return no?.();
          guest.commands.push(info.command);
          // bash runs a lone command in place of itself, so the guest reports a signal that ends it
          run(ok(), ['-c', `exec ${info.command}`]);
        });
        session.on('shell', (ok) => {
          guest.shells++;
          run(ok(), []);
        });
      }),
    );
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  guest.port = (server.address() as AddressInfo).port;
  return guest;
}

const target = (port: number, over: Partial<SshTarget> = {}): SshTarget => ({
  host: '127.0.0.1',
  port,
  user: 'root',
  privateKey: clientKey.privateKey,
  hostKey: hostKey.publicKey,
  name: 'vm-1',
  ...over,
});

/** A guest and a connection to it, both ended after `fn`. */
async function withGuest(fn: (conn: SshConnection, guest: Guest) => Promise<void>): Promise<void> {
  const guest = await startGuest();
  const conn = new SshConnection(target(guest.port));
  try {
    await fn(conn, guest);
  } finally {
    conn.close();
    await guest.close();
  }
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function until(what: string, cond: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const sink = (): Writable & { text: () => string } => {
  const chunks: Buffer[] = [];
  const s = new PassThrough();
  s.on('data', (c: Buffer) => chunks.push(c));
  return Object.assign(s, { text: () => Buffer.concat(chunks).toString('utf8') });
};

const AWKWARD = [
  'a b',
  "it's",
  '"quoted"',
  '$HOME',
  '`id`',
  'line\nbreak',
  '',
  '*',
  'A=b',
  '-n',
  'tab\there',
  '\\',
];

test('generateKeyPair gives an OpenSSH ed25519 private key and a one-line public key of the same pair', () => {
  const { privateKey, publicKey } = generateKeyPair();
  assert.match(privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
  assert.match(publicKey, /^ssh-ed25519 AAAA[\w+/=]+ minilab$/);
  const priv = ssh2.utils.parseKey(privateKey);
  const pub = ssh2.utils.parseKey(publicKey);
  assert.ok(!(priv instanceof Error) && !(pub instanceof Error));
  assert.ok(priv.getPublicSSH().equals(pub.getPublicSSH()));
  assert.notEqual(generateKeyPair().publicKey, publicKey, 'a new pair each time');
});

test('generateKeyPair never gives a pair ssh2 spoilt (a public key with a leading zero byte)', () => {
  // 1 pair in 256 comes out of ssh2 1.17 unparseable: among 1500, one almost surely would
  for (let i = 0; i < 1500; i++) {
    const { privateKey, publicKey } = generateKeyPair();
    const pub = ssh2.utils.parseKey(publicKey);
    assert.ok(!(pub instanceof Error), publicKey);
    assert.ok(!(ssh2.utils.parseKey(privateKey) instanceof Error));
    assert.equal(pub.getPublicSSH().length, 4 + 'ssh-ed25519'.length + 4 + 32);
  }
});

test('shellQuote: every word survives a POSIX shell exactly', async () => {
  assert.equal(shellQuote(['ls', '-l', '/var/lib']), 'ls -l /var/lib');
  assert.equal(shellQuote(["it's", '', 'A=b']), `'it'\\''s' '' 'A=b'`);
  const line = shellQuote(['printf', '%s\\0', ...AWKWARD]);
  const out = await promisify(execFile)('sh', ['-c', line], { encoding: 'buffer' });
  assert.deepEqual(out.stdout.toString('utf8').split('\0').slice(0, -1), AWKWARD);
});

test('run: argv with awkward words round-trips through the guest login shell', () =>
  withGuest(async (conn) => {
    const r = await conn.run(['printf', '%s\\0', ...AWKWARD]);
    assert.equal(r.exitCode, 0);
    assert.deepEqual(r.stdout.split('\0').slice(0, -1), AWKWARD);
  }));

test('run: stdout and stderr apart, the exit code, and a signal as 128 + its number', () =>
  withGuest(async (conn) => {
    const r = await conn.run(['sh', '-c', 'echo out; echo err >&2; echo more; exit 7']);
    assert.deepEqual(r, { exitCode: 7, stdout: 'out\nmore\n', stderr: 'err\n', started: true });
    assert.equal((await conn.run(['sh', '-c', 'kill -9 $$'])).exitCode, 137);
    const none = await conn.run(['cat']);
    assert.deepEqual([none.exitCode, none.stdout], [0, ''], 'stdin is closed when there is no input');
  }));

test('run: input as a string, a Buffer or a stream reaches stdin, which is then closed', () =>
  withGuest(async (conn) => {
    assert.equal((await conn.run(['cat'], { input: 'text\n' })).stdout, 'text\n');
    const bytes = Buffer.from([0, 1, 2, 255, 10]);
    assert.equal(
      (await conn.run(['od', '-An', '-tu1'], { input: bytes })).stdout.trim(),
      '0   1   2 255  10',
    );
    const big = 'x'.repeat(3 * 1024 * 1024);
    const r = await conn.run(['wc', '-c'], { input: Readable.from([big.slice(0, 5), big.slice(5)]) });
    assert.equal(r.stdout.trim(), String(big.length));
  }));

test('run: env reaches the command through env(1), awkward values intact', () =>
  withGuest(async (conn, guest) => {
    const r = await conn.run(['sh', '-c', 'printf "%s|%s" "$GREETING" "$OTHER"'], {
      env: { GREETING: "hello 'world' $x", OTHER: 'a\nb' },
    });
    assert.equal(r.stdout, "hello 'world' $x|a\nb");
    assert.match(guest.commands.at(-1)!, /^env /);
  }));

test('run: started is false only when the command itself could not start', () =>
  withGuest(async (conn, guest) => {
    const missing = await conn.run(['no-such-command-x']);
    assert.deepEqual([missing.exitCode, missing.started], [127, false]);
    const underTimeout = await conn.run(['no-such-command-x'], { timeoutMs: 10_000 });
    assert.deepEqual([underTimeout.exitCode, underTimeout.started], [127, false]);
    const underEnv = await conn.run(['/no/such/path'], { env: { A: '1' } });
    assert.deepEqual([underEnv.exitCode, underEnv.started], [127, false]);
    const inner = await conn.run(['sh', '-c', 'no-such-command-x']);
    assert.deepEqual([inner.exitCode, inner.started], [127, true], 'a command the command runs');
    assert.equal((await conn.run(['sh', '-c', 'exit 127'])).started, true);
    guest.refuseExec = true;
    const refused = await conn.run(['true']);
    assert.deepEqual([refused.exitCode, refused.started], [255, false]);
  }));

test('run: timeoutMs gives up waiting, and `timeout` in the guest ends the command', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-ssh-'));
  try {
    await withGuest(async (conn, guest) => {
      const pidFile = join(dir, 'pid');
      const started = Date.now();
      await assert.rejects(
        conn.run(['sh', '-c', `echo $$ > '${pidFile}'; exec sleep 30`], { timeoutMs: 1_500 }),
        (err: unknown) =>
          err instanceof MinilabError && err.kind === 'timeout' && /in vm-1/.test(err.message),
      );
      assert.ok(Date.now() - started < 5_000);
      assert.match(guest.commands[0]!, /^timeout -k 5 2 sh -c /);
      const pid = Number(await readFile(pidFile, 'utf8'));
      await until('the sleep to end', () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      });
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('stream: output piped without ending the streams; a stalled command fails', () =>
  withGuest(async (conn) => {
    const stdout = sink();
    const stderr = sink();
    const code = await conn.stream(['sh', '-c', 'cat; echo e >&2'], {
      stdin: Readable.from(['piped in\n']),
      stdout,
      stderr,
    });
    assert.equal(code, 0);
    assert.deepEqual([stdout.text(), stderr.text()], ['piped in\n', 'e\n']);
    assert.ok(stdout.writable && stderr.writable, 'left open');

    const started = Date.now();
    await assert.rejects(
      conn.stream(['sh', '-c', 'echo one; sleep 10'], { stdout, stderr, stallMs: 300 }),
      (err: unknown) =>
        err instanceof MinilabError && err.kind === 'timeout' && /sent nothing for 300ms/.test(err.message),
    );
    assert.ok(Date.now() - started < 5_000);
    assert.match(stdout.text(), /one\n$/);
  }));

test('twenty commands at once share one connection', () =>
  withGuest(async (conn, guest) => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => conn.run(['sh', '-c', 'sleep 0.2; echo "$1"', 'sh', `n${i}`])),
    );
    assert.deepEqual(
      results.map((r) => r.stdout),
      results.map((_, i) => `n${i}\n`),
    );
    assert.equal(guest.connections, 1);
  }));

test('a dropped connection fails the command it carried, and is made again by the next one', () =>
  withGuest(async (conn, guest) => {
    const cut = conn.run(['sh', '-c', 'echo one; sleep 5']);
    await until('the command', () => guest.commands.length === 1);
    guest.drop();
    await assert.rejects(cut, (err: unknown) => {
      assert.ok(providerFailure(err, 'unreachable'));
      assert.match((err as Error).message, /^lost the SSH connection to vm-1 .* during `sh -c/);
      return true;
    });
    assert.equal((await conn.run(['echo', 'two'])).stdout, 'two\n');
    assert.equal(guest.connections, 2);
  }));

test('a host key other than the pinned one is refused, naming the node', async () => {
  const guest = await startGuest(0, generateKeyPair());
  const conn = new SshConnection(target(guest.port));
  try {
    await assert.rejects(conn.run(['true']), (err: unknown) => {
      assert.ok(err instanceof MinilabError);
      assert.equal(err.kind, 'environment');
      assert.match(err.message, /host key of vm-1 .* changed/);
      return true;
    });
    const started = Date.now();
    await assert.rejects(conn.ready(10_000), /host key of vm-1 .* changed/, 'ready does not retry it');
    assert.ok(Date.now() - started < 5_000);
    assert.equal(guest.commands.length, 0);
  } finally {
    await guest.close();
  }
});

test('a key the guest does not hold is refused', async () => {
  const guest = await startGuest();
  const conn = new SshConnection(target(guest.port, { privateKey: generateKeyPair().privateKey }));
  try {
    await assert.rejects(conn.run(['true']), /vm-1 refused minilab's SSH key/);
  } finally {
    await guest.close();
  }
});

test('nothing listening: a ProviderError, unreachable, naming the node and the port', async () => {
  const port = await freePort();
  const conn = new SshConnection(target(port));
  await assert.rejects(conn.run(['true']), (err: unknown) => {
    assert.ok(providerFailure(err, 'unreachable'));
    assert.match((err as Error).message, new RegExp(`vm-1 .*127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
    return true;
  });
});

test('a port that accepts but never speaks SSH is unreachable once the handshake deadline passes', async () => {
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => sockets.add(socket.on('error', () => undefined)));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  const { port } = silent.address() as AddressInfo;
  try {
    await assert.rejects(new SshConnection(target(port)).ready(800), (err: unknown) => {
      assert.ok(providerFailure(err, 'unreachable'));
      assert.match(String((err as Error).cause), /cannot reach vm-1 over SSH .*handshake/);
      return true;
    });
  } finally {
    sockets.forEach((s) => s.destroy());
    await new Promise((resolve) => silent.close(resolve));
  }
});

test('ready waits for an sshd that starts listening later, and gives up at its deadline', async () => {
  const port = await freePort();
  const conn = new SshConnection(target(port));
  const started = Date.now();
  await assert.rejects(conn.ready(600), (err: unknown) => {
    assert.ok(err instanceof ProviderError && providerFailure(err, 'unreachable'));
    assert.match(err.message, /vm-1 did not answer over SSH .* within 600ms/);
    return true;
  });
  assert.ok(Date.now() - started < 3_000);

  const waiting = conn.ready(10_000);
  await sleep(700);
  const guest = await startGuest(port);
  try {
    await waiting;
    assert.equal((await conn.run(['echo', 'up'])).stdout, 'up\n');
    assert.equal(guest.connections, 1);
  } finally {
    conn.close();
    await guest.close();
  }
});

test('putTar extracts into a guest directory; getTar gives the path back with its name at the root', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-ssh-'));
  try {
    await withGuest(async (conn) => {
      const src = join(dir, 'src');
      await mkdir(join(src, 'sub dir'), { recursive: true });
      await writeFile(join(src, 'a.txt'), 'alpha\n');
      await writeFile(join(src, 'sub dir', "b 'two'.txt"), 'beta\n');
      const dest = join(dir, 'dest');
      await mkdir(dest);
      await conn.putTar(dest, tarFs.pack(src) as unknown as Readable);
      assert.equal(await readFile(join(dest, 'a.txt'), 'utf8'), 'alpha\n');
      assert.equal(await readFile(join(dest, 'sub dir', "b 'two'.txt"), 'utf8'), 'beta\n');

      const files = new Map<string, string>();
      const extract = tarStream.extract();
      extract.on('entry', (header, body, next) => {
        const chunks: Buffer[] = [];
        body.on('data', (c) => chunks.push(c as Buffer));
        body.on('end', () => {
          files.set(header.name, Buffer.concat(chunks).toString('utf8'));
          next();
        });
      });
      const archive = await conn.getTar(join(dest, 'sub dir') + '/');
      archive.pipe(extract as unknown as Writable);
      await once(extract, 'finish');
      assert.deepEqual([...files.keys()].sort(), ['sub dir/', "sub dir/b 'two'.txt"]);
      assert.equal(files.get("sub dir/b 'two'.txt"), 'beta\n');
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('getTar of a missing path and putTar into a missing directory throw', () =>
  withGuest(async (conn) => {
    const missing = join(tmpdir(), `minilab-ssh-missing-${process.pid}`);
    await assert.rejects(conn.getTar(missing), (err: unknown) => {
      assert.deepEqual(providerFailure(err, 'not-found'), { reason: 'not-found', name: missing });
      assert.match((err as Error).message, /in vm-1$/);
      return true;
    });
    const pack = tarStream.pack();
    pack.entry({ name: 'f.txt' }, 'x');
    pack.finalize();
    await assert.rejects(conn.putTar(missing, pack as unknown as Readable), (err: unknown) => {
      assert.ok(err instanceof MinilabError);
      assert.equal(err.kind, 'clusterFailed');
      assert.ok(
        err.details.some((line) => line.includes(missing)),
        'carries what tar said',
      );
      return true;
    });
  }));

/** A terminal made of streams: `isTTY` decides whether raw mode is asked for. */
function fakeTerminal(isTTY: boolean) {
  const raw: boolean[] = [];
  const stdin = Object.assign(new PassThrough(), {
    isTTY,
    isRaw: false,
    setRawMode(mode: boolean) {
      raw.push(mode);
      stdin.isRaw = mode;
      return stdin;
    },
  });
  const stdout = Object.assign(sink(), { isTTY, rows: 30, columns: 100 });
  const term = { stdin, stdout } as unknown as TerminalIO;
  return { term, stdin, stdout, raw };
}

test('interactive: a PTY of the terminal size, resizes forwarded, raw mode on while it runs', () =>
  withGuest(async (conn, guest) => {
    const { term, stdin, stdout, raw } = fakeTerminal(true);
    const done = conn.interactive(['sh', '-c', 'read x; echo "got:$x"; exit 3'], term);
    await until('the PTY request', () => guest.ptys.length === 1);
    assert.deepEqual([guest.ptys[0]!.rows, guest.ptys[0]!.cols], [30, 100]);
    assert.equal(guest.ptys[0]!.term, process.env.TERM || 'xterm');
    await until('raw mode', () => raw.length > 0);
    assert.deepEqual(raw, [true]);
    stdout.rows = 50;
    stdout.emit('resize');
    await until('the window change', () => guest.resizes.length === 1);
    assert.deepEqual([guest.resizes[0]!.rows, guest.resizes[0]!.cols], [50, 100]);
    stdin.write('hello\n');
    assert.equal(await done, 3);
    assert.match(stdout.text(), /got:hello/);
    assert.deepEqual(raw, [true, false], 'restored');
  }));

test('interactive with no command: a login shell, no raw mode off a TTY', () =>
  withGuest(async (conn, guest) => {
    const { term, stdin, stdout, raw } = fakeTerminal(false);
    const done = conn.interactive([], term);
    stdin.write('echo in-shell; exit 4\n');
    assert.equal(await done, 4);
    assert.equal(guest.shells, 1);
    assert.deepEqual(guest.commands, []);
    assert.match(stdout.text(), /in-shell/);
    assert.deepEqual(raw, []);
  }));

test('the connection keeps the process alive while a command runs, and not once it is idle', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'minilab-ssh-'));
  const guest = await startGuest();
  try {
    const script = join(dir, 'idle.mjs');
    const module = new URL('../../src/providers/qemu/ssh.js', import.meta.url).href;
    // Nothing else keeps this process alive: it must finish both commands (the second on the
    // connection left idle by the first), print, then exit by itself.
    await writeFile(
      script,
      `import { SshConnection } from ${JSON.stringify(module)};
const conn = new SshConnection(JSON.parse(process.argv[2]));
for (const word of ['one', 'two']) {
  const r = await conn.run(['sh', '-c', 'sleep 0.3; echo "$1"', 'sh', word]);
  process.stdout.write(r.stdout);
}
`,
    );
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [script, JSON.stringify(target(guest.port))],
      { timeout: 10_000 },
    );
    assert.equal(stdout, 'one\ntwo\n');
    assert.equal(guest.connections, 1);
  } finally {
    await guest.close();
    await rm(dir, { recursive: true, force: true });
  }
});
