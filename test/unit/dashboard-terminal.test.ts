import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import getPort from 'get-port';
import { WebSocket, WebSocketServer } from 'ws';
import { createGuard, type Guard } from '../../src/dashboard/security.js';
import { startServer, type DashboardServer } from '../../src/dashboard/server.js';
import { TerminalTickets } from '../../src/dashboard/terminal.js';
import { connectedTo, fakeApiClients, profilesOf } from '../helpers/dashboard-fake-api.js';

/**
 * An API server whose exec WebSocket (channel protocol v4) is a tiny shell: it upper-cases what it
 * reads, reports each resize, and exits when it reads "exit".
 */
let api: Server;
const execs: string[] = [];
/** How many of the fake's execs have been closed. */
let execsClosed = 0;
let guard: Guard;
let server: DashboardServer;

before(async () => {
  api = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ noServer: true, handleProtocols: () => 'v4.channel.k8s.io' });
  api.on('upgrade', (req, socket, head) => {
    execs.push(req.url ?? '');
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('close', () => execsClosed++);
      const out = (text: string) => ws.send(Buffer.concat([Buffer.from([1]), Buffer.from(text)]));
      ws.on('message', (data: Buffer) => {
        const channel = data[0];
        const text = data.subarray(1).toString();
        if (channel === 4) {
          const { width, height } = JSON.parse(text) as { width: number; height: number };
          out(`size ${width}x${height}\r\n`);
        } else if (channel === 0 && text.trim() === 'exit') {
          ws.send(Buffer.concat([Buffer.from([3]), Buffer.from(JSON.stringify({ status: 'Success' }))]));
          ws.close();
        } else if (channel === 0) out(text.toUpperCase());
      });
    });
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  const clients = fakeApiClients(api);
  const dir = await mkdtemp(join(tmpdir(), 'minilab-dashboard-terminal-'));
  await mkdir(join(dir, 'assets'));
  await writeFile(join(dir, 'index.html'), '<!doctype html><html><head><title>t</title></head></html>');
  guard = createGuard(await getPort({ host: '127.0.0.1' }));
  server = await startServer(
    { guard, profiles: profilesOf(connectedTo(clients)), assetsDir: dir },
    guard.port,
  );
});

after(async () => {
  await server.close();
  api.closeAllConnections();
  await new Promise<void>((resolve) => api.close(() => resolve()));
});

const origin = () => `http://127.0.0.1:${guard.port}`;

function post(body: unknown, headers: Record<string, string> = { origin: origin() }) {
  return new Promise<{ status: number; data: { path?: string; error?: string } }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: guard.port,
        path: '/api/terminal',
        method: 'POST',
        headers: {
          host: `127.0.0.1:${guard.port}`,
          authorization: `Bearer ${guard.token}`,
          'content-type': 'application/json',
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          // The guard refuses in plain text; the API answers JSON.
          const json = (res.headers['content-type'] ?? '').startsWith('application/json');
          resolve({ status: res.statusCode ?? 0, data: json ? JSON.parse(text) : { error: text } });
        });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const target = { namespace: 'default', pod: 'web-1', container: 'web', shell: 'sh', cols: 80, rows: 24 };

/** Opens the terminal WebSocket; resolves with the socket once open, or the HTTP status it was refused with. */
function open(
  path: string,
  headers: Record<string, string> = { origin: origin() },
): Promise<WebSocket | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${guard.port}${path}`, { headers });
    ws.on('open', () => resolve(ws));
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => resolve(0));
  });
}

test('a ticket is asked for with the token, from the dashboard origin, for a known shell and a sane size', async () => {
  assert.equal((await post(target, {})).status, 403);
  assert.equal((await post(target, { origin: 'http://evil.example' })).status, 403);
  assert.equal((await post({ ...target, shell: '/bin/rm' })).status, 400);
  assert.equal((await post({ ...target, cols: 0 })).status, 400);
  assert.equal((await post({ ...target, pod: '../nodes' })).status, 400);
  const ok = await post(target);
  assert.equal(ok.status, 200);
  assert.match(ok.data.path ?? '', /^\/ws\/terminal\?ticket=[A-Za-z0-9_-]{43}$/);
});

test('the terminal WebSocket needs the dashboard origin, its Host, and a ticket good once', async () => {
  const { data } = await post(target);
  const path = data.path as string;
  assert.equal(await open(path, {}), 403, 'no Origin');
  assert.equal(await open(path, { origin: 'http://evil.example' }), 403, 'foreign Origin');
  assert.equal(
    await open(path, { origin: origin(), host: `rebound.example:${guard.port}` }),
    403,
    'foreign Host',
  );
  assert.equal(await open('/ws/terminal?ticket=made-up'), 401);
  assert.equal(await open('/ws/other'), 400);
  assert.deepEqual(execs, [], 'nothing reached the API server');
  const ws = await open(path);
  assert.ok(ws instanceof WebSocket);
  ws.close();
  assert.equal(await open(path), 401, 'the ticket was used up');
});

test('keystrokes reach the exec, its output the page; resizes pass through; the exit is said', async () => {
  execs.length = 0;
  const ws = await open((await post(target)).data.path as string);
  assert.ok(ws instanceof WebSocket);
  let output = '';
  const notices: string[] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) output += data.toString();
    else notices.push(data.toString());
  });
  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(ok(), `${what}; output so far: ${JSON.stringify(output)}`);
  };
  await until('the first size', () => output.includes('size 80x24'));
  ws.send(Buffer.from('echo hi\r'), { binary: true });
  await until('the echo', () => output.includes('ECHO HI'));
  ws.send(JSON.stringify({ type: 'resize', cols: 120, rows: 40 }));
  await until('the resize', () => output.includes('size 120x40'));
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.send(Buffer.from('exit\r'), { binary: true });
  assert.equal(await closed, 1000);
  assert.deepEqual(
    notices.map((n) => JSON.parse(n)),
    [{ type: 'exit', message: 'the shell exited' }],
  );
  const exec = new URL(execs[0] ?? '', 'http://api');
  assert.equal(exec.pathname, '/api/v1/namespaces/default/pods/web-1/exec');
  assert.deepEqual(
    [exec.searchParams.get('container'), exec.searchParams.get('command'), exec.searchParams.get('tty')],
    ['web', 'sh', 'true'],
  );
});

test('a frame over 1 MiB (a big paste) closes that terminal and its exec, not the dashboard', async () => {
  execs.length = 0;
  const ws = await open((await post(target)).data.path as string);
  assert.ok(ws instanceof WebSocket);
  for (let i = 0; i < 100 && execs.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(execs.length, 1, 'the exec was opened');
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('error', () => undefined);
  ws.send(Buffer.alloc(2 * 1024 * 1024, 0x61), { binary: true });
  const before = execsClosed;
  assert.equal(await closed, 1009, 'message too big');
  for (let i = 0; i < 100 && execsClosed === before; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(execsClosed, before + 1, 'its exec was closed');
  assert.equal((await post(target)).status, 200, 'the dashboard still answers');
});

test('an upgrade refused while its client resets the connection leaves the dashboard running', async () => {
  for (let i = 0; i < 20; i++) {
    const socket = connect(guard.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.on('connect', () => resolve()));
    socket.write(
      'GET /ws/terminal?ticket=x HTTP/1.1\r\nHost: rebound.example\r\nUpgrade: websocket\r\n' +
        'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    socket.resetAndDestroy();
  }
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await post(target)).status, 200, 'the dashboard still answers');
});

test('tickets expire after 30 s and are bound to the exec they were issued for', () => {
  const tickets = new TerminalTickets();
  const t = { ...target, profile: 'dev', shell: 'bash' as const };
  const ticket = tickets.issue(t, 1000);
  assert.equal(tickets.redeem(ticket, 31_001), undefined);
  const fresh = tickets.issue(t, 1000);
  assert.deepEqual(tickets.redeem(fresh, 30_999), t);
  assert.equal(tickets.redeem(fresh, 30_999), undefined);
});

test('every page load has its own style nonce, in the policy and in the page, and no inline styles else', async () => {
  const load = () =>
    new Promise<{ csp: string; body: string }>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: guard.port, path: '/', headers: { host: `127.0.0.1:${guard.port}` } },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ csp: String(res.headers['content-security-policy']), body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  const [a, b] = [await load(), await load()];
  const nonce = /<meta name="style-nonce" content="([A-Za-z0-9+/=]{24})" \/>/.exec(a.body)?.[1];
  assert.ok(nonce, a.body);
  assert.match(a.csp, new RegExp(`style-src 'self' 'nonce-${nonce.replace(/[+/=]/g, '\\$&')}';`));
  assert.doesNotMatch(a.csp, /unsafe-inline/);
  assert.notEqual(a.csp, b.csp);
});
