import { randomBytes } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { PassThrough, Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { ClusterClients } from './cluster.js';
import { errorMessage, HttpError, toHttpError } from './errors.js';
import { SHELLS, type Shell } from './model.js';
import { checkUpgrade, type Guard } from './security.js';

export interface TerminalTarget {
  /** The profile whose cluster the container is in. */
  profile: string;
  namespace: string;
  pod: string;
  container: string;
  shell: Shell;
  cols: number;
  rows: number;
}

/** What the server sends as text frames (the terminal's output goes as binary frames). */
export type TerminalNotice = { type: 'exit'; message: string } | { type: 'error'; message: string };

/** How long a ticket stays good: the page opens its WebSocket right after asking. */
const TICKET_LIFETIME_MS = 30_000;

/**
 * One-use tickets for the terminal's WebSocket, each bound to the exec it was asked for: the
 * Authorization header that guards the API cannot be sent on a browser's WebSocket.
 */
export class TerminalTickets {
  private readonly tickets = new Map<string, { target: TerminalTarget; expiresAt: number }>();

  issue(target: TerminalTarget, now = Date.now()): string {
    for (const [t, v] of this.tickets) if (v.expiresAt < now) this.tickets.delete(t);
    const ticket = randomBytes(32).toString('base64url');
    this.tickets.set(ticket, { target, expiresAt: now + TICKET_LIFETIME_MS });
    return ticket;
  }

  /** The target of a live ticket, once; undefined for a used, expired or unknown one. */
  redeem(ticket: string, now = Date.now()): TerminalTarget | undefined {
    const entry = this.tickets.get(ticket);
    this.tickets.delete(ticket);
    return entry && entry.expiresAt >= now ? entry.target : undefined;
  }
}

const size = (value: unknown, what: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new HttpError(400, `invalid ${what}`);
  return n;
};

export function terminalSize(cols: unknown, rows: unknown): { cols: number; rows: number } {
  return { cols: size(cols, 'terminal width'), rows: size(rows, 'terminal height') };
}

export function shellParam(value: unknown): Shell {
  if (!SHELLS.includes(value as Shell)) throw new HttpError(400, `the shell is one of ${SHELLS.join(', ')}`);
  return value as Shell;
}

/**
 * The terminal's output to the browser, with the size the API server's resize channel reads from
 * it (client-node's Exec watches `columns`, `rows` and the resize event of its stdout).
 */
class TerminalOutput extends Writable {
  constructor(
    private readonly socket: WebSocket,
    public columns: number,
    public rows: number,
  ) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.socket.readyState !== WebSocket.OPEN) return callback();
    this.socket.send(chunk, { binary: true }, () => callback());
  }

  resize(cols: number, rows: number): void {
    this.columns = cols;
    this.rows = rows;
    this.emit('resize');
  }
}

function notice(socket: WebSocket, n: TerminalNotice): void {
  if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(n));
}

/**
 * Joins the browser's WebSocket to an exec in the container, through the API server's exec
 * WebSocket, with a TTY: binary frames are keystrokes and output, a text frame from the page
 * resizes ({"type":"resize","cols":N,"rows":N}). Either side closing closes the other.
 */
export async function bridgeTerminal(
  clients: ClusterClients,
  target: TerminalTarget,
  socket: WebSocket,
): Promise<void> {
  const stdin = new PassThrough();
  const output = new TerminalOutput(socket, target.cols, target.rows);
  socket.on('message', (data: RawData, isBinary: boolean) => {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (isBinary) {
      stdin.write(bytes);
      return;
    }
    try {
      const m = JSON.parse(bytes.toString('utf8')) as { type?: unknown; cols?: unknown; rows?: unknown };
      if (m.type !== 'resize') return;
      const { cols, rows } = terminalSize(m.cols, m.rows);
      output.resize(cols, rows);
    } catch {
      // Not a message of the page's: ignored.
    }
  });
  let exec: { close(): void; on(event: 'close', listener: () => void): void } | undefined;
  // A frame over maxPayload (a paste of more than 1 MiB) or a broken connection: the socket is
  // dropped, and its 'close' below ends the exec; an unheard 'error' would end the dashboard.
  socket.on('error', () => socket.terminate());
  socket.on('close', () => {
    stdin.end();
    exec?.close();
  });
  try {
    exec = await new k8s.Exec(clients.config).exec(
      target.namespace,
      target.pod,
      target.container,
      [target.shell],
      output,
      null,
      stdin,
      true,
      (status) => {
        const message =
          status.status === 'Success' ? 'the shell exited' : (status.message ?? 'the shell ended');
        notice(socket, { type: 'exit', message });
        socket.close(1000);
      },
    );
  } catch (err) {
    notice(socket, { type: 'error', message: `cannot open a shell: ${errorMessage(err)}` });
    socket.close(1011);
    return;
  }
  if (socket.readyState !== WebSocket.OPEN) exec.close();
  exec.on('close', () => socket.close(1000));
}

/**
 * Accepts terminal WebSockets on the dashboard server: the same Host and Origin checks as every
 * request, then a ticket the page got through the guarded API. Anything else is answered with an
 * HTTP error and the connection is closed.
 */
export function terminalUpgrades(
  guard: Guard,
  tickets: TerminalTickets,
  clients: (profile: string) => ClusterClients,
): { handle(req: IncomingMessage, socket: Duplex, head: Buffer): void; closeAll(): void } {
  const server = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  const refuse = (socket: Duplex, status: number, reason: string) => {
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
        `Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${reason}\n`,
    );
  };
  return {
    handle(req, socket, head) {
      // Node stops listening for the socket's errors when it hands it over: a client that resets
      // the connection while it is refused would otherwise end the dashboard.
      socket.on('error', () => socket.destroy());
      const verdict = checkUpgrade(guard, {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
      });
      if (!verdict.ok) return refuse(socket, verdict.status, verdict.reason);
      const target = tickets.redeem(verdict.url.searchParams.get('ticket') ?? '');
      if (!target) return refuse(socket, 401, 'this terminal ticket is used up, expired or wrong');
      let c: ClusterClients;
      try {
        c = clients(target.profile);
      } catch (err) {
        const e = toHttpError(err);
        return refuse(socket, e.status, e.message);
      }
      server.handleUpgrade(req, socket, head, (ws) => void bridgeTerminal(c, target, ws));
    },
    closeAll() {
      for (const ws of server.clients) ws.terminate();
      server.close();
    },
  };
}
