import * as k8s from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import { kubeClients } from '../kube/client.js';
import type { KubeconfigEntry } from '../kube/kubeconfig.js';
import { listenForward, type LoopbackForward } from '../kube/port-forward.js';
import { serviceTarget } from '../kube/service.js';
import {
  claimPorts,
  desiredStatus,
  type AgentUser,
  serviceKey,
  servedByAgent,
  type PortClaim,
} from './loadbalancer-ports.js';

/** The component named in the events the agent writes. */
export const AGENT_COMPONENT = 'minilab-loadbalancer';
/** How often host ports held by another program are tried again. */
const RETRY_BIND_MS = 5000;
/** Waits between attempts to watch again after the API server went away (an engine restart). */
const BACKOFF_MS = [1000, 2000, 4000, 8000];
/** Failures further apart than this start the backoff over. */
const BACKOFF_RESET_MS = 30_000;
/** A merge patch of a Service's status (only its loadBalancer field; no conflict with other writers). */
const mergePatch = () => k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

/**
 * The loadbalancer add-on's agent: a minilab process in the background on the host (one per
 * profile, recorded in its folder), which watches Services and serves each TCP port of every
 * Service of type LoadBalancer of the add-ons it serves (the loadbalancer add-on's: those naming
 * no class; the ingress add-on's: its controller's) on the host's 127.0.0.1 at the same port, as
 * long as the cluster runs. Each connection goes to a ready pod of the Service, chosen at random, through the API
 * server's port-forward (so it works the same on every driver: the API server's port is the one
 * thing every driver publishes), and the Service gets EXTERNAL-IP 127.0.0.1 (ipMode Proxy, so
 * kube-proxy takes no 127.0.0.1 traffic in the nodes). A port it cannot have (another program
 * holds it, an older Service has it, a privileged port for a user who may not bind one) is
 * reported on the Service as an event and in its status, and tried again every few seconds.
 */
export class LoadBalancerAgent {
  private readonly config: k8s.KubeConfig;
  private readonly core: k8s.CoreV1Api;
  private readonly forwarder: k8s.PortForward;
  private readonly informer: k8s.Informer<k8s.V1Service> & k8s.ObjectCache<k8s.V1Service>;
  /** Host port -> the Service it serves. */
  private readonly listeners = new Map<number, { service: string; forward: LoopbackForward }>();
  /** SERVICE/PORT -> the message last reported as an event (each trouble is reported once). */
  private readonly reported = new Map<string, string>();
  private running = Promise.resolve();
  private again = false;
  private stopped = false;
  private retry?: NodeJS.Timeout;
  /** Watch failures in a row (for the backoff), and when the last one was. */
  private failures = 0;
  private failedAt = 0;

  constructor(
    entry: KubeconfigEntry,
    private readonly log: (line: string) => void,
    /** The add-ons whose Services it serves (by their loadBalancerClass). */
    private readonly users: readonly AgentUser[] = ['loadbalancer'],
  ) {
    const clients = kubeClients(entry);
    this.config = clients.config;
    this.core = clients.core;
    this.forwarder = new k8s.PortForward(this.config);
    this.informer = k8s.makeInformer(this.config, '/api/v1/services', () =>
      this.core.listServiceForAllNamespaces(),
    );
    for (const verb of ['add', 'update', 'delete'] as const) this.informer.on(verb, () => this.schedule());
  }

  /** Resolves once the first list of Services is in and served; fails if it cannot be listed. */
  async start(): Promise<void> {
    // The informer reports a failed list as an error event, not by its start failing.
    let failed: unknown;
    const early = (err: unknown) => {
      failed ??= err ?? new Error('the list of Services failed');
    };
    this.informer.on('error', early);
    try {
      await this.informer.start();
    } finally {
      this.informer.off('error', early);
    }
    if (failed) throw failed instanceof Error ? failed : new Error(String(failed));
    this.informer.on('error', (err) => void this.rewatch(err));
    this.schedule();
    await this.running;
  }

  /** Stops watching and serving; every port is closed when it resolves. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.informer.stop().catch(() => undefined);
    // a reconcile under way finishes first (it closes what it opens once stopped)
    await this.running;
    for (const l of this.listeners.values()) l.forward.close();
    this.listeners.clear();
  }

  /**
   * The watch ended with an error (the API server went away, an engine restart): list and watch
   * again after a wait that grows while failures follow each other. What is served stays open.
   */
  private async rewatch(err: unknown): Promise<void> {
    if (this.stopped) return;
    const now = Date.now();
    this.failures = now - this.failedAt < BACKOFF_RESET_MS ? this.failures + 1 : 1;
    this.failedAt = now;
    const wait = BACKOFF_MS[Math.min(this.failures - 1, BACKOFF_MS.length - 1)] ?? 1000;
    // the first failure of a run, then one line in twenty
    if (this.failures % 20 === 1) {
      const why = err instanceof Error ? err.message : String(err);
      this.log(`watch of Services failed (${why}); trying again every ${wait / 1000} s or less`);
    }
    await new Promise((r) => setTimeout(r, wait));
    if (this.stopped) return;
    // a failed list comes back as another error event
    await this.informer.start().catch((e: unknown) => this.rewatch(e));
    this.schedule();
  }

  /** Reconciles once now, and once more after that if anything changed meanwhile. */
  private schedule(): void {
    if (this.stopped) return;
    this.again = true;
    this.running = this.running.then(async () => {
      while (this.again && !this.stopped) {
        this.again = false;
        await this.reconcile().catch((err: unknown) =>
          this.log(`reconcile failed: ${err instanceof Error ? err.message : String(err)}`),
        );
      }
    });
  }

  private async reconcile(): Promise<void> {
    const services = this.informer.list();
    const claims = claimPorts(services, this.users);
    const wanted = new Map(claims.filter((c) => !c.error).map((c) => [c.port, c.service]));
    for (const [port, l] of this.listeners) {
      if (wanted.get(port) !== l.service) {
        l.forward.close();
        this.listeners.delete(port);
        this.log(`stopped serving 127.0.0.1:${port} for ${l.service}`);
      }
    }
    // SERVICE/PORT -> why the host port could not be bound (this time)
    const bindErrors = new Map<string, { error: string; message: string }>();
    let held = false;
    for (const [port, service] of wanted) {
      if (this.listeners.has(port)) continue;
      try {
        const forward = await listenForward(() => this.route(service, port), port);
        if (this.stopped) {
          forward.close();
          return;
        }
        this.listeners.set(port, { service, forward });
        this.log(`serving 127.0.0.1:${port} for ${service}`);
      } catch (err) {
        const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
        // a privileged port stays so: it is not tried again until the Service changes
        const privileged = (e.code ?? e.cause?.code) === 'EACCES';
        held ||= !privileged;
        bindErrors.set(`${service}/${port}`, {
          error: privileged ? 'PortPrivileged' : 'PortInUse',
          message: privileged
            ? `port ${port} on 127.0.0.1 is below 1024 and this user may not listen on it: the Service is not reachable from the host on it (choose a port from 1024 up, or run minilab as root)`
            : `port ${port} on 127.0.0.1 is held by another program on the host: the Service is not reachable from the host on it until it is free`,
        });
      }
    }
    clearTimeout(this.retry);
    if (held) this.retry = setTimeout(() => this.schedule(), RETRY_BIND_MS);
    const withBinds = claims.map((c) => ({ ...c, ...(bindErrors.get(`${c.service}/${c.port}`) ?? {}) }));
    for (const svc of services.filter((x) => servedByAgent(x, this.users))) {
      const mine = withBinds.filter((c) => c.service === serviceKey(svc));
      await this.report(svc, mine);
      await this.writeStatus(svc, desiredStatus(mine));
    }
    // what is no longer a trouble may be reported again when it comes back
    const troubles = new Set(withBinds.filter((c) => c.error).map((c) => `${c.service}/${c.port}`));
    for (const key of this.reported.keys()) if (!troubles.has(key)) this.reported.delete(key);
  }

  /** A connection's pod: a ready endpoint of the Service's port, chosen at random. */
  private async route(service: string, port: number) {
    const [namespace = '', name = ''] = service.split('/');
    const t = await serviceTarget(this.config, namespace, name, port, true);
    return { api: this.forwarder, namespace, pod: t.pod, port: t.podPort };
  }

  /** A Warning event on the Service for each port trouble not reported yet. */
  private async report(svc: k8s.V1Service, claims: PortClaim[]): Promise<void> {
    for (const c of claims) {
      const key = `${c.service}/${c.port}`;
      if (!c.error || !c.message || this.reported.get(key) === c.message) continue;
      this.reported.set(key, c.message);
      this.log(`${c.service}: ${c.message}`);
      const now = new Date();
      await this.core
        .createNamespacedEvent({
          namespace: svc.metadata?.namespace ?? 'default',
          body: {
            metadata: { generateName: `${svc.metadata?.name ?? 'service'}.` },
            involvedObject: {
              apiVersion: 'v1',
              kind: 'Service',
              namespace: svc.metadata?.namespace,
              name: svc.metadata?.name,
              uid: svc.metadata?.uid,
            },
            reason: c.error,
            message: c.message,
            type: 'Warning',
            source: { component: AGENT_COMPONENT },
            reportingComponent: AGENT_COMPONENT,
            reportingInstance: AGENT_COMPONENT,
            firstTimestamp: now,
            lastTimestamp: now,
            count: 1,
          },
        })
        .catch((err: unknown) => this.log(`event not written: ${(err as Error).message}`));
    }
  }

  /** Writes the Service's load-balancer status where it differs. */
  private async writeStatus(svc: k8s.V1Service, status: k8s.V1LoadBalancerStatus): Promise<void> {
    const current = svc.status?.loadBalancer ?? {};
    if (isDeepStrictEqual(normalize(current), normalize(status))) return;
    await patchLoadBalancerStatus(this.core, svc, status).catch((err: unknown) =>
      this.log(`status of ${serviceKey(svc)} not written: ${(err as Error).message}`),
    );
  }
}

/** Sets a Service's status.loadBalancer (a merge patch of that field alone: null clears it). */
export function patchLoadBalancerStatus(
  core: k8s.CoreV1Api,
  svc: k8s.V1Service,
  status: k8s.V1LoadBalancerStatus,
): Promise<k8s.V1Service> {
  return core.patchNamespacedServiceStatus(
    {
      name: svc.metadata?.name ?? '',
      namespace: svc.metadata?.namespace ?? '',
      body: { status: { loadBalancer: { ingress: status.ingress ?? null } } },
    },
    mergePatch(),
  );
}

/** A status as JSON has it (no undefined fields), for comparison. */
const normalize = (s: k8s.V1LoadBalancerStatus) => JSON.parse(JSON.stringify(s)) as unknown;
