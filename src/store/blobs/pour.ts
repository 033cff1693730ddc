import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

/**
 * Pipes `source` into `sink` until both are done. Unlike stream.pipeline, a sink that fails (a
 * full disk) does not destroy the source: the rest of it is read and dropped, so an HTTP client
 * still sending its body gets the error answer instead of a reset connection.
 */
export async function pour(source: Readable, sink: Writable): Promise<void> {
  const gone = abandoned(source);
  if (gone) {
    sink.destroy();
    throw gone;
  }
  const onSourceError = (error: Error) => sink.destroy(error);
  source.once('error', onSourceError);
  source.pipe(sink);
  try {
    await finished(sink);
  } catch (error) {
    source.unpipe(sink);
    source.off('error', onSourceError);
    source.on('error', () => undefined);
    source.resume();
    throw error;
  }
  source.off('error', onSourceError);
}

/**
 * The error of a source destroyed before its end was read (a client that went away before its
 * handler got to the body), else null. Such a source emits nothing more: whoever pipes it now
 * would wait forever, holding whatever it holds (an upload session's lock).
 */
export function abandoned(source: Readable): Error | null {
  if (!source.readableAborted) return null;
  return source.errored ?? new Error('the stream was destroyed before it was read');
}
