import * as http from 'node:http';
import * as https from 'node:https';
import * as k8s from '@kubernetes/client-node';
import { REQUEST_TIMEOUT_MS } from '../kube/client.js';

export interface KubeRequest {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** The API path with its query, e.g. /apis/apps/v1/deployments?limit=500. */
  path: string;
  accept?: string;
  contentType?: string;
  body?: string;
}

/**
 * One request to the API server with the connection's credentials, answering the parsed JSON body.
 * The typed clients cannot ask for what the generic views need (a Table rendering, aggregated
 * discovery, any resource by its path, server-side apply with dryRun), so this goes under them; a
 * failure throws the same ApiException they throw, carrying the API's Status as its body.
 */
export async function kubeRequest<T = unknown>(config: k8s.KubeConfig, req: KubeRequest): Promise<T> {
  const res = await send(config, req, AbortSignal.timeout(REQUEST_TIMEOUT_MS));
  return parseAnswer<T>(res.statusCode ?? 0, await readBody(res), res.headers);
}

/**
 * A watch (or any answer of one JSON object per line): `onObject` gets each object as it arrives,
 * until the API server ends the answer or `signal` aborts (then it resolves). A refusal throws as
 * kubeRequest's does.
 */
export async function kubeStream(
  config: k8s.KubeConfig,
  req: KubeRequest,
  onObject: (object: unknown) => void,
  signal: AbortSignal,
): Promise<void> {
  let res: http.IncomingMessage;
  try {
    res = await send(config, req, signal);
  } catch (err) {
    if (signal.aborted) return;
    throw err;
  }
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300) return void parseAnswer(status, await readBody(res), res.headers);
  let buffer = '';
  await new Promise<void>((resolve, reject) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
        const line = buffer.slice(0, end).trim();
        buffer = buffer.slice(end + 1);
        if (!line) continue;
        try {
          onObject(JSON.parse(line));
        } catch (err) {
          res.destroy();
          return reject(err instanceof Error ? err : new Error(String(err)));
        }
      }
    });
    res.on('end', resolve);
    res.on('error', (err) => (signal.aborted ? resolve() : reject(err)));
    res.on('close', resolve);
  });
}

async function send(
  config: k8s.KubeConfig,
  req: KubeRequest,
  signal: AbortSignal,
): Promise<http.IncomingMessage> {
  const cluster = config.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig names no cluster');
  const url = new URL(req.path, cluster.server);
  const opts: https.RequestOptions = {
    method: req.method ?? 'GET',
    headers: {
      Accept: req.accept ?? 'application/json',
      ...(req.contentType ? { 'Content-Type': req.contentType } : {}),
      // Node sends a DELETE's body unframed unless told its length.
      ...(req.body !== undefined ? { 'Content-Length': Buffer.byteLength(req.body) } : {}),
    },
    signal,
  };
  await config.applyToHTTPSOptions(opts);
  const plain = url.protocol === 'http:';
  // The kubeconfig's agent speaks TLS only; a plain-HTTP API server (in unit tests) takes the default one.
  if (plain) delete opts.agent;
  return new Promise((resolve, reject) => {
    const request = (plain ? http : https).request(url, opts, resolve);
    request.on('error', reject);
    request.end(req.body);
  });
}

function readBody(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('error', reject);
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function parseAnswer<T>(status: number, body: string, headers: http.IncomingHttpHeaders): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = body;
  }
  if (status < 200 || status >= 300) {
    const flat = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, String(v)]));
    throw new k8s.ApiException(status, `the API server answered ${status}`, parsed, flat);
  }
  return parsed as T;
}
