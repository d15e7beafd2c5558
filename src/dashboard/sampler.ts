import type { ClusterClients } from './cluster.js';
import { nodeMetrics, podMetrics } from './actions.js';
import { quantity } from './quantity.js';
import { UsageHistory } from './series.js';
import type { MetricsAnswer, PodMetricsAnswer } from './model.js';

/** A pod's series in the pod history. */
export const podKey = (namespace: string, name: string) => `${namespace}/${name}`;

/**
 * metrics-server (the add-on) scrapes every 10 s; a reading every 15 s shows each change soon and
 * keeps 60 points per chart over the last 15 minutes (up to 90 with pages reading too: MIN_GAP_MS).
 */
const SAMPLE_MS = 15_000;

/**
 * Reads node and pod usage every SAMPLE_MS while the cluster is connected, into one history for
 * nodes and one for pods ("namespace/name"), so a page opened now charts the last minutes. Without
 * a metrics API it only asks whether there is one (one discovery request), and starts recording as
 * soon as the add-on is enabled.
 */
export class UsageSampler {
  readonly nodes = new UsageHistory();
  readonly pods = new UsageHistory();
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly clients: () => ClusterClients | undefined,
    private readonly intervalMs = SAMPLE_MS,
    private readonly now = () => Date.now(),
  ) {}

  start(): void {
    void this.sample();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Keeps a reading of node usage (the sampler's, or one a page asked for). */
  recordNodes(answer: MetricsAnswer): void {
    if (!answer.available) return;
    this.nodes.record(
      this.now(),
      answer.nodes.map((n) => [n.name, { cpu: quantity(n.cpu), memory: quantity(n.memory) }] as const),
    );
  }

  /** Keeps a reading of pod usage (of all namespaces, or of one). */
  recordPods(answer: PodMetricsAnswer): void {
    if (!answer.available) return;
    this.pods.record(
      this.now(),
      answer.pods.map((p) => [podKey(p.namespace, p.name), p] as const),
    );
  }

  /** One reading of both (when connected and the metrics API answers), then the next one later. */
  async sample(): Promise<void> {
    clearTimeout(this.timer);
    const c = this.clients();
    if (c) {
      const [nodes, pods] = await Promise.all([nodeMetrics(c), podMetrics(c, '')]);
      this.recordNodes(nodes);
      this.recordPods(pods);
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.sample(), this.intervalMs);
  }
}
