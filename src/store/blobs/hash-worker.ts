import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

// The hashing thread of hash-thread.ts. Messages: [op, id, argument]; answers in the same order.
// Every update is acknowledged with its byte count (the sender bounds what is in flight).

const hashes = new Map<number, Hash>();

parentPort!.on('message', ([op, id, argument]: [string, number, unknown]) => {
  switch (op) {
    case 'new':
      hashes.set(id, createHash(argument as string));
      break;
    case 'copy':
      hashes.set(argument as number, hashes.get(id)!.copy());
      break;
    case 'update': {
      const hash = hashes.get(id)!;
      let bytes = 0;
      for (const chunk of argument as Uint8Array[]) {
        hash.update(chunk);
        bytes += chunk.byteLength;
      }
      parentPort!.postMessage(['updated', bytes]);
      break;
    }
    case 'digest':
      parentPort!.postMessage(['digest', hashes.get(id)!.copy().digest('hex')]);
      break;
    case 'drop':
      hashes.delete(id);
      break;
  }
});
