import { randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Who may talk to the dashboard: whoever holds this run's token (first in the URL, then in a cookie),
 * addressing the server by its loopback name and port. Any web page the user visits can send requests
 * to 127.0.0.1; the Host check stops DNS-rebinding pages, the token stops everything else, and
 * state-changing requests must also come from the dashboard's own origin.
 */
export interface Guard {
  token: string;
  port: number;
  cookieName: string;
}

export function createGuard(port: number, token = randomBytes(32).toString('base64url')): Guard {
  // Cookies are shared by every port of a host: a per-port name keeps two dashboards apart.
  return { token, port, cookieName: `minilab-dashboard-${port}` };
}

export interface RequestFacts {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

export type Verdict =
  | { ok: true }
  /** The token came in the URL: set the cookie and send the browser to the same URL without it. */
  | { ok: true; setCookie: string; redirectTo: string }
  | { ok: false; status: 401 | 403; reason: string };

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost'];
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function header(facts: RequestFacts, name: string): string | undefined {
  const v = facts.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function sameToken(guard: Guard, candidate: string | undefined): boolean {
  if (candidate === undefined) return false;
  const a = Buffer.from(candidate);
  const b = Buffer.from(guard.token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function parseCookies(value: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (value ?? '').split(';')) {
    const eq = part.indexOf('=');
    const name = part.slice(0, Math.max(eq, 0)).trim();
    if (name === '') continue;
    if (!cookies.has(name)) cookies.set(name, part.slice(eq + 1).trim());
  }
  return cookies;
}

/** The Host header names this server: a loopback name and exactly its port. */
export function hostAllowed(guard: Guard, host: string | undefined): boolean {
  if (!host) return false;
  return LOOPBACK_NAMES.some((name) => host.toLowerCase() === `${name}:${guard.port}`);
}

/** The origins the dashboard's own pages have. */
export function originAllowed(guard: Guard, origin: string | undefined): boolean {
  if (!origin) return false;
  return LOOPBACK_NAMES.some((name) => origin.toLowerCase() === `http://${name}:${guard.port}`);
}

export function sessionCookie(guard: Guard): string {
  return `${guard.cookieName}=${guard.token}; Path=/; HttpOnly; SameSite=Strict`;
}

export function checkRequest(guard: Guard, facts: RequestFacts): Verdict {
  if (!hostAllowed(guard, header(facts, 'host'))) {
    return { ok: false, status: 403, reason: 'this server answers only to its loopback address' };
  }
  const method = facts.method.toUpperCase();
  const url = new URL(facts.url, `http://127.0.0.1:${guard.port}`);
  const fromCookie = parseCookies(header(facts, 'cookie')).get(guard.cookieName);
  let verdict: Verdict;
  if (sameToken(guard, fromCookie)) {
    verdict = { ok: true };
  } else if (method === 'GET' && sameToken(guard, url.searchParams.get('token') ?? undefined)) {
    url.searchParams.delete('token');
    verdict = { ok: true, setCookie: sessionCookie(guard), redirectTo: url.pathname + url.search };
  } else {
    return {
      ok: false,
      status: 401,
      reason: 'a valid dashboard token is required: open the URL that minilab dashboard printed',
    };
  }
  if (!SAFE_METHODS.has(method)) {
    const site = header(facts, 'sec-fetch-site');
    if (!originAllowed(guard, header(facts, 'origin')) || (site !== undefined && site !== 'same-origin')) {
      return { ok: false, status: 403, reason: 'changes are accepted only from the dashboard page itself' };
    }
  }
  return verdict;
}
