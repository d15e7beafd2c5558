import type { Readable, Writable } from 'node:stream';
import type { Node } from '../providers/types.js';

export interface Terminal {
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable;
}

/**
 * A shell or command in a node. With a terminal on both ends it gets a TTY (raw mode, resizes,
 * Ctrl-C delivered remotely); otherwise stdin, stdout and stderr are streamed as they are.
 * Resolves to the remote exit code.
 */
export async function nodeSession(node: Node, command: string[], term: Terminal): Promise<number> {
  const interactive = Boolean(term.stdin.isTTY && term.stdout.isTTY);
  const cmd = command.length > 0 ? command : ['bash', '-l'];
  if (interactive) {
    return node.execInteractive(cmd, {
      stdin: term.stdin as NodeJS.ReadStream,
      stdout: term.stdout as NodeJS.WriteStream,
    });
  }
  return node.execStream(cmd, { stdin: term.stdin, stdout: term.stdout, stderr: term.stderr });
}
