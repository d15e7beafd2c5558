import type { Command, Option } from 'commander';
import { usageError } from '../../errors.js';
import type { Context } from '../context.js';

interface CommandSpec {
  path: string[];
  subcommands: string[];
  options: string[];
}

/** Walks the program: every command path with its subcommands and option flags. */
function commandSpecs(cmd: Command, path: string[] = []): CommandSpec[] {
  const visible = cmd.commands.filter((c) => c.name() !== 'help');
  const options = cmd.options
    .filter((o: Option) => !o.hidden)
    .flatMap((o: Option) => [o.short, o.long].filter((f): f is string => Boolean(f)));
  return [
    { path, subcommands: visible.map((c) => c.name()), options: [...options, '--help'] },
    ...visible.flatMap((c) => commandSpecs(c, [...path, c.name()])),
  ];
}

const PROFILES = 'ls "${MINILAB_HOME:-$HOME/.minilab}/profiles" 2>/dev/null';

function bash(program: Command): string {
  const specs = commandSpecs(program);
  const globals = specs[0]!.options.join(' ');
  const cases = specs
    .map(
      (s) =>
        `    "${s.path.join(' ')}") words="${[...s.subcommands, ...s.options, ...(s.path.length ? globals.split(' ') : [])].join(' ')}" ;;`,
    )
    .join('\n');
  return `# minilab bash completion: source <(minilab completion bash)
_minilab() {
  local cur prev path="" i w words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [ "$prev" = "-p" ] || [ "$prev" = "--profile" ]; then
    COMPREPLY=( $(compgen -W "$(${PROFILES})" -- "$cur") )
    return
  fi
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in
      -p|--profile|-o|--output|--kubernetes-version|--cpus|--memory|--ports|--wait|--component|--tail|--export|-n|--namespace|--port|--node|--archive) i=$((i + 1)) ;;
      -*) ;;
      *) if [ -z "$path" ]; then path="$w"; else path="$path $w"; fi ;;
    esac
  done
  case "$path" in
${cases}
    *) words="" ;;
  esac
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
complete -F _minilab minilab
`;
}

function zsh(program: Command): string {
  return `#compdef minilab
# minilab zsh completion: source <(minilab completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bash(program)}`;
}

function fish(program: Command): string {
  const specs = commandSpecs(program);
  const lines = ['# minilab fish completion: minilab completion fish | source', 'complete -c minilab -f'];
  const profiles =
    'ls (set -q MINILAB_HOME; and echo $MINILAB_HOME; or echo ~/.minilab)/profiles 2>/dev/null';
  lines.push(`complete -c minilab -s p -l profile -x -a '(${profiles})' -d 'profile'`);
  for (const s of specs) {
    const cond =
      s.path.length === 0
        ? '__fish_use_subcommand'
        : `__fish_seen_subcommand_from ${s.path[s.path.length - 1]}`;
    for (const sub of s.subcommands) lines.push(`complete -c minilab -n '${cond}' -a ${sub}`);
    if (s.path.length > 0) {
      for (const opt of s.options.filter((o) => o.startsWith('--') && o !== '--profile')) {
        lines.push(`complete -c minilab -n '${cond}' -l ${opt.slice(2)}`);
      }
    }
  }
  return lines.join('\n') + '\n';
}

export function registerCompletion(program: Command, ctx: Context): void {
  program
    .command('completion')
    .description('print a shell completion script (bash, zsh or fish), profile names included')
    .argument('<shell>', 'bash, zsh or fish')
    .action((shell: string) => {
      const render = { bash, zsh, fish }[shell as 'bash' | 'zsh' | 'fish'];
      if (!render) throw usageError(`unsupported shell "${shell}"`, 'use bash, zsh or fish');
      ctx.stdout.write(render(program));
    });
}
