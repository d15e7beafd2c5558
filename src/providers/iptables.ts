import { execFile } from 'node:child_process';

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a program with its arguments (no shell); a program that cannot be started at all rejects. */
export type CommandRunner = (file: string, args: readonly string[]) => Promise<CommandResult>;

export const runCommand: CommandRunner = (file, args) =>
  new Promise((resolve, reject) => {
    execFile(file, [...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      // A number is the program's exit code; anything else (ENOENT, killed at the deadline) is not an answer.
      if (err && typeof err.code !== 'number') reject(err);
      else resolve({ exitCode: err ? Number(err.code) : 0, stdout, stderr });
    });
  });

/** The comment every rule minilab writes for a profile carries. */
export const ruleTag = (profile: string) => `minilab:${profile}`;

/** The arguments that tag a rule as the profile's. */
export const tagArgs = (profile: string) => ['-m', 'comment', '--comment', ruleTag(profile)];

/** Splits a line of `iptables -S` into arguments (values with other characters come quoted). */
export function splitRule(line: string): string[] {
  const args: string[] = [];
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) {
    args.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] as string));
  }
  return args;
}

/**
 * What makes a rule the rule it is, however iptables spells it back (`/32`, the implicit
 * `-m tcp`, the order of its matches): the values of the flags minilab's rules use.
 */
export function ruleKey(args: readonly string[]): string {
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    if (i < 0) return '';
    return `${args[i - 1] === '!' ? '!' : ''}${args[i + 1] ?? ''}`;
  };
  return [
    value('-d').replace(/\/32$/, ''),
    value('-i'),
    value('-o'),
    value('-p'),
    value('--dport'),
    value('--ctstate'),
    value('-j'),
  ].join(' ');
}

/**
 * One chain of one iptables table, and the rules minilab tagged in it. Every change goes through
 * iptables itself (`-C` to check, `-I`, `-D`), with `-w` so it waits for the xtables lock instead
 * of failing next to the engine, which writes its own rules meanwhile.
 */
export class Chain {
  /** The chain as last listed, until this object changes it (exists, policy and tagged share one -S). */
  private listed?: Promise<string[][] | undefined>;

  constructor(
    private readonly run: CommandRunner,
    readonly table: string,
    readonly chain: string,
  ) {}

  private iptables(args: readonly string[]): Promise<CommandResult> {
    return this.run('iptables', ['-w', '-t', this.table, ...args]);
  }

  private async must(args: readonly string[]): Promise<void> {
    this.listed = undefined;
    const r = await this.iptables(args);
    if (r.exitCode !== 0) {
      throw new Error(
        `iptables -t ${this.table} ${args.join(' ')}: ${r.stderr.trim() || `exit code ${r.exitCode}`}`,
      );
    }
  }

  /** The chain as `-S` lists it; undefined when the table has no such chain. */
  private listing(): Promise<string[][] | undefined> {
    if (!this.listed) {
      const listed = this.list();
      this.listed = listed;
      // A failed listing is not kept: the next question asks iptables again.
      listed.catch(() => {
        if (this.listed === listed) this.listed = undefined;
      });
    }
    return this.listed;
  }

  private async list(): Promise<string[][] | undefined> {
    const r = await this.iptables(['-S', this.chain]);
    if (r.exitCode === 1 && /no chain/i.test(r.stderr)) return undefined;
    if (r.exitCode !== 0) throw new Error(`iptables -t ${this.table} -S ${this.chain}: ${r.stderr.trim()}`);
    return r.stdout.split('\n').filter(Boolean).map(splitRule);
  }

  /** Whether the chain exists in its table. */
  async exists(): Promise<boolean> {
    return (await this.listing()) !== undefined;
  }

  /** A built-in chain's policy (ACCEPT, DROP); undefined for a user-defined or missing chain. */
  async policy(): Promise<string | undefined> {
    const p = (await this.listing())?.find((args) => args[0] === '-P' && args[1] === this.chain);
    return p?.[2];
  }

  /** The rules tagged with the profile's comment, as `-S` prints them (arguments after the chain's name). */
  async tagged(profile: string): Promise<string[][]> {
    const tag = ruleTag(profile);
    return ((await this.listing()) ?? [])
      .filter((args) => args[0] === '-A' && args[1] === this.chain)
      .map((args) => args.slice(2))
      .filter((args) => args.some((a, i) => a === tag && args[i - 1] === '--comment'));
  }

  /** Whether the rule stands in the chain (iptables -C: 0 yes, 1 no, anything else failed). */
  async has(rule: readonly string[]): Promise<boolean> {
    const r = await this.iptables(['-C', this.chain, ...rule]);
    if (r.exitCode === 0 || r.exitCode === 1) return r.exitCode === 0;
    throw new Error(
      `iptables -t ${this.table} -C ${this.chain}: ${r.stderr.trim() || `exit code ${r.exitCode}`}`,
    );
  }

  /** Puts the rule first in the chain, ahead of anything that could decide the packet before it. */
  insert(rule: readonly string[]): Promise<void> {
    return this.must(['-I', this.chain, ...rule]);
  }

  /** Deletes the first rule that matches (-D). */
  delete(rule: readonly string[]): Promise<void> {
    return this.must(['-D', this.chain, ...rule]);
  }

  /**
   * Deletes the profile's tagged rules that are not among `wanted` (compared by ruleKey), and
   * second copies of those that are. Someone else's rules are never touched.
   */
  async prune(profile: string, wanted: readonly (readonly string[])[]): Promise<void> {
    const keep = new Set(wanted.map(ruleKey));
    const seen = new Set<string>();
    for (const rule of await this.tagged(profile)) {
      const key = ruleKey(rule);
      // -D takes the first match, which is the same rule.
      if (!keep.has(key) || seen.has(key)) await this.delete(rule);
      seen.add(key);
    }
  }
}
