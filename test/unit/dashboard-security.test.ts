import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkRequest,
  createGuard,
  hostAllowed,
  originAllowed,
  parseCookies,
  type RequestFacts,
} from '../../src/dashboard/security.js';

const guard = createGuard(41234, 'secret-token-of-this-run');
const cookie = `${guard.cookieName}=${guard.token}`;
const req = (over: Partial<RequestFacts> & { headers?: RequestFacts['headers'] } = {}): RequestFacts => ({
  method: 'GET',
  url: '/',
  ...over,
  headers: { host: '127.0.0.1:41234', ...over.headers },
});

test('each run gets its own long random token and a cookie name per port', () => {
  const a = createGuard(8000);
  const b = createGuard(8000);
  assert.notEqual(a.token, b.token);
  assert.ok(a.token.length >= 40);
  assert.notEqual(createGuard(8001).cookieName, a.cookieName);
});

test('a request without the token is refused', () => {
  const v = checkRequest(guard, req());
  assert.equal(v.ok, false);
  assert.equal(!v.ok && v.status, 401);
  const api = checkRequest(guard, req({ url: '/api/stream' }));
  assert.equal(!api.ok && api.status, 401);
});

test('a wrong token is refused, in the URL or in the cookie', () => {
  assert.equal(checkRequest(guard, req({ url: '/?token=guess' })).ok, false);
  assert.equal(checkRequest(guard, req({ url: `/?token=${guard.token}x` })).ok, false);
  assert.equal(checkRequest(guard, req({ headers: { cookie: `${guard.cookieName}=guess` } })).ok, false);
  // Another dashboard's cookie (another port) does not count.
  assert.equal(
    checkRequest(guard, req({ headers: { cookie: `minilab-dashboard-1=${guard.token}` } })).ok,
    false,
  );
});

test('the token in the URL sets an HttpOnly SameSite=Strict cookie and redirects to the URL without it', () => {
  const v = checkRequest(guard, req({ url: `/?token=${guard.token}&x=1` }));
  assert.ok(v.ok && 'setCookie' in v);
  if (!(v.ok && 'setCookie' in v)) return;
  assert.equal(v.redirectTo, '/?x=1');
  assert.match(v.setCookie, new RegExp(`^${guard.cookieName}=${guard.token};`));
  assert.match(v.setCookie, /; HttpOnly/);
  assert.match(v.setCookie, /; SameSite=Strict/);
  assert.match(v.setCookie, /; Path=\//);
});

test('the cookie admits every later request', () => {
  assert.deepEqual(checkRequest(guard, req({ url: '/api/stream', headers: { cookie } })), { ok: true });
  assert.deepEqual(checkRequest(guard, req({ headers: { cookie: `a=b; ${cookie}; c=d` } })), { ok: true });
});

test('the token is accepted from the URL only on GET', () => {
  const v = checkRequest(
    guard,
    req({
      method: 'POST',
      url: `/api/scale?token=${guard.token}`,
      headers: { origin: 'http://127.0.0.1:41234' },
    }),
  );
  assert.equal(!v.ok && v.status, 401);
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
    const v = checkRequest(guard, req({ headers: { host, cookie } }));
    assert.equal(!v.ok && v.status, 403, `host ${host}`);
  }
  const missing = checkRequest(guard, { method: 'GET', url: '/', headers: { cookie } });
  assert.equal(!missing.ok && missing.status, 403);
  assert.ok(hostAllowed(guard, 'localhost:41234'));
  assert.ok(hostAllowed(guard, '127.0.0.1:41234'));
});

test('state-changing requests need the dashboard origin', () => {
  const post = (headers: RequestFacts['headers'], method = 'POST') =>
    checkRequest(guard, req({ method, url: '/api/scale', headers: { cookie, ...headers } }));
  assert.deepEqual(post({ origin: 'http://127.0.0.1:41234', 'sec-fetch-site': 'same-origin' }), { ok: true });
  assert.deepEqual(post({ origin: 'http://localhost:41234' }), { ok: true });
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
});

test('reading requests do not need an Origin', () => {
  assert.deepEqual(checkRequest(guard, req({ url: '/api/yaml', headers: { cookie } })), { ok: true });
});

test('cookies parse by name; the first of a repeated name wins', () => {
  const c = parseCookies(' a=1; b = 2 ;a=3; junk; =x');
  assert.equal(c.get('a'), '1');
  assert.equal(c.get('b'), '2');
  assert.equal(c.size, 2);
});
