import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MinilabError } from '../../src/errors.js';
import { engineAddress } from '../../src/providers/docker/client.js';

/** A certificate folder as `docker context` or docker-machine leaves one (the contents are stand-ins). */
async function certFolder(dir: string, files = ['ca.pem', 'cert.pem', 'key.pem']): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const f of files) await writeFile(join(dir, f), `${f} of ${dir}\n`);
  return dir;
}

test('DOCKER_HOST alone: a socket, or plain TCP as before', () => {
  assert.deepEqual(engineAddress({}), { socketPath: '/var/run/docker.sock' });
  assert.deepEqual(engineAddress({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' }), {
    socketPath: '/run/user/1000/docker.sock',
  });
  assert.deepEqual(engineAddress({ DOCKER_HOST: 'tcp://10.0.0.5:2375' }), {
    host: '10.0.0.5',
    port: 2375,
    protocol: 'http',
  });
  assert.throws(
    () => engineAddress({ DOCKER_HOST: 'ssh://me@host' }),
    (e: unknown) => e instanceof MinilabError && e.exitCode === 2,
  );
});

test('DOCKER_TLS_VERIFY: TLS with the CA, client certificate and key from DOCKER_CERT_PATH, verified', async () => {
  const root = await mkdtemp(join(tmpdir(), 'minilab-tls-'));
  try {
    const certs = await certFolder(join(root, 'machine'));
    const o = engineAddress({
      DOCKER_HOST: 'tcp://10.0.0.5:2376',
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: certs,
      HOME: join(root, 'home'),
    });
    assert.equal(o.protocol, 'https');
    assert.deepEqual([o.host, o.port], ['10.0.0.5', 2376]);
    assert.equal(String(o.ca), `ca.pem of ${certs}\n`);
    assert.equal(String(o.cert), `cert.pem of ${certs}\n`);
    assert.equal(String(o.key), `key.pem of ${certs}\n`);
    assert.equal(o.agent, undefined, "Node's default agent: the engine's certificate is checked");
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('without DOCKER_CERT_PATH the certificates come from ~/.docker, as the docker CLI reads them', async () => {
  const root = await mkdtemp(join(tmpdir(), 'minilab-tls-'));
  try {
    const home = join(root, 'home');
    await certFolder(join(home, '.docker'));
    const o = engineAddress({ DOCKER_HOST: 'tcp://engine:2376', DOCKER_TLS_VERIFY: 'yes', HOME: home });
    assert.equal(String(o.ca), `ca.pem of ${join(home, '.docker')}\n`);
    assert.equal(String(o.cert), `cert.pem of ${join(home, '.docker')}\n`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('DOCKER_TLS without verification: TLS, the client certificate sent, the engine not checked', async () => {
  const root = await mkdtemp(join(tmpdir(), 'minilab-tls-'));
  try {
    const certs = await certFolder(join(root, 'c'), ['cert.pem', 'key.pem']);
    const o = engineAddress({ DOCKER_HOST: 'tcp://engine:2376', DOCKER_TLS: '1', DOCKER_CERT_PATH: certs });
    assert.equal(o.protocol, 'https');
    assert.equal(o.ca, undefined);
    assert.equal(String(o.key), `key.pem of ${certs}\n`);
    assert.equal(o.agent?.options.rejectUnauthorized, false);
    // An empty DOCKER_TLS_VERIFY counts as unset, as in the docker CLI.
    const plain = engineAddress({
      DOCKER_HOST: 'tcp://engine:2375',
      DOCKER_TLS_VERIFY: '',
      DOCKER_CERT_PATH: certs,
    });
    assert.equal(plain.protocol, 'http');
    assert.equal(plain.cert, undefined);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('DOCKER_TLS_VERIFY with no CA to verify with is a one-line environment error naming the file', async () => {
  const root = await mkdtemp(join(tmpdir(), 'minilab-tls-'));
  try {
    const certs = await certFolder(join(root, 'c'), ['cert.pem', 'key.pem']);
    assert.throws(
      () =>
        engineAddress({ DOCKER_HOST: 'tcp://engine:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs }),
      (e: unknown) => {
        assert.ok(e instanceof MinilabError);
        assert.equal(e.exitCode, 3);
        assert.match(e.message, new RegExp(`^cannot read ${join(certs, 'ca.pem')} for TLS`));
        assert.match(e.hint ?? '', /DOCKER_CERT_PATH/);
        return true;
      },
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
