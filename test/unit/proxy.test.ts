import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseClusterConfig } from '../../src/config/cluster-config.js';
import { addNode } from '../../src/lifecycle/add-node.js';
import { planCluster } from '../../src/lifecycle/plan.js';
import { start } from '../../src/lifecycle/start.js';
import { proxyEnv, withNoProxy } from '../../src/providers/proxy.js';
import { projectRoot } from '../../src/version.js';
import { startRequest, withFixture } from '../helpers/lifecycle-fixture.js';

const entries = (list: string | undefined) => (list ?? '').split(',');

/** Every node and the load balancer of a start with three control planes and a worker. */
const HA_NAMES = [
  'demo-control-plane',
  'demo-control-plane2',
  'demo-control-plane3',
  'demo-worker1',
  'demo-external-load-balancer',
];

function assertListed(noProxy: string | undefined, wanted: readonly string[]): void {
  const list = entries(noProxy);
  for (const w of wanted) assert.ok(list.includes(w), `NO_PROXY has ${w}: ${noProxy}`);
  assert.equal(new Set(list).size, list.length, `no entry twice: ${noProxy}`);
}

test('without a proxy nodes get no proxy settings; NO_PROXY alone is passed as it is', () => {
  assert.deepEqual(proxyEnv({ PATH: '/bin' }, ['demo-control-plane']), {});
  assert.deepEqual(proxyEnv({ no_proxy: 'corp.example' }, ['demo-control-plane']), {
    NO_PROXY: 'corp.example',
    no_proxy: 'corp.example',
  });
});

test('each proxy variable is read in upper case, else in lower case, and written in both spellings', () => {
  const env = proxyEnv(
    { http_proxy: 'http://lower:3128', HTTPS_PROXY: 'http://upper:3128', https_proxy: 'http://ignored:1' },
    [],
  );
  assert.equal(env.HTTP_PROXY, 'http://lower:3128');
  assert.equal(env.http_proxy, 'http://lower:3128');
  assert.equal(env.HTTPS_PROXY, 'http://upper:3128');
  assert.equal(env.https_proxy, 'http://upper:3128');
  assert.equal(env.no_proxy, env.NO_PROXY);
  // An empty upper-case variable counts as unset, as kind reads it.
  assert.equal(proxyEnv({ HTTP_PROXY: '', http_proxy: 'http://p:1' }, []).HTTP_PROXY, 'http://p:1');
});

test("a start's NO_PROXY keeps the user's entries first and adds every node, the load balancer, the cluster's ranges and DNS domains, each once", () => {
  const config = parseClusterConfig(
    `kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
  - role: control-plane
  - role: control-plane
  - role: worker
networking:
  podSubnet: 10.10.0.0/16
  serviceSubnet: 10.20.0.0/16
`,
    'cluster.yaml',
  );
  const plan = planCluster(startRequest({ nodes: 4, controlPlanes: 3, config }), {
    apiServerPort: 7443,
    env: {
      HTTPS_PROXY: 'http://proxy.corp:3128',
      NO_PROXY: ' corp.example,10.0.0.0/8, corp.example,localhost',
    },
    labels: {},
  });
  const list = entries(plan.env.NO_PROXY);
  assert.deepEqual(list.slice(0, 3), ['corp.example', '10.0.0.0/8', 'localhost'], "the user's entries first");
  assertListed(plan.env.NO_PROXY, [
    ...HA_NAMES,
    '10.20.0.0/16',
    '10.10.0.0/16',
    '127.0.0.1',
    '.svc',
    '.svc.cluster',
    '.cluster.local',
  ]);
  assert.equal(plan.env.no_proxy, plan.env.NO_PROXY);
  assert.equal(plan.env.https_proxy, 'http://proxy.corp:3128');
});

test("the network's subnets join NO_PROXY at the end, each once; nothing changes without a proxy", () => {
  const env = proxyEnv({ HTTP_PROXY: 'http://p:3128', NO_PROXY: '192.168.1.0/24' }, ['demo-control-plane']);
  const withNetwork = withNoProxy(env, ['192.168.1.0/24', '172.30.0.0/16', 'fd00:1::/64']);
  const list = entries(withNetwork.NO_PROXY);
  assert.equal(list[0], '192.168.1.0/24');
  assert.deepEqual(list.slice(-2), ['172.30.0.0/16', 'fd00:1::/64']);
  assert.equal(list.filter((e) => e === '192.168.1.0/24').length, 1);
  assert.equal(withNetwork.no_proxy, withNetwork.NO_PROXY);
  assert.equal(withNetwork.HTTP_PROXY, 'http://p:3128');
  const plain = { NO_PROXY: 'corp.example', no_proxy: 'corp.example' };
  assert.deepEqual(withNoProxy(plain, ['172.30.0.0/16']), plain);
});

test("node add behind a proxy gives the new node a NO_PROXY naming every node, itself and the cluster's ranges; without one it reads nothing", async () => {
  await withFixture(async (f) => {
    await start(f.ctx, startRequest({ nodes: 3, controlPlanes: 3 }));
    f.ctx.env.HTTPS_PROXY = 'http://proxy.corp:3128';
    f.world.calls.length = 0;
    await addNode(f.ctx, 'demo');
    const plan = f.world.plans.at(-1);
    // The fake control plane's manifests name no ranges: the defaults stand in.
    assertListed(plan?.env.NO_PROXY, [...HA_NAMES, '10.96.0.0/16', '10.244.0.0/16']);
    const beforeProvision = f.world.calls.slice(0, f.world.calls.indexOf('provision'));
    assert.equal(
      beforeProvision.filter((c) => c === 'read-service-subnet demo-control-plane').length,
      1,
      'the ranges are read once, before the node is made: for NO_PROXY and for the join',
    );

    delete f.ctx.env.HTTPS_PROXY;
    f.world.calls.length = 0;
    await addNode(f.ctx, 'demo');
    assert.deepEqual(f.world.plans.at(-1)?.env, {});
    assert.equal(
      f.world.calls.filter((c) => c.startsWith('read-service-subnet')).length,
      1,
      'the join reads its range only',
    );
  });
});

/**
 * systemd 257's reading of DefaultEnvironment= in a system.conf drop-in, rule by rule: the
 * configuration line (conf-parser.c: a line ending in an unescaped backslash continues, comments,
 * sections, `key=value` stripped), config_parse_environ (words split by extract_first_word with
 * EXTRACT_CUNESCAPE|EXTRACT_UNQUOTE; a word that fails to split drops the rest of the line; each
 * word's % specifiers expanded, a word with an unknown one dropped; an invalid assignment
 * dropped; a later assignment replaces an earlier one). Bytes, as systemd reads them.
 */
function systemdDefaultEnvironment(conf: string): Record<string, string> {
  const env: Record<string, string> = {};
  let section = '';
  let pending = '';
  for (const raw of conf.split('\n')) {
    let line = pending + raw;
    pending = '';
    let escaped = false;
    for (const c of line) escaped = escaped ? false : c === '\\';
    if (escaped) {
      pending = `${line.slice(0, -1)} `;
      continue;
    }
    line = line.trim();
    if (!line || '#;'.includes(line[0] as string)) continue;
    if (line.startsWith('[')) {
      section = line.slice(1, line.indexOf(']'));
      continue;
    }
    const eq = line.indexOf('=');
    if (section !== 'Manager' || eq < 0 || line.slice(0, eq).trim() !== 'DefaultEnvironment') continue;
    const rvalue = line.slice(eq + 1).trim();
    if (!rvalue) {
      for (const k of Object.keys(env)) delete env[k];
      continue;
    }
    for (const word of extractWords(Buffer.from(rvalue))) {
      const resolved = expandSpecifiers(word);
      if (resolved === undefined) continue;
      const text = new TextDecoder('utf-8', { fatal: true }).decode(resolved);
      const at = text.indexOf('=');
      if (at < 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(text.slice(0, at))) continue;
      env[text.slice(0, at)] = text.slice(at + 1);
    }
  }
  return env;
}

const WHITESPACE = [0x20, 0x09, 0x0a, 0x0d];

/** extract_first_word(EXTRACT_CUNESCAPE|EXTRACT_UNQUOTE), repeated; stops at the first error. */
function extractWords(p: Buffer): Buffer[] {
  const words: Buffer[] = [];
  let i = 0;
  for (;;) {
    while (i < p.length && WHITESPACE.includes(p[i] as number)) i++;
    if (i >= p.length) return words;
    const word: number[] = [];
    let quote = 0;
    for (;;) {
      const c = p[i];
      if (c === undefined) {
        if (quote) return words; // unbalanced quotes: "Invalid syntax, ignoring"
        break;
      }
      if (c === 0x5c) {
        const decoded = cunescapeOne(p.subarray(i + 1));
        if (!decoded) return words;
        word.push(...decoded.bytes);
        i += 1 + decoded.length;
        continue;
      }
      i++;
      if (quote) {
        if (c === quote) quote = 0;
        else word.push(c);
      } else if (c === 0x22 || c === 0x27) {
        quote = c;
      } else if (WHITESPACE.includes(c)) {
        break;
      } else {
        word.push(c);
      }
    }
    words.push(Buffer.from(word));
  }
}

/** cunescape_one: the escape after a backslash, as bytes, and how many bytes it took; undefined when invalid. */
function cunescapeOne(p: Buffer): { bytes: number[]; length: number } | undefined {
  const simple: Record<string, number> = {
    a: 7,
    b: 8,
    f: 12,
    n: 10,
    r: 13,
    t: 9,
    v: 11,
    '\\': 92,
    '"': 34,
    "'": 39,
    s: 32,
  };
  const c = String.fromCharCode(p[0] ?? 0);
  if (p.length === 0) return undefined;
  if (c in simple) return { bytes: [simple[c] as number], length: 1 };
  const hex = (n: number) => {
    const digits = p.subarray(1, 1 + n).toString('latin1');
    return digits.length === n && /^[0-9a-fA-F]+$/.test(digits) ? parseInt(digits, 16) : undefined;
  };
  const codePoint = (n: number) => {
    const v = hex(n);
    return v === undefined || v === 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)
      ? undefined
      : { bytes: [...Buffer.from(String.fromCodePoint(v))], length: 1 + n };
  };
  if (c === 'x') {
    const v = hex(2);
    return v === undefined || v === 0 ? undefined : { bytes: [v], length: 3 };
  }
  if (c === 'u') return codePoint(4);
  if (c === 'U') return codePoint(8);
  const octal = p.subarray(0, 3).toString('latin1');
  if (/^[0-7]{3}$/.test(octal)) {
    const v = parseInt(octal, 8);
    return v === 0 ? undefined : { bytes: [...Buffer.from(String.fromCodePoint(v))], length: 3 };
  }
  return undefined;
}

/** specifier_printf with the manager's table: %% is %, a known specifier expands, an unknown one fails. */
function expandSpecifiers(word: Buffer): Buffer | undefined {
  const known = 'aAbBHlmMoqTvVwWgGuUhs';
  const out: number[] = [];
  for (let i = 0; i < word.length; i++) {
    const c = word[i] as number;
    if (c !== 0x25) {
      out.push(c);
      continue;
    }
    const next = word[i + 1];
    i++;
    if (next === undefined) out.push(0x25);
    else if (next === 0x25) out.push(0x25);
    else if (known.includes(String.fromCharCode(next)))
      out.push(...Buffer.from(`<specifier ${String.fromCharCode(next)}>`));
    else return undefined;
  }
  return Buffer.from(out);
}

/**
 * The proxy drop-in the node entrypoint writes for this container environment: the node image's
 * own script, which reads only its environment and prints to stdout.
 */
function nodeProxyConf(env: Record<string, string>): string {
  const script = join(projectRoot, 'images', 'node', 'files', 'usr', 'local', 'bin', 'minilab-proxy-conf');
  const r = spawnSync(script, [], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('the model of systemd reads what the old unescaped line wrote wrongly (a % specifier drops the proxy, \\b becomes a backspace)', () => {
  const conf = '[Manager]\nDefaultEnvironment="HTTP_PROXY=http://u:p%40ss@proxy:3128" "NO_PROXY=a\\b"\n';
  assert.deepEqual(systemdDefaultEnvironment(conf), { NO_PROXY: 'a\u0008' });
});

test('the node image writes proxy values so systemd reads them back intact: spaces, quotes, backslashes, %, control characters, UTF-8', () => {
  const values = {
    HTTP_PROXY: 'http://user:p%40ss%25@proxy.corp:3128',
    https_proxy: 'http://us"er:p\\w d@proxy.corp:3129/%h%%',
    NO_PROXY:
      'a b,"quoted",\'single\',back\\slash,\\x41,\\n,100%,%%,%h,$HOME,${X},tab\there,new\nline,ünïcödé,trailing\\',
  };
  const conf = nodeProxyConf(values);
  assert.doesNotMatch(
    conf.trimEnd(),
    /\n(?!DefaultEnvironment=)/,
    'one DefaultEnvironment line after the section',
  );
  assert.deepEqual(systemdDefaultEnvironment(conf), {
    HTTP_PROXY: values.HTTP_PROXY,
    http_proxy: values.HTTP_PROXY,
    HTTPS_PROXY: values.https_proxy,
    https_proxy: values.https_proxy,
    NO_PROXY: values.NO_PROXY,
    no_proxy: values.NO_PROXY,
  });
});

test('the node image writes no proxy drop-in without proxy variables, and prefers the upper-case spelling', () => {
  assert.equal(nodeProxyConf({}), '');
  assert.deepEqual(
    systemdDefaultEnvironment(nodeProxyConf({ HTTP_PROXY: 'http://a:1', http_proxy: 'http://b:2' })),
    {
      HTTP_PROXY: 'http://a:1',
      http_proxy: 'http://a:1',
    },
  );
});
