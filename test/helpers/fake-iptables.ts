import assert from 'node:assert/strict';
import type { CommandRunner } from '../../src/providers/iptables.js';

interface FakeChain {
  /** A built-in chain's policy; undefined for a user-defined one. */
  policy?: string;
  rules: string[][];
}

/**
 * A fake iptables: chains of tables as lists of rules, answering -S (spelled back as iptables
 * does: `/32`, values with a colon quoted; a missing chain exits 1), -C, -I (at the top), -D (the
 * first match). Every call is recorded without its table; `fail` makes calls whose arguments
 * contain it exit with code 4. It starts with raw PREROUTING (policy ACCEPT) unless told other chains.
 */
export class FakeIptables {
  readonly chains = new Map<string, FakeChain>();
  readonly calls: string[] = [];
  fail?: string;

  constructor(chains: Record<string, string | undefined> = { 'raw PREROUTING': 'ACCEPT' }) {
    for (const [name, policy] of Object.entries(chains)) this.chains.set(name, { policy, rules: [] });
  }

  /** raw PREROUTING's rules, the loopback guard's chain. */
  get chain(): string[][] {
    return this.rulesOf('raw PREROUTING');
  }

  rulesOf(name: string): string[][] {
    const c = this.chains.get(name);
    assert.ok(c, `no chain ${name} in the fake`);
    return c.rules;
  }

  readonly run: CommandRunner = async (file, args) => {
    assert.equal(file, 'iptables');
    assert.deepEqual(args.slice(0, 2), ['-w', '-t'], 'every call waits for the lock and names its table');
    const table = args[2] as string;
    const [op, name, ...rule] = args.slice(3) as [string, string, ...string[]];
    this.calls.push([op, name, ...rule].join(' '));
    if (this.fail && args.some((a) => a.includes(this.fail as string)))
      return { exitCode: 4, stdout: '', stderr: 'iptables: Resource problem.' };
    const chain = this.chains.get(`${table} ${name}`);
    if (!chain) return { exitCode: 1, stdout: '', stderr: 'iptables: No chain/target/match by that name.' };
    const at = () => chain.rules.findIndex((r) => r.join(' ') === rule.join(' '));
    switch (op) {
      case '-S': {
        const head = chain.policy ? `-P ${name} ${chain.policy}` : `-N ${name}`;
        const lines = [head, ...chain.rules.map((r) => `-A ${name} ${spell(r)}`)];
        return { exitCode: 0, stdout: lines.join('\n') + '\n', stderr: '' };
      }
      case '-C':
        return { exitCode: at() >= 0 ? 0 : 1, stdout: '', stderr: '' };
      case '-I':
        chain.rules.unshift(rule);
        return { exitCode: 0, stdout: '', stderr: '' };
      case '-D': {
        const i = at();
        if (i < 0) return { exitCode: 1, stdout: '', stderr: 'iptables: Bad rule.' };
        chain.rules.splice(i, 1);
        return { exitCode: 0, stdout: '', stderr: '' };
      }
    }
    throw new Error(`unexpected iptables ${args.join(' ')}`);
  };

  /** A chain as `-S` lists it (raw PREROUTING unless named). */
  listed(name = 'raw PREROUTING'): string[] {
    return this.rulesOf(name).map(spell);
  }
  changes(): string[] {
    return this.calls.filter((c) => c.startsWith('-I') || c.startsWith('-D'));
  }
}

/** As iptables -S writes a rule: a comment quoted unless made only of letters, digits, "_" and "-". */
export const spell = (rule: string[]) =>
  rule.map((a, i) => (rule[i - 1] === '--comment' && !/^[\w-]+$/.test(a) ? `"${a}"` : a)).join(' ');
