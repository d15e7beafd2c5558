import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The project root (holds package.json and images/), found from this file in src/ or dist/src/. */
export const projectRoot = fileURLToPath(
  new URL(import.meta.url.includes('/dist/') ? '../../' : '../', import.meta.url),
);

export const minilabVersion: string = (
  JSON.parse(readFileSync(new URL('package.json', `file://${projectRoot}`), 'utf8')) as { version: string }
).version;

/** The newest Kubernetes release whose end-to-end test passes on the project's machines. */
export const DEFAULT_KUBERNETES_VERSION = 'v1.37.2';
