import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ListenerConfig } from '../config/types.js';

// Binding a listener, with a failure that says which listener and why in an operator's words.

const hints: Record<string, string> = {
  EADDRINUSE: 'another process is listening there',
  EACCES: 'ports below 1024 need root, or cap_net_bind_service on the node binary (see README, "setcap")',
  EADDRNOTAVAIL: 'no network interface of this machine has that address',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve (the resolver did not answer)',
};

/** `where` names it in messages: its listeners[] index, or the config key that defines it. */
export function listen(server: Server, listener: Pick<ListenerConfig, 'address' | 'port'>, where: number | string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => {
      const code = error.code ?? error.message;
      const hint = hints[code];
      const name = typeof where === 'number' ? `listeners[${where}]` : where;
      reject(new Error(`cannot listen on ${listener.address}:${listener.port} (${name}): ${code}${hint ? `, ${hint}` : ''}`));
    };
    server.once('error', failed);
    server.listen(listener.port, listener.address, () => {
      server.off('error', failed);
      resolve(server.address() as AddressInfo);
    });
  });
}

export function urlOf(info: AddressInfo, tls: boolean): string {
  const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
  return `${tls ? 'https' : 'http'}://${host}:${info.port}`;
}
