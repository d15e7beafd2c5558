import { request } from 'node:https';
import type { KubeconfigEntry } from './kubeconfig.js';

/**
 * A restarted API server serves its stored objects at once, but two of its post-start hooks
 * re-check the default roles and priority classes only after a fixed one-second pause; a
 * restart's readiness leaves out these two checks (the objects exist since the first start).
 */
export const READYZ_AFTER_RESTART =
  '/readyz?exclude=poststarthook/rbac/bootstrap-roles&exclude=poststarthook/scheduling/bootstrap-system-priority-classes';

/**
 * The API server's /readyz (or another health path such as /livez) through the published port,
 * authenticated as the profile's admin.
 */
export function apiServerReady(
  entry: KubeconfigEntry,
  timeoutMs = 2000,
  path: string = '/readyz',
): Promise<true | string> {
  const b64 = (s: string) => Buffer.from(s, 'base64');
  return new Promise((resolve) => {
    const req = request(
      `${entry.server}${path}`,
      {
        ca: b64(entry.certificateAuthorityData),
        cert: b64(entry.clientCertificateData),
        key: b64(entry.clientKeyData),
        timeout: timeoutMs,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200 ? true : `API server ${path} answered ${res.statusCode}`);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => resolve(`API server: ${err.message}`));
    req.end();
  });
}
