import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

// The hashing thread of hash-thread.ts. Messages: [op, id, argument]; answers in the same order.
// Every update is acknowledged with its byte count (the sender bounds what is in flight) and its chunks.

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
      const chunks = argument as Uint8Array[];
      for (const chunk of chunks) {
        hash.update(chunk);
        bytes += chunk.byteLength;
      }
      // The chunks go back with the answer: freed by the main thread's frequent collections, not
      // by this thread's rare ones (which let ~60 MiB of hashed chunks pile up here).
      parentPort!.postMessage(['updated', bytes, chunks], chunks.map((chunk) => chunk.buffer as ArrayBuffer));
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
