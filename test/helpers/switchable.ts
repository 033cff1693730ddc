import { connect, createServer, type Server, type Socket } from 'node:net';

// A TCP pass-through to a server (an object store, PostgreSQL) that can be switched:
//   forward  passes bytes both ways;
//   silent   accepts connections and never answers (open ones are cut, so that each request
//            meets the new state);
//   stalled  a network partition: open connections stay open, but nothing more passes either
//            way, and new ones are accepted and never answered.

export type PassMode = 'forward' | 'silent' | 'stalled';

export interface Switchable {
  url: string;
  port: number;
  mode: PassMode;
  close(): Promise<void>;
}

export async function switchable(endpoint: string): Promise<Switchable> {
  const target = new URL(endpoint);
  const pairs = new Map<Socket, Socket | null>();
  let mode: PassMode = 'forward';
  const server: Server = createServer((socket) => {
    pairs.set(socket, null);
    socket.on('close', () => pairs.delete(socket));
    socket.on('error', () => undefined);
    if (mode !== 'forward') return;
    const onward = connect(Number(target.port), target.hostname);
    pairs.set(socket, onward);
    socket.pipe(onward).pipe(socket);
    socket.on('error', () => onward.destroy());
    socket.on('close', () => onward.destroy());
    onward.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get mode() { return mode; },
    set mode(value) {
      if (value === mode) return;
      mode = value;
      for (const [socket, onward] of pairs) {
        if (value !== 'stalled') {
          socket.destroy();
        } else if (onward) {
          socket.unpipe(onward);
          onward.unpipe(socket);
          socket.pause();
          onward.pause();
        }
      }
    },
    async close() {
      for (const socket of pairs.keys()) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
