import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { extname, join, normalize, resolve, sep } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { TERMINAL_PATH, checkRequest, redeemLaunch, sessionPath, type Guard } from './security.js';
import { peerIsThisUser, type Connection } from './peer.js';
import type { ClusterClients } from './cluster.js';
import { HttpError, errorMessage, toHttpError } from './errors.js';
import {
  PROFILE_HEADER,
  type PodHistoryAnswer,
  type LogEvents,
  type ProfilesAnswer,
  type ResourceEvents,
  type ResourceRef,
  type StreamEvents,
} from './model.js';
import type { ProfileSessions, ProfileView } from './profiles.js';
import { podKey } from './sampler.js';
import { deleteObject, discoverKinds, objectDetail, secretValue, watchResource } from './resources.js';
import { applyManifest } from './apply.js';
import { TerminalTickets, shellParam, terminalSize, terminalUpgrades } from './terminal.js';
import { PortForwards } from './port-forward.js';
import {
  deletePod,
  nodeMetrics,
  podMetrics,
  resourceYaml,
  restartRollout,
  scaleDeployment,
  streamLogs,
} from './actions.js';

/** What the HTTP layer needs; the profiles' live clusters are replaceable in tests. */
export interface ServerDeps {
  guard: Guard;
  /** Every API call is for one profile: the one its X-Minilab-Profile header names, or the initial. */
  profiles: Pick<ProfileSessions, 'initial' | 'list' | 'view' | 'started' | 'attach'>;
  /** The built web UI (index.html and assets/). */
  assetsDir: string;
  /** Time between SSE keep-alive comments. */
  keepAliveMs?: number;
  /** Whether a connection comes from the user running minilab (replaced in tests). */
  peerIsUser?: (connection: Connection) => Promise<boolean>;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/**
 * The page with a nonce of its own for <style> elements: xterm.js (the terminal) writes its colours
 * and cell sizes into <style> elements it makes, and the page stamps them with this nonce (read from
 * a meta tag) rather than the policy allowing inline styles at all.
 */
function withStyleNonce(html: Buffer): { body: Buffer; headers: Record<string, string> } {
  const nonce = randomBytes(16).toString('base64');
  const csp = SECURITY_HEADERS['Content-Security-Policy'].replace(
    "style-src 'self'",
    `style-src 'self' 'nonce-${nonce}'`,
  );
  const body = html
    .toString('utf8')
    .replace('<head>', `<head>\n    <meta name="style-nonce" content="${nonce}" />`);
  return { body: Buffer.from(body), headers: { 'Content-Security-Policy': csp } };
}

const MAX_BODY = 16 * 1024;
/** YAML pasted into the editor: a large ConfigMap or CRD fits. */
const MAX_MANIFEST = 1024 * 1024;

/** A percent-encoded path decoded; malformed encoding ("%zz", a cut UTF-8 sequence) is bad input. */
function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    throw new HttpError(400, 'malformed percent-encoding in the path');
  }
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, data: unknown): void {
  send(res, status, JSON.stringify(data), 'application/json; charset=utf-8');
}

async function readJson(req: IncomingMessage, maxBody = MAX_BODY): Promise<Record<string, unknown>> {
  if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
    throw new HttpError(415, 'send JSON (Content-Type: application/json)');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBody) throw new HttpError(413, 'request body too large');
    chunks.push(chunk);
  }
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch {
    throw new HttpError(400, 'the request body is not a JSON object');
  }
}

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function nameParam(value: unknown, what: string, optional = false, pattern = NAME): string {
  if (optional && (value === undefined || value === null || value === '')) return '';
  if (typeof value !== 'string' || !pattern.test(value)) throw new HttpError(400, `invalid ${what}`);
  return value;
}

/**
 * Any object's name (RBAC names hold colons), as the API server allows them: never "." or "..",
 * which would climb out of the collection's path.
 */
const OBJECT_NAME = /^(?!\.\.?$)[^/%\s]{1,253}$/;
const VERSION = /^v\d+(?:(?:alpha|beta)\d+)?$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]{1,253}$/;

/** The resource a request names: group ("" for core), version and plural, each checked. */
function refParams(get: (k: string) => string): ResourceRef {
  return {
    group: nameParam(get('group'), 'API group', true),
    version: nameParam(get('version'), 'API version', false, VERSION),
    resource: nameParam(get('resource'), 'resource'),
  };
}

/** The object a request names: its resource, namespace ("" for a cluster-scoped one) and name. */
function objectParams(q: (k: string) => string) {
  return {
    ref: refParams(q),
    namespace: nameParam(q('namespace'), 'namespace', true),
    name: nameParam(q('name'), 'name', false, OBJECT_NAME),
  };
}

/** A server-sent event stream on `res`; returns a typed sender and whether the client is gone. */
function eventStream<E extends object>(req: IncomingMessage, res: ServerResponse, keepAliveMs: number) {
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
  });
  res.write('retry: 2000\n\n');
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), keepAliveMs);
  const closed = new AbortController();
  const close = () => {
    clearInterval(keepAlive);
    closed.abort();
  };
  req.on('close', close);
  res.on('close', close);
  return {
    signal: closed.signal,
    send<K extends keyof E & string>(event: K, data: E[K]): void {
      if (!closed.signal.aborted) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    end(): void {
      close();
      res.end();
    },
  };
}

export interface DashboardServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Starts the HTTP server on 127.0.0.1 (only): every request passes the guard first. */
export async function startServer(deps: ServerDeps, port: number): Promise<DashboardServer> {
  /** The clients of a profile's live connection; a 503 naming why while it has none. */
  const clientsOf = (view: ProfileView | undefined): ClusterClients => {
    const c = view?.cluster.clients();
    if (!view || !c) {
      const s = view?.cluster.state ?? { state: 'connecting' };
      throw new HttpError(
        503,
        `the cluster is not reachable now${'message' in s && s.message ? `: ${s.message}` : ''}`,
      );
    }
    return c;
  };
  const startedClients = (profile: string) => clientsOf(deps.profiles.started(profile));
  /** Each profile's port-forwards, made on its first. */
  const forwardsByProfile = new Map<string, PortForwards>();
  const forwardsOf = (profile: string): PortForwards => {
    let forwards = forwardsByProfile.get(profile);
    if (!forwards) {
      forwards = new PortForwards(() => startedClients(profile));
      forwardsByProfile.set(profile, forwards);
    }
    return forwards;
  };
  /**
   * Open port-forwards keep their profile's view as a page's stream does (a browser may use one
   * with no dashboard page open); the view closing (its profile deleted) closes them.
   */
  const forwardHolds = new Map<string, () => void>();
  const holdForForwards = (profile: string) => {
    const open = forwardsOf(profile).list().length > 0;
    if (open && !forwardHolds.has(profile)) {
      const detach = deps.profiles.attach(profile, () => {
        forwardHolds.delete(profile);
        forwardsByProfile.get(profile)?.closeAll();
        forwardsByProfile.delete(profile);
      });
      // attach() may have ended it at once (the view already gone).
      if (forwardsByProfile.has(profile)) forwardHolds.set(profile, detach);
    } else if (!open) {
      forwardHolds.get(profile)?.();
      forwardHolds.delete(profile);
    }
  };
  const tickets = new TerminalTickets();
  const terminals = terminalUpgrades(deps.guard, tickets, startedClients);
  const streams = new Set<() => void>();
  const keepAliveMs = deps.keepAliveMs ?? 20_000;

  /** One API call as its handler sees it: the request, and the live view of the profile it names. */
  interface Call {
    req: IncomingMessage;
    res: ServerResponse;
    /** A query parameter ("" when absent). */
    q: (k: string) => string;
    view: ProfileView;
    profile: string;
    /** The profile's clients; a 503 while its cluster is not connected. */
    clients: () => ClusterClients;
  }

  /** The API, by "METHOD /path": a profile's view starts only for a call one of these takes. */
  const handlers: Record<string, (call: Call) => Promise<void>> = {
    'GET /api/stream': async ({ req, res, view, profile }) => {
      const { cluster } = view;
      const stream = eventStream<StreamEvents>(req, res, keepAliveMs);
      streams.add(stream.end);
      // The view stays while a page streams it; it ends the stream if it goes first (profile deleted).
      const detach = deps.profiles.attach(profile, stream.end);
      stream.send('cluster', cluster.state);
      stream.send('snapshot', { rows: cluster.snapshot() });
      const unsubscribe = cluster.subscribe((e) => {
        if (e.type === 'changes') stream.send('changes', { upsert: e.upsert, remove: e.remove });
        else stream.send('cluster', e.state);
      });
      stream.signal.addEventListener('abort', () => {
        unsubscribe();
        detach();
        streams.delete(stream.end);
      });
    },
    'GET /api/info': async ({ res, view }) => sendJson(res, 200, await view.info()),
    'GET /api/metrics/nodes': async ({ res, view, clients }) => {
      const answer = await nodeMetrics(clients());
      view.usage?.recordNodes(answer);
      return sendJson(res, 200, answer.available ? { ...answer, history: view.usage?.nodes.all() } : answer);
    },
    'GET /api/metrics/pods': async ({ res, q, view, clients }) => {
      const namespace = nameParam(q('namespace'), 'namespace', true);
      const answer = await podMetrics(clients(), namespace);
      view.usage?.recordPods(answer);
      return sendJson(res, 200, answer);
    },
    'GET /api/metrics/pod': async ({ res, q, view, clients }) => {
      const namespace = nameParam(q('namespace'), 'namespace');
      const name = nameParam(q('name'), 'name');
      const answer = await podMetrics(clients(), namespace);
      view.usage?.recordPods(answer);
      const history: PodHistoryAnswer = answer.available
        ? { available: true, history: view.usage?.pods.of(podKey(namespace, name)) ?? [] }
        : answer;
      return sendJson(res, 200, history);
    },
    'GET /api/yaml': async ({ res, q, clients }) => {
      const yaml = await resourceYaml(
        clients(),
        q('kind'),
        nameParam(q('namespace'), 'namespace', true),
        nameParam(q('name'), 'name'),
      );
      return send(res, 200, yaml, 'application/yaml; charset=utf-8');
    },
    'GET /api/resources': async ({ res, clients }) =>
      sendJson(
        res,
        200,
        (await discoverKinds(clients())).filter((k) => k.preferred),
      ),
    'GET /api/resources/watch': async ({ req, res, q, clients }) => {
      const selector = q('labelSelector');
      if (selector.length > 1000) throw new HttpError(400, 'the label selector is too long');
      const ref = refParams(q);
      const namespace = nameParam(q('namespace'), 'namespace', true);
      const c = clients();
      const stream = eventStream<ResourceEvents>(req, res, keepAliveMs);
      streams.add(stream.end);
      try {
        await watchResource(
          c,
          ref,
          namespace,
          selector,
          { table: (t) => stream.send('table', t), changes: (ch) => stream.send('changes', ch) },
          stream.signal,
        );
      } catch (err) {
        stream.send('failure', { message: errorMessage(err) });
      }
      // The page reconnects (after the stream's retry delay) and so lists again.
      streams.delete(stream.end);
      stream.end();
    },
    'GET /api/object': async ({ res, q, clients }) => {
      const { ref, namespace, name } = objectParams(q);
      return sendJson(res, 200, await objectDetail(clients(), ref, namespace, name));
    },
    'DELETE /api/object': async ({ res, q, clients }) => {
      const { ref, namespace, name } = objectParams(q);
      await deleteObject(clients(), ref, namespace, name);
      return sendJson(res, 200, { deleted: true });
    },
    'GET /api/secret': async ({ res, q, clients }) => {
      const value = await secretValue(
        clients(),
        nameParam(q('namespace'), 'namespace'),
        nameParam(q('name'), 'name'),
        nameParam(q('key'), 'key', false, SECRET_KEY),
      );
      return sendJson(res, 200, value);
    },
    'POST /api/apply': async ({ req, res, clients }) => {
      const body = await readJson(req, MAX_MANIFEST);
      if (typeof body.yaml !== 'string') throw new HttpError(400, 'send the YAML as "yaml"');
      if (body.mode !== 'apply' && body.mode !== 'edit') throw new HttpError(400, 'mode is apply or edit');
      if (body.mode === 'edit' && typeof body.original !== 'string') {
        throw new HttpError(400, 'an edit sends the YAML as loaded as "original"');
      }
      const answer = await applyManifest(clients(), {
        yaml: body.yaml,
        mode: body.mode,
        original: typeof body.original === 'string' ? body.original : undefined,
        dryRun: body.dryRun !== false,
        namespace: nameParam(body.namespace, 'namespace', true),
        force: body.force === true,
      });
      return sendJson(res, 200, answer);
    },
    'POST /api/terminal': async ({ req, res, profile }) => {
      const body = await readJson(req);
      const ticket = tickets.issue({
        profile,
        namespace: nameParam(body.namespace, 'namespace'),
        pod: nameParam(body.pod, 'pod'),
        container: nameParam(body.container, 'container'),
        shell: shellParam(body.shell),
        ...terminalSize(body.cols, body.rows),
      });
      return sendJson(res, 200, { path: `${TERMINAL_PATH}?ticket=${ticket}` });
    },
    'GET /api/logs': async ({ req, res, q, clients }) => {
      const target = {
        namespace: nameParam(q('namespace'), 'namespace'),
        pod: nameParam(q('pod'), 'pod'),
        container: nameParam(q('container'), 'container'),
        follow: q('follow') !== 'false',
        tailLines: Math.min(Math.max(Number(q('tail')) || 500, 1), 5000),
      };
      const c = clients();
      const stream = eventStream<LogEvents>(req, res, keepAliveMs);
      streams.add(stream.end);
      try {
        const reason = await streamLogs(c, target, (lines) => stream.send('lines', { lines }), stream.signal);
        stream.send('end', { reason });
      } catch (err) {
        const message =
          err instanceof k8s.ApiException && err.code === 400
            ? `container ${target.container} has no log yet (it may still be starting)`
            : errorMessage(err);
        stream.send('failure', { message });
      }
      streams.delete(stream.end);
      return stream.end();
    },
    'POST /api/scale': async ({ req, res, clients }) => {
      const body = await readJson(req);
      const replicas = await scaleDeployment(
        clients(),
        nameParam(body.namespace, 'namespace'),
        nameParam(body.name, 'name'),
        Number(body.replicas),
      );
      return sendJson(res, 200, { replicas });
    },
    'POST /api/restart': async ({ req, res, clients }) => {
      const body = await readJson(req);
      const restartedAt = await restartRollout(
        clients(),
        String(body.kind),
        nameParam(body.namespace, 'namespace'),
        nameParam(body.name, 'name'),
      );
      return sendJson(res, 200, { restartedAt });
    },
    'DELETE /api/pod': async ({ res, q, clients }) => {
      await deletePod(clients(), nameParam(q('namespace'), 'namespace'), nameParam(q('name'), 'name'));
      return sendJson(res, 200, { deleted: true });
    },
    'GET /api/port-forwards': async ({ res, profile }) => sendJson(res, 200, forwardsOf(profile).list()),
    'POST /api/port-forwards': async ({ req, res, profile }) => {
      const body = await readJson(req);
      const port = Number(body.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new HttpError(400, 'invalid port');
      const forward = await forwardsOf(profile).open(
        nameParam(body.namespace, 'namespace'),
        nameParam(body.service, 'service'),
        port,
      );
      holdForForwards(profile);
      return sendJson(res, 200, forward);
    },
    'DELETE /api/port-forwards': async ({ res, q, profile }) => {
      const closed = forwardsOf(profile).close(q('id'));
      holdForForwards(profile);
      return sendJson(res, 200, { closed });
    },
  };

  async function route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const path = url.pathname;
    const q = (k: string) => url.searchParams.get(k) ?? '';

    if (method === 'GET' && path === '/api/profiles') {
      const answer: ProfilesAnswer = { initial: deps.profiles.initial, profiles: await deps.profiles.list() };
      return sendJson(res, 200, answer);
    }
    if (!path.startsWith('/api/')) {
      if (method === 'GET' || method === 'HEAD') return serveAsset(res, path);
      throw new HttpError(405, 'method not allowed');
    }
    const handler = Object.hasOwn(handlers, `${method} ${path}`) ? handlers[`${method} ${path}`] : undefined;
    if (!handler) throw new HttpError(404, `no such API: ${method} ${path}`);
    const requested = req.headers[PROFILE_HEADER];
    const view = await deps.profiles.view(typeof requested === 'string' ? requested : '');
    const profile = (await view.info()).profile;
    return handler({ req, res, q, view, profile, clients: () => clientsOf(view) });
  }

  async function serveAsset(res: ServerResponse, path: string): Promise<void> {
    const relative = path === '/' || !extname(path) ? 'index.html' : decodePath(path.slice(1));
    const root = resolve(deps.assetsDir);
    const file = normalize(join(root, relative));
    if (!file.startsWith(root + sep)) throw new HttpError(404, 'not found');
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      throw new HttpError(404, 'not found');
    }
    const page = relative === 'index.html' ? withStyleNonce(body) : { body, headers: {} };
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      ...page.headers,
      'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      // Vite names assets by content hash: they never change under one name.
      'Cache-Control': relative.startsWith('assets/') ? 'private, max-age=31536000, immutable' : 'no-store',
    });
    res.end(page.body);
  }

  /**
   * The browser minilab started trades the one-time code of its command line for the token, which it
   * gets in the fragment of a same-origin path (never sent anywhere again; the page takes it from
   * there). Only a connection of the user running minilab may: other users can read the code in
   * that browser's command line.
   */
  async function launch(req: IncomingMessage, res: ServerResponse, code: string): Promise<void> {
    const printed = 'open the URL that minilab dashboard printed';
    if (!(await peerIsUser(req.socket))) {
      return send(res, 403, `this link opens the dashboard only for the user who started it: ${printed}\n`);
    }
    if (!redeemLaunch(deps.guard, code)) {
      return send(res, 410, `this launch link is used up, expired or wrong: ${printed}\n`);
    }
    res.writeHead(303, {
      ...SECURITY_HEADERS,
      'Cache-Control': 'no-store',
      Location: sessionPath(deps.guard),
    });
    res.end();
  }

  const peerIsUser = deps.peerIsUser ?? ((c: Connection) => peerIsThisUser(c));
  const server = createServer((req, res) => {
    const verdict = checkRequest(deps.guard, {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: req.headers,
    });
    if (!verdict.ok) return send(res, verdict.status, `${verdict.reason}\n`);
    const handled =
      verdict.launchCode === undefined ? route(req, res, verdict.url) : launch(req, res, verdict.launchCode);
    handled.catch((err: unknown) => {
      const e = toHttpError(err);
      if (res.headersSent) res.end();
      else sendJson(res, e.status, { error: e.message });
    });
  });
  server.on('upgrade', terminals.handle);
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actualPort}/`,
    server,
    async close() {
      for (const forwards of forwardsByProfile.values()) forwards.closeAll();
      terminals.closeAll();
      for (const end of [...streams]) end();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
