/**
 * The floor: the same Kubernetes binaries started as plain processes in one prepared node
 * container (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet): no kubeadm,
 * no waits beyond readiness. Preparation (not timed): a cluster made by `minilab start --wait none`
 * supplies certificates, kubeconfigs and the exact command lines (its static pod manifests); then
 * every process is stopped and etcd's data removed. Timed: launching the processes until the API
 * server answers /readyz and the node reports Ready.
 */
import * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import { controlPlane, credentials } from '../src/lifecycle/nodes.js';
import { runInNode } from '../src/providers/run.js';
import type { Provider } from '../src/providers/types.js';
import { apiServerReady } from '../src/kube/readyz.js';
import { renderKubeconfig } from '../src/kube/kubeconfig.js';

const COMPONENTS = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler'];
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export interface Floor {
  apiServerAnswering: number;
  nodeReady: number;
}

export async function measureFloor(provider: Provider, profile: string): Promise<Floor> {
  const found = await controlPlane(provider, profile);
  const { node } = found;
  // super-admin.conf (system:masters): kubeadm's cluster-admins binding is gone with etcd's data.
  const entry = await credentials(provider, found, '/etc/kubernetes/super-admin.conf');
  const commands: string[] = [];
  for (const c of COMPONENTS) {
    const manifest = parse(
      await runInNode(node, `cat /etc/kubernetes/manifests/${c}.yaml`, `reading ${c}`),
    ) as {
      spec: { containers: { command: string[] }[] };
    };
    const [bin, ...args] = manifest.spec.containers[0]!.command;
    commands.push(`GOGC=50 setsid nohup ${bin} ${args.map(quote).join(' ')} >/var/log/floor-${c}.log 2>&1 &`);
  }
  // Prepare: no kubelet, no pods, no cluster data; manifests moved aside so the kubelet starts none.
  await runInNode(
    node,
    `systemctl stop kubelet
     for t in $(ctr -n k8s.io tasks ls -q); do ctr -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
     sleep 1
     mkdir -p /etc/minilab/floor && mv /etc/kubernetes/manifests/*.yaml /etc/minilab/floor/
     rm -rf /var/lib/etcd/member
     # etcd ships only in its image: copy its binary out once.
     ref=$(ctr -n k8s.io images ls -q | grep '^registry.k8s.io/etcd:' | head -n1)
     mkdir -p /mnt/etcd-image && ctr -n k8s.io images mount "$ref" /mnt/etcd-image >/dev/null
     cp /mnt/etcd-image/usr/local/bin/etcd /usr/local/bin/etcd
     ctr -n k8s.io images unmount /mnt/etcd-image >/dev/null`,
    'preparing the floor measurement',
  );
  const config = new k8s.KubeConfig();
  config.loadFromString(renderKubeconfig(entry));
  const core = config.makeApiClient(k8s.CoreV1Api);
  const started = performance.now();
  await runInNode(
    node,
    `${commands.join('\n')}
     . /var/lib/kubelet/kubeadm-flags.env
     GOGC=50 setsid nohup /usr/bin/kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml $KUBELET_KUBEADM_ARGS >/var/log/floor-kubelet.log 2>&1 &`,
    'starting the control plane as plain processes',
  );
  let apiServerAnswering = 0;
  for (;;) {
    if ((await apiServerReady(entry, 500)) === true) {
      apiServerAnswering = performance.now() - started;
      break;
    }
    if (performance.now() - started > 120_000)
      throw new Error('floor: the API server did not answer in 120 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  for (;;) {
    const ready = await core
      .readNode({ name: node.name })
      .then((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
      .catch(() => false);
    if (ready) return { apiServerAnswering, nodeReady: performance.now() - started };
    if (performance.now() - started > 120_000) throw new Error('floor: the node was not Ready in 120 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}
