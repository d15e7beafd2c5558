/** minilab's own view of Docker resources; nothing outside src/runtime sees dockerode types. */
export interface PortMapping {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

export interface NodeSpec {
  name: string;
  hostname: string;
  image: string;
  profile: string;
  role: 'control-plane' | 'worker';
  network: string;
  varVolume: string;
  ports: PortMapping[];
  cpus?: number;
  memoryBytes?: number;
  env?: Record<string, string>;
  labels: Record<string, string>;
  /** Mount the host's /lib/modules read-only (only where it exists). */
  mountLibModules: boolean;
  /** Extra read-only or read-write bind mounts, host path -> container path. */
  binds?: { hostPath: string; containerPath: string; readOnly?: boolean }[];
}

export type ContainerStatus =
  'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface NodeState {
  id: string;
  name: string;
  profile: string;
  role: string;
  image: string;
  status: ContainerStatus;
  running: boolean;
  ip?: string;
  ports: PortMapping[];
  labels: Record<string, string>;
  startedAt?: string;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface EngineInfo {
  serverVersion: string;
  cgroupVersion: '1' | '2';
  cgroupDriver: string;
  rootDir: string;
  cpus: number;
  memoryBytes: number;
  os: string;
  rootless: boolean;
}

export interface ImageInfo {
  id: string;
  tags: string[];
  sizeBytes: number;
  created: string;
  labels: Record<string, string>;
}
