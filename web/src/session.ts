/**
 * The dashboard session: this run's token, sent in an Authorization header on every API call and
 * never in a cookie (a cookie for 127.0.0.1 would go to every local server, whatever its port; see
 * src/dashboard/security.ts). The page gets the token once in the URL fragment (#token=...), which
 * browsers never send to a server, and keeps it in sessionStorage, which no other origin (another
 * port included) can read.
 */
import { PROFILE_HEADER } from '../../src/dashboard/model.js';

const KEY = 'minilab-dashboard-token';

/** Moves the token from the address bar into sessionStorage; call before anything reads the hash. */
export function takeToken(): void {
  const token = /^#token=([A-Za-z0-9_-]+)$/.exec(location.hash)?.[1];
  if (!token) return;
  sessionStorage.setItem(KEY, token);
  history.replaceState(null, '', location.pathname + location.search);
}

/**
 * The profile this page shows: `?profile=NAME` in its address, so a reload or a shared link keeps
 * it (the hash routes leave the query alone); empty for the one the command named.
 */
export function pageProfile(): string {
  return new URLSearchParams(location.search).get('profile') ?? '';
}

/** The address of this page showing `profile` (its current view kept). */
export const profileUrl = (profile: string) =>
  `${location.pathname}?${new URLSearchParams({ profile }).toString()}${location.hash}`;

/** The headers of every API call: the session's token, and which profile it is for. */
export function authHeaders(): Record<string, string> {
  const token = sessionStorage.getItem(KEY);
  const profile = pageProfile();
  return {
    ...(token ? { Authorization: `Bearer ${token}` } : {}),
    ...(profile ? { [PROFILE_HEADER]: profile } : {}),
  };
}

/** What the page says when the server refuses its token (none, or one of an earlier run). */
export const NO_SESSION = 'No valid dashboard token: open the URL that minilab dashboard printed';

export interface StreamHandlers<E> {
  /** One handler per event name, given the event's JSON data. */
  on: { [K in keyof E]: (data: E[K]) => void };
  onOpen?(): void;
  /** The stream broke: it reconnects when `retrying`, else the server refused it (HTTP `status`). */
  onError?(retrying: boolean, status?: number): void;
}

/**
 * Server-sent events read with fetch, as EventSource cannot send a header. Like EventSource it
 * reconnects after a network failure or the end of the stream (after the server's `retry:` delay),
 * and gives up when the server answers with an error.
 */
export function openEventStream<E extends object>(
  path: string,
  handlers: StreamHandlers<E>,
): { close(): void } {
  const stop = new AbortController();
  let retryMs = 2000;

  const dispatch = (block: string) => {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value);
    }
    const handle = Object.hasOwn(handlers.on, event) ? handlers.on[event as keyof E] : undefined;
    if (handle && data.length > 0) handle(JSON.parse(data.join('\n')));
  };

  /** One connection; false when the server refused it (no retry). */
  const connect = async (): Promise<boolean> => {
    let res: Response;
    try {
      res = await fetch(path, {
        headers: { ...authHeaders(), Accept: 'text/event-stream' },
        cache: 'no-store',
        signal: stop.signal,
      });
    } catch {
      return true;
    }
    if (!res.ok || !res.body || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      if (!stop.signal.aborted) handlers.onError?.(false, res.status);
      return false;
    }
    handlers.onOpen?.();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || stop.signal.aborted) break;
        // The dashboard's server ends lines with \n only.
        buffer += value;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (stop.signal.aborted) break;
        }
      }
    } catch {
      // A broken connection: reconnect below, as after the end of the stream.
    }
    return true;
  };

  void (async () => {
    while (!stop.signal.aborted && (await connect())) {
      if (stop.signal.aborted) return;
      handlers.onError?.(true);
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  })();
  return { close: () => stop.abort() };
}
