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
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  };
  await config.applyToHTTPSOptions(opts);
  const plain = url.protocol === 'http:';
  // The kubeconfig's agent speaks TLS only; a plain-HTTP API server (in unit tests) takes the default one.
  if (plain) delete opts.agent;
  const { status, body, headers } = await new Promise<{
    status: number;
    body: string;
    headers: http.IncomingHttpHeaders;
  }>((resolve, reject) => {
    const request = (plain ? http : https).request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          headers: res.headers,
        }),
      );
    });
    request.on('error', reject);
    request.end(req.body);
  });
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
