import { readFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';

/** The two ends of a TCP connection accepted by the dashboard. */
export interface Connection {
  remoteAddress?: string;
  remotePort?: number;
  localAddress?: string;
  localPort?: number;
}

/** Reads one of the kernel's socket tables (/proc/net/tcp or tcp6); undefined where there is none. */
export type SocketTableReader = (name: 'tcp' | 'tcp6') => Promise<string | undefined>;

const readProcNet: SocketTableReader = (name) => readFile(`/proc/net/${name}`, 'utf8').catch(() => undefined);

/** An IPv4 address as /proc/net/tcp prints it: 32 bits in host byte order, either endianness. */
function hexForms(address: string): string[] {
  const bytes = address.split('.').map((b) => Number(b).toString(16).toUpperCase().padStart(2, '0'));
  return [[...bytes].reverse().join(''), bytes.join('')];
}

/** The prefixes /proc/net/tcp6 prints before the IPv4 part of an IPv4-mapped address (::ffff:a.b.c.d). */
const V4_MAPPED = ['0000000000000000FFFF0000', '00000000000000000000FFFF'];

function sameEndpoint(field: string, address: string, port: number): boolean {
  const [hex = '', portHex = ''] = field.split(':');
  if (parseInt(portHex, 16) !== port) return false;
  const v4 = hex.length === 32 && V4_MAPPED.includes(hex.slice(0, 24)) ? hex.slice(24) : hex;
  return hexForms(address).includes(v4.toUpperCase());
}

const ESTABLISHED = '01';

/**
 * The user id that owns the client end of a loopback TCP connection to this process, read from the
 * kernel's socket table as identd does (Linux only; undefined elsewhere or when not found). The
 * client's socket is the row whose local end is the connection's remote end, and the other way round.
 */
export async function loopbackPeerUid(
  connection: Connection,
  read: SocketTableReader = readProcNet,
): Promise<number | undefined> {
  const { remoteAddress, remotePort, localAddress, localPort } = connection;
  const client = remoteAddress?.replace(/^::ffff:/, '');
  const server = localAddress?.replace(/^::ffff:/, '');
  if (!client || !server || !isIPv4(client) || !isIPv4(server) || !remotePort || !localPort) return undefined;
  for (const name of ['tcp', 'tcp6'] as const) {
    for (const line of ((await read(name)) ?? '').split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid ...
      const f = line.trim().split(/\s+/);
      if (
        f[3] === ESTABLISHED &&
        sameEndpoint(f[1] ?? '', client, remotePort) &&
        sameEndpoint(f[2] ?? '', server, localPort)
      ) {
        return Number(f[7]);
      }
    }
  }
  return undefined;
}

/**
 * Whether the other end of a loopback connection is a process of the user running minilab. Refused
 * where it cannot be told (no /proc/net/tcp: not Linux).
 */
export async function peerIsThisUser(
  connection: Connection,
  uid: number | undefined = process.getuid?.(),
  read?: SocketTableReader,
): Promise<boolean> {
  return uid !== undefined && (await loopbackPeerUid(connection, read)) === uid;
}
