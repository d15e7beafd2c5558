import { randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Who may talk to the dashboard: whoever holds this run's token, addressing the server by its
 * loopback name and port. Any web page the user visits can send requests to 127.0.0.1; the Host
 * check stops DNS-rebinding pages, the token stops everything else, and state-changing requests
 * must also come from the dashboard's own origin.
 *
 * The page sends the token in an Authorization header, never in a cookie. Cookies are scoped by host
 * but not by port, so a session cookie for 127.0.0.1 would go to every server there, including the
 * workloads the dashboard itself port-forwards to 127.0.0.1. The alternatives keep a cookie and try
 * to hide it: a per-session path prefix (Path= scoping) or a host name of its own under .localhost.
 * Neither is a boundary: another local server receives the cookie as soon as the browser is sent to
 * that path or name on its port, and the prefix or name is in every URL the dashboard shows. A header
 * goes only where the page's own code sends it, and cross-origin pages cannot add one without a CORS
 * preflight, which this server never grants.
 *
 * The page (index.html and its assets: the same files as in the package) is served without the
 * token, as a navigation or <script> cannot carry a header; the page reads the token once from the
 * URL fragment (#token=...), which browsers never send to a server, and keeps it in sessionStorage,
 * which is per origin, port included.
 */
export interface Guard {
  token: string;
  port: number;
  /**
   * A one-time code that opens a session from the browser minilab starts (GET /launch/CODE): the
   * opener's command line never carries the token. See redeemLaunch.
   */
  launch: { code: string; expiresAt: number; used: boolean };
}

/** How long the launch link works: a cold browser start takes seconds, not minutes. */
export const LAUNCH_LIFETIME_MS = 120_000;

export const LAUNCH_PREFIX = '/launch/';

const secret = () => randomBytes(32).toString('base64url');

export function createGuard(port: number, token = secret(), now = Date.now()): Guard {
  return { token, port, launch: { code: secret(), expiresAt: now + LAUNCH_LIFETIME_MS, used: false } };
}

export interface RequestFacts {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

export type Verdict =
  | {
      ok: true;
      url: URL;
      /** The request asks to trade this launch code for the token (see redeemLaunch). */
      launchCode?: string;
    }
  | { ok: false; status: 400 | 401 | 403; reason: string };

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost'];
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function header(facts: RequestFacts, name: string): string | undefined {
  const v = facts.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function sameSecret(expected: string, candidate: string | undefined): boolean {
  if (candidate === undefined) return false;
  const a = Buffer.from(candidate);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer TOKEN` header. */
export function bearerToken(value: string | undefined): string | undefined {
  return /^Bearer ([A-Za-z0-9_-]+)$/.exec(value ?? '')?.[1];
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

/**
 * The request target as a URL of this server, or undefined when it is not a path of it. Only the
 * origin form ("/path?query") is accepted: "//host/..." or "/\host" would parse as another host, and
 * some targets ("//", "http://[") do not parse at all.
 */
export function targetUrl(guard: Guard, target: string): URL | undefined {
  if (!target.startsWith('/') || target.startsWith('//') || target.startsWith('/\\')) return undefined;
  const origin = `http://127.0.0.1:${guard.port}`;
  let url: URL;
  try {
    url = new URL(target, origin);
  } catch {
    return undefined;
  }
  return url.origin === origin ? url : undefined;
}

export function checkRequest(guard: Guard, facts: RequestFacts): Verdict {
  if (!hostAllowed(guard, header(facts, 'host'))) {
    return { ok: false, status: 403, reason: 'this server answers only to its loopback address' };
  }
  const url = targetUrl(guard, facts.url);
  if (!url) return { ok: false, status: 400, reason: 'malformed request target' };
  const method = facts.method.toUpperCase();
  if (
    url.pathname.startsWith('/api/') &&
    !sameSecret(guard.token, bearerToken(header(facts, 'authorization')))
  ) {
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
  if (method === 'GET' && url.pathname.startsWith(LAUNCH_PREFIX)) {
    return { ok: true, url, launchCode: url.pathname.slice(LAUNCH_PREFIX.length) };
  }
  return { ok: true, url };
}

/**
 * Uses up the launch code: true once, for the right code, before it expires. The caller must first
 * have made sure the request comes from the user who runs minilab (see peer.ts): the code is in the
 * command line of the browser minilab starts, which every local user can read.
 */
export function redeemLaunch(guard: Guard, code: string, now = Date.now()): boolean {
  const { launch } = guard;
  if (launch.used || now > launch.expiresAt || !sameSecret(launch.code, code)) return false;
  launch.used = true;
  return true;
}

/** The page with the token in the fragment only: where the launch link sends the browser. */
export const sessionPath = (guard: Guard) => `/#token=${guard.token}`;

/** The URL minilab prints: it opens a session in any browser of this machine. */
export const sessionUrl = (guard: Guard) => `http://127.0.0.1:${guard.port}${sessionPath(guard)}`;

/** The URL handed to the system's browser opener: it carries no token. */
export const launchUrl = (guard: Guard) =>
  `http://127.0.0.1:${guard.port}${LAUNCH_PREFIX}${guard.launch.code}`;

/** Where the page opens a terminal's WebSocket. */
export const TERMINAL_PATH = '/ws/terminal';

/**
 * A WebSocket upgrade to the terminal. A browser's WebSocket cannot carry the Authorization header,
 * so the page first asks for a ticket over the API (token and origin checked as for every change)
 * and brings it in the query; the ticket is redeemed by the caller. The upgrade itself must name this
 * server as Host and come from the dashboard's own origin: browsers send Origin with every WebSocket,
 * and no other site's page may open one here.
 */
export function checkUpgrade(guard: Guard, facts: RequestFacts): Verdict {
  if (!hostAllowed(guard, header(facts, 'host'))) {
    return { ok: false, status: 403, reason: 'this server answers only to its loopback address' };
  }
  const url = targetUrl(guard, facts.url);
  if (!url || url.pathname !== TERMINAL_PATH) return { ok: false, status: 400, reason: 'no such WebSocket' };
  if (!originAllowed(guard, header(facts, 'origin'))) {
    return { ok: false, status: 403, reason: 'terminals open only from the dashboard page itself' };
  }
  return { ok: true, url };
}
