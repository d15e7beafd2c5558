import { NO_SESSION, authHeaders } from './session.js';

/** JSON calls to the dashboard server; failures throw with the server's one-line message. */
export async function api<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: 'omit',
    headers: { ...authHeaders(), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = res.headers.get('content-type') ?? '';
  if (res.status === 401) throw new Error(NO_SESSION);
  if (!res.ok) {
    const message = type.includes('json')
      ? ((await res.json()) as { error?: string }).error
      : (await res.text()).trim();
    throw new Error(message || `${res.status} ${res.statusText}`);
  }
  return (type.includes('json') ? await res.json() : await res.text()) as T;
}
