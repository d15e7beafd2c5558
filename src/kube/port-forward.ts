import type * as k8s from '@kubernetes/client-node';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { MinilabError } from '../errors.js';

/** Where one connection goes: a pod's port, through the API server's portforward. */
export interface PodPort {
  api: k8s.PortForward;
  namespace: string;
  pod: string;
  port: number;
}

export interface LoopbackForward {
  url: string;
  /** Stops listening and ends the open connections. */
  close: () => void;
}

/**
 * A 127.0.0.1 listener forwarding each connection to a pod's port; `route` picks the pod afresh for
 * each connection, so a forward keeps working when the pods behind a Service are replaced. The
 * `minilab service` command and the dashboard both forward with this.
 */
export async function listenForward(route: () => Promise<PodPort>, localPort = 0): Promise<LoopbackForward> {
  const open = new Set<Socket>();
  const server = createServer((socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    void pipeToPod(socket, route);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new MinilabError('environment', `port ${localPort} on 127.0.0.1 is in use`, {
              hint: 'another program took it meanwhile; run the command again',
              cause: err,
            })
          : err,
      ),
    );
    server.listen(localPort, '127.0.0.1', resolve);
  });
  // A failed accept (out of file descriptors) costs that connection only, not the process.
  server.on('error', () => undefined);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.close();
      open.forEach((s) => s.destroy());
    },
  };
}

/**
 * Joins a local connection to a portforward websocket. Either end failing (a client resetting
 * the connection, such as a closed browser tab; a pod gone) ends this connection only: an error
 * event without a listener would end the whole process.
 */
async function pipeToPod(socket: Socket, route: () => Promise<PodPort>): Promise<void> {
  socket.on('error', () => socket.destroy());
  try {
    const to = await route();
    if (socket.destroyed) return;
    const ws = await to.api.portForward(to.namespace, to.pod, [to.port], socket, null, socket);
    // A function comes back only when retries are asked for, and none are.
    if (typeof ws === 'function') return;
    ws.on('error', () => socket.destroy());
    ws.on('close', () => socket.end());
    // The client may have gone while the websocket opened.
    if (socket.destroyed) ws.close();
    else socket.on('close', () => ws.close());
  } catch {
    socket.destroy();
  }
}
