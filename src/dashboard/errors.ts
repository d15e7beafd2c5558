import * as k8s from '@kubernetes/client-node';

/** An error the dashboard API answers with: an HTTP status and a one-line message for the page. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The API server's own message when there is one ("deployments.apps "x" not found"), else the error's. */
export function errorMessage(err: unknown): string {
  if (err instanceof k8s.ApiException) {
    const body: unknown = err.body;
    let parsed: unknown = body;
    if (typeof body === 'string') {
      try {
        parsed = JSON.parse(body);
      } catch {
        parsed = undefined;
      }
    }
    const message = (parsed as { message?: unknown } | undefined)?.message;
    if (typeof message === 'string' && message !== '') return message;
    return `the API server answered ${err.code}`;
  }
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED' || code === 'ECONNRESET')
      return `the API server is not reachable (${code.toLowerCase()})`;
    return err.message.split('\n')[0] ?? String(err);
  }
  return String(err);
}

/** Maps an API failure onto the status the dashboard answers with (404 stays 404, and so on). */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof k8s.ApiException && err.code >= 400 && err.code < 600) {
    return new HttpError(err.code, errorMessage(err));
  }
  return new HttpError(502, errorMessage(err));
}
