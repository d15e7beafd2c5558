import type { ClusterApi } from '../kube/cluster-api.js';
import type { ProfileStore } from '../profile/store.js';
import type { Provider } from '../providers/types.js';
import type { Reporter } from '../reporter.js';

/** What lifecycle operations need; built by the CLI, replaceable in tests (a fake provider and API). */
export interface LifecycleContext {
  provider: Provider;
  kube: ClusterApi;
  reporter: Reporter;
  profiles: ProfileStore;
  home: string;
  env: NodeJS.ProcessEnv;
  extraLabels: Record<string, string>;
}
