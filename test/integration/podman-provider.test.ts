import { connectPodman } from '../helpers/engine.js';
import { engineApiCases } from '../helpers/engine-api-cases.js';

// The same cases as Docker's, against the podman service's compatible API (rootful here: the
// host is cgroup v1, where rootless podman is refused; see test/unit/podman.test.ts).
engineApiCases('podman', async () => {
  const provider = await connectPodman();
  return { engine: provider.engine, provider };
});
