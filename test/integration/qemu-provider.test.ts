import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeImageRef } from '../../src/image/components.js';
import { minilabHome } from '../../src/profile/store.js';
import { connectProvider } from '../../src/providers/index.js';
import { DEFAULT_KUBERNETES_VERSION } from '../../src/version.js';
import { runId, testLabels } from '../helpers/engine.js';
import { providerContract } from '../helpers/provider-contract.js';

// The provider contract against node VMs (under TCG on this machine, whose KVM cannot boot a
// guest): the same cases as Docker's and podman's. The VMs boot from the node image's VM disk,
// which the set-up made (image build --driver qemu) in minilab's cache; this run's MINILAB_HOME
// shares that cache instead of making its own.
providerContract('qemu', async () => {
  const home = await mkdtemp(join(tmpdir(), 'minilab-qemu-contract-'));
  await mkdir(join(home, 'cache'), { recursive: true });
  await symlink(join(minilabHome(process.env), 'cache', 'vm'), join(home, 'cache', 'vm'));
  const provider = await connectProvider('qemu', { env: process.env, home });
  const profile = `it-qemu-${runId}`;
  return {
    provider,
    image: nodeImageRef(DEFAULT_KUBERNETES_VERSION),
    profile,
    labels: testLabels,
    cleanup: async () => {
      const left: string[] = [];
      for (const p of [profile, `${profile}-b`]) {
        left.push(...(await provider.listNodes(p)).map((n) => n.name));
        await provider.deleteCluster(p);
      }
      // the VMs are gone (their QEMU killed by the delete): their home can go
      if (left.length === 0) await rm(home, { recursive: true, force: true });
      return left;
    },
  };
});
