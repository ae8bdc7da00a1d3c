import type { Writable } from 'node:stream';

/**
 * Resolves once `target` takes more (drain) or is gone (close): the wait of a writer that was
 * told to back off, which must not hang on a request torn down meanwhile.
 */
export function drainedOrClosed(target: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      target.off('drain', done).off('close', done);
      resolve();
    };
    target.once('drain', done).once('close', done);
  });
}
