import * as k8s from '@kubernetes/client-node';
import getPort from 'get-port';
import { join } from 'node:path';
import { runningRecord, spawnRecorded } from '../profile/background.js';
import { forwardFile, recordOwnForward, type ServiceForward } from '../profile/services.js';
import { untilStopped } from '../signals.js';
import { kubeClients } from './client.js';
import type { KubeconfigEntry } from './kubeconfig.js';
import { apiServerReady } from './readyz.js';
import { listenForward } from './port-forward.js';
import { serviceTarget, type ServiceTarget } from './service.js';

export interface ForwardRequest {
  profile: string;
  /** The profile's state directory, where background forwards are recorded. */
  dir: string;
  namespace: string;
  service: string;
  port?: number;
}

/**
 * `minilab service NAME --url`: a forwarder in a detached process of its own (this program run
 * with --background-child), recorded under the profile; returns its URL once it serves. A
 * forwarder already running for the service is reused.
 */
export async function startBackgroundForward(req: ForwardRequest, env: NodeJS.ProcessEnv): Promise<string> {
  const file = forwardFile(req.dir, req.namespace, req.service);
  const existing = await runningRecord<ServiceForward>(file);
  if (existing) return existing.url;
  const started = await spawnRecorded<ServiceForward>(
    [
      'service',
      req.service,
      '-n',
      req.namespace,
      '-p',
      req.profile,
      '--url',
      '--background-child',
      ...(req.port ? ['--port', String(req.port)] : []),
    ],
    {
      file,
      log: join(req.dir, 'services', `${req.namespace}.${req.service}.log`),
      env,
      what: `the background forward for ${req.service}`,
      timeoutMs: 15_000,
    },
  );
  return started.url;
}

/** The Service's port and a ready pod behind it; a missing Service or endpoint fails here, at once. */
export function forwardTarget(entry: KubeconfigEntry, req: ForwardRequest): Promise<ServiceTarget> {
  return serviceTarget(kubeClients(entry).config, req.namespace, req.service, req.port);
}

/**
 * Forwards a 127.0.0.1 port to a ready endpoint of the Service until SIGINT or SIGTERM, or until the
 * cluster goes away (three failed API checks in a row, 15 s). Each connection goes to a ready pod
 * looked up afresh, so the forward outlives the pods it started with. A background forwarder
 * records itself, and its record goes when the process ends, whichever way.
 */
export async function serveForward(
  entry: KubeconfigEntry,
  req: ForwardRequest,
  target: ServiceTarget,
  opts: { background: boolean; onServing: (url: string) => void },
): Promise<void> {
  const { config } = kubeClients(entry);
  const api = new k8s.PortForward(config);
  const forward = await listenForward(
    async () => {
      const t = await serviceTarget(config, req.namespace, req.service, req.port);
      return { api, namespace: t.namespace, pod: t.pod, port: t.podPort };
    },
    await getPort({ host: '127.0.0.1', port: target.servicePort > 1024 ? target.servicePort : undefined }),
  );
  // Listening for the signals before the record exists: a `--stop` right after must end this
  // process through the same path.
  let failures = 0;
  const { stopped, stop } = untilStopped(5000, (end) => {
    void apiServerReady(entry).then((r) => {
      failures = r === true ? 0 : failures + 1;
      if (failures >= 3) end();
    });
  });
  let release = () => {};
  try {
    if (opts.background)
      release = await recordOwnForward(req.dir, {
        url: forward.url,
        namespace: req.namespace,
        service: req.service,
      });
    opts.onServing(forward.url);
    await stopped;
  } finally {
    stop();
    forward.close();
    release();
  }
}
