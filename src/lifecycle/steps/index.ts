import { addonsStep } from './addons.js';
import { bootStep, rebootStep, startNodesStep } from './boot.js';
import { checkCompleteStep, markCompleteStep } from './complete.js';
import { controlPlaneStep } from './control-plane.js';
import { firewallStep } from './firewall.js';
import { kubeconfigStep } from './kubeconfig.js';
import { loadBalancerStep } from './load-balancer.js';
import { joinStep } from './join.js';
import { bridgeNetworkStep, flannelNetworkStep } from './network.js';
import { nodeImageStep } from './node-image.js';
import { preflightStep } from './preflight.js';
import { provisionStep } from './provision.js';
import type { Step } from './state.js';
import { storageStep } from './storage.js';
import { kubeProxyStep, rewaitStep, waitStep } from './waits.js';

/** What `minilab start` does for a new cluster, in order: one file per step, in this folder. */
export const CREATE_STEPS: readonly Step[] = [
  preflightStep, //    preflight.ts     engine, cgroups, disk, inotify, CPUs and memory asked for
  nodeImageStep, //    node-image.ts    build the node image if missing (first time only)
  provisionStep, //    provision.ts     profile recorded; the provider makes network, volumes, nodes
  firewallStep, //     firewall.ts      host rules: Docker < 28's loopback ports; podman's bridge beside Docker's DROP
  bootStep, //         boot.ts          systemd and containerd up; "being created" marker
  loadBalancerStep, // load-balancer.ts several control planes: HAProxy told their names
  bridgeNetworkStep, // network.ts      one node: the bridge CNI config, before the kubelet starts
  controlPlaneStep, // control-plane.ts kubeadm init, three parts; /livez from the host beside the second
  flannelNetworkStep, // network.ts     several nodes: flannel's DaemonSet
  joinStep, //         join.ts          every other node at once, control planes and workers (kubeadm join)
  kubeProxyStep, //    waits.ts         kube-proxy tuning where kubeadm cannot patch it
  waitStep, //         waits.ts         node Ready, pod CIDR, CoreDNS, default service account
  storageStep, //      storage.ts       default StorageClass (applied meanwhile: once /livez answers, or after the joins)
  markCompleteStep, // complete.ts      the marker goes: the cluster is whole
  kubeconfigStep, //   kubeconfig.ts    context merged into the user's kubeconfig
  addonsStep, //       addons.ts        --addons and the profile's add-ons built, loaded, applied, working
];

/** What `minilab start` does for an existing cluster: restart it if stopped, re-sync if running. */
export const RESTART_STEPS: readonly Step[] = [
  startNodesStep, //    boot.ts        stopped nodes started (the load balancer first)
  firewallStep, //      firewall.ts    host rules put back (they do not survive a reboot)
  rebootStep, //        boot.ts        systemd and containerd up
  checkCompleteStep, // complete.ts    refuse a half-made cluster; read the credentials
  rewaitStep, //        waits.ts       API server and node Ready (a check when already running)
  kubeconfigStep, //    kubeconfig.ts  context re-synced
  addonsStep, //        addons.ts      the profile's add-ons applied again, checked to work
];
