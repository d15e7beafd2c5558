import type { KubeconfigEntry } from '../../src/kube/kubeconfig.js';

/** A profile's kubeconfig entry with placeholder credentials, for tests that only move entries around. */
export const sampleEntry = (name: string, port = 40000): KubeconfigEntry => ({
  name,
  server: `https://127.0.0.1:${port}`,
  certificateAuthorityData: 'Q0E=',
  clientCertificateData: 'Q0VSVA==',
  clientKeyData: 'S0VZ',
});
