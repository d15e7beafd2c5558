import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  LAUNCH_LIFETIME_MS,
  bearerToken,
  checkRequest,
  createGuard,
  hostAllowed,
  launchUrl,
  originAllowed,
  redeemLaunch,
  sessionUrl,
  targetUrl,
  type RequestFacts,
} from '../../src/dashboard/security.js';
import { loopbackPeerUid, peerIsThisUser } from '../../src/dashboard/peer.js';

const guard = createGuard(41234, 'secret-token-of-this-run');
const authorization = `Bearer ${guard.token}`;
const req = (over: Partial<RequestFacts> & { headers?: RequestFacts['headers'] } = {}): RequestFacts => ({
  method: 'GET',
  url: '/',
  ...over,
  headers: { host: '127.0.0.1:41234', ...over.headers },
});

test('each run gets its own long random token and launch code', () => {
  const a = createGuard(8000);
  const b = createGuard(8000);
  assert.notEqual(a.token, b.token);
  assert.notEqual(a.launch.code, b.launch.code);
  assert.notEqual(a.launch.code, a.token);
  assert.ok(a.token.length >= 40);
  assert.ok(a.launch.code.length >= 40);
});

test('the API refuses a request without the token', () => {
  for (const url of ['/api/stream', '/api/info', `/api/info?token=${guard.token}`]) {
    const v = checkRequest(guard, req({ url }));
    assert.equal(!v.ok && v.status, 401, url);
  }
});

test('a wrong token is refused, and a cookie never counts', () => {
  for (const value of ['Bearer guess', `Bearer ${guard.token}x`, guard.token, `Basic ${guard.token}`]) {
    assert.equal(checkRequest(guard, req({ url: '/api/info', headers: { authorization: value } })).ok, false);
  }
  // The session is never a cookie: one with the token in it admits nothing.
  const cookie = `minilab-dashboard-41234=${guard.token}; token=${guard.token}`;
  assert.equal(checkRequest(guard, req({ url: '/api/info', headers: { cookie } })).ok, false);
  assert.equal(bearerToken(authorization), guard.token);
});

test('the Authorization header admits API requests; the page itself needs no token', () => {
  const api = checkRequest(guard, req({ url: '/api/stream', headers: { authorization } }));
  assert.ok(api.ok);
  assert.equal(api.ok && api.url.pathname, '/api/stream');
  // A navigation or a <script> cannot carry a header: the UI's files are public, its data is not.
  for (const url of ['/', '/assets/app-1234.js']) assert.ok(checkRequest(guard, req({ url })).ok, url);
});

test('the URLs handed out: the printed one has the token in the fragment only, the launch one none', () => {
  const printed = new URL(sessionUrl(guard));
  assert.equal(printed.origin, 'http://127.0.0.1:41234');
  assert.equal(printed.pathname + printed.search, '/');
  assert.equal(printed.hash, `#token=${guard.token}`);
  const launch = launchUrl(guard);
  assert.doesNotMatch(launch, new RegExp(guard.token));
  const v = checkRequest(guard, req({ url: new URL(launch).pathname }));
  assert.ok(v.ok && v.launchCode === guard.launch.code);
});

test('the launch code works once, and not after it expired', () => {
  const now = 1_000_000;
  const g = createGuard(41234, 'tok', now);
  assert.equal(redeemLaunch(g, 'wrong', now), false);
  assert.equal(redeemLaunch(g, g.launch.code, now + 1), true);
  assert.equal(redeemLaunch(g, g.launch.code, now + 2), false, 'second use');
  const late = createGuard(41234, 'tok', now);
  assert.equal(redeemLaunch(late, late.launch.code, now + LAUNCH_LIFETIME_MS + 1), false);
});

test('a foreign Host header is refused even with the token (DNS rebinding)', () => {
  for (const host of [
    'evil.example:41234',
    '127.0.0.1:80',
    '127.0.0.1',
    '0.0.0.0:41234',
    '[::1]:41234',
    '',
  ]) {
    const v = checkRequest(guard, req({ url: '/api/info', headers: { host, authorization } }));
    assert.equal(!v.ok && v.status, 403, `host ${host}`);
  }
  const missing = checkRequest(guard, { method: 'GET', url: '/', headers: { authorization } });
  assert.equal(!missing.ok && missing.status, 403);
  assert.ok(hostAllowed(guard, 'localhost:41234'));
  assert.ok(hostAllowed(guard, '127.0.0.1:41234'));
});

test('a request target that is not a path of this server is refused with 400, never followed', () => {
  for (const target of [
    '//',
    '//evil.example/launch/x',
    '/\\evil.example',
    'http://evil.example/api/info',
    'http://[',
    '*',
    '//:99',
  ]) {
    const v = checkRequest(guard, req({ url: target, headers: { authorization } }));
    assert.equal(!v.ok && v.status, 400, target);
    assert.equal(targetUrl(guard, target), undefined, target);
  }
  // A path that merely looks like a host stays a path of this server.
  assert.equal(targetUrl(guard, '/.//evil.example')?.origin, 'http://127.0.0.1:41234');
});

test('state-changing requests need the dashboard origin', () => {
  const post = (headers: RequestFacts['headers'], method = 'POST') =>
    checkRequest(guard, req({ method, url: '/api/scale', headers: { authorization, ...headers } }));
  assert.ok(post({ origin: 'http://127.0.0.1:41234', 'sec-fetch-site': 'same-origin' }).ok);
  assert.ok(post({ origin: 'http://localhost:41234' }).ok);
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
    assert.equal(post({ origin: 'https://evil.example' }, method).ok, false, method);
    assert.equal(post({}, method).ok, false, `${method} without Origin`);
  }
  assert.equal(post({ origin: 'null' }).ok, false);
  assert.equal(post({ origin: 'http://127.0.0.1:41235' }).ok, false);
  assert.equal(post({ origin: 'http://127.0.0.1:41234', 'sec-fetch-site': 'cross-site' }).ok, false);
  const v = post({ origin: 'https://evil.example' });
  assert.equal(!v.ok && v.status, 403);
  assert.ok(!originAllowed(guard, 'http://127.0.0.1:41234.evil.example'));
  // The launch link is a GET only.
  const launch = checkRequest(
    guard,
    req({
      method: 'POST',
      url: `/launch/${guard.launch.code}`,
      headers: { origin: 'http://127.0.0.1:41234' },
    }),
  );
  assert.ok(launch.ok && launch.launchCode === undefined);
});

test('reading requests do not need an Origin', () => {
  assert.ok(checkRequest(guard, req({ url: '/api/yaml', headers: { authorization } })).ok);
});

/** A /proc/net/tcp as Linux prints it (little-endian host), with the rows a loopback connection has. */
const TABLE = [
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  // The server's listening socket and its end of the connection: owned by the server's user.
  '   0: 0100007F:A112 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1',
  '   1: 0100007F:A112 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 2 1',
  // The client's end (port 50000 to 41234): owned by user 1001.
  '   2: 0100007F:C350 0100007F:A112 01 00000000:00000000 00:00000000 00000000  1001        0 3 1',
  // An old connection with the same ports, now in TIME_WAIT (owned by nobody: uid 0).
  '   3: 0100007F:C351 0100007F:A112 06 00000000:00000000 00:00000000 00000000     0        0 0 3',
].join('\n');
const fakeTables =
  (tcp: string, tcp6 = '') =>
  async (name: 'tcp' | 'tcp6') =>
    name === 'tcp' ? tcp : tcp6;
const connection = {
  remoteAddress: '127.0.0.1',
  remotePort: 50000,
  localAddress: '127.0.0.1',
  localPort: 41234,
};

test('the owner of a loopback connection is the user of its client end, read from /proc/net/tcp', async () => {
  assert.equal(await loopbackPeerUid(connection, fakeTables(TABLE)), 1001);
  assert.equal(await peerIsThisUser(connection, 1001, fakeTables(TABLE)), true);
  assert.equal(await peerIsThisUser(connection, 1000, fakeTables(TABLE)), false, 'not the server end');
  // Only established connections count.
  assert.equal(await loopbackPeerUid({ ...connection, remotePort: 50001 }, fakeTables(TABLE)), undefined);
  // An IPv4 client of a dual-stack socket shows in tcp6 as ::ffff:127.0.0.1.
  const tcp6 = TABLE.replaceAll('0100007F:', '0000000000000000FFFF00000100007F:');
  assert.equal(await loopbackPeerUid(connection, fakeTables('', tcp6)), 1001);
  // Where there is no socket table (not Linux), nobody passes.
  assert.equal(await peerIsThisUser(connection, 1001, async () => undefined), false);
  assert.equal(await peerIsThisUser(connection, undefined, fakeTables(TABLE)), false);
});
